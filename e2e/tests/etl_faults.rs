//! The scheduled ETL and load survive crashes: the ETL worker is killed (SIGKILL) while it
//! transforms, the console (which owns the warehouse and runs the loads) is killed while it
//! loads, and the Temporal server is restarted mid-run. Every workflow still finishes, and the
//! warehouse holds each event exactly once.

use std::{path::Path, time::Duration};

use clickstream_e2e::{ServerProcess, TemporalDevServer, clickstream_binary, eventually, free_port, start_clickstream};
use serde_json::Value;

const APPS: [&str; 2] = ["shop-web", "shop-app"];

/// Raw objects as the collector writes them, in the current hour's partition: 15 objects of
/// 2,000 events (two parts of a chunk). Returns the directory they were generated in.
fn write_raw_objects(data_root: &Path, scratch: &Path) -> std::path::PathBuf {
    let generated = scratch.join("generated");
    let mut settings = clickstream_loadgen::raw::RawDataSettings::new(APPS.iter().map(|app| app.to_string()).collect(), 30_000);
    settings.requests_per_object = 200;
    let summary = clickstream_loadgen::raw::generate_raw_objects(&settings, &generated, |_| {}).unwrap();
    assert_eq!(summary.objects, 15);
    let now = chrono::Utc::now();
    for entry in std::fs::read_dir(&generated).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let key = clickstream_core::layout::raw_object_key("shop", now, &name);
        let target = data_root.join(key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&path, target).unwrap();
    }
    generated
}

/// Events the ETL keeps from the generated objects, by running it once outside Temporal.
fn expected_events(generated: &Path, scratch: &Path) -> u64 {
    let output = std::process::Command::new(clickstream_binary())
        .args(["etl", "run", "--input", generated.to_str().unwrap(), "--output", scratch.join("reference").to_str().unwrap(), "--project", "shop", "--apps", &APPS.join(",")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["counters"]["events_out"].as_u64().unwrap()
}

async fn events_in_warehouse(http: &reqwest::Client, console_port: u16) -> Option<u64> {
    let mut total = 0;
    for app in APPS {
        let response = http.get(format!("http://127.0.0.1:{console_port}/api/v1/apps/{app}/events/count")).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        total += body["count"].as_u64()?;
    }
    Some(total)
}

fn pending_markers(data_root: &Path) -> usize {
    std::fs::read_dir(data_root.join("shop/load-workflow/pending")).map(|entries| entries.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_workers_and_a_restarted_server_lose_and_duplicate_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let logs = directory.path();
    let data_root = logs.join("data");
    let generated = write_raw_objects(&data_root, logs);
    let expected = expected_events(&generated, logs);
    assert!(expected > 29_000, "nearly every generated event is kept: {expected}");

    let mut temporal = TemporalDevServer::start_with_database(logs, &logs.join("temporal.db"));
    let (worker_port, console_port) = (free_port(), free_port());
    let config_path = logs.join("clickstream.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[console]
listen = "127.0.0.1:{console_port}"
[worker]
listen = "127.0.0.1:{worker_port}"
[temporal]
address = "{temporal}"
task_queue = "faults-etl"
warehouse_task_queue = "faults-warehouse"
[storage]
url = "file://{data}"
[warehouse]
duckdb_path = "{warehouse}"
[[projects]]
id = "shop"
apps = ["shop-web", "shop-app"]
etl_interval_seconds = 5
etl_buffer_seconds = 0
"#,
            temporal = temporal.address(),
            data = data_root.display(),
            warehouse = logs.join("warehouse.duckdb").display(),
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let mut console = start_clickstream(&config_path, "console", console_port, logs);
    let mut worker = start_clickstream(&config_path, "worker", worker_port, logs);

    // 1. Kill the ETL worker once the first part of the chunk is published, mid-transform.
    eventually("the first transformed part", Duration::from_secs(180), Duration::from_millis(100), || async { (pending_markers(&data_root) > 0).then_some(()) }).await;
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    drop(worker);
    // 2. Restart the Temporal server while the transform waits for a worker.
    temporal.restart();
    let worker = restart("worker", &config_path, worker_port, logs);

    // 3. Kill the console (the warehouse owner) once loading has begun.
    eventually("the first loaded rows", Duration::from_secs(300), Duration::from_millis(200), || async {
        events_in_warehouse(&http, console_port).await.filter(|&count| count > 0)
    })
    .await;
    console.child.kill().unwrap();
    console.child.wait().unwrap();
    drop(console);
    let console = restart("console", &config_path, console_port, logs);

    // Every event arrives, once, and nothing is left pending. (A killed activity is retried
    // after the 30 s heartbeat timeout.)
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let mut loaded = None;
    while std::time::Instant::now() < deadline {
        loaded = events_in_warehouse(&http, console_port).await;
        if loaded.is_some_and(|count| count >= expected) && pending_markers(&data_root) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(loaded, Some(expected), "each event exactly once; {} files still pending\nworker:\n{}\nconsole:\n{}", pending_markers(&data_root), tail(&worker.log()), tail(&console.log()));
    drop((worker, console, temporal));
}

fn restart(role: &str, config_path: &Path, port: u16, logs: &Path) -> ServerProcess {
    let restarted_logs = logs.join(format!("{role}-restarted"));
    std::fs::create_dir_all(&restarted_logs).unwrap();
    start_clickstream(config_path, role, port, &restarted_logs)
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
