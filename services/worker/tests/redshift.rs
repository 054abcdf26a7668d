//! The Redshift warehouse through the Data API and the DynamoDB metadata store, against moto
//! (started through the harness's wrapper, which makes moto's Data API answer as AWS does and
//! lets statements run for a moment, so callers really poll).
//!
//! Redshift itself cannot run here: what reaches the Data API is compared with the dialect's
//! SQL (itself covered by golden files in `activities/tests/golden/redshift/`).

mod common;

use std::{sync::Arc, time::Duration};

use clickstream_activities::{
    manifest::{LoadManifest, ManifestEntry, ManifestEntryMeta, PendingLoad},
    metadata::{AppMetadata, AttributeMetadata, EventMetadata, MetadataStore, ParameterMetadata, ValueCount},
    metadata_dynamodb::DynamoDbMetadata,
    object_io::{get_json, put_json},
    redshift::RedshiftWarehouse,
    redshift_sql::{TableLoad, load_statements},
    warehouses::Warehouse,
};
use clickstream_core::{
    Config, ProjectConfig,
    config::{MetadataConfig, MetadataStoreKind, RedshiftConfig, StorageConfig, WarehouseKind},
    layout,
    storage::Storage,
};
use clickstream_e2e::{MotoServer, TemporalDevServer};
use clickstream_workflows::{
    LoadDataWorkflow,
    types::{LoadBatch, LoadInput, LoadOutcome, LoadSummary},
};
use temporalio_client::{UntypedWorkflow, WorkflowGetResultOptions, WorkflowStartOptions};

const COPY_ROLE: &str = "arn:aws:iam::123456789012:role/clickstream-copy";

fn redshift_settings(moto: &MotoServer) -> RedshiftConfig {
    RedshiftConfig { workgroup_name: "clickstream".into(), database: "dev".into(), copy_role_arn: COPY_ROLE.into(), endpoint: moto.endpoint(), region: "us-east-1".into(), ..RedshiftConfig::default() }
}

async fn lake_on(moto: &MotoServer) -> Storage {
    moto.create_bucket("lake").await;
    Storage::open(&StorageConfig { url: "s3://lake/data".into(), endpoint: moto.endpoint(), region: "us-east-1".into() }).unwrap()
}

/// Processed-file keys of two apps' tables, as the ETL names them.
fn processed_key(app_id: &str, table: &str, name: &str) -> String {
    format!("{}/{table}/partition_app={app_id}/partition_year=2026/partition_month=11/partition_day=30/{name}.parquet", layout::processed_prefix("proj"))
}

