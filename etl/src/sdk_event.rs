//! One SDK event, read from its JSON with CAoA's field names, aliases and coercions.
//!
//! Known ("reserved") keys go to typed fields; every other key, at the top level or inside
//! `attributes`, `items[]` or `user`, is kept with its JSON text for `custom_parameters`. An
//! event missing a required field, or with a field of a type that cannot be read, is refused
//! with the reason, and the caller quarantines it.
//!
//! A request body is read in one pass ([`SdkEvent::parse_body`]): every value is visited once,
//! straight into its field, and strings without escapes stay borrowed from the body.

use std::borrow::Cow;

use serde_json::value::RawValue;

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{
    json_scalar::{NotAScalar, ScalarValue},
    json_text::{FieldTypeError, JsonKind, JsonMembers, MemberName, kind_of, lenient_i64},
};

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
    pub custom: Vec<(Text<'a>, UserProperty<'a>)>,
}


/// Reads the value of a known text field; an object or array there is the event's defect.
fn next_text<'de, A: MapAccess<'de>>(map: &mut A, field: &'static str, defect: &mut Option<FieldTypeError>) -> Result<Option<Text<'de>>, A::Error> {
    match map.next_value::<ScalarValue<'de>>()?.into_text() {
        Ok(text) => Ok(text),
        Err(NotAScalar) => {
            defect.get_or_insert_with(|| FieldTypeError::new(field, "must be a string, not an object or array"));
            Ok(None)
        }
    }
}

fn next_scalar<'de, A: MapAccess<'de>>(map: &mut A) -> Result<ScalarValue<'de>, A::Error> {
    map.next_value::<ScalarValue<'de>>()
}

/// One element of a request body: an event, or why it is not one.
pub struct EventElement<'a>(pub Result<SdkEvent<'a>, EventDefect>);

impl<'de> Deserialize<'de> for EventElement<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = EventElement<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = SdkEvent::default();
        let mut defect: Option<FieldTypeError> = None;
        let mut timestamp: Option<ScalarValue<'de>> = None;
        while let Some(key) = map.next_key::<MemberName<'de>>()? {
            match key.0.as_ref() {
                "event_id" => event.event_id = next_text(&mut map, "event_id", &mut defect)?.unwrap_or_default(),
                "event_type" | "event_name" => event.event_name = next_text(&mut map, "event_type", &mut defect)?.unwrap_or_default(),
                "app_id" => event.app_id = next_text(&mut map, "app_id", &mut defect)?.unwrap_or_default(),
                "timestamp" => timestamp = Some(next_scalar(&mut map)?),
                "unique_id" | "user_pseudo_id" => event.user_pseudo_id = next_text(&mut map, "unique_id", &mut defect)?,
                "device_id" => event.device_id = next_text(&mut map, "device_id", &mut defect)?,
                "device_unique_id" | "advertising_id" => event.device_unique_id = next_text(&mut map, "device_unique_id", &mut defect)?,
                "platform" => event.platform = next_text(&mut map, "platform", &mut defect)?,
                "os_version" => event.os_version = next_text(&mut map, "os_version", &mut defect)?,
                "make" => event.make = next_text(&mut map, "make", &mut defect)?,
                "brand" => event.brand = next_text(&mut map, "brand", &mut defect)?,
                "model" => event.model = next_text(&mut map, "model", &mut defect)?,
                "carrier" => event.carrier = next_text(&mut map, "carrier", &mut defect)?,
                "network_type" => event.network_type = next_text(&mut map, "network_type", &mut defect)?,
                "locale" => event.locale = next_text(&mut map, "locale", &mut defect)?,
                "system_language" => event.system_language = next_text(&mut map, "system_language", &mut defect)?,
                "host_name" => event.host_name = next_text(&mut map, "host_name", &mut defect)?,
                "app_version" => event.app_version = next_text(&mut map, "app_version", &mut defect)?,
                "app_package_name" => event.app_package_name = next_text(&mut map, "app_package_name", &mut defect)?,
                "app_title" => event.app_title = next_text(&mut map, "app_title", &mut defect)?,
                "sdk_version" => event.sdk_version = next_text(&mut map, "sdk_version", &mut defect)?,
                "sdk_name" => event.sdk_name = next_text(&mut map, "sdk_name", &mut defect)?,
                "screen_height" => event.screen_height = next_scalar(&mut map)?.safe_i32(),
                "screen_width" => event.screen_width = next_scalar(&mut map)?.safe_i32(),
                "viewport_height" => event.viewport_height = next_scalar(&mut map)?.safe_i32(),
                "viewport_width" => event.viewport_width = next_scalar(&mut map)?.safe_i32(),
                "zone_offset" => event.zone_offset_ms = next_scalar(&mut map)?.safe_i64(),
                "event_value" | "event_value_in_usd" => event.event_value = next_scalar(&mut map)?.safe_f64(),
                "event_value_currency" | "currency" => event.event_value_currency = next_text(&mut map, "event_value_currency", &mut defect)?,
                // Read by CAoA's parser but used by no v2 column.
                "event_previous_timestamp" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "user" => match map.next_value::<Nested<SdkUser<'de>>>()?.0 {
                    Ok(user) => event.user = user,
                    Err(error) => {
                        defect.get_or_insert(error);
                    }
                },
                "attributes" => match map.next_value::<Nested<SdkAttributes<'de>>>()?.0 {
                    Ok(attributes) => event.attributes = attributes,
                    Err(error) => {
                        defect.get_or_insert(error);
                    }
                },
                "items" => match map.next_value::<ItemList<'de>>()?.0 {
                    Ok(items) => event.items = items,
                    Err(error) => {
                        defect.get_or_insert(error);
                    }
                },
                _ => event.custom.push((key.0, map.next_value::<&'de RawValue>()?)),
            }
        }
        Ok(EventElement(finish_event(event, defect, timestamp)))
    }

    // Anything but an object is no event; its value is read past.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(not_an_event("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(not_an_event("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(not_an_event("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(not_an_event("a number"))
    }
    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        let mut shown: String = value.chars().take(40).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        Ok(not_an_event(&format!("the string {shown:?}")))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(not_an_event("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_event("an array"))
    }
}

