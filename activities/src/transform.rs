//! Raw records → `event_v2` rows. Pure: no I/O, so it is tested directly on the CAoA fixtures.
//!
//! A raw record is one HTTP request. A record that cannot be decoded (not JSON, undecodable
//! body, an event without its required fields) is quarantined whole with the reason, never
//! dropped silently. Events of apps the project does not know are filtered and counted.

use std::collections::HashSet;

use clickstream_core::{raw_record::RawRecord, wire};
use serde_json::{Map, Value};

/// The columns of `event_v2` this version fills (CAoA names and types).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub event_timestamp_micros: i64,
    pub event_time_msec: i64,
    pub event_name: String,
    pub event_bundle_sequence_id: Option<i64>,
    pub ingest_time_msec: Option<i64>,
    pub platform: Option<String>,
    pub project_id: String,
    pub app_id: String,
    pub user_pseudo_id: Option<String>,
    pub session_id: Option<String>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub app_version: Option<String>,
    pub device_operating_system: Option<String>,
    pub ua: Option<String>,
    pub ip: Option<String>,
    pub custom_parameters_json_str: Option<String>,
}

#[cfg(test)]
impl EventRow {
    /// A row with only the required columns set, for tests.
    pub(crate) fn for_tests(event_id: &str, event_time_msec: i64) -> EventRow {
        EventRow {
            event_id: event_id.into(),
            event_timestamp_micros: event_time_msec * 1000,
            event_time_msec,
            event_name: "_page_view".into(),
            event_bundle_sequence_id: None,
            ingest_time_msec: Some(event_time_msec),
            platform: None,
            project_id: "p".into(),
            app_id: "app-1".into(),
            user_pseudo_id: None,
            session_id: None,
            sdk_name: None,
            sdk_version: None,
            app_version: None,
            device_operating_system: None,
            ua: None,
            ip: None,
            custom_parameters_json_str: None,
        }
    }
}

/// A raw line set aside with the reason it could not be processed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuarantinedRecord {
    pub reason: String,
    pub original: String,
}

#[derive(Debug, Default)]
pub struct TransformOutput {
    pub rows: Vec<EventRow>,
    pub quarantined: Vec<QuarantinedRecord>,
    pub raw_records: u64,
    pub events_of_unknown_apps: u64,
}

/// Decompressed request bodies larger than this are quarantined (gzip bomb guard).
pub const MAX_DECOMPRESSED_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Transforms the NDJSON lines of raw objects, appending to `output`.
pub fn transform_raw_lines(ndjson: &str, project_id: &str, known_apps: &HashSet<String>, output: &mut TransformOutput) {
    for line in ndjson.lines() {
        if line.trim().is_empty() {
            continue;
        }
        output.raw_records += 1;
        match transform_raw_record(line, project_id, known_apps) {
            Ok((rows, unknown_app_events)) => {
                output.rows.extend(rows);
                output.events_of_unknown_apps += unknown_app_events;
            }
            Err(reason) => output.quarantined.push(QuarantinedRecord { reason, original: line.to_string() }),
        }
    }
}

fn transform_raw_record(line: &str, project_id: &str, known_apps: &HashSet<String>) -> Result<(Vec<EventRow>, u64), String> {
    let record: RawRecord = serde_json::from_str(line).map_err(|error| format!("raw record is not valid JSON: {error}"))?;
    let data = record.data.as_deref().ok_or("raw record has no `data`")?;
    let compressed = record.compression.as_deref() == Some("gzip");
    let json = wire::decode_body(data.as_bytes(), compressed, MAX_DECOMPRESSED_BODY_BYTES).map_err(|error| error.to_string())?;
    let events = wire::parse_events(&json).map_err(|error| error.to_string())?;
    let bundle_sequence_id = record.uri.as_deref().and_then(|uri| query_parameter(uri, "event_bundle_sequence_id")).and_then(|value| value.parse().ok());

    let mut rows = Vec::with_capacity(events.len());
    let mut unknown_app_events = 0;
    for (index, event) in events.into_iter().enumerate() {
        // The query's appId is what the collector validated; the body's app_id is the SDK's.
        let app_id = record.app_id.clone().or_else(|| string_field(&event, "app_id")).unwrap_or_default();
        if !known_apps.contains(&app_id) {
            unknown_app_events += 1;
            continue;
        }
        let event_time_msec = event
            .get("timestamp")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("event {index}: `timestamp` is not an integer of milliseconds"))?;
        rows.push(EventRow {
            event_id: string_field(&event, "event_id").ok_or_else(|| format!("event {index}: `event_id` is not a string"))?,
            event_timestamp_micros: event_time_msec * 1000,
            event_time_msec,
            event_name: string_field(&event, "event_type").ok_or_else(|| format!("event {index}: `event_type` is not a string"))?,
            event_bundle_sequence_id: bundle_sequence_id,
            ingest_time_msec: record.ingest_time,
            platform: string_field(&event, "platform").or_else(|| record.platform.clone()),
            project_id: project_id.to_string(),
            app_id,
            user_pseudo_id: string_field(&event, "unique_id"),
            session_id: event.get("attributes").and_then(|attributes| attributes.get("_session_id")).and_then(Value::as_str).map(str::to_string),
            sdk_name: string_field(&event, "sdk_name"),
            sdk_version: string_field(&event, "sdk_version"),
            app_version: string_field(&event, "app_version"),
            device_operating_system: string_field(&event, "platform"),
            ua: record.ua.clone(),
            ip: record.ip.clone(),
            custom_parameters_json_str: custom_parameters(&event),
        });
    }
    Ok((rows, unknown_app_events))
}