async fn sub_statement_sqls(moto: &MotoServer, statement_id: &str) -> (String, Vec<String>) {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1")).endpoint_url(moto.endpoint()).load().await;
    let described = aws_sdk_redshiftdata::Client::new(&config).describe_statement().id(statement_id).send().await.expect("moto describes the statement");
    let status = described.status().map(|status| status.as_str().to_string()).unwrap_or_default();
    (status, described.sub_statements().iter().map(|sub| sub.query_string().unwrap_or_default().to_string()).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_is_submitted_once_per_attempt_and_polled_until_it_finishes() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let storage = lake_on(&moto).await;
    let keys = [processed_key("app-1", "event_v2", "a"), processed_key("app-1", "event_v2", "b"), processed_key("app-1", "user_v2", "c"), processed_key("app-2", "event_v2", "d")];
    let entries = keys.iter().map(|key| ManifestEntry { url: storage.location.url_of_key(key), meta: ManifestEntryMeta { content_length: 100 } }).collect();
    let manifest_key = layout::load_manifest_key("proj", "batch-1");
    put_json(storage.store.as_ref(), &manifest_key, &LoadManifest { entries }).await.unwrap();
    let batch = LoadBatch { project_id: "proj".into(), manifest_key: manifest_key.clone(), file_count: 4 };

    let warehouse = RedshiftWarehouse::connect(&redshift_settings(&moto), storage.clone()).await;
    let submitted = warehouse.submit_load(&batch, 0).await.unwrap();
    assert_eq!(submitted.outcome, LoadOutcome::Running, "the Data API runs statements asynchronously");
    let statement_id = submitted.statement_id.clone().expect("a statement to poll");
    let again = warehouse.submit_load(&batch, 0).await.unwrap();
    assert_eq!(again.statement_id.as_deref(), Some(statement_id.as_str()), "a retried submission gets the same statement (client token)");
    let next_attempt = warehouse.submit_load(&batch, 1).await.unwrap();
    assert_ne!(next_attempt.statement_id.as_deref(), Some(statement_id.as_str()), "a new attempt after a rollback is a new statement");

    // One COPY manifest per app and table, next to the batch's manifest.
    let table_manifest: LoadManifest = get_json(storage.store.as_ref(), "proj/load-workflow/manifests/batch-1/app-1/event_v2.json", "manifest").await.unwrap().expect("the event_v2 manifest of app-1");
    assert_eq!(table_manifest.entries.iter().map(|entry| entry.url.as_str()).collect::<Vec<_>>(), ["s3://lake/data/".to_string() + &keys[0], "s3://lake/data/".to_string() + &keys[1]]);
    let expected_loads: Vec<TableLoad> = [("app-1", "event_v2"), ("app-1", "user_v2"), ("app-2", "event_v2")]
        .iter()
        .map(|(app_id, table)| TableLoad { app_id: app_id.to_string(), table: table.to_string(), manifest_url: format!("s3://lake/data/proj/load-workflow/manifests/batch-1/{app_id}/{table}.json") })
        .collect();
    let (_, sent) = sub_statement_sqls(&moto, &statement_id).await;
    assert_eq!(sent, load_statements(&expected_loads, COPY_ROLE).statements, "the dialect's statements, in one transaction");

    let mut checked = submitted;
    let mut checks = 0;
    while checked.outcome == LoadOutcome::Running {
        checks += 1;
        assert!(checks < 100, "the statement finishes");
        tokio::time::sleep(Duration::from_millis(200)).await;
        checked = warehouse.check_load(checked).await.unwrap();
    }
    assert!(checks > 1, "the statement ran for a while and was polled");
    let LoadOutcome::Finished(summary) = checked.outcome else { panic!("the load finished: {:?}", checked.outcome) };
    assert_eq!((summary.batches, summary.files), (1, 4));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_workflow_polls_a_redshift_load_with_timers_and_marks_it_loaded() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let temporal = TemporalDevServer::start(directory.path());
    let storage = lake_on(&moto).await;
    let mut config = common::test_config(directory.path());
    config.storage = StorageConfig { url: "s3://lake/data".into(), endpoint: moto.endpoint(), region: "us-east-1".into() };
    config.temporal.address = temporal.address();
    config.temporal.task_queue = "test-redshift".into();
    config.warehouse.redshift = redshift_settings(&moto);
    config.projects = vec![ProjectConfig { id: "proj".into(), apps: vec!["app-1".into()], warehouse: WarehouseKind::Redshift, ..ProjectConfig::default() }];
    let config: Arc<Config> = Arc::new(config);
    for name in ["a", "b"] {
        let key = processed_key("app-1", "event_v2", name);
        // Named as the ETL names them (after the file key), so completing the batch removes them.
        let marker_key = clickstream_activities::etl_activities::pending_marker_key("proj", &key);
        put_json(storage.store.as_ref(), &marker_key, &PendingLoad { key, content_length: 10 }).await.unwrap();
    }

    let client = clickstream_worker::connect(&config, Duration::from_secs(30)).await.unwrap();
    let runtime = clickstream_worker::runtime().unwrap();
    let engine = Arc::new(clickstream_worker::EtlEngine::load(config.clone()).expect("the enrichers' data loads (local/test installs it)"));
    let activities = clickstream_worker::warehouse_activities(&config, &storage, None).await;
    let mut worker = clickstream_worker::etl_worker(&runtime, client.clone(), engine, storage.clone(), Some(activities), None).unwrap();
    let stop = worker.shutdown_handle();
    let input = LoadInput { project_id: "proj".into(), max_files_per_batch: 50, warehouse_task_queue: config.warehouse_task_queue(&config.projects[0]).to_string(), carried_over: LoadSummary::default(), metadata_scan: None };
    let summary: LoadSummary = tokio::task::LocalSet::new()
        .run_until(async {
            let running = tokio::task::spawn_local(async move { worker.run().await.unwrap() });
            let handle = client.start_workflow(LoadDataWorkflow::run, input, WorkflowStartOptions::new("test-redshift", "load-redshift").build()).await.unwrap();
            let Ok(summary) = tokio::time::timeout(Duration::from_secs(60), handle.get_result(WorkflowGetResultOptions::default())).await else {
                let events = client.get_workflow_handle::<UntypedWorkflow>("load-redshift").fetch_history(Default::default()).into_events().await.unwrap();
                panic!("the load did not finish within a minute: {events:#?}");
            };
            let summary = summary.unwrap();
            stop();
            running.await.unwrap();
            summary
        })
        .await;
    assert_eq!((summary.batches, summary.files), (1, 2));
    let pending = clickstream_activities::object_io::list_objects(storage.store.as_ref(), &layout::pending_loads_prefix("proj")).await.unwrap();
    assert!(pending.is_empty(), "the loaded files are no longer pending: {pending:?}");
    let events = client.get_workflow_handle::<UntypedWorkflow>("load-redshift").fetch_history(Default::default()).into_events().await.unwrap();
    let timers = events.iter().filter(|event| format!("{:?}", event.event_type()).contains("TimerStarted")).count();
    assert!(timers >= 1, "the workflow waited on a durable timer between status checks");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_metadata_store_keeps_one_item_per_name_and_drops_stale_ones() {
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let settings = MetadataConfig { store: MetadataStoreKind::Dynamodb, dynamodb_table: "metadata".into(), dynamodb_endpoint: moto.endpoint(), ..MetadataConfig::default() };
    let store = DynamoDbMetadata::connect(&settings).await;
    store.ensure_table().await.unwrap();
    store.ensure_table().await.expect("an existing table is fine");
    assert_eq!(store.last_successful_scan_ms("proj").await.unwrap(), None);
    assert_eq!(store.app("proj", "app-1").await.unwrap(), None, "never scanned");

    let event = |name: &str| EventMetadata { name: name.into(), total: 3, platforms: vec!["Web".into()], sdks: vec![], daily_counts: vec![] };
    let first = AppMetadata {
        app_id: "app-1".into(),
        scanned_at_ms: 1,
        // More items than one BatchWriteItem takes.
        events: (0..30).map(|index| event(&format!("event_{index:02}"))).collect(),
        event_parameters: vec![ParameterMetadata { event_name: "event_00".into(), name: "color".into(), value_type: "string".into(), top_values: vec![ValueCount { value: Some("red".into()), count: 2 }] }],
        user_attributes: vec![AttributeMetadata { name: "plan".into(), value_type: "string".into(), top_values: vec![] }],
    };
    store.save_app("proj", &first).await.unwrap();
    store.record_successful_scan("proj", 1_000).await.unwrap();
    let mut read = store.app("proj", "app-1").await.unwrap().expect("scanned");
    read.events.sort_by(|left, right| left.name.cmp(&right.name));
    assert_eq!(read, first);
    assert_eq!(store.last_successful_scan_ms("proj").await.unwrap(), Some(1_000));

    let second = AppMetadata { app_id: "app-1".into(), scanned_at_ms: 2, events: vec![event("event_05")], event_parameters: vec![], user_attributes: vec![] };
    store.save_app("proj", &second).await.unwrap();
    assert_eq!(store.app("proj", "app-1").await.unwrap(), Some(second), "what the new scan did not find is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_runs_through_the_data_api_with_bound_parameters_and_reads_the_result() {
    use clickstream_reporting::{
        AppScope, Dialect, Exploration, build_exploration,
        query::{DateRange, FunnelAnalysis},
    };
    clickstream_e2e::use_test_aws_credentials();
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let warehouse = RedshiftWarehouse::connect(&redshift_settings(&moto), lake_on(&moto).await).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let funnel = Exploration::Funnel(FunnelAnalysis {
        range: DateRange { from: day, to: day },
        steps: vec!["_page_view".into(), "purchase".into()],
        window_seconds: 3600,
        group_by: None,
        filters: vec![],
    });
    let statement = build_exploration(&funnel, &AppScope::new("shop-web", "Asia/Shanghai").unwrap(), Dialect::Redshift);
    let answer = warehouse.run_report(&statement).await.unwrap();

    // What reached the Data API: the builder's SQL, its values as named parameters p1, p2, ….
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1")).endpoint_url(moto.endpoint()).load().await;
    let described = aws_sdk_redshiftdata::Client::new(&config).describe_statement().id(&answer.statement_id).send().await.unwrap();
    assert_eq!(described.query_string(), Some(statement.sql.as_str()));
    let sent: Vec<(String, String)> = described.query_parameters().iter().map(|parameter| (parameter.name().to_string(), parameter.value().to_string())).collect();
    let expected: Vec<(String, String)> = statement.parameters.iter().enumerate().map(|(index, value)| (format!("p{}", index + 1), value.as_text())).collect();
    assert_eq!(sent, expected);
    assert!(sent.iter().any(|(_, value)| value == "1793548800000"), "local midnight in Shanghai as the range start: {sent:?}");
    // moto's Data API answers every query with the same three rows; they come back typed.
    assert_eq!(answer.table.columns, ["Number", "Street", "City"]);
    assert_eq!(answer.table.rows[0], vec![serde_json::json!(10), serde_json::json!("Alpha st"), serde_json::json!("Vancouver")]);
    assert_eq!(answer.table.rows.len(), 3);
}
