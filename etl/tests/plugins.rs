//! Custom enricher plugins in a job: their parameters reach `event_v2`, and a plugin that
//! fails quarantines its batch (every request, with the reason) while the job goes on with
//! the next batch.

use std::{io::Read, sync::Arc};

use arrow::array::{Array, AsArray};
use clickstream_etl::{
    enrich::{EnricherKind, EnrichmentResources, TrafficRuleBook, plugin::ChainPlugin},
    job::{EtlJob, JobSettings},
    transform::QualityRules,
};
use clickstream_plugins::{
    LoadedPlugin, PluginLimits, PluginRuntime, PluginWorld,
    build::{build_plugin_crate, plugin_crate_dir},
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn loaded(runtime: &PluginRuntime, relative: &str) -> Arc<LoadedPlugin> {
    let path = build_plugin_crate(&plugin_crate_dir(relative)).unwrap_or_else(|error| panic!("{error}"));
    runtime.load(&std::fs::read(path).unwrap(), PluginWorld::Enricher).unwrap()
}

fn raw_line(event_ids: &[&str], event_name: &str, page_url: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let events: Vec<serde_json::Value> = event_ids
        .iter()
        .map(|event_id| serde_json::json!({"event_type": event_name, "event_id": event_id, "app_id": "app", "timestamp": now, "unique_id": "u1",
            "attributes": {"_session_id": "s1", "_page_url": page_url, "plan": "pro"}}))
        .collect();
    serde_json::json!({"data": serde_json::Value::from(events).to_string(), "ingest_time": now, "ua": "curl/8", "ip": "192.0.2.1", "uri": "/collect?appId=app"}).to_string()
}

/// `event_id → custom_parameters_json_str` of the job's `event_v2` files.
fn custom_parameters_written(staging: &std::path::Path) -> std::collections::BTreeMap<String, Option<String>> {
    let mut written = std::collections::BTreeMap::new();
    let mut stack = vec![staging.join("event_v2")];
    while let Some(directory) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(directory) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            for batch in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap() {
                let batch = batch.unwrap();
                let ids = batch.column_by_name("event_id").unwrap().as_string::<i32>().clone();
                let parameters = batch.column_by_name("custom_parameters_json_str").unwrap().as_string::<i32>().clone();
                for row in 0..batch.num_rows() {
                    written.insert(ids.value(row).to_string(), (!parameters.is_null(row)).then(|| parameters.value(row).to_string()));
                }
            }
        }
    }
    written
}

fn settings(plugins: Vec<ChainPlugin>) -> JobSettings {
    JobSettings {
        rules: QualityRules { project_id: "p".into(), apps: ["app".to_string()].into(), freshness_msec: 72 * 3_600_000, correct_clock_skew: false },
        enrichers: vec![EnricherKind::PageUrl],
        plugins,
        transformer: None,
        filter_bots: false,
        job_id: "job".into(),
    }
}

#[test]
fn plugin_parameters_reach_event_v2_after_the_built_in_enrichers() {
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let page_category = ChainPlugin { id: "page_category".into(), plugin: loaded(&runtime, "examples/page-category"), config: "/products=product".into() };
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let staging = tempfile::tempdir().unwrap();
    let mut job = EtlJob::new(settings(vec![page_category]), &resources, staging.path(), chrono::Utc::now());
    job.process_batch(&[raw_line(&["a", "b"], "_page_view", "https://shop.example/products/shoes"), raw_line(&["c"], "_page_view", "https://shop.example/about")], "input").unwrap();
    let output = job.finish().unwrap();
    assert_eq!((output.counters.events_out, output.counters.quarantined_records), (3, 0));
    assert!(output.phases.enrich.contains_key("page_category"), "the plugin's time is reported by its id: {:?}", output.phases.enrich);
    let written = custom_parameters_written(&output.staging);
    let parameters = |event_id: &str| -> serde_json::Value { serde_json::from_str(written[event_id].as_deref().unwrap()).unwrap() };
    assert_eq!(parameters("a"), serde_json::json!({"plan": "pro", "page_category": "product", "page_depth": 2}));
    assert_eq!(parameters("c")["page_category"], "other");
}

#[test]
fn a_plugin_gets_only_the_fields_it_declared() {
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let run = |config: &str| {
        let staging = tempfile::tempdir().unwrap();
        let plugin = ChainPlugin { id: "misbehaving".into(), plugin: loaded(&runtime, "tests/misbehaving"), config: config.into() };
        let mut job = EtlJob::new(settings(vec![plugin]), &resources, staging.path(), chrono::Utc::now());
        job.process_batch(&[raw_line(&["a"], "_page_view", "https://shop.example/cart")], "input").unwrap();
        let written = custom_parameters_written(&job.finish().unwrap().staging);
        let parameters: serde_json::Value = serde_json::from_str(written["a"].as_deref().unwrap()).unwrap();
        parameters["plugin_saw"].as_str().unwrap().to_string()
    };
    // Declaring only the page URL: the event name is not sent.
    assert_eq!(run("page-url-only"), "-|https://shop.example/cart");
    // Declaring every field (this plugin's default): the event name is there.
    assert_eq!(run(""), "_page_view");
}

