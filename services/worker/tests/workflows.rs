//! The workflows against a real Temporal dev server, and replay of their histories.
//!
//! `etl_and_load_workflows_complete_and_replay` runs EtlWorkflow (and its child
//! LoadDataWorkflow) end to end over a local object store and DuckDB, then replays both
//! histories against the current code. With `CLICKSTREAM_RECORD_HISTORIES=1` it also writes
//! them to `workflows/tests/histories/`, which `recorded_histories_replay` replays on every
//! run, so a change that breaks determinism for runs already in flight fails here. Histories of
//! earlier workflow versions (`*_before_*.pb`) stay, to check the patches that keep them working.

mod common;

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use clickstream_activities::{
    DuckDbWarehouse,
    metadata::{MetadataStore, ObjectStoreMetadata},
};
use clickstream_core::{Config, layout, storage::Storage};
use clickstream_e2e::TemporalDevServer;
use clickstream_workflows::{
    AthenaPartitionWorkflow, BackfillWorkflow, ClearExpiredEventsWorkflow, EtlWorkflow, LoadDataWorkflow, ScanMetadataWorkflow,
    types::{CatalogSummary, EtlRunSummary, ExpiredRows, MetadataScanSummary},
};
use object_store::{PutPayload, path::Path};
use prost::Message;
use temporalio_client::{UntypedWorkflow, WorkflowGetResultOptions, WorkflowHistory, WorkflowStartOptions};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn histories_directory() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("../../workflows/tests/histories")
}

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<EtlWorkflow>()
        .expect("EtlWorkflow registers")
        .register_workflow::<LoadDataWorkflow>()
        .expect("LoadDataWorkflow registers")
        .register_workflow::<ClearExpiredEventsWorkflow>()
        .expect("ClearExpiredEventsWorkflow registers")
        .register_workflow::<BackfillWorkflow>()
        .expect("BackfillWorkflow registers")
        .register_workflow::<AthenaPartitionWorkflow>()
        .expect("AthenaPartitionWorkflow registers")
        .register_workflow::<ScanMetadataWorkflow>()
        .expect("ScanMetadataWorkflow registers")
        .register_workflow::<clickstream_workflows::PipelineLifecycleWorkflow>()
        .expect("PipelineLifecycleWorkflow registers")
        .build();
    WorkflowReplayer::new(options).expect("the replayer starts")
}

fn raw_object(app_id: &str, event_ids: &[&str]) -> Vec<u8> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events: Vec<serde_json::Value> = event_ids
        .iter()
        .map(|id| serde_json::json!({"event_type": "_page_view", "event_id": id, "app_id": app_id, "timestamp": now_ms, "unique_id": "user-1", "attributes": {"_session_id": "s1", "color": "red"}}))
        .collect();
    let record = serde_json::json!({"appId": app_id, "data": serde_json::Value::Array(events).to_string(), "uri": "/collect?appId=x&event_bundle_sequence_id=2", "ingest_time": now_ms});
    let broken = "{not json";
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(encoder, "{record}\n{broken}").unwrap();
    encoder.finish().unwrap()
}

/// A Temporal dev server, a configuration with one project (`proj`, app `app-1`) over a local
/// object store, and a DuckDB warehouse: what each workflow test runs against.
struct TestStack {
    // Dropped in this order: the client before the server, the server before its directory.
    client: temporalio_client::Client,
    warehouse: Arc<DuckDbWarehouse>,
    storage: Storage,
    config: Arc<Config>,
    temporal: TemporalDevServer,
    directory: tempfile::TempDir,
}

impl TestStack {
    /// `prepare_warehouse` runs on the DuckDB file before the warehouse opens it.
    async fn start(prepare_warehouse: impl FnOnce(&std::path::Path)) -> TestStack {
        let directory = tempfile::tempdir().unwrap();
        let temporal = TemporalDevServer::start(directory.path());
        let mut config = common::test_config(directory.path());
        config.temporal.address = temporal.address();
        config.temporal.task_queue = "test-etl".into();
        config.temporal.warehouse_task_queue = "test-warehouse".into();
        let config = Arc::new(config);
        let storage = Storage::open(&config.storage).unwrap();
        let warehouse_path = directory.path().join("w.duckdb");
        prepare_warehouse(&warehouse_path);
        let warehouse = Arc::new(DuckDbWarehouse::open(&warehouse_path).unwrap());
        let client = clickstream_worker::connect(&config, Duration::from_secs(30)).await.unwrap();
        TestStack { client, warehouse, storage, config, temporal, directory }
    }

    /// Runs `body` while both workers serve the stack's task queues, then stops them.
    async fn with_workers<T>(&self, body: impl std::future::Future<Output = T>) -> T {
        let runtime = clickstream_worker::runtime().unwrap();
        let engine = Arc::new(clickstream_worker::EtlEngine::load(self.config.clone()).expect("the enrichers' data loads (local/test installs it)"));
        let mut etl_worker = clickstream_worker::etl_worker(&runtime, self.client.clone(), engine, self.storage.clone(), None, None).unwrap();
        let activities = clickstream_worker::warehouse_activities(&self.config, &self.storage, Some(self.warehouse.clone())).await;
        let mut warehouse_worker = clickstream_worker::warehouse_worker(&runtime, self.client.clone(), &self.config, activities).unwrap();
        let stop_etl = etl_worker.shutdown_handle();
        let stop_warehouse = warehouse_worker.shutdown_handle();
        tokio::task::LocalSet::new()
            .run_until(async {
                let workers = tokio::task::spawn_local(async move {
                    let (etl, warehouse) = futures::join!(etl_worker.run(), warehouse_worker.run());
                    etl.unwrap();
                    warehouse.unwrap();
                });
                let output = body.await;
                stop_etl();
                stop_warehouse();
                workers.await.unwrap();
                output
            })
            .await
    }

