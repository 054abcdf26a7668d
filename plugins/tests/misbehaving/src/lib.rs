//! A test-only enricher plugin that misbehaves as its configuration says, so that the tests
//! can show each failure fails only its batch, with a clear reason:
//! - `panic`: panics (a trap, with the message on stderr);
//! - `panic-on-boom`: panics when the batch has an event named `boom`, else tags as below;
//! - `loop`: never returns (runs out of fuel);
//! - `allocate`: grows its memory without end (hits the memory limit);
//! - `refuse`: answers `err`;
//! - `short`: answers one enrichment too few;
//! - `read-file` / `env`: tries to read `/etc/hostname` or the environment, and reports what
//!   it got as a parameter (the sandbox gives neither);
//! - `page-url-only`: declares that it reads the page URL alone, and tags every event with
//!   `plugin_saw = <event name>|<page URL>` (the event name then arrives as `none`, shown `-`);
//! - `reads-panic`: panics when asked which fields it reads;
//! - anything else: tags every event with `plugin_saw = <event name>`.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "../../wit", world: "enricher" });

use clickstream::plugin::types::{Parameter, Value};

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

fn tag(events: &[Event], name: &str, value: impl Fn(&Event) -> String) -> Vec<Enrichment> {
    events.iter().map(|event| Enrichment { set_parameters: vec![Parameter { name: name.to_string(), value: Value::Text(value(event)) }] }).collect()
}

impl Guest for Misbehaving {
    fn reads(config: String) -> Vec<EventField> {
        match config.as_str() {
            "page-url-only" => vec![EventField::PageUrl],
            "reads-panic" => panic!("misbehaving plugin: asked to panic in reads"),
            _ => ALL_FIELDS.to_vec(),
        }
    }

    fn enrich(config: String, events: Vec<Event>) -> Result<Vec<Enrichment>, String> {
        match config.as_str() {
            "panic" => panic!("misbehaving plugin: asked to panic on {} events", events.len()),
            "panic-on-boom" if events.iter().any(|event| event.event_name.as_deref() == Some("boom")) => panic!("misbehaving plugin: a `boom` event in a batch of {}", events.len()),
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
            "short" => Ok(tag(&events[1..], "plugin_saw", |event| event.event_name.clone().unwrap_or_default())),
            "read-file" => {
                let answer = match std::fs::read_to_string("/etc/hostname") {
                    Ok(text) => format!("read: {text}"),
                    Err(error) => format!("denied: {error}"),
                };
                Ok(tag(&events, "file_access", |_| answer.clone()))
            }
            "page-url-only" => Ok(tag(&events, "plugin_saw", |event| format!("{}|{}", event.event_name.as_deref().unwrap_or("-"), event.page_url.as_deref().unwrap_or("-")))),
            "env" => {
                let count = std::env::vars().count();
                Ok(tag(&events, "environment_variables", |_| count.to_string()))
            }
            _ => Ok(tag(&events, "plugin_saw", |event| event.event_name.clone().unwrap_or_default())),
        }
    }
}

export!(Misbehaving);
