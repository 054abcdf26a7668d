//! The Kinesis sink and the Kinesis → S3 bridge over moto (Kinesis and S3): every event the
//! collector acknowledged reaches the S3 raw layer, also when the bridge is killed midway and
//! when the stream is resharded under load.

use std::{path::Path, time::Duration};

use aws_sdk_kinesis::types::ScalingType;
use clickstream_core::config::KinesisConfig;
use clickstream_e2e::{MotoServer, ServerProcess, free_port, load_recording_accepted, read_accepted_ids, start_clickstream, use_test_aws_credentials, wait_until_all_stored};

const BUCKET: &str = "kinesis-bridge";
/// Where the bridge keeps the checkpoints of the `streamed` project's stream.
const CHECKPOINTS: &str = "raw/streamed/bridge/kinesis/streamed";

/// A configuration with the collector and the bridge on the given ports, the project
/// `streamed` on the Kinesis sink, and the bridge listing shards every 500 ms.
fn write_config(directory: &Path, moto: &MotoServer, port: u16, bridge_port: u16) -> std::path::PathBuf {
    let config = directory.join("clickstream.toml");
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
shard_discovery_interval_ms = 500
[[projects]]
id = "streamed"
apps = ["stream-app"]
sink = "kinesis"
"#,
            spool = directory.join("spool").display(),
            moto = moto.endpoint(),
        ),
    )
    .unwrap();
    config
}

/// moto (Kinesis and S3) with the bucket, and the collector and the bridge running.
struct KinesisStack {
    directory: tempfile::TempDir,
    moto: MotoServer,
    config: std::path::PathBuf,
    port: u16,
    bridge_port: u16,
    collector: ServerProcess,
    bridge: ServerProcess,
    /// Where the load generator records the ids of acknowledged events.
    ids_file: std::path::PathBuf,
}

impl KinesisStack {
    async fn start() -> KinesisStack {
        let directory = tempfile::tempdir().unwrap();
        let moto = MotoServer::start(directory.path());
        moto.create_bucket(BUCKET).await;
        let (port, bridge_port) = (free_port(), free_port());
        let config = write_config(directory.path(), &moto, port, bridge_port);
        let collector = start_clickstream(&config, "ingest", port, directory.path());
        let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());
        let ids_file = directory.path().join("accepted.txt");
        KinesisStack { directory, moto, config, port, bridge_port, collector, bridge, ids_file }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kinesis_reach_s3_despite_a_killed_bridge() {
    let KinesisStack { directory, moto, config, port, bridge_port, collector, mut bridge, ids_file } = KinesisStack::start().await;
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

/// The stream goes from 2 shards to 4 (both split) and back to 2 (the children merged in
/// pairs) while the collector is under load. Every acknowledged event still reaches S3; every
/// closed shard's checkpoint says it was read to its end; the children were read, and only
/// after their parents ended.
#[tokio::test(flavor = "multi_thread")]
async fn the_bridge_follows_a_reshard_under_load() {
    use_test_aws_credentials();
    // The directory is kept (not `..`): dropping it would delete the servers' files.
    let KinesisStack { directory: _directory, moto, port, collector, bridge, ids_file, .. } = KinesisStack::start().await;
    let kinesis = clickstream_ingest::sink::kinesis::client(&KinesisConfig { endpoint: moto.endpoint(), region: "us-east-1".into(), shard_count: 2, shard_discovery_interval_ms: 500 }).await;

    let load = tokio::spawn(clickstream_loadgen::run(load_recording_accepted(port, "stream-app", Duration::from_secs(8), 8, &ids_file)));
    for (after, target_shards) in [(Duration::from_secs(2), 4), (Duration::from_secs(3), 2)] {
        tokio::time::sleep(after).await;
        kinesis.update_shard_count().stream_name("streamed").target_shard_count(target_shards).scaling_type(ScalingType::UniformScaling).send().await.unwrap();
    }
    let summary = load.await.unwrap().unwrap();
    assert!(summary.accepted_requests > 0 && summary.errors_by_status.is_empty(), "{summary:?}");
    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, "raw/streamed/data/buffer", &accepted, Duration::from_secs(180), &[&collector, &bridge]).await;

    let shards = kinesis.list_shards().stream_name("streamed").send().await.unwrap();
    let shards = shards.shards();
    assert_eq!(shards.len(), 2 + 4 + 2, "two original shards, four from the split, two from the merge");
    let log = bridge.log();
    let log_line = |message: &str, shard_id: &str| log.lines().position(|line| line.contains(message) && line.contains(shard_id));
    for shard in shards {
        let shard_id = shard.shard_id();
        let checkpoint_key = format!("{CHECKPOINTS}/{shard_id}.json");
        let checkpoint: serde_json::Value = clickstream_e2e::eventually(&format!("the checkpoint of {shard_id}"), Duration::from_secs(30), Duration::from_millis(500), || async {
            // object_store lists a prefix as a directory.
            if !moto.list_keys(BUCKET, CHECKPOINTS).await.contains(&checkpoint_key) {
                return None;
            }
            let checkpoint: serde_json::Value = serde_json::from_slice(&moto.get(BUCKET, &checkpoint_key).await).unwrap();
            let closed = shard.sequence_number_range().and_then(|range| range.ending_sequence_number()).is_some();
            (!closed || checkpoint["shard_ended"] == true).then_some(checkpoint)
        })
        .await;
        assert!(checkpoint["sequence_number"].is_string(), "records were read from {shard_id}: {checkpoint}");
        let started = log_line("reading shard", shard_id).unwrap_or_else(|| panic!("{shard_id} was read:\n{log}"));
        for parent in [shard.parent_shard_id(), shard.adjacent_parent_shard_id()].into_iter().flatten() {
            let parent_ended = log_line("read to its end", parent).unwrap_or_else(|| panic!("{parent} ended:\n{log}"));
            assert!(parent_ended < started, "{shard_id} was read only after its parent {parent} ended:\n{log}");
        }
    }
}