    /// Starts a workflow with both workers running and returns its result.
    async fn run_workflow<W>(&self, run: W, input: W::Input, workflow_id: &str) -> W::Output
    where
        W: temporalio_common::HasWorkflowDefinition,
        W::Input: Send,
    {
        self.with_workers(async {
            let handle = self.client.start_workflow(run, input, WorkflowStartOptions::new("test-etl", workflow_id).build()).await.unwrap();
            tokio::time::timeout(Duration::from_secs(120), handle.get_result(WorkflowGetResultOptions::default()))
                .await
                .unwrap_or_else(|_| panic!("{workflow_id} finishes within 2 minutes"))
                .unwrap()
        })
        .await
    }

    /// Replays the workflows' histories against the current code; with
    /// `CLICKSTREAM_RECORD_HISTORIES=1` also records them as `<name>.pb`.
    async fn replay_and_record(&self, workflows: &[(&str, String)]) {
        let replayer = replayer();
        for (name, id) in workflows {
            let events = self.client.get_workflow_handle::<UntypedWorkflow>(id.clone()).fetch_history(Default::default()).into_events().await.unwrap();
            assert!(events.len() > 5, "{id} has a history");
            let history = History { events };
            replayer.replay_workflow(WorkflowHistory::from(history.clone())).await.unwrap_or_else(|error| panic!("{id} does not replay: {error}"));
            if std::env::var("CLICKSTREAM_RECORD_HISTORIES").as_deref() == Ok("1") {
                std::fs::write(histories_directory().join(format!("{name}.pb")), history.encode_to_vec()).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn etl_and_load_workflows_complete_and_replay() {
    let stack = TestStack::start(|_| {}).await;
    let (config, storage, warehouse) = (&stack.config, &stack.storage, &stack.warehouse);

    // Two raw objects, one event shared between them, one broken line.
    let written_at = chrono::Utc::now() - chrono::Duration::seconds(5);
    for (index, ids) in [vec!["e1", "e2"], vec!["e2", "e3"]].into_iter().enumerate() {
        let key = layout::raw_object_key("proj", written_at, &format!("object-{index}"));
        storage.store.put(&Path::from(key), PutPayload::from(raw_object("app-1", &ids))).await.unwrap();
    }

    let workflow_id = "etl-proj-test-run";
    let input = clickstream_worker::etl_input(config, &config.projects[0]);
    let summary: EtlRunSummary = stack.run_workflow(EtlWorkflow::run, input, workflow_id).await;

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

    // The local catalog: DuckDB views over the Parquet files just written.
    let catalog_input = clickstream_worker::catalog_input(config, &config.projects[0]).expect("file:// storage gets DuckDB views");
    assert_eq!(catalog_input.kind, "duckdb");
    let catalog: CatalogSummary = stack.run_workflow(AthenaPartitionWorkflow::run, catalog_input, "partitions-proj-test-run").await;
    let tables: Vec<String> = std::fs::read_dir(stack.directory.path().join("data/proj/data/processed")).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(catalog.tables, 3, "event_v2, user_v2 and session (these events have no items): {catalog:?} over {tables:?}");

    // The load asked for a metadata scan, which wrote what the data holds to the local store.
    let scan_id = clickstream_workflows::load::metadata_scan_workflow_id("proj");
    let scan_handle = stack.client.get_workflow_handle::<ScanMetadataWorkflow>(scan_id.clone());
    let scan: MetadataScanSummary = stack.with_workers(async { tokio::time::timeout(Duration::from_secs(60), scan_handle.get_result(WorkflowGetResultOptions::default())).await.expect("the scan finishes").unwrap() }).await;
    assert!(!scan.skipped_as_recent, "the first scan runs: {scan:?}");
    assert_eq!((scan.apps, scan.events), (1, 1), "{scan:?}");
    let store = ObjectStoreMetadata { storage: storage.clone() };
    let metadata = store.app("proj", "app-1").await.unwrap().expect("the scan saved app-1");
    assert_eq!(metadata.events[0].name, "_page_view");
    assert_eq!(metadata.events[0].total, 3, "e1, e2, e3");
    assert_eq!(metadata.events[0].platforms, ["Web"]);
    let color = metadata.event_parameters.iter().find(|parameter| parameter.name == "color").expect("the custom parameter is found");
    assert_eq!((color.value_type.as_str(), color.top_values[0].value.as_deref(), color.top_values[0].count), ("string", Some("red"), 3));
    // A second scan right away is skipped: the last one is younger than a day.
    let again: MetadataScanSummary = stack.run_workflow(ScanMetadataWorkflow::run, clickstream_worker::metadata_scan_input(config, &config.projects[0]), "scan-metadata-again").await;
    assert!(again.skipped_as_recent);

    stack.replay_and_record(&[
        ("etl_workflow", workflow_id.to_string()),
        ("load_data_workflow", format!("{workflow_id}-load")),
        ("scan_metadata_workflow", scan_id),
        ("athena_partition_workflow", "partitions-proj-test-run".to_string()),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clear_expired_events_deletes_what_is_older_than_the_retention_and_replays() {
    let day_ms = 86_400_000i64;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let stack = TestStack::start(|path| {
        // Tables as a load creates them, with rows 400, 100 and 1 days old.
        let connection = duckdb::Connection::open(path).unwrap();
        connection.execute_batch("CREATE SCHEMA \"app-1\";").unwrap();
        for table in ["event_v2", "item_v2", "session", "user_v2"] {
            connection.execute_batch(&format!("CREATE TABLE \"app-1\".{table} (event_id VARCHAR, event_timestamp TIMESTAMPTZ);")).unwrap();
            for (event_id, age_days) in [("ancient", 400), ("older", 100), ("fresh", 1)] {
                connection
                    .execute(&format!("INSERT INTO \"app-1\".{table} VALUES (?, to_timestamp(? / 1000.0))"), duckdb::params![event_id, now_ms - age_days * day_ms])
                    .unwrap();
            }
        }
    })
    .await;
    let mut input = clickstream_worker::clear_expired_input(&stack.config, &stack.config.projects[0]);
    assert_eq!(input.retention_days, 365, "the default retention");
    input.retention_days = 30;
    let deleted: ExpiredRows = stack.run_workflow(ClearExpiredEventsWorkflow::run, input, "clear-expired-proj-test-run").await;
    assert_eq!(deleted, ExpiredRows { events: 2, items: 2, sessions: 2, users: 2 });
    let now = chrono::Utc::now().timestamp_millis() + 1;
    assert_eq!(stack.warehouse.delete_rows_before("app-1", now).unwrap(), ExpiredRows { events: 1, items: 1, sessions: 1, users: 1 }, "the fresh rows were kept");
    stack.replay_and_record(&[("clear_expired_events_workflow", "clear-expired-proj-test-run".to_string())]).await;
}

/// `clickstream etl backfill` against the stack: the raw objects of a past range are
/// transformed and loaded; the same range again adds nothing; the users wait for the next
/// scheduled run, which merges them.
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_from_the_command_line_loads_a_past_range_once() {
    let stack = TestStack::start(|_| {}).await;
    let arrived = chrono::Utc::now() - chrono::Duration::days(2);
    for (index, ids) in [vec!["e1", "e2"], vec!["e2", "e3"]].into_iter().enumerate() {
        let key = layout::raw_object_key("proj", arrived, &format!("object-{index}"));
        stack.storage.store.put(&Path::from(key), PutPayload::from(raw_object("app-1", &ids))).await.unwrap();
    }
    // The same configuration for the command line.
    let config_file = stack.directory.path().join("clickstream.toml");
    std::fs::write(
        &config_file,
        format!(
            "[temporal]\naddress = \"{}\"\ntask_queue = \"test-etl\"\nwarehouse_task_queue = \"test-warehouse\"\n[storage]\nurl = \"{}\"\n[[projects]]\nid = \"proj\"\napps = [\"app-1\"]\n",
            stack.config.temporal.address, stack.config.storage.url
        ),
    )
    .unwrap();
    // `clickstream etl backfill` on a blocking thread (the workers run on this one).
    let backfill = |pipeline: &str, from: String, to: String| {
        let (config_file, pipeline) = (config_file.clone(), pipeline.to_string());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(clickstream_e2e::clickstream_binary())
                .arg("--config")
                .arg(&config_file)
                .args(["etl", "backfill", "--pipeline", &pipeline, "--from", &from, "--to", &to])
                .output()
                .expect("the binary runs")
        })
    };
    // Six whole hours around the objects' hour: one slice.
    let arrival_hour = chrono::DateTime::from_timestamp_millis(arrived.timestamp_millis() / 3_600_000 * 3_600_000).unwrap();
    let (from, to) = (arrival_hour - chrono::Duration::hours(2), arrival_hour + chrono::Duration::hours(4));

    let first = stack.with_workers(async { backfill("proj", from.to_rfc3339(), to.to_rfc3339()).await.unwrap() }).await;
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap_or_else(|error| panic!("{error}: {stderr}"));
    let progress = &report["progress"];
    assert_eq!(progress["slices_total"], 1, "{report}");
    assert_eq!(progress["slices_done"], 1, "{report}");
    assert_eq!(progress["raw_objects"], 2, "{report}");
    assert_eq!(progress["transformed"]["events"], 4, "{report}");
    assert_eq!(progress["loaded"]["rows_inserted"], 3, "e2 is sent twice and stored once: {report}");
    assert_eq!(stack.warehouse.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 3);
    let workflow_id = report["workflow_id"].as_str().unwrap().to_string();

    // A wider range over the same objects: two slices, nothing new in the warehouse.
    let wider = stack.with_workers(async { backfill("proj", (from - chrono::Duration::hours(6)).to_rfc3339(), to.to_rfc3339()).await.unwrap() }).await;
    assert!(wider.status.success(), "{}", String::from_utf8_lossy(&wider.stderr));
    let report: serde_json::Value = serde_json::from_slice(&wider.stdout).unwrap();
    assert_eq!(report["progress"]["slices_total"], 2, "{report}");
    assert_eq!(report["progress"]["loaded"]["rows_inserted"], 0, "{report}");
    assert_eq!(stack.warehouse.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 3);

    // A wrong request is refused before anything starts.
    let wrong = backfill("nope", "2026-01-02T00:00:00Z".into(), "2026-01-01T00:00:00Z".into()).await.unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", String::from_utf8_lossy(&wrong.stderr));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not a configured project"));

    // The backfill's users wait for the scheduled run, which merges them.
    let pending_users = || async { futures::TryStreamExt::try_collect::<Vec<_>>(stack.storage.store.list(Some(&Path::from(layout::pending_users_root("proj"))))).await.unwrap().len() };
    assert!(pending_users().await > 0, "the backfill left its users pending");
    let mut input = clickstream_worker::etl_input(&stack.config, &stack.config.projects[0]);
    input.buffer_seconds = 0;
    let summary: EtlRunSummary = stack.run_workflow(EtlWorkflow::run, input, "etl-proj-after-backfill").await;
    assert_eq!(summary.users.as_ref().map(|users| users.users), Some(1), "{summary:?}");
    assert_eq!(pending_users().await, 0);

    stack.replay_and_record(&[("backfill_workflow", workflow_id)]).await;
}

/// Each project gets its ETL schedule (on its cron expression here) and its daily retention
/// schedule, both skipping overlapping runs; starting again updates rather than fails.
#[tokio::test(flavor = "multi_thread")]
async fn schedules_follow_the_configuration() {
    let stack = TestStack::start(|_| {}).await;
    let mut config = (*stack.config).clone();
    config.projects[0].etl_cron = Some("*/15 * * * *".into());
    clickstream_worker::ensure_schedules(&stack.client, &config).await.unwrap();
    clickstream_worker::ensure_schedules(&stack.client, &config).await.expect("a second start updates the schedules");

    let etl = stack.temporal.cli(&["schedule", "describe", "--schedule-id", "etl-proj", "--output", "json"]);
    let etl: serde_json::Value = serde_json::from_str(&etl).unwrap();
    let spec = etl["schedule"]["spec"].to_string();
    assert!(spec.contains("\"step\":15") || spec.contains("*/15"), "the cron expression is the ETL's spec: {spec}");
    assert_eq!(etl["schedule"]["policies"]["overlapPolicy"], "SCHEDULE_OVERLAP_POLICY_SKIP", "{etl}");
    assert!(etl["schedule"]["action"].to_string().contains("EtlWorkflow"), "{etl}");

    let retention = stack.temporal.cli(&["schedule", "describe", "--schedule-id", "clear-expired-proj", "--output", "json"]);
    let retention: serde_json::Value = serde_json::from_str(&retention).unwrap();
    assert!(retention["schedule"]["action"].to_string().contains("ClearExpiredEventsWorkflow"), "{retention}");
    assert!(retention["schedule"]["spec"]["interval"].to_string().contains("86400s"), "daily: {retention}");
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
    assert_eq!(names, [
            "athena_partition_workflow",
            "backfill_workflow",
            "clear_expired_events_workflow",
            "etl_workflow",
            "etl_workflow_before_user_merge",
            "load_data_workflow",
            "load_data_workflow_before_reporting",
            "load_data_workflow_before_submit_then_poll",
            "pipeline_lifecycle_workflow",
            "scan_metadata_workflow",
        ], "the recorded histories");
    let replayer = replayer();
    for file in files {
        let history = History::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
        replayer.replay_workflow(WorkflowHistory::from(history)).await.unwrap_or_else(|error| panic!("{} does not replay: {error}", file.display()));
    }
}

/// The lifecycle on CloudFormation (moto): a level whose second stack is refused is rolled back
/// (the first stack, created by the same step, is deleted too) and the pipeline is `failed`;
/// after the cause is fixed, `retry` deploys every level; `delete` removes the stacks and
/// forgets the pipeline. The history is replayed (and recorded).
#[tokio::test(flavor = "multi_thread")]
async fn pipeline_lifecycle_rolls_back_a_failed_step_then_retries_and_deletes() {
    use clickstream_control::{
        ControlPlane, ControlStore,
        service::{NewPipeline, NewPlugin, NewProject},
        sqlite::SqliteStore,
    };
    use clickstream_core::control_model::{LevelState, PipelineLevel, PipelinePhase, PipelineSpec, PipelineStatus, PluginKind};
    use clickstream_workflows::{PipelineLifecycleWorkflow, types::PipelineLifecycleInput};
    use temporalio_client::{WorkflowQueryOptions, WorkflowSignalOptions};

    clickstream_e2e::use_test_aws_credentials();
    let stack = TestStack::start(|_| {}).await;
    let moto = clickstream_e2e::MotoServer::start(stack.directory.path());
    let store = ControlStore::new(Arc::new(SqliteStore::open(&stack.directory.path().join("control.sqlite")).unwrap()));
    let configured = |failing: bool| {
        let mut config = (*stack.config).clone();
        config.control.provisioner = clickstream_core::config::ProvisionerKind::Cloudformation;
        config.control.cloudformation_endpoint = moto.endpoint();
        config.control.templates_dir = histories_directory().join("../../../infra/cloudformation");
        // The project's warehouse is Redshift: the control plane names the workgroup, the
        // modeling stack makes the COPY role.
        config.warehouse.redshift.workgroup_name = "clickstream".into();
        config.warehouse.redshift.database = "dev".into();
        // The control plane's storage is a bucket, as the control-plane stack makes it: the
        // pipeline's workers read the uploaded plugin modules from there.
        config.storage = clickstream_core::config::StorageConfig { url: format!("s3://{CONTROL_BUCKET}"), endpoint: moto.endpoint(), region: "us-east-1".into() };
        // Reporting on Redshift with a QuickSight owner: the level publishes the dashboards.
        let reporting = [
            ("Engine", "redshift".to_string()),
            ("RedshiftEndpointAddress", "clickstream.123456789012.us-east-1.redshift-serverless.amazonaws.com".to_string()),
            ("QuickSightPrincipalArn", "arn:aws:quicksight:us-east-1:123456789012:user/default/admin".to_string()),
        ];
        config.control.stack_parameters.insert("reporting".into(), reporting.map(|(key, value)| (key.to_string(), value)).into());
        if failing {
            // An IAM permissions boundary that is not an ARN: IAM refuses the ingestion stack's roles.
            config.control.stack_parameters.insert("ingestion".into(), [("PermissionsBoundaryArn".to_string(), "not-an-arn".to_string())].into());
        }
        Arc::new(config)
    };
    let control = ControlPlane::new(store.clone(), configured(true));
    control.create_project(NewProject { id: "shop".into(), name: "Shop".into(), description: String::new(), environment: Default::default() }).await.unwrap();
    let new_app = clickstream_control::service::NewApp { id: "shop_web".into(), name: "Shop web".into(), description: String::new(), platform: Default::default(), timezone: "Asia/Shanghai".into() };
    control.create_app("shop", new_app).await.unwrap();
    // Two uploaded plugins, an enricher and a transformer, in the control plane's bucket.
    moto.create_bucket(CONTROL_BUCKET).await;
    let mut plugin_keys = Vec::new();
    for (id, kind, config) in [("page_category", PluginKind::Enrichment, "/products=product\n/blog=\"content\""), ("csv_reader", PluginKind::Transformer, "")] {
        let sha256 = format!("{:064x}", id.len());
        let key = layout::plugin_module_key(id, &sha256);
        object_store::ObjectStore::put(&moto.bucket(CONTROL_BUCKET), &Path::from(key.as_str()), PutPayload::from(module_bytes(id))).await.unwrap();
        let new_plugin = NewPlugin { id: id.into(), name: id.into(), description: String::new(), kind, module_uri: String::new(), config: config.into() };
        control.create_plugin(new_plugin).await.unwrap();
        control.set_plugin_module(id, key.clone(), sha256).await.unwrap();
        plugin_keys.push(key);
    }
    let mut spec = PipelineSpec::default();
    spec.modeling.engine = clickstream_core::config::WarehouseKind::Redshift;
    spec.processing.plugins = vec!["page_category".into()];
    spec.processing.transformer = Some("csv_reader".into());
    // Processing settings the deployed worker must follow.
    spec.processing.enrichers = vec!["page_url".into(), "ip_geo".into()];
    spec.processing.data_freshness_hours = 48;
    // A Kafka sink, and no brokers among the control plane's stack parameters: the ingestion
    // stack creates an MSK cluster.
    spec.ingestion.sink = clickstream_core::config::SinkKind::Kafka;
    spec.ingestion.kafka.partitions = 4;
    spec.ingestion.s3_buffer = clickstream_core::control_model::S3BufferSpec { max_bytes: 5 * 1024 * 1024, max_age_seconds: 30 };
    spec.processing.schedule = clickstream_core::control_model::ScheduleSpec { interval_seconds: None, cron: Some("*/15 * * * *".into()) };
    let pipeline = control.create_pipeline(NewPipeline { project_id: "shop".into(), spec: spec.clone() }).await.unwrap();
    let cloudformation = aws_sdk_cloudformation::Client::new(&clickstream_control::dynamodb::sdk_config("us-east-1", &moto.endpoint()).await);
    let stack_exists = |name: &'static str| {
        let cloudformation = cloudformation.clone();
        async move {
            match cloudformation.describe_stacks().stack_name(name).send().await {
                Ok(described) => described.stacks().first().is_some_and(|stack| stack.stack_status().is_some_and(|status| status.as_str() != "DELETE_COMPLETE")),
                Err(_) => false,
            }
        }
    };
    let handle = stack.client.get_workflow_handle::<PipelineLifecycleWorkflow>(pipeline.id.clone());
    let status = || async { handle.query(PipelineLifecycleWorkflow::status, (), WorkflowQueryOptions::default()).await.unwrap() };
    let wait_for = |phase: PipelinePhase| {
        let status = &status;
        async move {
            for _ in 0..240 {
                let current: PipelineStatus = status().await;
                if current.phase == phase {
                    return current;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("the pipeline never became {phase:?}: {:?}", status().await);
        }
    };
    /// Runs `body` while an ETL worker with the lifecycle activities of `config` serves.
    async fn run_workers_with<T>(stack: &TestStack, store: &ControlStore, config: Arc<Config>, body: impl std::future::Future<Output = T>) -> T {
        let (client, storage) = (stack.client.clone(), stack.storage.clone());
        let control = ControlPlane::new(store.clone(), config.clone());
        let runtime = clickstream_worker::runtime().unwrap();
        let engine = Arc::new(clickstream_worker::EtlEngine::load(config.clone()).unwrap());
        let lifecycle = clickstream_worker::lifecycle_activities(&config, &storage, &client, control).await;
        let mut worker = clickstream_worker::etl_worker(&runtime, client, engine, storage, None, Some(lifecycle)).unwrap();
        let stop = worker.shutdown_handle();
        tokio::task::LocalSet::new()
            .run_until(async move {
                let running = tokio::task::spawn_local(async move { worker.run().await.unwrap() });
                let output = body.await;
                stop();
                running.await.unwrap();
                output
            })
            .await
    }

    // Created with the refusing parameter: level 1 fails and is rolled back.
    let input = PipelineLifecycleInput { pipeline_id: pipeline.id.clone(), project_id: "shop".into(), spec, spec_version: 1, carried_status: None, running_spec: None };
    stack.client.start_workflow(PipelineLifecycleWorkflow::run, input, WorkflowStartOptions::new("test-etl", pipeline.id.clone()).build()).await.unwrap();
    let failed = run_workers_with(&stack, &store, configured(true), wait_for(PipelinePhase::Failed)).await;
    assert!(failed.message.contains("rolled back") && failed.message.contains("not-an-arn"), "{failed:?}");
    let level = failed.level(PipelineLevel::IngestionProcessing);
    assert_eq!(level.state, LevelState::RolledBack);
    let stacks: Vec<(&str, &str)> = level.stacks.iter().map(|stack| (stack.name.as_str(), stack.state.as_str())).collect();
    assert_eq!(stacks, [("clickstream-shop-ingestion", "DELETE_COMPLETE"), ("clickstream-shop-processing", "DELETE_COMPLETE")]);
    assert!(!stack_exists("clickstream-shop-processing").await, "the processing stack created by the failed step is gone");
    assert!(!stack_exists("clickstream-shop-ingestion").await);
    assert_eq!(failed.level(PipelineLevel::Modeling).state, LevelState::Pending, "later levels never started");
    assert_eq!(control.pipeline_status(&pipeline.id).await.unwrap().phase, PipelinePhase::Failed, "the status is in the store too");

    // The cause fixed (the parameter gone), a retry deploys every level.
    let active = run_workers_with(&stack, &store, configured(false), async {
        handle.signal(PipelineLifecycleWorkflow::retry, (), WorkflowSignalOptions::default()).await.unwrap();
        wait_for(PipelinePhase::Active).await
    })
    .await;
    for level in PipelineLevel::ALL {
        assert_eq!(active.level(level).state, LevelState::Deployed, "{active:?}");
    }
    assert!(active.level(PipelineLevel::IngestionProcessing).stacks.iter().all(|stack| stack.state == "CREATE_COMPLETE"), "{active:?}");
    assert!(stack_exists("clickstream-shop-processing").await && stack_exists("clickstream-shop-ingestion").await);
    assert!(stack_exists("clickstream-shop-modeling").await && stack_exists("clickstream-shop-reporting").await);
    // The level-1 stacks get the project's apps (their processes refuse a project without).
    for name in ["clickstream-shop-processing", "clickstream-shop-ingestion"] {
        let described = cloudformation.describe_stacks().stack_name(name).send().await.unwrap();
        let app_ids = described.stacks()[0].parameters().iter().find(|parameter| parameter.parameter_key() == Some("AppIds")).and_then(|parameter| parameter.parameter_value());
        // AWS answers a list parameter as given; moto 5.2.5 as a Python list.
        assert!(matches!(app_ids, Some("shop_web" | "['shop_web']")), "{name}: {app_ids:?}");
    }
    the_deployed_worker_loads_into_redshift_on_its_own_queue(&moto, &cloudformation).await;
    the_deployed_pipeline_runs_the_uploaded_plugins(&moto, &cloudformation, &plugin_keys).await;
    the_deployed_collector_and_bridge_use_the_stacks_msk_cluster(&moto, &cloudformation).await;
    // The status keeps the ingestion stack's collector URL, which the console shows as the
    // project's apps' endpoint.
    let ingest_endpoint = stack_outputs(&cloudformation, "clickstream-shop-ingestion").await["IngestEndpoint"].clone();
    assert_eq!(control.pipeline_status(&pipeline.id).await.unwrap().ingest_endpoint(), Some(ingest_endpoint.as_str()));
    let published = active.level(PipelineLevel::Reporting).stacks.iter().find(|stack| stack.name == "quicksight:clickstream_shop").cloned();
    assert!(published.as_ref().is_some_and(|assets| assets.state == "PUBLISHED" && assets.reason.contains("clickstream_shop_shop_web")), "{active:?}");
    let quicksight = aws_sdk_quicksight::Client::new(&clickstream_control::dynamodb::sdk_config("us-east-1", &moto.endpoint()).await);
    let dashboard = || quicksight.describe_dashboard().aws_account_id("123456789012").dashboard_id("clickstream_shop_shop_web").send();
    assert!(dashboard().await.is_ok(), "the app's QuickSight dashboard exists");

    // Delete: every stack goes, the workflow ends, the store forgets the pipeline.
    let deleted: PipelineStatus = run_workers_with(&stack, &store, configured(false), async {
        handle.signal(PipelineLifecycleWorkflow::delete, (), WorkflowSignalOptions::default()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), handle.get_result(WorkflowGetResultOptions::default())).await.unwrap().unwrap()
    })
    .await;
    assert_eq!(deleted.phase, PipelinePhase::Deleted);
    for name in ["clickstream-shop-processing", "clickstream-shop-ingestion", "clickstream-shop-modeling", "clickstream-shop-reporting"] {
        assert!(!stack_exists(name).await, "{name} deleted");
    }
    assert!(dashboard().await.is_err(), "the QuickSight dashboard is deleted with the reporting level");
    assert!(control.pipeline(&pipeline.id).await.is_err(), "the store forgot the pipeline");
    stack.replay_and_record(&[("pipeline_lifecycle_workflow", pipeline.id.clone())]).await;
}

/// The bucket of the control plane's storage in the lifecycle test.
const CONTROL_BUCKET: &str = "clickstream-control";

/// Stand-ins for a plugin's component: the deployed worker's reading of it is what is tested
/// here (the sandbox runs real components in `e2e/tests/plugins.rs`).
fn module_bytes(plugin_id: &str) -> Vec<u8> {
    format!("\0asm component of {plugin_id}").into_bytes()
}

/// What a deployed pipeline process starts with, as ECS would give it.
struct DeployedProcess {
    /// The `[[projects]]` parameter of its stack as the file, its task definition's
    /// `CLICKSTREAM_*` variables over it.
    config: Config,
    /// The parameter's text, for the failure messages.
    projects_toml: String,
    /// The task definition's variables (`name`, `value`).
    environment: Vec<serde_json::Value>,
}

async fn deployed_process(moto: &clickstream_e2e::MotoServer, parameter_name: &str, task_definition: &str) -> DeployedProcess {
    let parameter = moto.json_api("ssm", "AmazonSSM.GetParameter", serde_json::json!({"Name": parameter_name})).await;
    let projects_toml = parameter["Parameter"]["Value"].as_str().unwrap().to_string();
    let task_definition = moto.json_api("ecs", "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", serde_json::json!({"taskDefinition": task_definition})).await;
    let environment = task_definition["taskDefinition"]["containerDefinitions"][0]["environment"].as_array().unwrap().clone();
    let mut figment = figment::Figment::from(figment::providers::Serialized::defaults(Config::default())).merge(<figment::providers::Toml as figment::providers::Format>::string(&projects_toml));
    // moto 5.2.5 keeps an `AWS::NoValue` item of the list as null; AWS drops it.
    for variable in environment.iter().filter(|variable| !variable.is_null()) {
        // moto keeps a Number parameter's value a number where ECS has strings.
        let value = variable["value"].as_str().map_or_else(|| variable["value"].to_string(), str::to_string);
        let name = variable["name"].as_str().unwrap();
        // Configuration variables are SECTION__KEY; CLICKSTREAM_CONFIG and the like are not.
        if let Some(path) = name.strip_prefix("CLICKSTREAM_").filter(|path| path.contains("__")) {
            // Parsed as figment's Env provider parses a variable (numbers, arrays, strings).
            let parsed: figment::value::Value = value.parse().expect("a variable's value parses");
            figment = figment.merge((path.to_lowercase().replace("__", "."), parsed));
        }
    }
    let config = Config::from_figment(figment).unwrap_or_else(|error| panic!("the deployed process would not start: {error}\n{projects_toml}\n{environment:?}"));
    DeployedProcess { config, projects_toml, environment }
}

/// The pipeline's worker runs the spec's enricher plugin, reading its module from the control
/// plane's bucket (which its role may read); its collector knows the project has a
/// transformer, so it accepts any JSON body.
async fn the_deployed_pipeline_runs_the_uploaded_plugins(moto: &clickstream_e2e::MotoServer, cloudformation: &aws_sdk_cloudformation::Client, plugin_keys: &[String]) {
    let DeployedProcess { config, projects_toml, environment } = deployed_process(moto, "/clickstream/shop/processing/config", "clickstream-shop-worker").await;
    let project = config.project("shop").unwrap();
    let digest = environment.iter().find(|variable| variable["name"] == "CLICKSTREAM_CONFIG_DIGEST").and_then(|variable| variable["value"].as_str());
    assert!(digest.is_some_and(|digest| digest.len() == 64), "a change of the configuration parameter replaces the tasks: {environment:?}");
    let modules: Vec<(&str, &str, &str)> = project.plugins.iter().chain(&project.transformer).map(|plugin| (plugin.id.as_str(), plugin.module_uri.as_str(), plugin.config.as_str())).collect();
    let expected_uris: Vec<String> = plugin_keys.iter().map(|key| format!("s3://{CONTROL_BUCKET}/{key}")).collect();
    assert_eq!(modules, [("page_category", expected_uris[0].as_str(), "/products=product\n/blog=\"content\""), ("csv_reader", expected_uris[1].as_str(), "")], "{projects_toml}");
    // The module is read as the ETL job reads it (the worker's own store is its data bucket).
    let storage = clickstream_core::config::StorageConfig { endpoint: moto.endpoint(), ..config.storage.clone() };
    let own_store = Storage::open(&storage).unwrap();
    let bytes = clickstream_etl::engine::read_plugin_module(&own_store.store, &storage, &project.plugins[0].module_uri).await.unwrap();
    assert_eq!(bytes, module_bytes("page_category"));
    let policy = cloudformation.describe_stack_resource().stack_name("clickstream-shop-processing").logical_resource_id("PluginModulesPolicy").send().await;
    assert!(policy.is_ok(), "the workers may read the control plane's modules: {policy:?}");

    let collector = deployed_process(moto, "/clickstream/shop/ingestion/config", "clickstream-shop-ingest").await;
    let transformer = collector.config.project("shop").unwrap().transformer.map(|plugin| plugin.id);
    assert_eq!(transformer.as_deref(), Some("csv_reader"), "{}", collector.projects_toml);
}

/// A stack's outputs by key.
async fn stack_outputs(cloudformation: &aws_sdk_cloudformation::Client, name: &str) -> std::collections::HashMap<String, String> {
    let described = cloudformation.describe_stacks().stack_name(name).send().await.unwrap();
    described.stacks()[0].outputs().iter().map(|output| (output.output_key().unwrap_or_default().to_string(), output.output_value().unwrap_or_default().to_string())).collect()
}

/// The spec's Kafka sink, deployed without given brokers: the ingestion stack's own MSK
/// cluster, whose brokers the collector and the bridge ask MSK for; the topic gets the spec's
/// partitions and the cluster's replication factor, the raw objects its buffer settings.
async fn the_deployed_collector_and_bridge_use_the_stacks_msk_cluster(moto: &clickstream_e2e::MotoServer, cloudformation: &aws_sdk_cloudformation::Client) {
    let outputs = stack_outputs(cloudformation, "clickstream-shop-ingestion").await;
    let cluster_arn = outputs.get("MskClusterArn").expect("the ingestion stack created an MSK cluster");
    for task_definition in ["clickstream-shop-ingest", "clickstream-shop-bridge"] {
        let DeployedProcess { config, projects_toml, .. } = deployed_process(moto, "/clickstream/shop/ingestion/config", task_definition).await;
        assert_eq!(config.project("shop").unwrap().sink, clickstream_core::config::SinkKind::Kafka, "{projects_toml}");
        assert_eq!(&config.kafka.msk_cluster_arn, cluster_arn, "{task_definition}");
        // The bridge's raw objects follow the spec's buffer settings.
        assert_eq!((config.ingest.sink_batch_max_bytes, config.ingest.sink_batch_max_age_ms), (5 * 1024 * 1024, 30_000), "{task_definition}");
        if task_definition == "clickstream-shop-ingest" {
            let kafka = &config.kafka;
            assert_eq!((kafka.topic_partitions, kafka.topic_replication_factor, kafka.topic_retention_hours), (4, -1, 24));
        }
        // What the process asks at start (moto answers made-up broker names).
        let kafka = clickstream_core::config::KafkaConfig { msk_endpoint: moto.endpoint(), ..config.kafka.clone() };
        let brokers = clickstream_ingest::sink::kafka::bootstrap_brokers(&kafka).await.unwrap();
        assert!(brokers.contains(".kafka.us-east-1.amazonaws.com:9092"), "{brokers}");
    }
}

/// The configuration a deployed pipeline worker starts with ([`deployed_process`]): after the
/// modeling level it is a valid configuration that loads the project into Redshift with the
/// modeling stack's COPY role, on the pipeline's own task queue.
async fn the_deployed_worker_loads_into_redshift_on_its_own_queue(moto: &clickstream_e2e::MotoServer, cloudformation: &aws_sdk_cloudformation::Client) {
    let copy_role_arn = stack_outputs(cloudformation, "clickstream-shop-modeling").await["RedshiftCopyRoleArn"].clone();
    assert!(copy_role_arn.contains(":role/clickstream-copy-"), "{copy_role_arn}");
    assert_eq!(stack_outputs(cloudformation, "clickstream-shop-processing").await["Warehouse"], "redshift", "the modeling level updated the processing stack");

    let DeployedProcess { config, projects_toml, .. } = deployed_process(moto, "/clickstream/shop/processing/config", "clickstream-shop-worker").await;
    let project = config.project("shop").unwrap();
    assert_eq!(project.warehouse, clickstream_core::config::WarehouseKind::Redshift, "{projects_toml}");
    assert_eq!(project.enrichers, Some(vec!["page_url".to_string(), "ip_geo".to_string()]), "{projects_toml}");
    assert_eq!((project.freshness_hours, project.etl_cron.as_deref()), (Some(48), Some("*/15 * * * *")), "{projects_toml}");
    assert_eq!(config.warehouse.redshift.workgroup_name, "clickstream");
    assert_eq!(config.warehouse.redshift.copy_role_arn, copy_role_arn);
    assert_eq!(config.temporal.task_queue, "clickstream-etl-shop");
    assert_eq!(config.warehouse_task_queue(&project), "clickstream-etl-shop", "the worker serves its own loads");
    assert!(config.storage.url.starts_with("s3://"), "{}", config.storage.url);
}
