//! A test-only enricher plugin that misbehaves as its configuration says, so that the tests
//! can show each failure fails only its batch, with a clear reason:
//! - `panic`: panics (a trap, with the message on stderr);
//! - `panic-on-boom`: panics when the batch has an event named `boom`, else tags as below;
//! - `loop`: never returns (runs out of fuel);
//! - `allocate`: grows its memory without end (hits the memory limit);
//! - `refuse`: answers `err`;
//! - `short`: answers a parameter with one value fewer than its events;
//! - `past-the-batch`: answers a parameter for an event past the end of the batch;
//! - `read-file` / `env`: tries to read `/etc/hostname` or the environment, and reports what
//!   it got as a parameter (the sandbox gives neither);
//! - `page-url-only`: declares that it reads the page URL alone, and tags every event with
//!   `plugin_saw = <event name>|<page URL>` (the event name's column is then not sent, shown `-`);
//! - `reads-panic`: panics when asked which fields it reads;
//! - anything else: tags every event with `plugin_saw = <event name>`.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../wit", world: "enricher" });

use clickstream::plugin::types::{ColumnValues, ParameterValues, Texts};

struct Misbehaving;

const ALL_FIELDS: [EventField; 16] = [
    EventField::EventId,
    EventField::EventName,
    EventField::AppId,
    EventField::Platform,
    EventField::EventTimeMsec,
    EventField::UserPseudoId,
    EventField::UserId,
    EventField::SessionId,
    EventField::PageUrl,
    EventField::PageReferrer,
    EventField::PageTitle,
    EventField::ScreenName,
    EventField::UserAgent,
    EventField::ClientIp,
    EventField::GeoCountry,
    EventField::CustomParameters,
];

/// Event `index`'s text of `field`, if the batch has its column and the event a value.
fn text(batch: &EventBatch, field: EventField, index: usize) -> Option<&str> {
    let column = batch.columns.iter().find(|column| column.field == field)?;
    let ColumnValues::Text(column) = &column.values else {
        return None;
    };
    if !*column.present.get(index)? {
        return None;
    }
    let end = *column.values.ends.get(index)? as usize;
    let start = if index == 0 { 0 } else { column.values.ends[index - 1] as usize };
    column.values.bytes.get(start..end)
}

/// One text parameter on every event of the batch.
fn tag(batch: &EventBatch, name: &str, value: impl Fn(usize) -> String) -> Vec<ParameterColumn> {
    let mut texts = Texts { bytes: String::new(), ends: Vec::new() };
    for index in 0..batch.size as usize {
        texts.bytes.push_str(&value(index));
        texts.ends.push(texts.bytes.len() as u32);
    }
    vec![ParameterColumn { name: name.to_string(), events: (0..batch.size).collect(), values: ParameterValues::Text(texts) }]
}

fn event_name(batch: &EventBatch, index: usize) -> String {
    text(batch, EventField::EventName, index).unwrap_or_default().to_string()
}

impl Guest for Misbehaving {
    fn reads(config: String) -> Vec<EventField> {
        match config.as_str() {
            "page-url-only" => vec![EventField::PageUrl],
            "reads-panic" => panic!("misbehaving plugin: asked to panic in reads"),
            _ => ALL_FIELDS.to_vec(),
        }
    }

    fn enrich(config: String, batch: EventBatch) -> Result<Vec<ParameterColumn>, String> {
        let size = batch.size as usize;
        match config.as_str() {
            "panic" => panic!("misbehaving plugin: asked to panic on {size} events"),
            "panic-on-boom" if (0..size).any(|index| text(&batch, EventField::EventName, index) == Some("boom")) => panic!("misbehaving plugin: a `boom` event in a batch of {size}"),
            "loop" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 * 1024 * 1024]);
                    std::hint::black_box(&hoard);
                }
            }
            "refuse" => Err("asked to refuse".into()),
            "short" => {
                let mut answer = tag(&batch, "plugin_saw", |index| event_name(&batch, index));
                if let ParameterValues::Text(texts) = &mut answer[0].values {
                    texts.ends.pop();
                }
                Ok(answer)
            }
            "past-the-batch" => Ok(vec![ParameterColumn { name: "plugin_saw".into(), events: vec![batch.size], values: ParameterValues::Integer(vec![1]) }]),
            "read-file" => {
                let answer = match std::fs::read_to_string("/etc/hostname") {
                    Ok(text) => format!("read: {text}"),
                    Err(error) => format!("denied: {error}"),
                };
                Ok(tag(&batch, "file_access", |_| answer.clone()))
            }
            "page-url-only" => Ok(tag(&batch, "plugin_saw", |index| format!("{}|{}", text(&batch, EventField::EventName, index).unwrap_or("-"), text(&batch, EventField::PageUrl, index).unwrap_or("-")))),
            "env" => {
                let count = std::env::vars().count();
                Ok(tag(&batch, "environment_variables", |_| count.to_string()))
            }
            _ => Ok(tag(&batch, "plugin_saw", |index| event_name(&batch, index))),
        }
    }
}

export!(Misbehaving);
