//! The Kafka sink and the Kafka → S3 bridge over real servers (tansu, moto): every event the
//! collector acknowledged reaches the S3 raw layer, when the bridge is killed midway and when
//! the broker is unreachable for a minute under load.

use std::{path::Path, time::Duration};

use clickstream_e2e::{
    MotoServer, TansuBroker, ToggleProxy, free_port, load_recording_accepted, load_through_a_sink_outage, read_accepted_ids, start_clickstream,
    wait_until_all_stored,
};

const BUCKET: &str = "kafka-bridge";
const RAW_PREFIX: &str = "raw/streamed/data/buffer";

/// A collector and bridge configuration sending project `streamed` through Kafka.
fn write_config(directory: &Path, port: u16, bridge_port: u16, moto: &MotoServer, brokers: &str, spool_max_bytes: u64) -> std::path::PathBuf {
    let config = directory.join("clickstream.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[ingest]
listen = "127.0.0.1:{port}"
spool_dir = "{spool}"
spool_max_bytes = {spool_max_bytes}
sink_batch_max_age_ms = 200
[worker]
listen = "127.0.0.1:{bridge_port}"
[storage]
url = "s3://{BUCKET}/raw"
endpoint = "{moto}"
[kafka]
brokers = "{brokers}"
topic_partitions = 2
[[projects]]
id = "streamed"
apps = ["stream-app"]
sink = "kafka"
"#,
            spool = directory.join("spool").display(),
            moto = moto.endpoint(),
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kafka_reach_s3_despite_a_killed_bridge() {
    let directory = tempfile::tempdir().unwrap();
    let tansu = TansuBroker::start(directory.path());
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let (port, bridge_port) = (free_port(), free_port());
    let config = write_config(directory.path(), port, bridge_port, &moto, &tansu.brokers(), 1 << 30);
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    let mut bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let ids_file = directory.path().join("accepted.txt");
    let load = tokio::spawn(clickstream_loadgen::run(load_recording_accepted(port, "stream-app", Duration::from_secs(4), 8, &ids_file)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridge.child.kill().unwrap(); // SIGKILL mid-stream: uncommitted offsets are read again
    bridge.child.wait().unwrap();
    let summary = load.await.unwrap().unwrap();
    assert!(summary.accepted_requests > 0 && summary.errors_by_status.is_empty(), "{summary:?}");
    let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &accepted, Duration::from_secs(180), &[&collector, &bridge]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_kafka_broker_loses_nothing_and_503_comes_only_from_a_full_spool() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    // Clients reach the broker only through the proxy (it is what the broker advertises).
    let broker_port = free_port();
    let proxy = ToggleProxy::start(broker_port).await;
    let tansu = TansuBroker::start_on(directory.path(), broker_port, proxy.port);
    let (port, bridge_port) = (free_port(), free_port());
    let config = write_config(directory.path(), port, bridge_port, &moto, &tansu.brokers(), 2 * 1024 * 1024);
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let ids_file = directory.path().join("accepted.txt");
    load_through_a_sink_outage(port, "stream-app", &proxy, &ids_file).await;

    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &accepted, Duration::from_secs(240), &[&collector, &bridge]).await;
}
