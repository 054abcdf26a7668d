//! One raw record (one HTTP request, one NDJSON line) decoded into its request context and the
//! JSON text of its events.
//!
//! Records written by our collector and by CAoA's Vector are both read: Vector writes
//! `client_timestamp` as a string, ours as a number; the body is recognised by its content, not
//! by the `compression` field (CAoA's own fixtures carry plain bodies flagged `gzip`). A lone
//! JSON object is taken as one event (CAoA's Spark path dropped it silently; its standalone
//! parser accepted it). Whatever cannot be read is refused with a reason, for the quarantine.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    json_text::lenient_i64,
    sdk_event::{EventDefect, SdkEvent, Text},
    url_parts::uri_query_parameter,
};

/// Decompressed bodies larger than this are refused (gzip bomb guard).
pub const MAX_DECOMPRESSED_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a raw record cannot be processed at all; each one is quarantined whole with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordDefect {
    #[error("raw record is not a JSON object: {0}")]
    NotJson(String),
    #[error("raw record has no `data` (the request body)")]
    NoData,
    #[error("raw record has no ingest time (`ingest_time`, `server_ingest_time` or `date`)")]
    NoIngestTime,
    #[error("`data` is neither a JSON array nor base64 of gzip: {0}")]
    UndecodableBody(String),
    #[error("the request body is not a JSON array or object of events: {0}")]
    BodyNotJson(String),
}

/// Fields of the raw record the transform uses (the rest is ignored).
#[derive(Deserialize)]
struct RawRecordFields<'a> {
    /// Borrowed from the line unless it has escapes (a plain JSON body always has).
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ingest_time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    server_ingest_time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    date: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    rid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ua: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "appId")]
    app_id: Option<Cow<'a, str>>,
}

/// What every event of one request shares.
#[derive(Debug, Clone, Default)]
pub struct RecordContext<'a> {
    /// The raw object the record came from (`process_info.input_file_name`).
    pub input_name: &'a str,
    pub rid: Option<Text<'a>>,
    /// The `User-Agent` header.
    pub ua: Option<Text<'a>>,
    /// The client IP as written by the collector (`X-Forwarded-For` may list several).
    pub ip: Option<Text<'a>>,
    pub app_id: Option<Text<'a>>,
    /// When the collector received the request, ms.
    pub ingest_time_msec: i64,
    /// The client's clock when it sent the request (`upload_timestamp`), ms.
    pub upload_time_msec: Option<i64>,
    pub event_bundle_sequence_id: Option<i64>,
    /// `ingest_time_msec` as Java's `Instant.toString()` prints it, for `process_info`.
    pub ingest_time_text: String,
    /// `upload_time_msec` printed the same way.
    pub upload_time_text: Option<String>,
}

impl RecordContext<'_> {
    /// The first address of the client IP list, for the geo lookup.
    pub fn first_ip(&self) -> Option<&str> {
        let ip = self.ip.as_deref()?;
        let first = ip.split(',').next().unwrap_or(ip).trim();
        (!first.is_empty()).then_some(first)
    }
}

/// A decoded record: its context and the JSON text of its body.
#[derive(Debug)]
pub struct DecodedRecord<'a> {
    pub context: RecordContext<'a>,
    pub body: Cow<'a, str>,
}

impl<'a> DecodedRecord<'a> {
    /// Decodes one NDJSON line of a raw object.
    pub fn decode(line: &'a str, input_name: &'a str) -> Result<DecodedRecord<'a>, RecordDefect> {
        let fields: RawRecordFields<'a> = serde_json::from_str(line).map_err(|error| RecordDefect::NotJson(error.to_string()))?;
        let data = fields.data.ok_or(RecordDefect::NoData)?;
        let ingest_time_msec = fields
            .ingest_time
            .and_then(lenient_i64)
            .or_else(|| fields.server_ingest_time.and_then(lenient_i64))
            .or_else(|| fields.date.as_deref().and_then(|date| chrono::DateTime::parse_from_rfc3339(date).ok()).map(|date| date.timestamp_millis()))
            .ok_or(RecordDefect::NoIngestTime)?;
        let uri = fields.uri;
        let upload_time_msec = fields
            .client_timestamp
            .and_then(lenient_i64)
            .or_else(|| uri.as_deref().and_then(|uri| uri_query_parameter(uri, "upload_timestamp")).and_then(|text| text.parse().ok()));
        let event_bundle_sequence_id = uri.as_deref().and_then(|uri| uri_query_parameter(uri, "event_bundle_sequence_id")).and_then(|text| text.parse().ok());
        let body = decode_body(data)?;
        Ok(DecodedRecord {
            context: RecordContext {
                input_name,
                rid: fields.rid,
                ua: fields.ua,
                ip: fields.ip,
                app_id: fields.app_id,
                ingest_time_msec,
                upload_time_msec,
                event_bundle_sequence_id,
                ingest_time_text: java_instant_text(ingest_time_msec),
                upload_time_text: upload_time_msec.map(java_instant_text),
            },
            body,
        })
    }

    /// The events of the body, each read or refused with its defect: each element of the
    /// array, or the body itself if it is one object.
    pub fn events(&self) -> Result<Vec<Result<SdkEvent<'_>, EventDefect>>, RecordDefect> {
        SdkEvent::parse_body(&self.body).map_err(|error| RecordDefect::BodyNotJson(error.to_string()))
    }
}

