//! The workflows against a real Temporal dev server, and replay of their histories.
//!
//! `etl_and_load_workflows_complete_and_replay` runs EtlWorkflow (and its child
//! LoadDataWorkflow) end to end over a local object store and DuckDB, then replays both
//! histories against the current code. With `CLICKSTREAM_RECORD_HISTORIES=1` it also writes
//! them to `workflows/tests/histories/`, which `recorded_histories_replay` replays on every
//! run, so a change that breaks determinism for runs already in flight fails here. Histories of
//! earlier workflow versions (`*_before_*.pb`) stay, to check the patches that keep them working.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use clickstream_activities::DuckDbWarehouse;
use clickstream_core::{Config, ProjectConfig, layout, storage::Storage};
use clickstream_e2e::TemporalDevServer;
use clickstream_workflows::{EtlWorkflow, LoadDataWorkflow, types::EtlRunSummary};
use object_store::{PutPayload, path::Path};
use prost::Message;
use temporalio_client::{UntypedWorkflow, WorkflowGetResultOptions, WorkflowHistory, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn histories_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows/tests/histories")
}

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<EtlWorkflow>()
        .expect("EtlWorkflow registers")
        .register_workflow::<LoadDataWorkflow>()
        .expect("LoadDataWorkflow registers")
        .build();
    WorkflowReplayer::new(options).expect("the replayer starts")
}

/// The enrichers' data that local/test installs and names in the environment.
fn enrichment_file(variable: &str) -> PathBuf {
    std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set: run the tests through local/test, which installs the enrichers' data")).into()
}

fn raw_object(app_id: &str, event_ids: &[&str]) -> Vec<u8> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events: Vec<serde_json::Value> = event_ids
        .iter()
        .map(|id| serde_json::json!({"event_type": "_page_view", "event_id": id, "app_id": app_id, "timestamp": now_ms, "unique_id": "user-1", "attributes": {"_session_id": "s1"}}))
        .collect();
    let record = serde_json::json!({"appId": app_id, "data": serde_json::Value::Array(events).to_string(), "uri": "/collect?appId=x&event_bundle_sequence_id=2", "ingest_time": now_ms});
    let broken = "{not json";
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(encoder, "{record}\n{broken}").unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn etl_and_load_workflows_complete_and_replay() {
    let directory = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(directory.path());
    let mut config = Config::default();
    config.temporal.address = temporal.address();
    config.temporal.task_queue = "test-etl".into();
    config.temporal.warehouse_task_queue = "test-warehouse".into();
    config.storage.url = format!("file://{}/data", directory.path().display());
    config.etl.user_agent_regexes = enrichment_file("CLICKSTREAM_ETL__USER_AGENT_REGEXES");
    config.etl.geo_database = enrichment_file("CLICKSTREAM_ETL__GEO_DATABASE");
    config.projects.push(ProjectConfig { id: "proj".into(), apps: vec!["app-1".into()], etl_buffer_seconds: 0, ..ProjectConfig::default() });
    let config = Arc::new(config);
    let storage = Storage::open(&config.storage).unwrap();
    let warehouse = Arc::new(DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap());

    // Two raw objects, one event shared between them, one broken line.
    let written_at = chrono::Utc::now() - chrono::Duration::seconds(5);
    for (index, ids) in [vec!["e1", "e2"], vec!["e2", "e3"]].into_iter().enumerate() {
        let key = layout::raw_object_key("proj", written_at, &format!("object-{index}"));
        storage.store.put(&Path::from(key), PutPayload::from(raw_object("app-1", &ids))).await.unwrap();
    }

    let client = clickstream_worker::connect(&config, Duration::from_secs(30)).await.unwrap();
    let runtime = clickstream_worker::runtime().unwrap();
    let engine = Arc::new(clickstream_worker::EtlEngine::load(config.clone()).expect("the enrichers' data loads (local/test installs it)"));
    let mut etl_worker = clickstream_worker::etl_worker(&runtime, client.clone(), engine, storage.clone()).unwrap();
    let mut warehouse_worker = clickstream_worker::warehouse_worker(&runtime, client.clone(), &config, storage.clone(), warehouse.clone()).unwrap();
    let stop_etl = etl_worker.shutdown_handle();
    let stop_warehouse = warehouse_worker.shutdown_handle();

    let workflow_id = "etl-proj-test-run";
    let input = clickstream_worker::etl_input(&config, &config.projects[0]);
    let summary: EtlRunSummary = tokio::task::LocalSet::new()
        .run_until(async {
            let workers = tokio::task::spawn_local(async move {
                let (etl, warehouse) = futures::join!(etl_worker.run(), warehouse_worker.run());
                etl.unwrap();
                warehouse.unwrap();
            });
            let handle = client
                .start_workflow(EtlWorkflow::run, input, WorkflowStartOptions::new("test-etl", workflow_id).build())
                .await
                .unwrap();
            let summary = tokio::time::timeout(Duration::from_secs(120), handle.get_result(WorkflowGetResultOptions::default()))
                .await
                .expect("EtlWorkflow finishes within 2 minutes")
                .unwrap();
            stop_etl();
            stop_warehouse();
            workers.await.unwrap();
            summary
        })
        .await;

    assert_eq!(summary.plan.raw_object_count, 2);
    assert_eq!(summary.transformed.raw_records, 4);
    assert_eq!(summary.transformed.events, 4);
    assert_eq!(summary.transformed.quarantined_records, 2);
    assert_eq!(summary.loaded.rows_inserted, 3, "e2 is sent twice and stored once");
    assert_eq!(summary.users.as_ref().map(|users| users.users), Some(1), "the window's user is merged");
    assert_eq!(summary.loaded.user_rows_merged, 1);
    assert_eq!(summary.loaded.session_rows_merged, 1, "both chunks saw session s1; one row is kept");
    assert_eq!(warehouse.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 3);

    let quarantine: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(storage.store.list(Some(&Path::from("proj/data/quarantine")))).await.unwrap();
    assert_eq!(quarantine.len(), 1, "the broken lines are kept in quarantine");

    let replayer = replayer();
    for (name, id) in [("etl_workflow", workflow_id.to_string()), ("load_data_workflow", format!("{workflow_id}-load"))] {
        let events = client.get_workflow_handle::<UntypedWorkflow>(id.clone()).fetch_history(Default::default()).into_events().await.unwrap();
        assert!(events.len() > 5, "{id} has a history");
        let history = History { events };
        replayer.replay_workflow(WorkflowHistory::from(history.clone())).await.unwrap_or_else(|error| panic!("{id} does not replay: {error}"));
        if std::env::var("CLICKSTREAM_RECORD_HISTORIES").as_deref() == Ok("1") {
            std::fs::write(histories_directory().join(format!("{name}.pb")), history.encode_to_vec()).unwrap();
        }
    }
    drop(temporal);
}

#[tokio::test]
async fn recorded_histories_replay() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(histories_directory())
        .expect("workflows/tests/histories exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "pb"))
        .collect();
    files.sort();
    let names: Vec<String> = files.iter().map(|path| path.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    // One history per workflow as it runs now, and the histories of earlier versions that runs
    // in flight during an upgrade may still have (their patches must keep replaying).
    assert_eq!(names, ["etl_workflow", "etl_workflow_before_user_merge", "load_data_workflow"], "the recorded histories");
    let replayer = replayer();
    for file in files {
        let history = History::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
        replayer.replay_workflow(WorkflowHistory::from(history)).await.unwrap_or_else(|error| panic!("{} does not replay: {error}", file.display()));
    }
}
