//! `clickstream loadgen`: many concurrent SDK-shaped requests against a collector.
//!
//! Requests mix the web SDK (plain JSON, browser user agents, page views) and the mobile SDKs
//! (base64 gzip bodies, screen views, device fields). Every event id is unique, and with
//! `accepted_ids_file` the ids of events that got a 200 are written out, so a test can check
//! that every acknowledged event reached the store.

pub mod raw;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Collector URL including the path, e.g. `http://127.0.0.1:8080/collect`.
    pub url: String,
    pub app_id: String,
    pub duration: Duration,
    pub concurrency: usize,
    pub events_per_request: usize,
    /// Send every request as a mobile SDK would (base64 gzip); otherwise a web/mobile mix.
    pub gzip: bool,
    /// Where to write the event ids of accepted (200) requests, one per line.
    pub accepted_ids_file: Option<std::path::PathBuf>,
    pub show_progress: bool,
    /// Requests per second over all connections; as fast as the collector answers if `None`.
    pub requests_per_second: Option<f64>,
}

/// The one-line JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub duration_seconds: f64,
    pub requests: u64,
    pub accepted_requests: u64,
    pub requests_per_second: f64,
    pub events_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Responses other than 200 by status (`"transport"` for connection errors).
    pub errors_by_status: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot write the accepted ids to {path}: {source}")]
    AcceptedIds { path: String, source: std::io::Error },
}

const WEB_USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
];
const MOBILE_USER_AGENT: &str = "okhttp/4.9.1";

/// Builds one request's events. `sequence` makes every event id unique within the run.
pub fn sdk_events(app_id: &str, run_id: &str, sequence: u64, count: usize, mobile: bool) -> Value {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let user = sequence % 1000;
    let events: Vec<Value> = (0..count)
        .map(|index| {
            let event_id = format!("{run_id}-{sequence}-{index}");
            if mobile {
                json!({
                    "event_type": if index == 0 { "_screen_view" } else { "add_to_cart" },
                    "event_id": event_id, "app_id": app_id, "timestamp": now_ms + index as i64,
                    "unique_id": format!("user-{user}"), "device_id": format!("device-{user}"),
                    "platform": "Android", "os_version": "14", "make": "Google", "brand": "google", "model": "Pixel 8",
                    "locale": "en_US", "carrier": "T-Mobile", "network_type": "WIFI", "screen_height": 2400, "screen_width": 1080,
                    "zone_offset": -28800000, "system_language": "en", "country_code": "US",
                    "sdk_version": "0.12.3", "sdk_name": "aws-solution-clickstream-sdk", "app_version": "3.1.0",
                    "app_package_name": "com.example.shop", "app_title": "Shop",
                    "items": [{"id": format!("item-{}", index % 7), "name": "Sneaker", "price": 59.9, "quantity": 1}],
                    "user": {"_user_id": {"value": format!("u{user}"), "set_timestamp": now_ms}},
                    "attributes": {"_session_id": format!("s-{user}-{}", sequence / 50), "_screen_name": "ProductDetail", "product_id": index}
                })
            } else {
                json!({
                    "event_type": if index == 0 { "_page_view" } else { "click" },
                    "event_id": event_id, "app_id": app_id, "timestamp": now_ms + index as i64,
                    "unique_id": format!("user-{user}"), "device_id": format!("browser-{user}"),
                    "platform": "Web", "locale": "en-US", "screen_height": 1080, "screen_width": 1920,
                    "viewport_height": 900, "viewport_width": 1600, "zone_offset": 3600000, "system_language": "en",
                    "sdk_version": "0.12.3", "sdk_name": "aws-solution-clickstream-sdk", "host_name": "shop.example.com",
                    "app_title": "Shop",
                    "attributes": {
                        "_session_id": format!("s-{user}-{}", sequence / 50),
                        "_page_url": format!("https://shop.example.com/p/{}?utm_source=newsletter&utm_medium=email", index % 13),
                        "_page_title": "Product", "_page_referrer": "https://www.google.com/",
                        "_traffic_source_source": "google"
                    }
                })
            }
        })
        .collect();
    Value::Array(events)
}

/// One request ready to send.
struct PreparedRequest {
    query: &'static str,
    body_bytes: bytes::Bytes,
    user_agent: &'static str,
    events: Option<Value>,
}

/// Builds request `number`. Web and mobile alternate unless every request must be gzip.
fn prepare_request(settings: &LoadSettings, run_id: &str, number: u64, keep_events: bool) -> PreparedRequest {
    let mobile = settings.gzip || number % 2 == 1;
    let events = sdk_events(&settings.app_id, run_id, number, settings.events_per_request, mobile);
    let text = events.to_string();
    let (query, body, user_agent) =
        if mobile { ("&platform=Android&compression=gzip", clickstream_core::wire::encode_gzip_base64(&text), MOBILE_USER_AGENT) } else { ("&platform=Web", text, WEB_USER_AGENTS[number as usize % 3]) };
    let body_bytes = bytes::Bytes::from(body);
    PreparedRequest { query, body_bytes, user_agent, events: keep_events.then_some(events) }
}

