//! The Kafka sink and the Kafka → S3 bridge over real servers (tansu, moto): every event the
//! collector acknowledged reaches the S3 raw layer, also when the bridge is killed midway.

use std::{collections::HashSet, process::Command, time::Duration};

use clickstream_e2e::{MotoServer, ServerProcess, TansuBroker, ToggleProxy, clickstream_binary, event_ids_in_raw_objects, eventually, free_port};

const BUCKET: &str = "kafka-bridge";

#[tokio::test(flavor = "multi_thread")]
async fn events_sent_through_kafka_reach_s3_despite_a_killed_bridge() {
    let directory = tempfile::tempdir().unwrap();
    let tansu = TansuBroker::start(directory.path());
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
[kafka]
brokers = "{brokers}"
topic_partitions = 2
[[projects]]
id = "streamed"
apps = ["stream-app"]
sink = "kafka"
"#,
            spool = directory.path().join("spool").display(),
            moto = moto.endpoint(),
            brokers = tansu.brokers(),
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
                .env("RUST_LOG", "info,rdkafka=warn"),
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
    bridge.child.kill().unwrap(); // SIGKILL mid-stream: uncommitted offsets are read again
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

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_kafka_broker_loses_nothing_and_503_comes_only_from_a_full_spool() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket(BUCKET).await;
    let broker_port = free_port();
    let proxy = ToggleProxy::start(broker_port).await;
    let tansu = TansuBroker::start_on(directory.path(), broker_port, proxy.port);
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
spool_max_bytes = 2097152
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
            spool = directory.path().join("spool").display(),
            moto = moto.endpoint(),
            brokers = tansu.brokers(),
        ),
    )
    .unwrap();
    let start = |role: &str, listen_port: u16| {
        let mut process = ServerProcess::spawn(
            role,
            Command::new(clickstream_binary())
                .arg("--config")
                .arg(&config)
                .arg(role)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("RUST_LOG", "info,rdkafka=info"),
            directory.path(),
        );
        process.wait_for_port(listen_port, Duration::from_secs(60));
        process
    };
    let collector = start("ingest", port);
    let bridge = start("bridge", bridge_port);

    let ids_file = directory.path().join("accepted.txt");
    let outage = Duration::from_secs(60);
    let settings = clickstream_loadgen::LoadSettings {
        url: format!("http://127.0.0.1:{port}/collect"),
        app_id: "stream-app".into(),
        duration: outage + Duration::from_secs(10),
        concurrency: 4,
        events_per_request: 10,
        gzip: false,
        accepted_ids_file: Some(ids_file.clone()),
        show_progress: false,
    };
    let load = tokio::spawn(clickstream_loadgen::run(settings));
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.cut();
    tokio::time::sleep(outage).await;
    proxy.restore();
    let summary = load.await.unwrap().unwrap();
    println!("{}", serde_json::to_string(&summary).unwrap());
    let refused = summary.errors_by_status.get("503").copied().unwrap_or(0);
    assert!(refused > 0, "a 2 MB spool must fill during a 60 s broker outage under load: {summary:?}");
    assert_eq!(summary.errors_by_status.keys().filter(|status| *status != "503").count(), 0, "{summary:?}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let spool_full = metrics
        .lines()
        .find(|line| line.starts_with("clickstream_ingest_requests_total") && line.contains("reason=\"spool_full\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(spool_full as u64, refused, "every 503 was a full spool");

    let accepted: Vec<String> = std::fs::read_to_string(&ids_file).unwrap().lines().map(str::to_string).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let stored = loop {
        let stored = event_ids_in_raw_objects(&moto, BUCKET, "raw/streamed/data/buffer").await;
        let stored_set: HashSet<&String> = stored.iter().collect();
        let missing = accepted.iter().filter(|id| !stored_set.contains(id)).count();
        if missing == 0 {
            break stored;
        }
        if std::time::Instant::now() > deadline {
            let health = reqwest::get(format!("http://127.0.0.1:{port}/health")).await.unwrap().text().await.unwrap();
            panic!("{missing} of {} accepted events never reached S3; collector health {health}\ncollector log:\n{}\nbridge log:\n{}", accepted.len(), collector.log(), bridge.log());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    println!("accepted {} events, {} in S3 ({} duplicates)", accepted.len(), stored.len(), stored.len() - stored.iter().collect::<HashSet<_>>().len());
}