fn not_an_event<'a>(what: &str) -> EventElement<'a> {
    EventElement(Err(EventDefect::NotAnObject(what.to_string())))
}

/// The required fields' checks, once every member is read.
fn finish_event<'a>(mut event: SdkEvent<'a>, defect: Option<FieldTypeError>, timestamp: Option<ScalarValue<'a>>) -> Result<SdkEvent<'a>, EventDefect> {
    if event.event_id.is_empty() {
        return Err(EventDefect::MissingField("event_id"));
    }
    if event.app_id.is_empty() {
        return Err(EventDefect::MissingField("app_id"));
    }
    if event.event_name.is_empty() {
        return Err(EventDefect::MissingField("event_type"));
    }
    let Some(timestamp) = timestamp else {
        return Err(EventDefect::MissingField("timestamp"));
    };
    event.timestamp_ms = timestamp.lenient_i64().ok_or(EventDefect::BadTimestamp)?;
    if let Some(defect) = defect {
        return Err(defect.into());
    }
    Ok(event)
}

impl<'a> SdkEvent<'a> {
    /// Reads one event from its JSON text.
    pub fn parse(raw: &'a RawValue) -> Result<SdkEvent<'a>, EventDefect> {
        let element: EventElement<'a> = serde_json::from_str(raw.get()).map_err(|error| EventDefect::NotAnObject(error.to_string()))?;
        element.0
    }

    /// Reads the events of a request body in one pass: each element of the array, or the
    /// body itself when it is one object. Fails only when the body is no JSON at all.
    pub fn parse_body(body: &'a str) -> Result<Vec<Result<SdkEvent<'a>, EventDefect>>, serde_json::Error> {
        if body.trim_start().starts_with('{') {
            let element: EventElement<'a> = serde_json::from_str(body)?;
            return Ok(vec![element.0]);
        }
        let elements: Vec<EventElement<'a>> = serde_json::from_str(body)?;
        Ok(elements.into_iter().map(|element| element.0).collect())
    }
}

/// A nested object (`attributes`, `user`): `None` for null, an error for anything else.
struct Nested<T>(Result<Option<T>, FieldTypeError>);

/// How a nested object reads its members.
trait NestedObject<'de>: Sized {
    const FIELD: &'static str;
    fn read<A: MapAccess<'de>>(map: A) -> Result<Result<Self, FieldTypeError>, A::Error>;
}

impl<'de, T: NestedObject<'de>> Deserialize<'de> for Nested<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NestedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: NestedObject<'de>> Visitor<'de> for NestedVisitor<T> {
            type Value = Nested<T>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(Nested(T::read(map)?.map(Some)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Nested(Ok(None)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Nested(Err(FieldTypeError::new(T::FIELD, "must be a JSON object"))))
            }
        }
        deserializer.deserialize_any(NestedVisitor(std::marker::PhantomData))
    }
}

