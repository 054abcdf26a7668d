//! The cost of a plugin hop: the same enrichment (the example plugin's page categorisation)
//! done by a built-in enricher (the plugin crate's logic linked natively) and by the plugin
//! component through the sandbox, in the same run, over the same events and batches.
//!
//!   cargo run --release -p clickstream-etl --example plugin_overhead -- [events, default 500000]
//!
//! Prints one JSON line per variant and a comparison; `bench/plugins` runs it. The figure that
//! matters is the enricher's own time per event (the job's `phases.enrich`), which is what the
//! plugin changes; whole-job rates are printed beside it.

use std::time::Instant;

/// The `clickstream` binary's allocator (services/cli), so that both enrichers' host-side
/// allocations cost what they cost in a deployed worker.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clickstream_etl::{
    enrich::{EnrichFailure, Enricher, EnricherKind, EnrichmentResources, TrafficRuleBook, plugin::{ChainPlugin, set_parameters}},
    job::{EtlJob, JobSettings},
    rows::EventRow,
    transform::QualityRules,
};
use clickstream_plugins::{Parameter, PluginLimits, PluginRuntime, PluginWorld, Value, build::{build_plugin_crate, plugin_crate_dir}};

/// Requests per batch and events per request (the SDKs' usual 10): 5,000 events a call.
const REQUESTS_PER_BATCH: usize = 500;
const EVENTS_PER_REQUEST: usize = 10;
const CONFIG: &str = "/products=product\n/cart=checkout\n/blog=content";

/// The built-in counterpart: the plugin crate's own function, called per event natively.
struct NativePageCategory {
    rules: Vec<page_category::Rule>,
}

impl Enricher for NativePageCategory {
    fn name(&self) -> &str {
        "page_category"
    }

