//! The sandbox with real components: the example plugin built from its crate, and a plugin
//! that misbehaves in each way the sandbox must contain.

use std::sync::{Arc, OnceLock};

use clickstream_plugins::{
    AnsweredValue, Column, ColumnValues, EventBatch, EventField, LoadedPlugin, ParameterColumn, PluginError, PluginLimits, PluginRuntime, PluginWorld, ReadFields, TextColumn,
    build::{build_plugin_crate, plugin_crate_dir},
};

fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    // A small budget, so the runaway plugin is stopped quickly.
    RUNTIME.get_or_init(|| PluginRuntime::new(PluginLimits { fuel_per_item: 1_000_000, fuel_per_call: 50_000_000, memory_bytes: 64 * 1024 * 1024 }).unwrap())
}

fn plugin(relative: &str) -> Arc<LoadedPlugin> {
    let path = build_plugin_crate(&plugin_crate_dir(relative)).unwrap_or_else(|error| panic!("{error}"));
    let bytes = std::fs::read(&path).unwrap();
    runtime().load(&bytes, PluginWorld::Enricher).unwrap()
}

/// An event given as (event name, page URL, referrer).
type TestEvent<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// A batch of these events, with those three columns and the event times.
fn batch(events: &[TestEvent<'_>]) -> EventBatch {
    let text = |field, pick: for<'e> fn(&TestEvent<'e>) -> Option<&'e str>| Column { field, values: ColumnValues::Text(TextColumn::from_values(events.iter().map(pick))) };
    EventBatch::of_columns(
        events.len(),
        vec![
            text(EventField::EventName, |event| Some(event.0)),
            Column { field: EventField::EventTimeMsec, values: ColumnValues::Integers(vec![1_700_000_000_000; events.len()]) },
            text(EventField::PageUrl, |event| event.1),
            text(EventField::PageReferrer, |event| event.2),
        ],
    )
}

/// The parameters an answer sets on event `event`, as (name, value text).
fn parameters_of(answer: &[ParameterColumn], event: usize) -> Vec<(String, String)> {
    answer
        .iter()
        .flat_map(|column| column.entries().filter(move |(index, _)| *index == event).map(move |(_, value)| (column.name.clone(), value)))
        .map(|(name, value)| {
            let value = match value {
                AnsweredValue::Text(text) => text.to_string(),
                AnsweredValue::Integer(number) => number.to_string(),
                AnsweredValue::Float(number) => number.to_string(),
                AnsweredValue::Boolean(flag) => flag.to_string(),
            };
            (name, value)
        })
        .collect()
}

#[test]
fn the_example_enricher_categorises_pages() {
    let page_category = plugin("examples/page-category");
    let events = [("_page_view", Some("https://shop.example/products/shoes?x=1"), Some("https://www.bing.com/search")), ("_page_view", Some("https://shop.example/"), None), ("_app_start", None, None)];
    let answer = page_category.enrich("", &batch(&events)).unwrap();
    let pairs = |(name, value): (&str, &str)| (name.to_string(), value.to_string());
    assert_eq!(parameters_of(&answer, 0), [("page_category", "product"), ("page_depth", "2"), ("referrer_host", "www.bing.com")].map(pairs));
    assert_eq!(parameters_of(&answer, 1), [("page_category", "other"), ("page_depth", "0")].map(pairs));
    assert!(parameters_of(&answer, 2).is_empty());
    // The configuration registered with the plugin replaces the default rules, and a bad one
    // is the plugin's refusal, in its words.
    let answer = page_category.enrich("/products=catalogue", &batch(&events[..1])).unwrap();
    assert_eq!(parameters_of(&answer, 0)[0], pairs(("page_category", "catalogue")));
    // It declares the two fields it reads, which are all the host sends it.
    assert_eq!(page_category.session().unwrap().reads("").unwrap(), ReadFields::of(&[EventField::PageUrl, EventField::PageReferrer]));
    assert!(!ReadFields::of(&[EventField::PageUrl]).contains(EventField::EventName));
    let refused = page_category.enrich("products", &batch(&events[..1])).unwrap_err();
    assert!(matches!(&refused, PluginError::Refused(message) if message.contains("expected `prefix=category`")), "{refused}");
}

