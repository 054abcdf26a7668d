//! One SDK event, read from its JSON with CAoA's field names, aliases and coercions.
//!
//! Known ("reserved") keys go to typed fields; every other key, at the top level or inside
//! `attributes`, `items[]` or `user`, is kept with its JSON text for `custom_parameters`. An
//! event missing a required field, or with a field of a type that cannot be read, is refused
//! with the reason, and the caller quarantines it.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::json_text::{FieldTypeError, JsonKind, JsonMembers, kind_of, lenient_i64, safe_bool, safe_f64, safe_i32, safe_i64, text};

pub type Text<'a> = Cow<'a, str>;

/// Keys the SDK may add that are not columns: kept, in document order, as custom parameters.
pub type CustomMembers<'a> = Vec<(Text<'a>, &'a RawValue)>;

/// Why an event cannot be turned into rows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventDefect {
    #[error("event is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("required field `{0}` is missing or empty")]
    MissingField(&'static str),
    #[error("field `timestamp` must be an integer of milliseconds")]
    BadTimestamp,
    #[error(transparent)]
    FieldType(#[from] FieldTypeError),
}

#[derive(Debug, Default)]
pub struct SdkEvent<'a> {
    pub event_id: Text<'a>,
    pub event_name: Text<'a>,
    pub app_id: Text<'a>,
    /// Client clock, ms since the epoch, as sent (before any clock-skew correction).
    pub timestamp_ms: i64,
    pub user_pseudo_id: Option<Text<'a>>,
    pub device_id: Option<Text<'a>>,
    pub device_unique_id: Option<Text<'a>>,
    pub platform: Option<Text<'a>>,
    pub os_version: Option<Text<'a>>,
    pub make: Option<Text<'a>>,
    pub brand: Option<Text<'a>>,
    pub model: Option<Text<'a>>,
    pub carrier: Option<Text<'a>>,
    pub network_type: Option<Text<'a>>,
    pub locale: Option<Text<'a>>,
    pub system_language: Option<Text<'a>>,
    pub host_name: Option<Text<'a>>,
    pub app_version: Option<Text<'a>>,
    pub app_package_name: Option<Text<'a>>,
    pub app_title: Option<Text<'a>>,
    pub sdk_version: Option<Text<'a>>,
    pub sdk_name: Option<Text<'a>>,
    pub screen_height: Option<i32>,
    pub screen_width: Option<i32>,
    pub viewport_height: Option<i32>,
    pub viewport_width: Option<i32>,
    /// Offset of the device's time zone from UTC in milliseconds.
    pub zone_offset_ms: Option<i64>,
    pub event_value: Option<f64>,
    pub event_value_currency: Option<Text<'a>>,
    pub user: Option<SdkUser<'a>>,
    pub attributes: Option<SdkAttributes<'a>>,
    pub items: Vec<SdkItem<'a>>,
    pub custom: CustomMembers<'a>,
}

/// The reserved attributes (`attributes._…`) that have columns, and the app's own attributes.
#[derive(Debug, Default)]
pub struct SdkAttributes<'a> {
    pub screen_name: Option<Text<'a>>,
    pub screen_id: Option<Text<'a>>,
    pub screen_unique_id: Option<Text<'a>>,
    pub previous_screen_name: Option<Text<'a>>,
    pub previous_screen_id: Option<Text<'a>>,
    pub previous_screen_unique_id: Option<Text<'a>>,
    pub entrances: Option<bool>,
    pub previous_timestamp: Option<i64>,
    pub engagement_time_msec: Option<i64>,
    pub page_referrer: Option<Text<'a>>,
    pub page_referrer_title: Option<Text<'a>>,
    pub page_title: Option<Text<'a>>,
    pub page_url: Option<Text<'a>>,
    pub latest_referrer: Option<Text<'a>>,
    pub latest_referrer_host: Option<Text<'a>>,
    pub is_first_time: Option<bool>,
    pub exception_message: Option<Text<'a>>,
    pub exception_stack: Option<Text<'a>>,
    pub previous_app_version: Option<Text<'a>>,
    pub previous_os_version: Option<Text<'a>>,
    pub error_code: Option<Text<'a>>,
    pub error_message: Option<Text<'a>>,
    pub search_key: Option<Text<'a>>,
    pub search_term: Option<Text<'a>>,
    pub link_classes: Option<Text<'a>>,
    pub link_domain: Option<Text<'a>>,
    pub link_id: Option<Text<'a>>,
    pub link_url: Option<Text<'a>>,
    pub outbound: Option<bool>,
    pub session_id: Option<Text<'a>>,
    pub session_start_time_msec: Option<i64>,
    pub session_duration: Option<i64>,
    pub session_number: Option<i64>,
    pub app_install_channel: Option<Text<'a>>,
    pub traffic_source: SdkTrafficSource<'a>,
    pub custom: CustomMembers<'a>,
}