    fn enrich(&mut self, rows: &mut [EventRow<'_>]) -> Result<(), EnrichFailure> {
        for row in rows {
            let attributes = row.sdk.attributes.as_ref();
            let page_url = attributes.and_then(|attributes| attributes.page_url.as_deref());
            let referrer = attributes.and_then(|attributes| attributes.page_referrer.as_deref());
            let parameters = page_category::page_parameters(&self.rules, page_url, referrer)
                .into_iter()
                .map(|(name, value)| Parameter {
                    name,
                    value: match value {
                        page_category::ParameterValue::Text(text) => Value::Text(text),
                        page_category::ParameterValue::Integer(number) => Value::Integer(number),
                    },
                })
                .collect();
            set_parameters(row, parameters).map_err(|reason| EnrichFailure { enricher: "page_category".into(), reason })?;
        }
        Ok(())
    }
}

fn raw_batches(events: usize) -> Vec<Vec<String>> {
    let now = chrono::Utc::now().timestamp_millis();
    let paths = ["/products/shoes/42", "/cart", "/blog/2026/12/hello-world", "/", "/help/returns", "/products/hats?color=red"];
    let referrers = [Some("https://www.google.com/search?q=shoes"), None, Some("https://news.example.org/a/b"), None];
    let requests = events / EVENTS_PER_REQUEST;
    let lines: Vec<String> = (0..requests)
        .map(|request| {
            let events: Vec<serde_json::Value> = (0..EVENTS_PER_REQUEST)
                .map(|index| {
                    let number = request * EVENTS_PER_REQUEST + index;
                    let mut attributes = serde_json::json!({"_session_id": format!("s{request}"), "_page_url": format!("https://shop.example{}", paths[number % paths.len()]), "plan": "pro"});
                    if let Some(referrer) = referrers[number % referrers.len()] {
                        attributes["_page_referrer"] = serde_json::json!(referrer);
                    }
                    serde_json::json!({"event_type": "_page_view", "event_id": format!("e{number}"), "app_id": "app", "timestamp": now, "unique_id": format!("u{}", request % 1000), "attributes": attributes})
                })
                .collect();
            serde_json::json!({"data": serde_json::Value::from(events).to_string(), "ingest_time": now, "ua": "Mozilla/5.0", "ip": "192.0.2.1", "uri": "/collect?appId=app"}).to_string()
        })
        .collect();
    lines.chunks(REQUESTS_PER_BATCH).map(<[String]>::to_vec).collect()
}

struct Measured {
    events: u64,
    job_seconds: f64,
    enrich_seconds: f64,
}

fn run(batches: &[Vec<String>], extra: Option<Box<dyn Enricher>>, plugins: Vec<ChainPlugin>) -> Measured {
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let settings = JobSettings {
        rules: QualityRules { project_id: "bench".into(), apps: ["app".to_string()].into(), freshness_msec: 72 * 3_600_000, correct_clock_skew: false },
        enrichers: vec![EnricherKind::PageUrl],
        plugins,
        transformer: None,
        filter_bots: false,
        job_id: "bench".into(),
    };
    let staging = tempfile::tempdir().unwrap();
    let mut job = EtlJob::new(settings, &resources, staging.path(), chrono::Utc::now());
    if let Some(extra) = extra {
        job.add_enricher(extra);
    }
    let started = Instant::now();
    for batch in batches {
        job.process_batch(batch, "bench").unwrap();
    }
    let output = job.finish().unwrap();
    assert_eq!(output.counters.quarantined_records, 0, "nothing is quarantined");
    Measured { events: output.counters.events_out, job_seconds: started.elapsed().as_secs_f64(), enrich_seconds: output.phases.enrich.get("page_category").copied().unwrap_or(0.0) }
}

fn main() {
    let events: usize = std::env::args().nth(1).map(|text| text.parse().expect("events is a number")).unwrap_or(500_000);
    let component = build_plugin_crate(&plugin_crate_dir("examples/page-category")).unwrap_or_else(|error| panic!("{error}"));
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let plugin = runtime.load(&std::fs::read(component).unwrap(), PluginWorld::Enricher).unwrap();
    let batches = raw_batches(events);
    let native = || -> Box<dyn Enricher> { Box::new(NativePageCategory { rules: page_category::parse_rules(CONFIG).unwrap() }) };
    let chain_plugin = ChainPlugin { id: "page_category".into(), plugin, config: CONFIG.into() };

    // A warm-up of each, then the measured runs, alternating so that both see the same machine.
    run(&batches[..1], Some(native()), Vec::new());
    run(&batches[..1], None, vec![chain_plugin.clone()]);
    let mut without = Vec::new();
    let mut built_in = Vec::new();
    let mut plugin_runs = Vec::new();
    // The machine's speed drifts between runs (shared virtual CPUs): many alternating runs,
    // keeping each variant's best, compare the two at their least disturbed.
    let repetitions: usize = std::env::var("BENCH_REPETITIONS").ok().and_then(|text| text.parse().ok()).unwrap_or(7);
    for _ in 0..repetitions {
        without.push(run(&batches, None, Vec::new()));
        built_in.push(run(&batches, Some(native()), Vec::new()));
        plugin_runs.push(run(&batches, None, vec![chain_plugin.clone()]));
    }
    let best = |runs: &[Measured], pick: fn(&Measured) -> f64| runs.iter().map(pick).fold(f64::INFINITY, f64::min);
    let events_out = built_in[0].events as f64;
    let report = |variant: &str, runs: &[Measured]| {
        let enrich = best(runs, |run| run.enrich_seconds);
        let job = best(runs, |run| run.job_seconds);
        println!(
            "{}",
            serde_json::json!({
                "variant": variant, "events": runs[0].events, "batch_events": REQUESTS_PER_BATCH * EVENTS_PER_REQUEST,
                "enricher_ns_per_event": (enrich / events_out * 1e9).round(), "job_events_per_second": (events_out / job).round(),
            })
        );
        (enrich, job)
    };
    let (_, job_without) = report("no page_category enricher (baseline job)", &without);
    let (enrich_built_in, job_built_in) = report("built-in enricher (native)", &built_in);
    let (enrich_plugin, job_plugin) = report("plugin (wasm component, sandboxed)", &plugin_runs);
    println!(
        "{}",
        serde_json::json!({
            "plugin_over_built_in_enricher_time": (enrich_plugin / enrich_built_in * 100.0).round() / 100.0,
            "goal": "under 2x for batch calls",
            "job_time_built_in_over_baseline": (job_built_in / job_without * 100.0).round() / 100.0,
            "job_time_plugin_over_baseline": (job_plugin / job_without * 100.0).round() / 100.0,
        })
    );
}
