//! End to end over the native stack: SDK-shaped requests → collector → S3 (moto) → scheduled
//! EtlWorkflow → Parquet → LoadDataWorkflow → DuckDB → console API and page.

use std::{process::Command, time::Duration};

use clickstream_e2e::{MotoServer, ServerProcess, TemporalDevServer, clickstream_binary, eventually, free_port};
use serde_json::{Value, json};

const BUCKET: &str = "clickstream-e2e";

fn events(app_id: &str, ids: &[String], timestamp_ms: i64) -> Value {
    Value::Array(
        ids.iter()
            .map(|event_id| {
                json!({
                    "event_type": "_page_view",
                    "event_id": event_id,
                    "app_id": app_id,
                    "timestamp": timestamp_ms,
                    "unique_id": "user-1",
                    "platform": "Web",
                    "sdk_name": "aws-solution-clickstream-sdk",
                    "sdk_version": "0.12.0",
                    "attributes": { "_session_id": "session-1", "_page_url": "https://example.com/a", "plan": "pro" }
                })
            })
            .collect(),
    )
}

fn gzip_base64(text: &str) -> String {
    clickstream_core::wire::encode_gzip_base64(text)
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|index| format!("{prefix}-{index}")).collect()
}

/// One request as an SDK sends it; returns the status.
async fn send(http: &reqwest::Client, ingest: &str, app_id: &str, body: &Value, gzip: bool) -> u16 {
    let text = body.to_string();
    let (query, payload) = if gzip { ("&compression=gzip", gzip_base64(&text)) } else { ("", text) };
    http.post(format!("{ingest}/collect?appId={app_id}&platform=Web&event_bundle_sequence_id=1&upload_timestamp=1{query}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(payload)
        .send()
        .await
        .expect("the collector answers")
        .status()
        .as_u16()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.expect("the console answers").json().await.expect("the console answers JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_to_the_collector_are_counted_once_in_the_warehouse() {
    let logs = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(logs.path());
    let moto = MotoServer::start(logs.path());
    moto.create_bucket(BUCKET).await;

    let ingest_port = free_port();
    let console_port = free_port();
    let worker_port = free_port();
    let config = format!(
        r#"
[ingest]
listen = "127.0.0.1:{ingest_port}"
sink_batch_max_age_ms = 300
spool_dir = "{spool}"
[console]
listen = "127.0.0.1:{console_port}"
[worker]
listen = "127.0.0.1:{worker_port}"
[temporal]
address = "{temporal}"
task_queue = "e2e-etl"
warehouse_task_queue = "e2e-warehouse"
[storage]
url = "s3://{BUCKET}/data"
endpoint = "{moto}"
[warehouse]
duckdb_path = "{warehouse}"
[[projects]]
id = "shop"
apps = ["shop-web", "shop-ios"]
etl_interval_seconds = 3
etl_buffer_seconds = 1
[[projects]]
id = "blog"
apps = ["blog-web"]
etl_interval_seconds = 3
etl_buffer_seconds = 1
"#,
        temporal = temporal.address(),
        moto = moto.endpoint(),
        warehouse = logs.path().join("warehouse.duckdb").display(),
        spool = logs.path().join("spool").display(),
    );
    let config_path = logs.path().join("clickstream.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut dev = ServerProcess::spawn(
        "clickstream",
        Command::new(clickstream_binary())
            .arg("--config")
            .arg(&config_path)
            .arg("dev")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "info"),
        logs.path(),
    );
    dev.wait_for_port(ingest_port, Duration::from_secs(60));
    dev.wait_for_port(console_port, Duration::from_secs(60));
    let ingest = format!("http://127.0.0.1:{ingest_port}");
    let console = format!("http://127.0.0.1:{console_port}");
    let http = reqwest::Client::new();

    // Yesterday, so every event lies in one known UTC day and inside the freshness window.
    let timestamp_ms = chrono::Utc::now().timestamp_millis() - 86_400_000;
    let web_batch = events("shop-web", &ids("web", 10), timestamp_ms);
    let ios_batch = events("shop-ios", &ids("ios", 7), timestamp_ms);
    let blog_batch = events("blog-web", &ids("blog", 5), timestamp_ms);
    // The same event sent twice (an SDK retry) across two requests is one event.
    let web_retry = events("shop-web", &ids("web", 3), timestamp_ms);

    assert_eq!(send(&http, &ingest, "shop-web", &web_batch, false).await, 200);
    assert_eq!(send(&http, &ingest, "shop-ios", &ios_batch, true).await, 200);
    assert_eq!(send(&http, &ingest, "blog-web", &blog_batch, true).await, 200);
    assert_eq!(send(&http, &ingest, "shop-web", &web_retry, false).await, 200);
    assert_eq!(send(&http, &ingest, "stranger-app", &events("stranger-app", &ids("x", 4), timestamp_ms), false).await, 403);
    let malformed = http.post(format!("{ingest}/collect?appId=shop-web&compression=gzip")).body("not base64 !").send().await.unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    let expected = [("shop-web", 10u64), ("shop-ios", 7), ("blog-web", 5)];
    for (app_id, count) in expected {
        let url = format!("{console}/api/v1/apps/{app_id}/events/count");
        eventually(&format!("{count} events of {app_id} in the warehouse"), Duration::from_secs(120), Duration::from_millis(500), || {
            let (http, url) = (http.clone(), url.clone());
            async move { (get_json(&http, &url).await["count"] == json!(count)).then_some(()) }
        })
        .await;
    }
    // A time range that excludes the events counts none of them.
    let future_only = get_json(&http, &format!("{console}/api/v1/apps/shop-web/events/count?from=2999-01-01T00:00:00Z&to=2999-12-31T00:00:00Z")).await;
    assert_eq!(future_only["count"], json!(0));
    let bad_range = http.get(format!("{console}/api/v1/apps/shop-web/events/count?from=yesterday")).send().await.unwrap();
    assert_eq!(bad_range.status().as_u16(), 400);
    let unknown = http.get(format!("{console}/api/v1/apps/stranger-app/events/count")).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    // The same batches again: new raw objects and Parquet files get loaded, no new events.
    let loaded_before = get_json(&http, &format!("{console}/api/v1/apps/shop-web/loads")).await["loaded_files"].as_u64().unwrap();
    assert_eq!(send(&http, &ingest, "shop-web", &web_batch, false).await, 200);
    assert_eq!(send(&http, &ingest, "shop-ios", &ios_batch, true).await, 200);
    eventually("the resent batch to be loaded", Duration::from_secs(120), Duration::from_millis(500), || {
        let http = http.clone();
        let url = format!("{console}/api/v1/apps/shop-web/loads");
        async move { (get_json(&http, &url).await["loaded_files"].as_u64().unwrap() > loaded_before).then_some(()) }
    })
    .await;
    for (app_id, count) in expected {
        let counted = get_json(&http, &format!("{console}/api/v1/apps/{app_id}/events/count")).await;
        assert_eq!(counted["count"], json!(count), "{app_id} after resending");
    }

    // The overview dashboard reads the reporting aggregates, rebuilt after each load: the
    // day's 10 page views of one user in one session.
    let day = chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap().format("%Y-%m-%d").to_string();
    let overview_url = format!("{console}/api/v1/apps/shop-web/dashboards/overview?from={day}&to={day}");
    let panel_rows = |overview: &Value, id: &str| overview["panels"].as_array().and_then(|panels| panels.iter().find(|panel| panel["id"] == id)).map(|panel| panel["table"]["rows"].clone());
    let overview = eventually("the reporting aggregates", Duration::from_secs(60), Duration::from_millis(500), || {
        let (http, url) = (http.clone(), overview_url.clone());
        async move { Some(get_json(&http, &url).await).filter(|overview| panel_rows(overview, "top_events").is_some_and(|rows| rows != json!([]))) }
    })
    .await;
    assert_eq!(panel_rows(&overview, "kpis"), Some(json!([[1, 0, 1, 10, 10]])), "{overview}");
    assert_eq!(panel_rows(&overview, "top_events"), Some(json!([["_page_view", 10]])), "{overview}");
    let bad_days = http.get(format!("{console}/api/v1/apps/shop-web/dashboards/overview?from=2026-02-03&to=2026-01-01")).send().await.unwrap();
    assert_eq!(bad_days.status().as_u16(), 400);

    // The app's page is the web console's (it reads the count above from the API).
    let page = http.get(format!("{console}/apps/shop-web")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<title>clickstream console</title>"), "the web console is served for its routes");

    // The runs are visible in Temporal.
    for workflow_type in ["EtlWorkflow", "LoadDataWorkflow"] {
        let listed = temporal.cli(&["workflow", "list", "--query", &format!("WorkflowType='{workflow_type}' AND ExecutionStatus='Completed'"), "--limit", "5", "-o", "json"]);
        assert!(listed.contains(workflow_type), "no completed {workflow_type} run: {listed}");
    }
    // Raw data is in the CAoA layout in S3.
    let raw_keys = moto.list_keys(BUCKET, "data/shop/data/buffer").await;
    assert!(raw_keys.iter().all(|key| key.contains("/year=") && key.ends_with(".gz")) && !raw_keys.is_empty(), "{raw_keys:?}");

    // Metrics are exposed.
    let metrics = http.get(format!("{ingest}/metrics")).send().await.unwrap().text().await.unwrap();
    for metric in ["clickstream_ingest_requests_total", "clickstream_ingest_events_total", "clickstream_ingest_spool_bytes", "clickstream_ingest_sink_write_seconds"] {
        assert!(metrics.contains(metric), "{metric} missing from:\n{metrics}");
    }

    let status = dev.terminate(Duration::from_secs(30));
    assert!(status.success(), "clickstream dev did not stop cleanly ({status}):\n{}", dev.log());
    drop(moto);
    drop(temporal);
}