/// A body that starts like JSON is JSON; anything else must be base64 text of gzip bytes.
fn decode_body(data: Cow<'_, str>) -> Result<Cow<'_, str>, RecordDefect> {
    let trimmed = data.trim();
    if trimmed.is_empty() {
        return Err(RecordDefect::UndecodableBody("the body is empty".into()));
    }
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        return Ok(data);
    }
    let gzip = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|error| RecordDefect::UndecodableBody(format!("not base64: {error}")))?;
    let json = clickstream_core::wire::gunzip(&gzip, MAX_DECOMPRESSED_BODY_BYTES).map_err(|error| RecordDefect::UndecodableBody(error.to_string()))?;
    String::from_utf8(json).map(Cow::Owned).map_err(|_| RecordDefect::UndecodableBody("the decompressed body is not UTF-8".into()))
}

/// Java's `Instant.ofEpochMilli(ms).toString()`: no fraction for whole seconds, else three digits.
pub fn java_instant_text(epoch_ms: i64) -> String {
    let Some(instant) = chrono::DateTime::from_timestamp_millis(epoch_ms) else {
        return epoch_ms.to_string();
    };
    if epoch_ms.rem_euclid(1000) == 0 {
        instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_gzip_bodies_decode_to_events() {
        let plain = r#"{"data":"[{\"a\":1},{\"b\":2}]","ingest_time":1682319109403,"uri":"/collect?appId=x&event_bundle_sequence_id=111","client_timestamp":"1682319109405"}"#;
        let record = DecodedRecord::decode(plain, "in").unwrap();
        assert_eq!(record.events().unwrap().len(), 2);
        assert_eq!(record.context.event_bundle_sequence_id, Some(111));
        assert_eq!(record.context.upload_time_msec, Some(1682319109405));
        assert_eq!(record.context.ingest_time_text, "2023-04-24T06:51:49.403Z");

        let gzip = clickstream_core::wire::encode_gzip_base64(r#"[{"a":1}]"#);
        let line = serde_json::json!({"data": gzip, "ingest_time": 1000, "uri": "/collect?upload_timestamp=7"}).to_string();
        let record = DecodedRecord::decode(&line, "in").unwrap();
        assert_eq!(record.events().unwrap().len(), 1);
        assert_eq!(record.context.upload_time_msec, Some(7));
        assert_eq!(record.context.ingest_time_text, "1970-01-01T00:00:01Z");
    }

    #[test]
    fn a_lone_object_is_one_event() {
        let line = r#"{"data":"{\"event_id\":\"e\"}","ingest_time":1}"#;
        assert_eq!(DecodedRecord::decode(line, "in").unwrap().events().unwrap().len(), 1);
    }

    #[test]
    fn unreadable_records_say_why() {
        assert!(matches!(DecodedRecord::decode("nope", "in").unwrap_err(), RecordDefect::NotJson(_)));
        assert_eq!(DecodedRecord::decode(r#"{"data":null,"ingest_time":1}"#, "in").unwrap_err(), RecordDefect::NoData);
        assert_eq!(DecodedRecord::decode(r#"{"data":"[]"}"#, "in").unwrap_err(), RecordDefect::NoIngestTime);
        assert!(matches!(DecodedRecord::decode(r#"{"data":"test data text","ingest_time":1}"#, "in").unwrap_err(), RecordDefect::UndecodableBody(_)));
        assert!(matches!(DecodedRecord::decode(r#"{"data":"","ingest_time":1}"#, "in").unwrap_err(), RecordDefect::UndecodableBody(_)));
        let truncated = DecodedRecord::decode(r#"{"data":"[{\"a\":1}","ingest_time":1}"#, "in").unwrap();
        assert!(matches!(truncated.events().unwrap_err(), RecordDefect::BodyNotJson(_)));
    }

    #[test]
    fn the_first_forwarded_address_is_looked_up() {
        let context = RecordContext { ip: Some("1.2.3.4, 10.0.0.1".into()), ..RecordContext::default() };
        assert_eq!(context.first_ip(), Some("1.2.3.4"));
    }
}