/// Distinct prepared requests cycled through when event ids need not be unique (benchmarks),
/// so that building bodies does not slow the generator down.
const PREPARED_POOL_SIZE: u64 = 512;

struct WorkerResult {
    latencies_micros: Vec<u32>,
    errors_by_status: BTreeMap<String, u64>,
    accepted_ids: Vec<String>,
    accepted_requests: u64,
}

/// Runs the load and returns its summary.
pub async fn run(settings: LoadSettings) -> Result<LoadSummary, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| LoadError::Client(error.to_string()))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + settings.duration;
    let progress = settings.show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(settings.duration.as_secs());
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len}s {msg}").expect("static template"));
        bar
    });

    // Unique event ids are needed only to check delivery; otherwise requests come from a pool.
    let unique = settings.accepted_ids_file.is_some();
    let pool: Arc<Vec<PreparedRequest>> =
        Arc::new(if unique { Vec::new() } else { (0..PREPARED_POOL_SIZE).map(|number| prepare_request(&settings, &run_id, number, false)).collect() });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency {
        let (client, settings, run_id, sequence, pool) = (client.clone(), settings.clone(), run_id.clone(), sequence.clone(), pool.clone());
        workers.spawn(async move {
            let mut result = WorkerResult { latencies_micros: Vec::new(), errors_by_status: BTreeMap::new(), accepted_ids: Vec::new(), accepted_requests: 0 };
            // Each connection sends its share of the rate, evenly spaced.
            let mut pace = settings.requests_per_second.filter(|rate| *rate > 0.0).map(|rate| {
                let mut ticker = tokio::time::interval(Duration::from_secs_f64(settings.concurrency as f64 / rate));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker
            });
            while Instant::now() < deadline {
                if let Some(ticker) = &mut pace {
                    ticker.tick().await;
                }
                let number = sequence.fetch_add(1, Ordering::Relaxed);
                let fresh;
                let request = if unique {
                    fresh = prepare_request(&settings, &run_id, number, true);
                    &fresh
                } else {
                    &pool[(number % PREPARED_POOL_SIZE) as usize]
                };
                let url = format!("{}?appId={}{}&event_bundle_sequence_id={number}&upload_timestamp={}", settings.url, settings.app_id, request.query, chrono::Utc::now().timestamp_millis());
                let sent = Instant::now();
                let outcome = client
                    .post(url)
                    .header("content-type", "application/json; charset=utf-8")
                    .header("user-agent", request.user_agent)
                    .body(request.body_bytes.clone())
                    .send()
                    .await;
                result.latencies_micros.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match outcome {
                    Ok(response) if response.status().as_u16() == 200 => {
                        result.accepted_requests += 1;
                        if let Some(events) = &request.events {
                            for event in events.as_array().expect("an array") {
                                result.accepted_ids.push(event["event_id"].as_str().expect("a string").to_string());
                            }
                        }
                    }
                    Ok(response) => *result.errors_by_status.entry(response.status().as_u16().to_string()).or_default() += 1,
                    Err(_) => {
                        *result.errors_by_status.entry("transport".into()).or_default() += 1;
                        // A refused connection (collector restarting) must not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            result
        });
    }
    if let Some(bar) = &progress {
        while Instant::now() < deadline {
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!("{} requests", sequence.load(Ordering::Relaxed)));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bar.finish_and_clear();
    }

    let mut latencies = Vec::new();
    let mut errors_by_status = BTreeMap::new();
    let mut accepted_ids = Vec::new();
    let mut accepted_requests = 0;
    while let Some(joined) = workers.join_next().await {
        let result = joined.expect("load workers do not panic");
        latencies.extend(result.latencies_micros);
        for (status, count) in result.errors_by_status {
            *errors_by_status.entry(status).or_default() += count;
        }
        accepted_ids.extend(result.accepted_ids);
        accepted_requests += result.accepted_requests;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(path) = &settings.accepted_ids_file {
        let mut text = accepted_ids.join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| LoadError::AcceptedIds { path: path.display().to_string(), source })?;
    }
    latencies.sort_unstable();
    let percentile = |fraction: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        f64::from(latencies[index]) / 1000.0
    };
    Ok(LoadSummary {
        duration_seconds: elapsed,
        requests: latencies.len() as u64,
        accepted_requests,
        requests_per_second: latencies.len() as f64 / elapsed,
        events_per_second: (accepted_requests * settings.events_per_request as u64) as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: percentile(1.0),
        errors_by_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_sdk_events_with_unique_ids() {
        for mobile in [false, true] {
            let events = sdk_events("app", "run", 7, 10, mobile);
            let json = serde_json::to_vec(&events).unwrap();
            assert_eq!(clickstream_core::wire::parse_events(&json).unwrap().len(), 10);
            let ids: std::collections::HashSet<_> = events.as_array().unwrap().iter().map(|event| event["event_id"].as_str().unwrap().to_string()).collect();
            assert_eq!(ids.len(), 10);
        }
    }
}
