//! `user_v2`: one row per user seen in a run, with their state merged across runs.

use crate::{
    tables::{BatchContext, TextMapWriter, define_table},
    users::{PROFILE_SET_EVENT, UserState},
};

pub const TABLE_NAME: &str = "user_v2";

const SHORT: usize = 255;
const MEDIUM: usize = 2048;
const LONG: usize = 65535;

fn first_traffic<'r>(state: &'r UserState, pick: impl Fn(&'r crate::sessions::TrafficSnapshot) -> &'r Option<crate::sdk_event::Text<'static>>) -> Option<&'r str> {
    state.first_touch.as_ref().and_then(|first| pick(&first.traffic).as_deref())
}

fn process_info(state: &UserState, context: &BatchContext, map: &mut TextMapWriter<'_>) -> bool {
    map.entry("first_event_name", state.first_touch.as_ref().map(|first| first.event_name.as_str()));
    map.entry("latest_event_name", state.profile.as_ref().map(|_| PROFILE_SET_EVENT));
    map.entry("process_job_id", Some(&context.process_job_id));
    map.entry("process_time", Some(&context.process_time));
    true
}

define_table!(UserState, BatchContext {
    event_timestamp: timestamp = |state, _| Some(state.last_event_time_msec * 1000),
    user_pseudo_id: text(SHORT) = |state, _| Some(&state.user_pseudo_id),
    user_id: text(SHORT) = |state, _| state.user_id.as_deref(),
    user_properties: user_property_map = |state, _| state.profile.as_ref().map(|profile| profile.properties.as_slice()),
    user_properties_json_str: text(LONG) = |state, _| state.profile.as_ref().map(|profile| profile.properties_json.as_str()),
    first_touch_time_msec: long = |state, _| state.first_touch.as_ref().and_then(|first| first.first_touch_time_msec),
    first_visit_date: date = |state, _| state.first_touch.as_ref().and_then(|first| first.first_visit_date),
    first_referrer: text(LONG) = |state, _| state.first_touch.as_ref().and_then(|first| first.first_referrer.as_deref()),
    first_traffic_source: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.source),
    first_traffic_medium: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.medium),
    first_traffic_campaign: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.campaign),
    first_traffic_content: text(MEDIUM) = |state, _| first_traffic(state, |traffic| &traffic.content),
    first_traffic_term: text(MEDIUM) = |state, _| first_traffic(state, |traffic| &traffic.term),
    first_traffic_campaign_id: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.campaign_id),
    first_traffic_clid_platform: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.clid_platform),
    first_traffic_clid: text(MEDIUM) = |state, _| first_traffic(state, |traffic| &traffic.clid),
    first_traffic_channel_group: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.channel_group),
    first_traffic_category: text(SHORT) = |state, _| first_traffic(state, |traffic| &traffic.category),
    first_app_install_source: text(SHORT) = |state, _| state.first_touch.as_ref().and_then(|first| first.app_install_source.as_deref()),
    process_info: text_map = |state, context, map| process_info(state, context, map),
    app_id: text(SHORT) = |state, _| Some(&state.app_id),
    // Always empty in CAoA's user_v2 as well; kept for the schema.
    event_name: text(SHORT) = |_, _| None,
    created_time: timestamp = |_, context| Some(context.created_time_micros),
});
