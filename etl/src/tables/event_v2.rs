//! `event_v2`: one row per event, CAoA's columns in CAoA's order.

use crate::{
    rows::{EventRow, UserAgentEnrichment},
    sdk_event::SdkAttributes,
    tables::{BatchContext, TextMapWriter, define_table},
};

pub const TABLE_NAME: &str = "event_v2";

/// Byte limits of CAoA's text columns.
const SHORT: usize = 255;
const MEDIUM: usize = 2048;
const LONG: usize = 65535;
/// Columns CAoA never truncates.
const UNLIMITED: usize = usize::MAX;

/// Platforms whose name is also the device's operating system.
const OPERATING_SYSTEM_PLATFORMS: [&str; 3] = ["android", "ios", "wechatmp"];

fn attributes<'r>(row: &'r EventRow<'_>) -> Option<&'r SdkAttributes<'r>> {
    row.sdk.attributes.as_ref()
}

fn attribute<'r>(row: &'r EventRow<'_>, pick: impl Fn(&'r SdkAttributes<'r>) -> Option<&'r str>) -> Option<&'r str> {
    attributes(row).and_then(pick)
}

fn operating_system<'r>(row: &'r EventRow<'_>) -> Option<&'r str> {
    let platform = row.sdk.platform.as_deref()?;
    OPERATING_SYSTEM_PLATFORMS.iter().any(|name| platform.eq_ignore_ascii_case(name)).then_some(platform)
}

fn user_agent_field<'r>(row: &'r EventRow<'_>, pick: impl Fn(&'r crate::rows::UserAgentInfo) -> Option<&'r str>) -> Option<&'r str> {
    match &row.user_agent {
        UserAgentEnrichment::Parsed(info) => pick(info),
        _ => None,
    }
}

fn geo_field<'r>(row: &'r EventRow<'_>, pick: impl Fn(&'r crate::rows::GeoInfo) -> Option<&'r str>) -> Option<&'r str> {
    row.geo.as_deref().and_then(pick)
}

/// `device_ua`: the parsed parts when the user-agent enricher ran, else just the header.
fn device_ua(row: &EventRow<'_>, map: &mut TextMapWriter<'_>) -> bool {
    match &row.user_agent {
        UserAgentEnrichment::NotRun => {
            map.entry("string", Some(row.record.ua.as_deref().unwrap_or("null")));
            true
        }
        UserAgentEnrichment::NoUserAgent => false,
        UserAgentEnrichment::Parsed(info) => {
            map.entry("userAgent", Some(&info.user_agent_json));
            map.entry("os", Some(&info.os_json));
            map.entry("device", Some(&info.device_json));
            map.entry("string", row.record.ua.as_deref());
            true
        }
    }
}

fn page_query_parameters(row: &EventRow<'_>, map: &mut TextMapWriter<'_>) -> bool {
    let Some(parameters) = &row.page.url_query_parameters else {
        return false;
    };
    for (key, value) in parameters {
        map.entry(key, Some(value));
    }
    true
}

/// `process_info`: where the event came from, and which run processed it.
fn process_info(row: &EventRow<'_>, context: &BatchContext, map: &mut TextMapWriter<'_>) -> bool {
    let record = row.record;
    map.entry("rid", record.rid.as_deref());
    map.entry("ingest_time", Some(&record.ingest_time_text));
    map.entry("input_file_name", Some(record.input_name));
    map.entry("source_ip", record.ip.as_deref());
    if let Some(upload_time) = &record.upload_time_text {
        map.entry("upload_time", Some(upload_time));
    }
    if let Some(adjustment) = &row.time_adjustment {
        map.entry("event_timestamp_adjusted", Some("true"));
        map.entry("event_timestamp_adjusted_from", Some(&adjustment.from_msec.to_string()));
        map.entry("event_timestamp_adjusted_to", Some(&adjustment.to_msec.to_string()));
        map.entry("event_timestamp_adjusted_reason", Some(&adjustment.reason));
    }
    map.entry("process_job_id", Some(&context.process_job_id));
    map.entry("process_time", Some(&context.process_time));
    true
}

