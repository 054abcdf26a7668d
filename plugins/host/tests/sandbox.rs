//! The sandbox with real components: the example plugin built from its crate, and a plugin
//! that misbehaves in each way the sandbox must contain.

use std::sync::{Arc, OnceLock};

use clickstream_plugins::{
    Event, EventField, LoadedPlugin, Parameter, PluginError, ReadFields, PluginLimits, PluginRuntime, PluginWorld, Value,
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

fn event(name: &str, page_url: Option<&str>, referrer: Option<&str>) -> Event {
    Event {
        event_id: Some(format!("id-{name}")),
        event_name: Some(name.to_string()),
        app_id: Some("shop".into()),
        platform: Some("Web".into()),
        event_time_msec: Some(1_700_000_000_000),
        user_pseudo_id: Some("u1".into()),
        user_id: None,
        session_id: Some("s1".into()),
        page_url: page_url.map(str::to_string),
        page_referrer: referrer.map(str::to_string),
        page_title: None,
        screen_name: None,
        user_agent: None,
        client_ip: Some("192.0.2.1".into()),
        geo_country: None,
        custom_parameters: Some(vec![Parameter { name: "existing".into(), value: Value::Integer(1) }]),
    }
}

fn parameters_of(enrichment: &clickstream_plugins::Enrichment) -> Vec<(String, String)> {
    enrichment
        .set_parameters
        .iter()
        .map(|parameter| {
            let value = match &parameter.value {
                Value::Text(text) => text.clone(),
                Value::Integer(number) => number.to_string(),
                Value::Float(number) => number.to_string(),
                Value::Boolean(flag) => flag.to_string(),
            };
            (parameter.name.clone(), value)
        })
        .collect()
}

#[test]
fn the_example_enricher_categorises_pages() {
    let page_category = plugin("examples/page-category");
    let events = [event("_page_view", Some("https://shop.example/products/shoes?x=1"), Some("https://www.bing.com/search")), event("_page_view", Some("https://shop.example/"), None), event("_app_start", None, None)];
    let enrichments = page_category.enrich("", &events).unwrap();
    let pairs = |(name, value): (&str, &str)| (name.to_string(), value.to_string());
    assert_eq!(parameters_of(&enrichments[0]), [("page_category", "product"), ("page_depth", "2"), ("referrer_host", "www.bing.com")].map(pairs));
    assert_eq!(parameters_of(&enrichments[1]), [("page_category", "other"), ("page_depth", "0")].map(pairs));
    assert!(enrichments[2].set_parameters.is_empty());
    // The configuration registered with the plugin replaces the default rules, and a bad one
    // is the plugin's refusal, in its words.
    let enrichments = page_category.enrich("/products=catalogue", &events[..1]).unwrap();
    assert_eq!(parameters_of(&enrichments[0])[0], pairs(("page_category", "catalogue")));
    // It declares the two fields it reads, which are all the host sends it.
    assert_eq!(page_category.session().unwrap().reads("").unwrap(), ReadFields::of(&[EventField::PageUrl, EventField::PageReferrer]));
    assert!(!ReadFields::of(&[EventField::PageUrl]).contains(EventField::EventName));
    let refused = page_category.enrich("products", &events[..1]).unwrap_err();
    assert!(matches!(&refused, PluginError::Refused(message) if message.contains("expected `prefix=category`")), "{refused}");
}

#[test]
fn each_misbehaviour_fails_only_its_call_with_a_clear_reason() {
    let misbehaving = plugin("tests/misbehaving");
    let events: Vec<Event> = (0..3).map(|index| event(&format!("e{index}"), None, None)).collect();

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
    assert!(matches!(&short, PluginError::Malformed(message) if message == "2 enrichments for 3 events"), "{short}");

    // After all that, the same compiled plugin still answers: every call is a fresh instance.
    let fine = misbehaving.enrich("", &events).unwrap();
    assert_eq!(parameters_of(&fine[2]), [("plugin_saw".to_string(), "e2".to_string())]);
}

#[test]
fn the_sandbox_gives_no_files_and_no_environment() {
    let misbehaving = plugin("tests/misbehaving");
    let events = [event("e", None, None)];
    // SAFETY-free check: the host has a hostname file and environment variables.
    assert!(std::env::vars().count() > 0);
    let file = misbehaving.enrich("read-file", &events).unwrap();
    let (_, answer) = &parameters_of(&file[0])[0];
    assert!(answer.starts_with("denied:"), "the plugin read a host file: {answer}");
    let environment = misbehaving.enrich("env", &events).unwrap();
    assert_eq!(parameters_of(&environment[0]), [("environment_variables".to_string(), "0".to_string())]);
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