/// Traffic source fields as the SDK sent them (`_traffic_source_*`, `_utm_*`, `_gclid`).
#[derive(Debug, Default, Clone)]
pub struct SdkTrafficSource<'a> {
    pub source: Option<Text<'a>>,
    pub medium: Option<Text<'a>>,
    pub campaign: Option<Text<'a>>,
    pub content: Option<Text<'a>>,
    pub term: Option<Text<'a>>,
    pub campaign_id: Option<Text<'a>>,
    pub clid_platform: Option<Text<'a>>,
    pub clid: Option<Text<'a>>,
    pub channel_group: Option<Text<'a>>,
    pub category: Option<Text<'a>>,
    pub utm_source: Option<Text<'a>>,
    pub utm_medium: Option<Text<'a>>,
    pub utm_campaign: Option<Text<'a>>,
    pub utm_content: Option<Text<'a>>,
    pub utm_term: Option<Text<'a>>,
    pub utm_id: Option<Text<'a>>,
    pub utm_source_platform: Option<Text<'a>>,
    pub gclid: Option<Text<'a>>,
}

#[derive(Debug, Default)]
pub struct SdkItem<'a> {
    pub id: Option<Text<'a>>,
    pub name: Option<Text<'a>>,
    pub brand: Option<Text<'a>>,
    pub currency: Option<Text<'a>>,
    pub price: Option<f64>,
    pub quantity: Option<f64>,
    pub creative_name: Option<Text<'a>>,
    pub creative_slot: Option<Text<'a>>,
    pub location_id: Option<Text<'a>>,
    pub category: Option<Text<'a>>,
    pub category2: Option<Text<'a>>,
    pub category3: Option<Text<'a>>,
    pub category4: Option<Text<'a>>,
    pub category5: Option<Text<'a>>,
    pub custom: CustomMembers<'a>,
}

/// A user attribute the SDK sets with its time: `{"value": …, "set_timestamp": ms}`.
#[derive(Debug, Default, Clone)]
pub struct UserValue<T> {
    pub value: Option<T>,
    pub set_timestamp: Option<i64>,
}

/// One custom user property: its JSON value and, when the SDK sent one, its set time.
#[derive(Debug, Clone)]
pub struct UserProperty<'a> {
    pub value: &'a RawValue,
    pub set_timestamp: Option<i64>,
}

#[derive(Debug, Default)]
pub struct SdkUser<'a> {
    pub user_id: UserValue<Text<'a>>,
    pub user_name: UserValue<Text<'a>>,
    pub user_age: UserValue<i32>,
    pub first_touch_timestamp: UserValue<i64>,
    pub present: UserPresence,
    pub custom: Vec<(Text<'a>, UserProperty<'a>)>,
}

/// Which reserved user attributes the SDK sent (a property is listed even with a null value).
#[derive(Debug, Default, Clone, Copy)]
pub struct UserPresence {
    pub user_id: bool,
    pub user_name: bool,
    pub user_age: bool,
    pub first_touch_timestamp: bool,
}

fn object_members<'a>(field: &str, raw: &'a RawValue) -> Result<Option<JsonMembers<'a>>, FieldTypeError> {
    match kind_of(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::Object => JsonMembers::parse(raw.get()).map(Some).map_err(|_| FieldTypeError::new(field, "is not a valid JSON object")),
        _ => Err(FieldTypeError::new(field, "must be a JSON object")),
    }
}