/// Reads the rest of a map whose reading must stop (the value is consumed, so the parser
/// stays in step).
fn skip_rest<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> NestedObject<'de> for SdkAttributes<'de> {
    const FIELD: &'static str = "attributes";

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Result<Self, FieldTypeError>, A::Error> {
        let mut attributes = SdkAttributes::default();
        let mut defect = None;
        while let Some(key) = map.next_key::<MemberName<'de>>()? {
            let traffic = &mut attributes.traffic_source;
            let map = &mut map;
            match key.0.as_ref() {
                "_screen_name" => attributes.screen_name = next_text(map, "_screen_name", &mut defect)?,
                "_screen_id" => attributes.screen_id = next_text(map, "_screen_id", &mut defect)?,
                "_screen_unique_id" => attributes.screen_unique_id = next_text(map, "_screen_unique_id", &mut defect)?,
                "_previous_screen_name" => attributes.previous_screen_name = next_text(map, "_previous_screen_name", &mut defect)?,
                "_previous_screen_id" => attributes.previous_screen_id = next_text(map, "_previous_screen_id", &mut defect)?,
                "_previous_screen_unique_id" => attributes.previous_screen_unique_id = next_text(map, "_previous_screen_unique_id", &mut defect)?,
                "_entrances" => attributes.entrances = next_scalar(map)?.safe_bool(),
                "_previous_timestamp" => attributes.previous_timestamp = next_scalar(map)?.lenient_i64(),
                "_engagement_time_msec" => attributes.engagement_time_msec = next_scalar(map)?.lenient_i64(),
                "_page_referrer" => attributes.page_referrer = next_text(map, "_page_referrer", &mut defect)?,
                "_page_referrer_title" => attributes.page_referrer_title = next_text(map, "_page_referrer_title", &mut defect)?,
                "_page_title" => attributes.page_title = next_text(map, "_page_title", &mut defect)?,
                "_page_url" => attributes.page_url = next_text(map, "_page_url", &mut defect)?,
                "_latest_referrer" => attributes.latest_referrer = next_text(map, "_latest_referrer", &mut defect)?,
                "_latest_referrer_host" => attributes.latest_referrer_host = next_text(map, "_latest_referrer_host", &mut defect)?,
                "_is_first_time" => attributes.is_first_time = next_scalar(map)?.safe_bool(),
                "_exception_message" => attributes.exception_message = next_text(map, "_exception_message", &mut defect)?,
                "_exception_stack" => attributes.exception_stack = next_text(map, "_exception_stack", &mut defect)?,
                "_previous_app_version" => attributes.previous_app_version = next_text(map, "_previous_app_version", &mut defect)?,
                "_previous_os_version" => attributes.previous_os_version = next_text(map, "_previous_os_version", &mut defect)?,
                "_error_code" => attributes.error_code = next_text(map, "_error_code", &mut defect)?,
                "_error_message" => attributes.error_message = next_text(map, "_error_message", &mut defect)?,
                "_search_key" => attributes.search_key = next_text(map, "_search_key", &mut defect)?,
                "_search_term" => attributes.search_term = next_text(map, "_search_term", &mut defect)?,
                "_link_classes" => attributes.link_classes = next_text(map, "_link_classes", &mut defect)?,
                "_link_domain" => attributes.link_domain = next_text(map, "_link_domain", &mut defect)?,
                "_link_id" => attributes.link_id = next_text(map, "_link_id", &mut defect)?,
                "_link_url" => attributes.link_url = next_text(map, "_link_url", &mut defect)?,
                "_outbound" => attributes.outbound = next_scalar(map)?.safe_bool(),
                "_session_id" => attributes.session_id = next_text(map, "_session_id", &mut defect)?,
                "_session_start_time_msec" | "_session_start_timestamp" => attributes.session_start_time_msec = next_scalar(map)?.safe_i64(),
                "_session_duration" => attributes.session_duration = next_scalar(map)?.safe_i64(),
                "_session_number" => attributes.session_number = next_scalar(map)?.safe_i64(),
                "_app_install_channel" | "_app_install_source" | "_install_channel" => attributes.app_install_channel = next_text(map, "_app_install_channel", &mut defect)?,
                "_traffic_source_source" => traffic.source = next_text(map, "_traffic_source_source", &mut defect)?,
                "_traffic_source_medium" => traffic.medium = next_text(map, "_traffic_source_medium", &mut defect)?,
                "_traffic_source_campaign" => traffic.campaign = next_text(map, "_traffic_source_campaign", &mut defect)?,
                "_traffic_source_content" => traffic.content = next_text(map, "_traffic_source_content", &mut defect)?,
                "_traffic_source_term" => traffic.term = next_text(map, "_traffic_source_term", &mut defect)?,
                "_traffic_source_campaign_id" => traffic.campaign_id = next_text(map, "_traffic_source_campaign_id", &mut defect)?,
                "_traffic_source_clid_platform" => traffic.clid_platform = next_text(map, "_traffic_source_clid_platform", &mut defect)?,
                "_traffic_source_clid" => traffic.clid = next_text(map, "_traffic_source_clid", &mut defect)?,
                "_traffic_source_channel_group" => traffic.channel_group = next_text(map, "_traffic_source_channel_group", &mut defect)?,
                "_traffic_source_category" => traffic.category = next_text(map, "_traffic_source_category", &mut defect)?,
                "_utm_source" => traffic.utm_source = next_text(map, "_utm_source", &mut defect)?,
                "_utm_medium" => traffic.utm_medium = next_text(map, "_utm_medium", &mut defect)?,
                "_utm_campaign" => traffic.utm_campaign = next_text(map, "_utm_campaign", &mut defect)?,
                "_utm_content" => traffic.utm_content = next_text(map, "_utm_content", &mut defect)?,
                "_utm_term" => traffic.utm_term = next_text(map, "_utm_term", &mut defect)?,
                "_utm_id" => traffic.utm_id = next_text(map, "_utm_id", &mut defect)?,
                "_utm_source_platform" => traffic.utm_source_platform = next_text(map, "_utm_source_platform", &mut defect)?,
                "_gclid" => traffic.gclid = next_text(map, "_gclid", &mut defect)?,
                _ => attributes.custom.push((key.0, map.next_value::<&'de RawValue>()?)),
            }
        }
        Ok(defect.map_or(Ok(attributes), Err))
    }
}

/// `items`: an array of item objects (null or absent: no items).
struct ItemList<'a>(Result<Vec<SdkItem<'a>>, FieldTypeError>);

