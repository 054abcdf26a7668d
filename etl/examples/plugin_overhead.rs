//! The cost of a plugin hop: the same enrichment (the example plugin's page categorisation)
//! done by a built-in enricher (the plugin crate's logic linked natively) and by the plugin
//! component through the sandbox, in the same run, over the same events and batches.
//!
//!   cargo run --release -p clickstream-etl --example plugin_overhead -- [events, default 500000]
//!
//! Prints one JSON line per variant and a comparison; `bench/plugins` runs it. The figure that
//! matters is the enricher's own time per event (the job's `phases.enrich`), which is what the
//! plugin changes; whole-job rates are printed beside it. The three variants run side by side,
//! batch by batch, so that each repetition compares them under the same machine conditions.

use std::time::Instant;

/// The `clickstream` binary's allocator (services/cli), so that both enrichers' host-side
/// allocations cost what they cost in a deployed worker.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clickstream_etl::{
    custom_parameters::{ParameterType, ParameterValue},
    enrich::{
        EnrichFailure, Enricher, EnricherKind, EnrichmentResources, TrafficRuleBook,
        plugin::{ChainPlugin, refresh_custom_parameters_json, set_custom_parameter},
    },
    job::{EtlJob, JobSettings},
    rows::EventRow,
    transform::QualityRules,
};
use clickstream_plugins::{PluginLimits, PluginRuntime, PluginWorld, build::{build_plugin_crate, plugin_crate_dir}};

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
            let Some(parameters) = page_category::page_parameters(&self.rules, page_url, referrer) else {
                continue;
            };
            // The values as the plugin path converts its answer (text, and integers as text).
            let text = |value: &str| ParameterValue { value: value.to_string(), kind: ParameterType::String };
            set_custom_parameter(row, "page_category", text(parameters.category));
            set_custom_parameter(row, "page_depth", ParameterValue { value: parameters.depth.to_string(), kind: ParameterType::Number });
            if let Some(host) = &parameters.referrer_host {
                set_custom_parameter(row, "referrer_host", text(host));
            }
            refresh_custom_parameters_json(row);
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

fn settings(plugins: Vec<ChainPlugin>) -> JobSettings {
    JobSettings {
        rules: QualityRules { project_id: "bench".into(), apps: ["app".to_string()].into(), freshness_msec: 72 * 3_600_000, correct_clock_skew: false },
        enrichers: vec![EnricherKind::PageUrl],
        plugins,
        transformer: None,
        filter_bots: false,
        job_id: "bench".into(),
    }
}

/// One repetition: the three variants' jobs side by side, each batch going through all three
/// in turn (starting with a different one each batch), so that the machine's drift (shared
/// virtual CPUs) touches all three alike and their times can be compared pair by pair.
fn run_side_by_side(batches: &[Vec<String>], native: Box<dyn Enricher>, chain_plugin: &ChainPlugin) -> [Measured; 3] {
    let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
    let staging: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let now = chrono::Utc::now();
    let mut built_in = EtlJob::new(settings(Vec::new()), &resources, staging[1].path(), now);
    built_in.add_enricher(native);
    let mut jobs = [EtlJob::new(settings(Vec::new()), &resources, staging[0].path(), now), built_in, EtlJob::new(settings(vec![chain_plugin.clone()]), &resources, staging[2].path(), now)];
    let mut job_seconds = [0.0; 3];
    for (index, batch) in batches.iter().enumerate() {
        for offset in 0..3 {
            let variant = (index + offset) % 3;
            let started = Instant::now();
            jobs[variant].process_batch(batch, "bench").unwrap();
            job_seconds[variant] += started.elapsed().as_secs_f64();
        }
    }
    let mut measured = jobs.into_iter().zip(job_seconds).map(|(job, seconds_before_finish)| {
        let started = Instant::now();
        let output = job.finish().unwrap();
        assert_eq!(output.counters.quarantined_records, 0, "nothing is quarantined");
        let enrich_seconds = output.phases.enrich.get("page_category").copied().unwrap_or(0.0);
        Measured { events: output.counters.events_out, job_seconds: seconds_before_finish + started.elapsed().as_secs_f64(), enrich_seconds }
    });
    [(); 3].map(|_| measured.next().expect("three jobs"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

fn main() {
    let events: usize = std::env::args().nth(1).map(|text| text.parse().expect("events is a number")).unwrap_or(500_000);
    assert!(events >= REQUESTS_PER_BATCH * EVENTS_PER_REQUEST, "at least one batch of {} events", REQUESTS_PER_BATCH * EVENTS_PER_REQUEST);
    let component = build_plugin_crate(&plugin_crate_dir("examples/page-category")).unwrap_or_else(|error| panic!("{error}"));
    let runtime = PluginRuntime::new(PluginLimits::default()).unwrap();
    let plugin = runtime.load(&std::fs::read(component).unwrap(), PluginWorld::Enricher).unwrap();
    let batches = raw_batches(events);
    let native = || -> Box<dyn Enricher> { Box::new(NativePageCategory { rules: page_category::parse_rules(CONFIG).unwrap() }) };
    let chain_plugin = ChainPlugin { id: "page_category".into(), plugin, config: CONFIG.into() };

    // A warm-up, then the measured repetitions.
    run_side_by_side(&batches[..batches.len().min(2)], native(), &chain_plugin);
    let repetitions: usize = std::env::var("BENCH_REPETITIONS").ok().and_then(|text| text.parse().ok()).unwrap_or(7).max(1);
    let runs: Vec<[Measured; 3]> = (0..repetitions).map(|_| run_side_by_side(&batches, native(), &chain_plugin)).collect();
    let events_out = runs[0][1].events as f64;
    let best = |variant: usize, pick: fn(&Measured) -> f64| runs.iter().map(|run| pick(&run[variant])).fold(f64::INFINITY, f64::min);
    for (variant, name) in ["no page_category enricher (baseline job)", "built-in enricher (native)", "plugin (wasm component, sandboxed)"].into_iter().enumerate() {
        println!(
            "{}",
            serde_json::json!({
                "variant": name, "events": runs[0][variant].events, "batch_events": REQUESTS_PER_BATCH * EVENTS_PER_REQUEST,
                "enricher_ns_per_event": (best(variant, |run| run.enrich_seconds) / events_out * 1e9).round(),
                "job_events_per_second": (events_out / best(variant, |run| run.job_seconds)).round(),
            })
        );
    }
    // The figure the goal is about: the plugin's time over the built-in's in the same
    // repetition, the median over the repetitions (and the spread beside it).
    let ratios: Vec<f64> = runs.iter().map(|run| run[2].enrich_seconds / run[1].enrich_seconds).collect();
    let round = |value: f64| (value * 100.0).round() / 100.0;
    let job_ratio = |variant: usize| median(runs.iter().map(|run| run[variant].job_seconds / run[0].job_seconds).collect());
    println!(
        "{}",
        serde_json::json!({
            "plugin_over_built_in_enricher_time": round(median(ratios.clone())),
            "lowest_and_highest_of_the_repetitions": [round(ratios.iter().copied().fold(f64::INFINITY, f64::min)), round(ratios.iter().copied().fold(0.0, f64::max))],
            "goal": "under 2x for batch calls",
            "job_time_built_in_over_baseline": round(job_ratio(1)),
            "job_time_plugin_over_baseline": round(job_ratio(2)),
        })
    );
}