impl<'a> SdkEvent<'a> {
    /// Reads one event from its JSON text.
    pub fn parse(raw: &'a RawValue) -> Result<SdkEvent<'a>, EventDefect> {
        if kind_of(raw) != JsonKind::Object {
            let mut shown: String = raw.get().chars().take(40).collect();
            if shown.len() < raw.get().len() {
                shown.push('…');
            }
            return Err(EventDefect::NotAnObject(shown));
        }
        let members = JsonMembers::parse(raw.get()).map_err(|error| EventDefect::NotAnObject(error.to_string()))?;
        let mut event = SdkEvent::default();
        let mut timestamp = None;
        let (mut has_event_id, mut has_event_name, mut has_app_id) = (false, false, false);
        for (key, value) in members.0 {
            match key.as_ref() {
                "event_id" => {
                    event.event_id = text("event_id", value)?.unwrap_or_default();
                    has_event_id = !event.event_id.is_empty();
                }
                "event_type" | "event_name" => {
                    event.event_name = text("event_type", value)?.unwrap_or_default();
                    has_event_name = !event.event_name.is_empty();
                }
                "app_id" => {
                    event.app_id = text("app_id", value)?.unwrap_or_default();
                    has_app_id = !event.app_id.is_empty();
                }
                "timestamp" => timestamp = Some(lenient_i64(value).ok_or(EventDefect::BadTimestamp)?),
                "unique_id" | "user_pseudo_id" => event.user_pseudo_id = text("unique_id", value)?,
                "device_id" => event.device_id = text("device_id", value)?,
                "device_unique_id" | "advertising_id" => event.device_unique_id = text("device_unique_id", value)?,
                "platform" => event.platform = text("platform", value)?,
                "os_version" => event.os_version = text("os_version", value)?,
                "make" => event.make = text("make", value)?,
                "brand" => event.brand = text("brand", value)?,
                "model" => event.model = text("model", value)?,
                "carrier" => event.carrier = text("carrier", value)?,
                "network_type" => event.network_type = text("network_type", value)?,
                "locale" => event.locale = text("locale", value)?,
                "system_language" => event.system_language = text("system_language", value)?,
                "host_name" => event.host_name = text("host_name", value)?,
                "app_version" => event.app_version = text("app_version", value)?,
                "app_package_name" => event.app_package_name = text("app_package_name", value)?,
                "app_title" => event.app_title = text("app_title", value)?,
                "sdk_version" => event.sdk_version = text("sdk_version", value)?,
                "sdk_name" => event.sdk_name = text("sdk_name", value)?,
                "screen_height" => event.screen_height = safe_i32(value),
                "screen_width" => event.screen_width = safe_i32(value),
                "viewport_height" => event.viewport_height = safe_i32(value),
                "viewport_width" => event.viewport_width = safe_i32(value),
                "zone_offset" => event.zone_offset_ms = safe_i64(value),
                "event_value" | "event_value_in_usd" => event.event_value = safe_f64(value),
                "event_value_currency" | "currency" => event.event_value_currency = text("event_value_currency", value)?,
                // Read by CAoA's parser but used by no v2 column.
                "event_previous_timestamp" => {}
                "user" => event.user = object_members("user", value)?.map(SdkUser::from_members).transpose()?,
                "attributes" => event.attributes = object_members("attributes", value)?.map(SdkAttributes::from_members).transpose()?,
                "items" => event.items = parse_items(value)?,
                _ => event.custom.push((key, value)),
            }
        }
        if !has_event_id {
            return Err(EventDefect::MissingField("event_id"));
        }
        if !has_app_id {
            return Err(EventDefect::MissingField("app_id"));
        }
        if !has_event_name {
            return Err(EventDefect::MissingField("event_type"));
        }
        event.timestamp_ms = timestamp.ok_or(EventDefect::MissingField("timestamp"))?;
        Ok(event)
    }
}

impl<'a> SdkAttributes<'a> {
    fn from_members(members: JsonMembers<'a>) -> Result<SdkAttributes<'a>, FieldTypeError> {
        let mut attributes = SdkAttributes::default();
        let traffic = &mut attributes.traffic_source;
        for (key, value) in members.0 {
            let field = key.as_ref();
            match field {
                "_screen_name" => attributes.screen_name = text(field, value)?,
                "_screen_id" => attributes.screen_id = text(field, value)?,
                "_screen_unique_id" => attributes.screen_unique_id = text(field, value)?,
                "_previous_screen_name" => attributes.previous_screen_name = text(field, value)?,
                "_previous_screen_id" => attributes.previous_screen_id = text(field, value)?,
                "_previous_screen_unique_id" => attributes.previous_screen_unique_id = text(field, value)?,
                "_entrances" => attributes.entrances = safe_bool(value),
                "_previous_timestamp" => attributes.previous_timestamp = lenient_i64(value),
                "_engagement_time_msec" => attributes.engagement_time_msec = lenient_i64(value),
                "_page_referrer" => attributes.page_referrer = text(field, value)?,
                "_page_referrer_title" => attributes.page_referrer_title = text(field, value)?,
                "_page_title" => attributes.page_title = text(field, value)?,
                "_page_url" => attributes.page_url = text(field, value)?,
                "_latest_referrer" => attributes.latest_referrer = text(field, value)?,
                "_latest_referrer_host" => attributes.latest_referrer_host = text(field, value)?,
                "_is_first_time" => attributes.is_first_time = safe_bool(value),
                "_exception_message" => attributes.exception_message = text(field, value)?,
                "_exception_stack" => attributes.exception_stack = text(field, value)?,
                "_previous_app_version" => attributes.previous_app_version = text(field, value)?,
                "_previous_os_version" => attributes.previous_os_version = text(field, value)?,
                "_error_code" => attributes.error_code = text(field, value)?,
                "_error_message" => attributes.error_message = text(field, value)?,
                "_search_key" => attributes.search_key = text(field, value)?,
                "_search_term" => attributes.search_term = text(field, value)?,
                "_link_classes" => attributes.link_classes = text(field, value)?,
                "_link_domain" => attributes.link_domain = text(field, value)?,
                "_link_id" => attributes.link_id = text(field, value)?,
                "_link_url" => attributes.link_url = text(field, value)?,
                "_outbound" => attributes.outbound = safe_bool(value),
                "_session_id" => attributes.session_id = text(field, value)?,
                "_session_start_time_msec" | "_session_start_timestamp" => attributes.session_start_time_msec = safe_i64(value),
                "_session_duration" => attributes.session_duration = safe_i64(value),
                "_session_number" => attributes.session_number = safe_i64(value),
                "_app_install_channel" | "_app_install_source" | "_install_channel" => attributes.app_install_channel = text(field, value)?,
                "_traffic_source_source" => traffic.source = text(field, value)?,
                "_traffic_source_medium" => traffic.medium = text(field, value)?,
                "_traffic_source_campaign" => traffic.campaign = text(field, value)?,
                "_traffic_source_content" => traffic.content = text(field, value)?,
                "_traffic_source_term" => traffic.term = text(field, value)?,
                "_traffic_source_campaign_id" => traffic.campaign_id = text(field, value)?,
                "_traffic_source_clid_platform" => traffic.clid_platform = text(field, value)?,
                "_traffic_source_clid" => traffic.clid = text(field, value)?,
                "_traffic_source_channel_group" => traffic.channel_group = text(field, value)?,
                "_traffic_source_category" => traffic.category = text(field, value)?,
                "_utm_source" => traffic.utm_source = text(field, value)?,
                "_utm_medium" => traffic.utm_medium = text(field, value)?,
                "_utm_campaign" => traffic.utm_campaign = text(field, value)?,
                "_utm_content" => traffic.utm_content = text(field, value)?,
                "_utm_term" => traffic.utm_term = text(field, value)?,
                "_utm_id" => traffic.utm_id = text(field, value)?,
                "_utm_source_platform" => traffic.utm_source_platform = text(field, value)?,
                "_gclid" => traffic.gclid = text(field, value)?,
                _ => attributes.custom.push((key, value)),
            }
        }
        Ok(attributes)
    }
}

fn parse_items<'a>(raw: &'a RawValue) -> Result<Vec<SdkItem<'a>>, FieldTypeError> {
    match kind_of(raw) {
        JsonKind::Null => return Ok(Vec::new()),
        JsonKind::Array => {}
        _ => return Err(FieldTypeError::new("items", "must be an array of objects")),
    }
    let elements: Vec<&'a RawValue> = serde_json::from_str(raw.get()).map_err(|_| FieldTypeError::new("items", "is not a valid JSON array"))?;
    elements
        .into_iter()
        .map(|element| {
            let members = object_members("items[]", element)?.ok_or_else(|| FieldTypeError::new("items[]", "must be an object, not null"))?;
            SdkItem::from_members(members)
        })
        .collect()
}