fn string_field(event: &Map<String, Value>, field: &str) -> Option<String> {
    event.get(field).and_then(Value::as_str).map(str::to_string)
}

/// Attributes that do not start with `_` are the app's own parameters.
fn custom_parameters(event: &Map<String, Value>) -> Option<String> {
    let attributes = event.get("attributes")?.as_object()?;
    let custom: Map<String, Value> = attributes.iter().filter(|(key, _)| !key.starts_with('_')).map(|(key, value)| (key.clone(), value.clone())).collect();
    if custom.is_empty() {
        return None;
    }
    Some(Value::Object(custom).to_string())
}

fn query_parameter<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../shared/fixtures/caoa/raw/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("fixture {path}: {error}"))
    }

    fn apps(names: &[&str]) -> HashSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn gzip_and_plain_caoa_records_give_the_same_events() {
        let mut gzip = TransformOutput::default();
        transform_raw_lines(&fixture("original_data.json"), "p", &apps(&["uba-app"]), &mut gzip);
        assert!(gzip.quarantined.is_empty(), "{:?}", gzip.quarantined);
        assert!(!gzip.rows.is_empty());
        let first = &gzip.rows[0];
        assert_eq!(first.app_id, "uba-app");
        assert_eq!(first.event_bundle_sequence_id, Some(111));
        assert_eq!(first.event_timestamp_micros, first.event_time_msec * 1000);

        let mut plain = TransformOutput::default();
        transform_raw_lines(&fixture("original_data_nozip.json"), "p", &apps(&["uba-app"]), &mut plain);
        assert!(plain.quarantined.is_empty(), "{:?}", plain.quarantined);
        assert!(!plain.rows.is_empty());
    }

    #[test]
    fn broken_caoa_records_are_quarantined_with_a_reason() {
        for name in ["original_data_raw_json_error.json", "original_data_raw_text_error.json"] {
            let mut output = TransformOutput::default();
            transform_raw_lines(&fixture(name), "p", &apps(&["uba-app"]), &mut output);
            assert!(output.rows.is_empty(), "{name}");
            assert_eq!(output.quarantined.len() as u64, output.raw_records, "{name}");
            assert!(output.quarantined.iter().all(|record| !record.reason.is_empty() && !record.original.is_empty()));
        }
    }

    #[test]
    fn every_caoa_fixture_processes_without_a_panic() {
        let directory = format!("{}/../../shared/fixtures/caoa/raw", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(directory).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let mut output = TransformOutput::default();
            transform_raw_lines(&text, "p", &apps(&["uba-app"]), &mut output);
            assert_eq!(output.raw_records as usize, text.lines().filter(|line| !line.trim().is_empty()).count());
        }
    }

    #[test]
    fn events_of_unknown_apps_are_counted_not_kept() {
        let mut output = TransformOutput::default();
        transform_raw_lines(&fixture("original_data_nozip.json"), "p", &apps(&["other-app"]), &mut output);
        assert!(output.rows.is_empty());
        assert!(output.events_of_unknown_apps > 0);
    }

    #[test]
    fn custom_attributes_are_kept_as_json() {
        let line = serde_json::json!({
            "appId": "a",
            "data": r#"[{"event_type":"buy","event_id":"e1","app_id":"a","timestamp":1700000000000,"attributes":{"_session_id":"s1","color":"red"}}]"#,
            "uri": "/collect?appId=a&event_bundle_sequence_id=7",
        })
        .to_string();
        let mut output = TransformOutput::default();
        transform_raw_lines(&line, "p", &apps(&["a"]), &mut output);
        let row = &output.rows[0];
        assert_eq!(row.session_id.as_deref(), Some("s1"));
        assert_eq!(row.custom_parameters_json_str.as_deref(), Some(r#"{"color":"red"}"#));
        assert_eq!(row.event_bundle_sequence_id, Some(7));
    }
}
