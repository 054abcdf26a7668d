//! The Kinesis sink and the Kinesis → S3 bridge over moto (Kinesis and S3): every event the
//! collector acknowledged reaches the S3 raw layer, also when the bridge is killed midway.

use std::time::Duration;

use clickstream_e2e::{MotoServer, free_port, load_recording_accepted, read_accepted_ids, start_clickstream, wait_until_all_stored};

const BUCKET: &str = "kinesis-bridge";

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kinesis_reach_s3_despite_a_killed_bridge() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let (port, bridge_port) = (free_port(), free_port());
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
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    let mut bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let ids_file = directory.path().join("accepted.txt");
    let load = tokio::spawn(clickstream_loadgen::run(load_recording_accepted(port, "stream-app", Duration::from_secs(4), 8, &ids_file)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridge.child.kill().unwrap(); // SIGKILL mid-stream: what is past the checkpoint is read again
    bridge.child.wait().unwrap();
    let summary = load.await.unwrap().unwrap();
    assert!(summary.accepted_requests > 0 && summary.errors_by_status.is_empty(), "{summary:?}");
    let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, "raw/streamed/data/buffer", &accepted, Duration::from_secs(180), &[&collector, &bridge]).await;
}
