//! Fault tests of the collector over real servers: every event that got a 200 reaches S3
//! (moto), whether the collector is killed with SIGKILL under load or S3 is unreachable.

use std::{collections::HashSet, path::Path, process::Command, time::Duration};

use clickstream_e2e::{MotoServer, ServerProcess, ToggleProxy, clickstream_binary, event_ids_in_raw_objects, eventually, free_port};
use clickstream_loadgen::{LoadSettings, LoadSummary};

const BUCKET: &str = "ingest-faults";

fn write_config(directory: &Path, port: u16, s3_endpoint: &str, spool_max_bytes: u64) -> std::path::PathBuf {
    let path = directory.join("clickstream.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[ingest]
listen = "127.0.0.1:{port}"
spool_dir = "{spool}"
spool_max_bytes = {spool_max_bytes}
sink_batch_max_age_ms = 200
[storage]
url = "s3://{BUCKET}/raw"
endpoint = "{s3_endpoint}"
[[projects]]
id = "faults"
apps = ["fault-app"]
"#,
            spool = directory.join("spool").display()
        ),
    )
    .unwrap();
    path
}

fn start_collector(config: &Path, logs: &Path, port: u16) -> ServerProcess {
    let mut collector = ServerProcess::spawn(
        "collector",
        Command::new(clickstream_binary())
            .arg("--config")
            .arg(config)
            .arg("ingest")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "warn"),
        logs,
    );
    collector.wait_for_port(port, Duration::from_secs(30));
    collector
}

fn load(port: u16, duration: Duration, concurrency: usize, accepted_ids_file: &Path) -> LoadSettings {
    LoadSettings {
        url: format!("http://127.0.0.1:{port}/collect"),
        app_id: "fault-app".into(),
        duration,
        concurrency,
        events_per_request: 10,
        gzip: false,
        accepted_ids_file: Some(accepted_ids_file.to_path_buf()),
        show_progress: false,
    }
}

fn accepted_ids(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap().lines().filter(|line| !line.is_empty()).map(str::to_string).collect()
}

/// Waits until the collector's spool is empty (everything shipped).
async fn wait_until_drained(port: u16) {
    let http = reqwest::Client::new();
    eventually("the spool to drain into S3", Duration::from_secs(120), Duration::from_millis(200), || {
        let http = http.clone();
        async move {
            let health: serde_json::Value = http.get(format!("http://127.0.0.1:{port}/health")).send().await.ok()?.json().await.ok()?;
            (health["spool_bytes"] == 0 && health["segments_waiting"] == 0).then_some(())
        }
    })
    .await;
}

/// Every accepted id must be in S3; duplicates are allowed (the warehouse dedups) and reported.
async fn assert_all_accepted_are_stored(moto: &MotoServer, accepted: &[String]) {
    let stored = event_ids_in_raw_objects(moto, BUCKET, "raw/faults/data/buffer").await;
    let stored_set: HashSet<&String> = stored.iter().collect();
    let missing: Vec<&String> = accepted.iter().filter(|id| !stored_set.contains(id)).collect();
    println!("accepted {} events, stored {} ({} duplicates), missing {}", accepted.len(), stored.len(), stored.len() - stored_set.len(), missing.len());
    assert!(missing.is_empty(), "{} acknowledged events are missing from S3, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let port = free_port();
    let config = write_config(directory.path(), port, &moto.endpoint(), 1 << 30);

    let mut accepted = Vec::new();
    for round in 0..3 {
        let mut collector = start_collector(&config, directory.path(), port);
        let ids_file = directory.path().join(format!("accepted-{round}.txt"));
        let load = tokio::spawn(clickstream_loadgen::run(load(port, Duration::from_secs(3), 16, &ids_file)));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        collector.child.kill().unwrap(); // SIGKILL: no drain, no flush
        collector.child.wait().unwrap();
        let summary: LoadSummary = load.await.unwrap().unwrap();
        assert!(summary.accepted_requests > 0, "round {round}: {summary:?}");
        accepted.extend(accepted_ids(&ids_file));
    }
    // The restarted collector recovers the spool of the killed ones and ships it.
    let _collector = start_collector(&config, directory.path(), port);
    wait_until_drained(port).await;
    assert_all_accepted_are_stored(&moto, &accepted).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_s3_loses_nothing_and_503_comes_only_from_a_full_spool() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let proxy = ToggleProxy::start(moto.port).await;
    let port = free_port();
    let config = write_config(directory.path(), port, &proxy.endpoint(), 2 * 1024 * 1024);
    let mut collector = start_collector(&config, directory.path(), port);

    let ids_file = directory.path().join("accepted.txt");
    let outage = Duration::from_secs(60);
    let load = tokio::spawn(clickstream_loadgen::run(load(port, outage + Duration::from_secs(10), 4, &ids_file)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.cut();
    tokio::time::sleep(outage).await;
    proxy.restore();
    let summary = load.await.unwrap().unwrap();
    println!("{}", serde_json::to_string(&summary).unwrap());

    let refused = summary.errors_by_status.get("503").copied().unwrap_or(0);
    assert!(refused > 0, "a 2 MB spool must fill during a 60 s outage under load: {summary:?}");
    assert_eq!(summary.errors_by_status.keys().filter(|status| *status != "503").count(), 0, "{summary:?}");
    // Every 503 was a full spool (the metric counts refusals by reason).
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let spool_full = metrics
        .lines()
        .find(|line| line.starts_with("clickstream_ingest_requests_total") && line.contains("reason=\"spool_full\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(spool_full as u64, refused, "{metrics}");

    wait_until_drained(port).await;
    assert_all_accepted_are_stored(&moto, &accepted_ids(&ids_file)).await;
    let status = collector.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", collector.log());
}