define_table!(EventRow<'_>, BatchContext {
    event_timestamp: timestamp = |row, _| Some(row.event_time_msec * 1000),
    event_id: text(SHORT) = |row, _| Some(&row.sdk.event_id),
    event_time_msec: long = |row, _| Some(row.event_time_msec),
    event_name: text(SHORT) = |row, _| Some(&row.sdk.event_name),
    event_value: double = |row, _| row.sdk.event_value,
    // A currency without a value means nothing; a value without a currency is in USD.
    event_value_currency: text(32) = |row, _| row.sdk.event_value.map(|_| row.sdk.event_value_currency.as_deref().unwrap_or("USD")),
    event_bundle_sequence_id: long = |row, _| row.record.event_bundle_sequence_id,
    ingest_time_msec: long = |row, _| Some(row.record.ingest_time_msec),
    device_mobile_brand_name: text(SHORT) = |row, _| row.sdk.brand.as_deref(),
    device_mobile_model_name: text(SHORT) = |row, _| row.sdk.model.as_deref(),
    device_manufacturer: text(SHORT) = |row, _| row.sdk.make.as_deref(),
    device_carrier: text(SHORT) = |row, _| row.sdk.carrier.as_deref(),
    device_network_type: text(SHORT) = |row, _| row.sdk.network_type.as_deref(),
    device_operating_system: text(SHORT) = |row, _| operating_system(row),
    device_operating_system_version: text(SHORT) = |row, _| row.sdk.os_version.as_deref(),
    device_vendor_id: text(SHORT) = |row, _| row.sdk.device_id.as_deref(),
    device_advertising_id: text(SHORT) = |row, _| row.sdk.device_unique_id.as_deref(),
    device_system_language: text(SHORT) = |row, _| row.sdk.system_language.as_deref(),
    device_time_zone_offset_seconds: integer = |row, _| row.sdk.zone_offset_ms.map(|offset| (offset / 1000) as i32),
    device_ua_browser: text(SHORT) = |row, _| user_agent_field(row, |ua| ua.browser.as_deref()),
    device_ua_browser_version: text(SHORT) = |row, _| user_agent_field(row, |ua| ua.browser_version.as_deref()),
    device_ua_os: text(UNLIMITED) = |row, _| user_agent_field(row, |ua| ua.os.as_deref()),
    device_ua_os_version: text(UNLIMITED) = |row, _| user_agent_field(row, |ua| ua.os_version.as_deref()),
    device_ua_device: text(SHORT) = |row, _| user_agent_field(row, |ua| ua.device.as_deref()),
    device_ua_device_category: text(SHORT) = |row, _| user_agent_field(row, |ua| ua.device_category),
    device_ua: text_map = |row, _, map| device_ua(row, map),
    device_screen_width: integer = |row, _| row.sdk.screen_width,
    device_screen_height: integer = |row, _| row.sdk.screen_height,
    device_viewport_width: integer = |row, _| row.sdk.viewport_width,
    device_viewport_height: integer = |row, _| row.sdk.viewport_height,
    geo_continent: text(SHORT) = |row, _| geo_field(row, |geo| geo.continent.as_deref()),
    geo_sub_continent: text(SHORT) = |row, _| geo_field(row, |geo| geo.sub_continent.as_deref()),
    geo_country: text(SHORT) = |row, _| geo_field(row, |geo| geo.country.as_deref()),
    geo_region: text(SHORT) = |row, _| geo_field(row, |geo| geo.region.as_deref()),
    geo_metro: text(SHORT) = |row, _| geo_field(row, |geo| geo.metro.as_deref()),
    geo_city: text(SHORT) = |row, _| geo_field(row, |geo| geo.city.as_deref()),
    geo_locale: text(SHORT) = |row, _| row.sdk.locale.as_deref(),
    traffic_source_source: text(SHORT) = |row, _| row.traffic_source.source.as_deref(),
    traffic_source_medium: text(SHORT) = |row, _| row.traffic_source.medium.as_deref(),
    traffic_source_campaign: text(SHORT) = |row, _| row.traffic_source.campaign.as_deref(),
    traffic_source_content: text(MEDIUM) = |row, _| row.traffic_source.content.as_deref(),
    traffic_source_term: text(MEDIUM) = |row, _| row.traffic_source.term.as_deref(),
    traffic_source_campaign_id: text(SHORT) = |row, _| row.traffic_source.campaign_id.as_deref(),
    traffic_source_clid_platform: text(SHORT) = |row, _| row.traffic_source.clid_platform.as_deref(),
    traffic_source_clid: text(MEDIUM) = |row, _| row.traffic_source.clid.as_deref(),
    traffic_source_channel_group: text(SHORT) = |row, _| row.traffic_source.channel_group.as_deref(),
    traffic_source_category: text(SHORT) = |row, _| row.traffic_source.category.as_deref(),
    user_first_touch_time_msec: long = |row, _| row.shifted(row.sdk.user.as_ref().and_then(|user| user.first_touch_timestamp.value)),
    app_package_id: text(SHORT) = |row, _| row.sdk.app_package_name.as_deref(),
    app_version: text(SHORT) = |row, _| row.sdk.app_version.as_deref(),
    app_title: text(SHORT) = |row, _| row.sdk.app_title.as_deref(),
    app_install_source: text(SHORT) = |row, _| attribute(row, |a| a.app_install_channel.as_deref()),
    platform: text(SHORT) = |row, _| Some(row.sdk.platform.as_deref().unwrap_or("Web")),
    project_id: text(SHORT) = |row, _| Some(row.project_id),
    app_id: text(SHORT) = |row, _| Some(&row.sdk.app_id),
    screen_view_screen_name: text(SHORT) = |row, _| attribute(row, |a| a.screen_name.as_deref()),
    screen_view_screen_id: text(SHORT) = |row, _| attribute(row, |a| a.screen_id.as_deref()),
    screen_view_screen_unique_id: text(SHORT) = |row, _| attribute(row, |a| a.screen_unique_id.as_deref()),
    screen_view_previous_screen_name: text(SHORT) = |row, _| attribute(row, |a| a.previous_screen_name.as_deref()),
    screen_view_previous_screen_id: text(SHORT) = |row, _| attribute(row, |a| a.previous_screen_id.as_deref()),
    screen_view_previous_screen_unique_id: text(SHORT) = |row, _| attribute(row, |a| a.previous_screen_unique_id.as_deref()),
    screen_view_previous_time_msec: long = |row, _| if row.only_for("_screen_view") { row.shifted(attributes(row).and_then(|a| a.previous_timestamp)) } else { None },
    screen_view_engagement_time_msec: long = |row, _| if row.only_for("_screen_view") { attributes(row).and_then(|a| a.engagement_time_msec) } else { None },
    screen_view_entrances: boolean = |row, _| attributes(row).and_then(|a| a.entrances),
    page_view_page_referrer: text(LONG) = |row, _| row.page.referrer.as_deref(),
    page_view_page_referrer_title: text(MEDIUM) = |row, _| row.page.referrer_title.as_deref(),
    page_view_previous_time_msec: long = |row, _| if row.only_for("_page_view") { row.shifted(attributes(row).and_then(|a| a.previous_timestamp)) } else { None },
    page_view_engagement_time_msec: long = |row, _| if row.only_for("_page_view") { attributes(row).and_then(|a| a.engagement_time_msec) } else { None },
    page_view_page_title: text(MEDIUM) = |row, _| row.page.title.as_deref(),
    page_view_page_url: text(LONG) = |row, _| row.page.url.as_deref(),
    page_view_page_url_path: text(LONG) = |row, _| row.page.url_path.as_deref(),
    page_view_page_url_query_parameters: text_map = |row, _, map| page_query_parameters(row, map),
    page_view_hostname: text(MEDIUM) = |row, _| row.page.hostname.as_deref(),
    page_view_latest_referrer: text(LONG) = |row, _| row.page.latest_referrer.as_deref(),
    page_view_latest_referrer_host: text(MEDIUM) = |row, _| row.page.latest_referrer_host.as_deref(),
    page_view_entrances: boolean = |row, _| attributes(row).and_then(|a| a.entrances),
    app_start_is_first_time: boolean = |row, _| if row.only_for("_app_start") { attributes(row).and_then(|a| a.is_first_time) } else { None },
    upgrade_previous_app_version: text(SHORT) = |row, _| attribute(row, |a| a.previous_app_version.as_deref()),
    upgrade_previous_os_version: text(SHORT) = |row, _| attribute(row, |a| a.previous_os_version.as_deref()),
    search_key: text(MEDIUM) = |row, _| attribute(row, |a| a.search_key.as_deref()),
    search_term: text(MEDIUM) = |row, _| attribute(row, |a| a.search_term.as_deref()),
    outbound_link_classes: text(MEDIUM) = |row, _| attribute(row, |a| a.link_classes.as_deref()),
    outbound_link_domain: text(MEDIUM) = |row, _| attribute(row, |a| a.link_domain.as_deref()),
    outbound_link_id: text(MEDIUM) = |row, _| attribute(row, |a| a.link_id.as_deref()),
    outbound_link_url: text(LONG) = |row, _| attribute(row, |a| a.link_url.as_deref()),
    outbound_link: boolean = |row, _| attributes(row).and_then(|a| a.outbound),
    user_engagement_time_msec: long = |row, _| if row.only_for("_user_engagement") { attributes(row).and_then(|a| a.engagement_time_msec) } else { None },
    user_id: text(SHORT) = |row, _| row.user_id(),
    user_pseudo_id: text(SHORT) = |row, _| row.sdk.user_pseudo_id.as_deref(),
    session_id: text(SHORT) = |row, _| attribute(row, |a| a.session_id.as_deref()),
    session_start_time_msec: long = |row, _| row.shifted(attributes(row).and_then(|a| a.session_start_time_msec)),
    session_duration: long = |row, _| attributes(row).and_then(|a| a.session_duration),
    session_number: long = |row, _| attributes(row).and_then(|a| a.session_number),
    scroll_engagement_time_msec: long = |row, _| if row.only_for("_scroll") { attributes(row).and_then(|a| a.engagement_time_msec) } else { None },
    sdk_error_code: text(SHORT) = |row, _| attribute(row, |a| a.error_code.as_deref()),
    sdk_error_message: text(MEDIUM) = |row, _| attribute(row, |a| a.error_message.as_deref()),
    sdk_version: text(SHORT) = |row, _| row.sdk.sdk_version.as_deref(),
    sdk_name: text(SHORT) = |row, _| row.sdk.sdk_name.as_deref(),
    app_exception_message: text(MEDIUM) = |row, _| attribute(row, |a| a.exception_message.as_deref()),
    app_exception_stack: text(LONG) = |row, _| attribute(row, |a| a.exception_stack.as_deref()),
    custom_parameters_json_str: text(LONG) = |row, _| row.custom_parameters_json.as_deref(),
    custom_parameters: parameter_map = |row, _| Some(row.custom_parameters.entries.as_slice()),
    process_info: text_map = |row, context, map| process_info(row, context, map),
    ua: text(SHORT) = |row, _| row.record.ua.as_deref(),
    ip: text(SHORT) = |row, _| row.record.ip.as_deref(),
    created_time: timestamp = |_, context| Some(context.created_time_micros),
});