impl<'de> Deserialize<'de> for ItemList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemListVisitor;
        impl<'de> Visitor<'de> for ItemListVisitor {
            type Value = ItemList<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an array of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                let mut defect = None;
                while let Some(item) = seq.next_element::<Nested<SdkItem<'de>>>()? {
                    match item.0 {
                        Ok(Some(item)) => items.push(item),
                        Ok(None) => {
                            defect.get_or_insert(FieldTypeError::new("items[]", "must be an object, not null"));
                        }
                        Err(error) => {
                            defect.get_or_insert(error);
                        }
                    }
                }
                Ok(ItemList(match defect {
                    Some(defect) => Err(defect),
                    None => Ok(items),
                }))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ItemList(Ok(Vec::new())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                skip_rest(&mut map)?;
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ItemList(Err(FieldTypeError::new("items", "must be an array of objects"))))
            }
        }
        deserializer.deserialize_any(ItemListVisitor)
    }
}

impl<'de> NestedObject<'de> for SdkItem<'de> {
    const FIELD: &'static str = "items[]";

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Result<Self, FieldTypeError>, A::Error> {
        let mut item = SdkItem::default();
        let mut defect = None;
        while let Some(key) = map.next_key::<MemberName<'de>>()? {
            let map = &mut map;
            match key.0.as_ref() {
                "id" | "item_id" => item.id = next_text(map, "items[].id", &mut defect)?,
                "name" | "item_name" => item.name = next_text(map, "items[].name", &mut defect)?,
                "brand" => item.brand = next_text(map, "items[].brand", &mut defect)?,
                "currency" => item.currency = next_text(map, "items[].currency", &mut defect)?,
                "price" => item.price = next_scalar(map)?.safe_f64(),
                "quantity" => item.quantity = next_scalar(map)?.safe_f64(),
                "creative_name" => item.creative_name = next_text(map, "items[].creative_name", &mut defect)?,
                "creative_slot" => item.creative_slot = next_text(map, "items[].creative_slot", &mut defect)?,
                "location_id" => item.location_id = next_text(map, "items[].location_id", &mut defect)?,
                "category" => item.category = next_text(map, "items[].category", &mut defect)?,
                "category2" => item.category2 = next_text(map, "items[].category2", &mut defect)?,
                "category3" => item.category3 = next_text(map, "items[].category3", &mut defect)?,
                "category4" => item.category4 = next_text(map, "items[].category4", &mut defect)?,
                "category5" => item.category5 = next_text(map, "items[].category5", &mut defect)?,
                _ => item.custom.push((key.0, map.next_value::<&'de RawValue>()?)),
            }
        }
        Ok(defect.map_or(Ok(item), Err))
    }
}