impl<'a> SdkItem<'a> {
    fn from_members(members: JsonMembers<'a>) -> Result<SdkItem<'a>, FieldTypeError> {
        let mut item = SdkItem::default();
        for (key, value) in members.0 {
            let field = key.as_ref();
            match field {
                "id" | "item_id" => item.id = text(field, value)?,
                "name" | "item_name" => item.name = text(field, value)?,
                "brand" => item.brand = text(field, value)?,
                "currency" => item.currency = text(field, value)?,
                "price" => item.price = safe_f64(value),
                "quantity" => item.quantity = safe_f64(value),
                "creative_name" => item.creative_name = text(field, value)?,
                "creative_slot" => item.creative_slot = text(field, value)?,
                "location_id" => item.location_id = text(field, value)?,
                "category" => item.category = text(field, value)?,
                "category2" => item.category2 = text(field, value)?,
                "category3" => item.category3 = text(field, value)?,
                "category4" => item.category4 = text(field, value)?,
                "category5" => item.category5 = text(field, value)?,
                _ => item.custom.push((key, value)),
            }
        }
        Ok(item)
    }
}

/// `{"value": …, "set_timestamp": …}` of a reserved user attribute; a bare value (some SDK
/// versions and CAoA's own fixtures send `"_user_id": "…"`) is taken as the value, without a time.
fn user_value<'a, T>(field: &str, raw: &'a RawValue, read: impl Fn(&'a RawValue) -> Result<Option<T>, FieldTypeError>) -> Result<UserValue<T>, FieldTypeError> {
    let mut user_value = UserValue { value: None, set_timestamp: None };
    match kind_of(raw) {
        JsonKind::Null => return Ok(user_value),
        JsonKind::Object => {}
        _ => {
            user_value.value = read(raw)?;
            return Ok(user_value);
        }
    }
    let members = JsonMembers::parse(raw.get()).map_err(|_| FieldTypeError::new(field, "is not a valid JSON object"))?;
    for (key, value) in members.0 {
        match key.as_ref() {
            "value" => user_value.value = read(value)?,
            "set_timestamp" => user_value.set_timestamp = lenient_i64(value),
            _ => {}
        }
    }
    Ok(user_value)
}

impl<'a> SdkUser<'a> {
    fn from_members(members: JsonMembers<'a>) -> Result<SdkUser<'a>, FieldTypeError> {
        let mut user = SdkUser::default();
        for (key, value) in members.0 {
            match key.as_ref() {
                "_user_id" => {
                    user.user_id = user_value("user._user_id", value, |raw| text("user._user_id.value", raw))?;
                    user.present.user_id = true;
                }
                "_user_name" => {
                    user.user_name = user_value("user._user_name", value, |raw| text("user._user_name.value", raw))?;
                    user.present.user_name = true;
                }
                "_user_age" => {
                    user.user_age = user_value("user._user_age", value, |raw| Ok(safe_i32(raw)))?;
                    user.present.user_age = true;
                }
                "_user_first_touch_timestamp" => {
                    user.first_touch_timestamp = user_value("user._user_first_touch_timestamp", value, |raw| Ok(safe_i64(raw)))?;
                    user.present.first_touch_timestamp = true;
                }
                _ => user.custom.push((key, custom_user_property(value))),
            }
        }
        Ok(user)
    }
}

/// A custom user attribute: an object with a non-null `value` gives that value (and its
/// `set_timestamp` when it is a number); anything else is kept whole, without a time.
fn custom_user_property(raw: &RawValue) -> UserProperty<'_> {
    let whole = UserProperty { value: raw, set_timestamp: None };
    if kind_of(raw) != JsonKind::Object {
        return whole;
    }
    let Ok(members) = JsonMembers::parse(raw.get()) else {
        return whole;
    };
    let value = members.0.iter().find(|(key, value)| key == "value" && kind_of(value) != JsonKind::Null).map(|(_, value)| *value);
    let Some(value) = value else {
        return whole;
    };
    let set_timestamp = members
        .0
        .iter()
        .find(|(key, value)| key == "set_timestamp" && kind_of(value) == JsonKind::Number)
        .and_then(|(_, value)| lenient_i64(value));
    UserProperty { value, set_timestamp }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn reserved_keys_become_fields_and_the_rest_stays_custom() {
        let json = raw(
            r#"{"event_type":"Click","event_id":"e1","app_id":"a","timestamp":1700000000000,"unique_id":"u1",
                "zone_offset":28800000,"screen_width":"1080","hashCode":"80452b0","event_sequence_id":2,
                "attributes":{"_session_id":"s1","_session_start_timestamp":5,"_traffic_source_source":"TSS","_channel":"C001","_is_first_day":true},
                "items":[{"id":"i1","name":"Press","price":42.33,"quantity":19,"color":"red"}],
                "user":{"_user_id":{"value":"312121","set_timestamp":1},"_user_age":{"value":22},"vip":{"value":true,"set_timestamp":7},"tags":[1]}}"#,
        );
        let event = SdkEvent::parse(&json).unwrap();
        assert_eq!(event.event_name, "Click");
        assert_eq!(event.timestamp_ms, 1_700_000_000_000);
        assert_eq!(event.zone_offset_ms, Some(28_800_000));
        assert_eq!(event.screen_width, Some(1080));
        let custom: Vec<&str> = event.custom.iter().map(|(key, _)| key.as_ref()).collect();
        assert_eq!(custom, ["hashCode", "event_sequence_id"]);
        let attributes = event.attributes.as_ref().unwrap();
        assert_eq!(attributes.session_id.as_deref(), Some("s1"));
        assert_eq!(attributes.session_start_time_msec, Some(5));
        assert_eq!(attributes.traffic_source.source.as_deref(), Some("TSS"));
        assert_eq!(attributes.custom.len(), 2);
        assert_eq!(event.items[0].price, Some(42.33));
        assert_eq!(event.items[0].quantity, Some(19.0));
        assert_eq!(event.items[0].custom[0].0, "color");
        let user = event.user.as_ref().unwrap();
        assert_eq!(user.user_id.value.as_deref(), Some("312121"));
        assert_eq!(user.user_age.value, Some(22));
        assert_eq!(user.custom[0].1.value.get(), "true");
        assert_eq!(user.custom[0].1.set_timestamp, Some(7));
        assert_eq!(user.custom[1].1.value.get(), "[1]");
    }

