//! The Kafka sink and the Kafka → S3 bridge over real servers (tansu, moto): every event the
//! collector acknowledged reaches the S3 raw layer, when the bridge is killed midway, when
//! the broker is unreachable for a minute under load, and when the brokers are those of an
//! MSK cluster the processes must ask for.

use std::{path::Path, time::Duration};

use clickstream_e2e::{
    MotoServer, TansuBroker, ToggleProxy, clickstream_binary, free_port, load_recording_accepted, load_through_a_sink_outage, read_accepted_ids,
    start_clickstream, wait_until_all_stored,
};

const BUCKET: &str = "kafka-bridge";
const RAW_PREFIX: &str = "raw/streamed/data/buffer";

/// A collector and bridge configuration sending project `streamed` through Kafka;
/// `kafka_settings` are the `[kafka]` table's lines besides the partitions.
fn write_config(directory: &Path, port: u16, bridge_port: u16, moto: &MotoServer, kafka_settings: &str, spool_max_bytes: u64) -> std::path::PathBuf {
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
{kafka_settings}
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

fn brokers_setting(tansu: &TansuBroker) -> String {
    format!("brokers = \"{}\"", tansu.brokers())
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kafka_reach_s3_despite_a_killed_bridge() {
    let directory = tempfile::tempdir().unwrap();
    let tansu = TansuBroker::start(directory.path());
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let (port, bridge_port) = (free_port(), free_port());
    let config = write_config(directory.path(), port, bridge_port, &moto, &brokers_setting(&tansu), 1 << 30);
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
    let config = write_config(directory.path(), port, bridge_port, &moto, &brokers_setting(&tansu), 2 * 1024 * 1024);
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());

    let ids_file = directory.path().join("accepted.txt");
    load_through_a_sink_outage(port, "stream-app", &proxy, &ids_file).await;

    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &accepted, Duration::from_secs(240), &[&collector, &bridge]).await;
}

/// What the ingestion stack's own MSK cluster gives its tasks: `kafka.msk_cluster_arn`, no
/// brokers. The collector and the bridge ask MSK (moto, which answers the tansu broker as the
/// cluster's plaintext brokers) and use what it says: `kafka.brokers` points nowhere here.
/// A cluster MSK does not have stops the collector at start, saying so.
#[tokio::test(flavor = "multi_thread")]
async fn the_collector_and_the_bridge_ask_msk_for_their_clusters_brokers() {
    let directory = tempfile::tempdir().unwrap();
    let tansu = TansuBroker::start(directory.path());
    let moto = MotoServer::start_with_environment(directory.path(), &[("CLICKSTREAM_MOTO_MSK_BROKERS", &tansu.brokers())]);
    moto.create_bucket(BUCKET).await;
    let msk = aws_sdk_kafka::Client::from_conf(
        aws_sdk_kafka::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_kafka::config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_kafka::config::Credentials::new("test", "test", None, None, "test"))
            .build(),
    );
    let nodes = aws_sdk_kafka::types::BrokerNodeGroupInfo::builder().instance_type("kafka.t3.small").client_subnets("subnet-a").client_subnets("subnet-b").build();
    let created = msk.create_cluster().cluster_name("clickstream-streamed").kafka_version("3.6.0").number_of_broker_nodes(2).broker_node_group_info(nodes).send().await.unwrap();
    let cluster_arn = created.cluster_arn().expect("moto answers the new cluster's ARN");
    // The topic settings of the ingestion stack's collector (the cluster's replication factor,
    // a day's retention), which the broker must accept for the collector to start.
    let settings = |arn: &str| {
        format!(
            "brokers = \"127.0.0.1:9\"\nmsk_cluster_arn = \"{arn}\"\nmsk_endpoint = \"{}\"\ntopic_replication_factor = -1\ntopic_retention_hours = 24",
            moto.endpoint()
        )
    };

    let unknown_arn = "arn:aws:kafka:us-east-1:123456789012:cluster/gone/00000000-0000-0000-0000-000000000000-1";
    let refused = directory.path().join("refused");
    std::fs::create_dir_all(&refused).unwrap();
    let refused_config = write_config(&refused, free_port(), free_port(), &moto, &settings(unknown_arn), 1 << 30);
    let output = std::process::Command::new(clickstream_binary())
        .arg("--config")
        .arg(&refused_config)
        .arg("ingest")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "the collector started with an unknown MSK cluster:\n{said}");
    assert!(said.contains(&format!("cannot get the bootstrap brokers of MSK cluster {unknown_arn}")) && said.contains("NotFoundException"), "{said}");

    let (port, bridge_port) = (free_port(), free_port());
    let config = write_config(directory.path(), port, bridge_port, &moto, &settings(cluster_arn), 1 << 30);
    let collector = start_clickstream(&config, "ingest", port, directory.path());
    let bridge = start_clickstream(&config, "bridge", bridge_port, directory.path());
    let ids_file = directory.path().join("accepted.txt");
    let summary = clickstream_loadgen::run(load_recording_accepted(port, "stream-app", Duration::from_secs(2), 4, &ids_file)).await.unwrap();
    assert!(summary.accepted_requests > 0 && summary.errors_by_status.is_empty(), "{summary:?}");
    let accepted = read_accepted_ids(&ids_file);
    wait_until_all_stored(&moto, BUCKET, RAW_PREFIX, &accepted, Duration::from_secs(180), &[&collector, &bridge]).await;
    for process in [&collector, &bridge] {
        let log = process.log();
        assert!(log.contains("using the MSK cluster's bootstrap brokers") && log.contains(&tansu.brokers()), "{log}");
    }
}