/// A reserved user attribute's value: `{"value": …, "set_timestamp": …}`, or a bare value
/// (some SDK versions and CAoA's own fixtures send `"_user_id": "…"`), without a time.
struct UserValueField<'a> {
    value: ScalarValue<'a>,
    set_timestamp: Option<i64>,
}

impl<'de> Deserialize<'de> for UserValueField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UserValueVisitor;
        impl<'de> Visitor<'de> for UserValueVisitor {
            type Value = UserValueField<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a user attribute")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut field = UserValueField { value: ScalarValue::Null, set_timestamp: None };
                while let Some(key) = map.next_key::<MemberName<'de>>()? {
                    match key.0.as_ref() {
                        "value" => field.value = next_scalar(&mut map)?,
                        "set_timestamp" => field.set_timestamp = next_scalar(&mut map)?.lenient_i64(),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(field)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(UserValueField { value: ScalarValue::Structure, set_timestamp: None })
            }
            fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Bool(value), set_timestamp: None })
            }
            fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Integer(value), set_timestamp: None })
            }
            fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
                Ok(UserValueField { value: i64::try_from(value).map_or(ScalarValue::Unsigned(value), ScalarValue::Integer), set_timestamp: None })
            }
            fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Float(value), set_timestamp: None })
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Text(Cow::Borrowed(value)), set_timestamp: None })
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Text(Cow::Owned(value.to_string())), set_timestamp: None })
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(UserValueField { value: ScalarValue::Null, set_timestamp: None })
            }
        }
        deserializer.deserialize_any(UserValueVisitor)
    }
}

impl<'de> NestedObject<'de> for SdkUser<'de> {
    const FIELD: &'static str = "user";

    fn read<A: MapAccess<'de>>(mut map: A) -> Result<Result<Self, FieldTypeError>, A::Error> {
        let mut user = SdkUser::default();
        let mut defect = None;
        while let Some(key) = map.next_key::<MemberName<'de>>()? {
            match key.0.as_ref() {
                "_user_id" => {
                    let field: UserValueField<'de> = map.next_value()?;
                    user.user_id = UserValue { value: text_value(field.value, "user._user_id.value", &mut defect), set_timestamp: field.set_timestamp };
                }
                "_user_name" => {
                    let field: UserValueField<'de> = map.next_value()?;
                    user.user_name = UserValue { value: text_value(field.value, "user._user_name.value", &mut defect), set_timestamp: field.set_timestamp };
                }
                "_user_age" => {
                    let field: UserValueField<'de> = map.next_value()?;
                    user.user_age = UserValue { value: field.value.safe_i32(), set_timestamp: field.set_timestamp };
                }
                "_user_first_touch_timestamp" => {
                    let field: UserValueField<'de> = map.next_value()?;
                    user.first_touch_timestamp = UserValue { value: field.value.safe_i64(), set_timestamp: field.set_timestamp };
                }
                _ => user.custom.push((key.0, custom_user_property(map.next_value::<&'de RawValue>()?))),
            }
        }
        Ok(defect.map_or(Ok(user), Err))
    }
}

fn text_value<'a>(value: ScalarValue<'a>, field: &'static str, defect: &mut Option<FieldTypeError>) -> Option<Text<'a>> {
    match value.into_text() {
        Ok(text) => text,
        Err(NotAScalar) => {
            defect.get_or_insert_with(|| FieldTypeError::new(field, "must be a string, not an object or array"));
            None
        }
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