    #[test]
    fn events_without_required_fields_are_refused_with_the_field() {
        assert_eq!(SdkEvent::parse(&raw(r#"{"event_type":"a","app_id":"a","timestamp":1}"#)).unwrap_err(), EventDefect::MissingField("event_id"));
        assert_eq!(SdkEvent::parse(&raw(r#"{"event_id":"e","app_id":"a","timestamp":1}"#)).unwrap_err(), EventDefect::MissingField("event_type"));
        assert_eq!(SdkEvent::parse(&raw(r#"{"event_id":"e","event_type":"a","timestamp":1}"#)).unwrap_err(), EventDefect::MissingField("app_id"));
        assert_eq!(SdkEvent::parse(&raw(r#"{"event_id":"e","event_type":"a","app_id":"a","timestamp":"soon"}"#)).unwrap_err(), EventDefect::BadTimestamp);
        assert!(matches!(SdkEvent::parse(&raw(r#""text""#)).unwrap_err(), EventDefect::NotAnObject(_)));
        let items_not_array = SdkEvent::parse(&raw(r#"{"event_id":"e","event_type":"a","app_id":"a","timestamp":1,"items":{}}"#)).unwrap_err();
        assert_eq!(items_not_array.to_string(), "field `items` must be an array of objects");
    }
}