#[test]
fn a_failing_plugin_quarantines_its_batch_and_the_job_goes_on() {
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let staging = tempfile::tempdir().unwrap();
    // The plugin's configuration decides how it behaves: this one panics on a batch with a
    // `boom` event.
    let misbehaving = ChainPlugin { id: "misbehaving".into(), plugin: loaded(&runtime, "tests/misbehaving"), config: "panic-on-boom".into() };
    let mut job = EtlJob::new(settings(vec![misbehaving]), &resources, staging.path(), chrono::Utc::now());
    // The third request has an event without an id, which alone would be quarantined by
    // itself: with the whole request quarantined, it must not be quarantined a second time.
    let without_an_event_id = {
        let mut record: serde_json::Value = serde_json::from_str(&raw_line(&["x4", "x5"], "_page_view", "https://shop.example/")).unwrap();
        let mut events: serde_json::Value = serde_json::from_str(record["data"].as_str().unwrap()).unwrap();
        events[0].as_object_mut().unwrap().remove("event_id");
        record["data"] = events.to_string().into();
        record.to_string()
    };
    let failed_batch = [raw_line(&["x1", "x2"], "_page_view", "https://shop.example/"), raw_line(&["x3"], "boom", "https://shop.example/"), without_an_event_id];
    job.process_batch(&failed_batch, "raw/object-1.gz").unwrap();
    // The next batch of the same job goes through: the failure dropped the plugin's instance
    // and this batch gets a fresh one.
    job.process_batch(&[raw_line(&["ok1"], "_page_view", "https://shop.example/")], "raw/object-2.gz").unwrap();
    let output = job.finish().unwrap();
    assert_eq!((output.counters.events_out, output.counters.quarantined_records, output.counters.quarantined_events), (1, 3, 5));
    let written = custom_parameters_written(&output.staging);
    assert_eq!(written.keys().collect::<Vec<_>>(), ["ok1"], "nothing of the failed batch is written");
    assert!(written["ok1"].as_deref().unwrap().contains(r#""plugin_saw":"_page_view""#), "{written:?}");

    let mut quarantined = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(output.quarantine_file.unwrap()).unwrap()).read_to_string(&mut quarantined).unwrap();
    let records: Vec<serde_json::Value> = quarantined.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 3, "each request of the failed batch, whole, for replay, and nothing twice: {records:?}");
    for (record, original) in records.iter().zip(&failed_batch) {
        assert_eq!(record["original"], original.as_str());
        assert_eq!(record["input"], "raw/object-1.gz");
        assert!(record.get("event_index").is_none(), "{record}");
        let reason = record["reason"].as_str().unwrap();
        assert!(reason.starts_with("enricher plugin `misbehaving` failed the batch: the plugin trapped") && reason.contains("a `boom` event in a batch of 4"), "{reason}");
    }
}

#[test]
fn a_transformer_turns_bodies_of_another_format_into_events() {
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let path = build_plugin_crate(&plugin_crate_dir("examples/simple-events")).unwrap_or_else(|error| panic!("{error}"));
    let transformer = ChainPlugin { id: "simple_events".into(), plugin: runtime.load(&std::fs::read(path).unwrap(), PluginWorld::Transformer).unwrap(), config: String::new() };
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let staging = tempfile::tempdir().unwrap();
    let mut settings = settings(Vec::new());
    settings.transformer = Some(transformer);
    let mut job = EtlJob::new(settings, &resources, staging.path(), chrono::Utc::now());
    let now = chrono::Utc::now().timestamp_millis();
    let raw = |body: serde_json::Value| serde_json::json!({"data": body.to_string(), "ingest_time": now, "ua": "feed/1", "ip": "192.0.2.1", "uri": "/collect?appId=app", "appId": "app"}).to_string();
    let good = raw(serde_json::json!({"user": "u9", "events": [
        {"id": "f1", "name": "page_view", "time": now, "url": "https://shop.example/products/a", "properties": {"plan": "pro"}},
        {"id": "f2", "name": "add_to_cart", "time": now, "properties": {"sku": "A-1"}}]}));
    let bad = raw(serde_json::json!({"events": []}));
    job.process_batch(&[good, bad.clone()], "raw/feed.gz").unwrap();
    let output = job.finish().unwrap();
    assert_eq!((output.counters.events_out, output.counters.quarantined_records), (2, 1));
    let written = custom_parameters_written(&output.staging);
    assert_eq!(written.keys().collect::<Vec<_>>(), ["f1", "f2"]);
    assert_eq!(written["f2"].as_deref(), Some(r#"{"sku":"A-1"}"#));
    let mut quarantined = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(output.quarantine_file.unwrap()).unwrap()).read_to_string(&mut quarantined).unwrap();
    let record: serde_json::Value = serde_json::from_str(quarantined.lines().next().unwrap()).unwrap();
    assert_eq!(record["reason"], "transformer plugin `simple_events` refused the request: the body has no `user` text");
    assert_eq!(record["original"], bad.as_str());
}
