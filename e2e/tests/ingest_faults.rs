//! Fault tests of the collector over real servers: every event that got a 200 reaches S3
//! (moto), whether the collector is killed with SIGKILL under load or S3 is unreachable.

use std::{path::Path, time::Duration};

use clickstream_e2e::{
    MotoServer, ToggleProxy, eventually, free_port, load_recording_accepted, load_through_a_sink_outage, read_accepted_ids, start_clickstream,
    wait_until_all_stored,
};
use clickstream_loadgen::LoadSummary;

const BUCKET: &str = "ingest-faults";
const RAW_PREFIX: &str = "raw/faults/data/buffer";

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

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let port = free_port();
    let config = write_config(directory.path(), port, &moto.endpoint(), 1 << 30);

    let mut accepted = Vec::new();
    for round in 0..3 {
        let mut collector = start_clickstream(&config, "ingest", port, directory.path());
        let ids_file = directory.path().join(format!("accepted-{round}.txt"));
        let load = tokio::spawn(clickstream_loadgen::run(load_recording_accepted(port, "fault-app", Duration::from_secs(3), 16, &ids_file)));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        collector.child.kill().unwrap(); // SIGKILL: no drain, no flush
        collector.child.wait().unwrap();
        let summary: LoadSummary = load.await.unwrap().unwrap();
        assert!(summary.accepted_requests > 0, "round {round}: {summary:?}");
        accepted.extend(read_accepted_ids(&ids_file));
    }
    // The restarted collector recovers the spool of the killed ones and ships it.
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    wait_until_drained(port).await;
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &accepted, Duration::from_secs(30), &[&collector]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_s3_loses_nothing_and_503_comes_only_from_a_full_spool() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let proxy = ToggleProxy::start(moto.port).await;
    let port = free_port();
    let config = write_config(directory.path(), port, &proxy.endpoint(), 2 * 1024 * 1024);
    let mut collector = start_clickstream(&config, "ingest", port, directory.path());

    let ids_file = directory.path().join("accepted.txt");
    load_through_a_sink_outage(port, "fault-app", &proxy, &ids_file).await;

    wait_until_drained(port).await;
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &read_accepted_ids(&ids_file), Duration::from_secs(30), &[&collector]).await;
    let status = collector.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", collector.log());
}
