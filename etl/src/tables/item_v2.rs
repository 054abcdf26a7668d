//! `item_v2`: one row per item of a kept event (items without an id are skipped).

use crate::{
    rows::ItemRow,
    tables::{BatchContext, TextMapWriter, define_table},
};

pub const TABLE_NAME: &str = "item_v2";

const SHORT: usize = 255;

fn process_info(context: &BatchContext, map: &mut TextMapWriter<'_>) -> bool {
    map.entry("process_job_id", Some(&context.process_job_id));
    map.entry("process_time", Some(&context.process_time));
    true
}

define_table!(ItemRow<'_, '_>, BatchContext {
    event_timestamp: timestamp = |row, _| Some(row.event.event_time_msec * 1000),
    event_id: text(SHORT) = |row, _| Some(&row.event.sdk.event_id),
    event_name: text(SHORT) = |row, _| Some(&row.event.sdk.event_name),
    platform: text(SHORT) = |row, _| Some(row.event.sdk.platform.as_deref().unwrap_or("Web")),
    user_pseudo_id: text(SHORT) = |row, _| row.event.sdk.user_pseudo_id.as_deref(),
    user_id: text(SHORT) = |row, _| row.event.user_id(),
    item_id: text(SHORT) = |row, _| row.item.id.as_deref(),
    name: text(SHORT) = |row, _| row.item.name.as_deref(),
    brand: text(SHORT) = |row, _| row.item.brand.as_deref(),
    currency: text(SHORT) = |row, _| row.item.currency.as_deref(),
    price: double = |row, _| row.item.price,
    quantity: double = |row, _| row.item.quantity,
    creative_name: text(SHORT) = |row, _| row.item.creative_name.as_deref(),
    creative_slot: text(SHORT) = |row, _| row.item.creative_slot.as_deref(),
    location_id: text(SHORT) = |row, _| row.item.location_id.as_deref(),
    category: text(SHORT) = |row, _| row.item.category.as_deref(),
    category2: text(SHORT) = |row, _| row.item.category2.as_deref(),
    category3: text(SHORT) = |row, _| row.item.category3.as_deref(),
    category4: text(SHORT) = |row, _| row.item.category4.as_deref(),
    category5: text(SHORT) = |row, _| row.item.category5.as_deref(),
    custom_parameters_json_str: text(SHORT) = |row, _| row.custom_parameters_json.as_deref(),
    custom_parameters: parameter_map = |row, _| Some(row.custom_parameters.entries.as_slice()),
    process_info: text_map = |_, context, map| process_info(context, map),
    app_id: text(SHORT) = |row, _| Some(&row.event.sdk.app_id),
    created_time: timestamp = |_, context| Some(context.created_time_micros),
});
