//! The Kinesis sink and the Kinesis → S3 bridge over moto (Kinesis and S3): every event the
//! collector acknowledged reaches the S3 raw layer, also when the bridge is killed midway.

use std::{collections::HashSet, process::Command, time::Duration};

use clickstream_e2e::{MotoServer, ServerProcess, clickstream_binary, event_ids_in_raw_objects, eventually, free_port};

const BUCKET: &str = "kinesis-bridge";

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kinesis_reach_s3_despite_a_killed_bridge() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let port = free_port();
    let bridge_port = free_port();
    let config = directory.path().join("clickstream.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[ingest]
listen = "127.0.0.1:{port}"
spool_dir = "{spool}"
sink_batch_max_age_ms = 200
[worker]
listen = "127.0.0.1:{bridge_port}"
[storage]
url = "s3://{BUCKET}/raw"
endpoint = "{moto}"
[kinesis]
endpoint = "{moto}"
shard_count = 2
[[projects]]
id = "streamed"
apps = ["stream-app"]
sink = "kinesis"
"#,
            spool = directory.path().join("spool").display(),
            moto = moto.endpoint(),
        ),
    )
    .unwrap();
    let start = |role: &str| {
        let mut process = ServerProcess::spawn(
            role,
            Command::new(clickstream_binary())
                .arg("--config")
                .arg(&config)
                .arg(role)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("RUST_LOG", "info"),
            directory.path(),
        );
        process.wait_for_port(if role == "ingest" { port } else { bridge_port }, Duration::from_secs(60));
        process
    };
    let _collector = start("ingest");
    let mut bridge = start("bridge");

    let ids_file = directory.path().join("accepted.txt");
    let settings = clickstream_loadgen::LoadSettings {
        url: format!("http://127.0.0.1:{port}/collect"),
        app_id: "stream-app".into(),
        duration: Duration::from_secs(4),
        concurrency: 8,
        events_per_request: 10,
        gzip: false,
        accepted_ids_file: Some(ids_file.clone()),
        show_progress: false,
    };
    let load = tokio::spawn(clickstream_loadgen::run(settings));
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridge.child.kill().unwrap(); // SIGKILL mid-stream: what is past the checkpoint is read again
    bridge.child.wait().unwrap();
    let summary = load.await.unwrap().unwrap();
    assert!(summary.accepted_requests > 0 && summary.errors_by_status.is_empty(), "{summary:?}");
    let _bridge = start("bridge");

    let accepted: Vec<String> = std::fs::read_to_string(&ids_file).unwrap().lines().map(str::to_string).collect();
    let stored = eventually("every accepted event in S3", Duration::from_secs(180), Duration::from_secs(1), || {
        let (moto, accepted) = (&moto, &accepted);
        async move {
            let stored = event_ids_in_raw_objects(moto, BUCKET, "raw/streamed/data/buffer").await;
            let stored_set: HashSet<&String> = stored.iter().collect();
            accepted.iter().all(|id| stored_set.contains(id)).then_some(stored)
        }
    })
    .await;
    println!("accepted {} events, {} in S3 ({} duplicates)", accepted.len(), stored.len(), stored.len() - stored.iter().collect::<HashSet<_>>().len());
}