#[test]
fn each_misbehaviour_fails_only_its_call_with_a_clear_reason() {
    let misbehaving = plugin("tests/misbehaving");
    let names = ["e0", "e1", "e2"];
    let events = batch(&names.map(|name| (name, None, None)));

    let panicked = misbehaving.enrich("panic", &events).unwrap_err();
    assert!(matches!(&panicked, PluginError::Trapped { stderr, .. } if stderr.contains("asked to panic on 3 events")), "{panicked}");
    assert!(panicked.to_string().contains("asked to panic"), "{panicked}");

    let started = std::time::Instant::now();
    let looped = misbehaving.enrich("loop", &events).unwrap_err();
    assert!(matches!(looped, PluginError::OutOfFuel { fuel: 53_000_000, items: 3 }), "{looped}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "fuel stops a loop promptly");

    let allocated = misbehaving.enrich("allocate", &events).unwrap_err();
    assert!(matches!(allocated, PluginError::OutOfMemory { limit_bytes } if limit_bytes == 64 * 1024 * 1024), "{allocated}");

    let refused = misbehaving.enrich("refuse", &events).unwrap_err();
    assert!(matches!(&refused, PluginError::Refused(message) if message == "asked to refuse"), "{refused}");

    let reads_panicked = misbehaving.session().unwrap().reads("reads-panic").unwrap_err();
    assert!(matches!(&reads_panicked, PluginError::Trapped { stderr, .. } if stderr.contains("asked to panic in reads")), "{reads_panicked}");

    let short = misbehaving.enrich("short", &events).unwrap_err();
    assert!(matches!(&short, PluginError::Malformed(message) if message == "parameter `plugin_saw`: 3 events but 2 values"), "{short}");
    let past_the_batch = misbehaving.enrich("past-the-batch", &events).unwrap_err();
    assert!(matches!(&past_the_batch, PluginError::Malformed(message) if message == "parameter `plugin_saw`: event 3 is past the batch of 3 events"), "{past_the_batch}");

    // After all that, the same compiled plugin still answers: every call is a fresh instance.
    let fine = misbehaving.enrich("", &events).unwrap();
    assert_eq!(parameters_of(&fine, 2), [("plugin_saw".to_string(), "e2".to_string())]);
}

#[test]
fn the_sandbox_gives_no_files_and_no_environment() {
    let misbehaving = plugin("tests/misbehaving");
    let events = batch(&[("e", None, None)]);
    // SAFETY-free check: the host has a hostname file and environment variables.
    assert!(std::env::vars().count() > 0);
    let file = misbehaving.enrich("read-file", &events).unwrap();
    let (_, answer) = &parameters_of(&file, 0)[0];
    assert!(answer.starts_with("denied:"), "the plugin read a host file: {answer}");
    let environment = misbehaving.enrich("env", &events).unwrap();
    assert_eq!(parameters_of(&environment, 0), [("environment_variables".to_string(), "0".to_string())]);
}

#[test]
fn modules_that_are_not_plugins_are_refused_on_load() {
    let not_wasm = runtime().load(b"#!/bin/sh\necho hi\n", PluginWorld::Enricher).map(|_| ()).unwrap_err();
    assert!(matches!(not_wasm, PluginError::NotAComponent(_)), "{not_wasm}");
    // The smallest core module: magic and version 1, no sections.
    let core_module = runtime().load(b"\0asm\x01\0\0\0", PluginWorld::Enricher).map(|_| ()).unwrap_err();
    assert!(matches!(&core_module, PluginError::NotAComponent(reason) if reason.contains("core WebAssembly module")), "{core_module}");
    // An enricher is not a transformer.
    let path = build_plugin_crate(&plugin_crate_dir("examples/page-category")).unwrap();
    let wrong_world = runtime().load(&std::fs::read(path).unwrap(), PluginWorld::Transformer).map(|_| ()).unwrap_err();
    assert!(matches!(&wrong_world, PluginError::WrongInterface { world: "transformer", reason } if reason.contains("transform")), "{wrong_world}");
}
