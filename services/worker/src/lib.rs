//! The Temporal side of clickstream: connecting, keeping each project's schedules (ETL and
//! retention), and building the two workers.
//!
//! - the **ETL worker** polls `temporal.task_queue`: all workflows and the ETL activities;
//!   run as many as needed (`clickstream worker`);
//! - the **warehouse worker** polls `temporal.warehouse_task_queue`: the DuckDB loads; it runs
//!   in the one process that owns the warehouse file (`clickstream console`). Projects on
//!   Redshift have their warehouse activities on the ETL task queue instead (any worker can
//!   call the Data API).
//!
//! `Worker::run` is not `Send`: callers drive workers inside a `tokio::task::LocalSet`.

pub mod backfill;
pub mod backlog;
pub mod lifecycle;

use std::{sync::Arc, time::Duration};

use clickstream_activities::{
    DuckDbWarehouse, EtlActivityImplementations, WarehouseActivityImplementations,
    metadata::open_metadata_store,
    redshift::RedshiftWarehouse,
    warehouses::{DuckDbLoader, Warehouses},
};
use clickstream_core::{
    Config, ProjectConfig,
    config::{CatalogKind, WarehouseKind},
    storage::Storage,
};
pub use clickstream_etl::engine::EtlEngine;
use clickstream_workflows::{
    AthenaPartitionWorkflow, BackfillWorkflow, ClearExpiredEventsWorkflow, EtlWorkflow, LoadDataWorkflow, PipelineLifecycleWorkflow, ScanMetadataWorkflow,
    types::{CatalogInput, ClearExpiredInput, EtlInput, ScanMetadataInput},
};
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions,
    schedules::{CreateScheduleOptions, ScheduleAction, ScheduleOverlapPolicy, ScheduleSpec},
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// Largest number of files one warehouse load batch takes (CAoA's `maxFilesLimit` default).
pub const MAX_FILES_PER_LOAD: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("temporal.address `{address}` is not a valid URL: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// The server did not answer within the connect deadline: start it, or retry later.
    #[error("cannot connect to Temporal at {address} (is the server running?): {reason}")]
    Connect { address: String, reason: String },
    /// The TLS settings do not go together; retrying does not help.
    #[error("Temporal TLS settings: {0}")]
    InvalidTls(String),
    #[error("cannot create or update the schedule `{schedule_id}`: {reason}")]
    Schedule { schedule_id: String, reason: String },
    #[error("cannot create the Temporal worker for task queue `{task_queue}`: {reason}")]
    CreateWorker { task_queue: String, reason: String },
    #[error("cannot start the Temporal runtime: {0}")]
    Runtime(String),
}

/// How the configuration asks to reach Temporal: plain, TLS, mTLS with a client certificate
/// (Temporal Cloud, self-hosted frontends that require it) or TLS with an API key. `env` looks
/// up Temporal's own variables for what the configuration leaves empty.
pub fn connection_options(temporal: &clickstream_core::config::TemporalConfig, env: impl Fn(&str) -> Option<String>) -> Result<ConnectionOptions, WorkerError> {
    let address = temporal.address.clone();
    let url = url::Url::parse(&address).map_err(|error| WorkerError::InvalidAddress { address: address.clone(), reason: error.to_string() })?;
    let or_env = |configured: &str, variable: &str| if configured.is_empty() { env(variable).filter(|value| !value.is_empty()) } else { Some(configured.to_string()) };
    let client_cert = or_env(&temporal.tls_client_cert, "TEMPORAL_TLS_CLIENT_CERT_DATA");
    let client_key = or_env(&temporal.tls_client_key, "TEMPORAL_TLS_CLIENT_KEY_DATA");
    let api_key = or_env(&temporal.api_key, "TEMPORAL_API_KEY");
    let client_tls = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsOptions::builder().client_cert(cert.into_bytes()).client_private_key(key.into_bytes()).build()),
        (None, None) => None,
        (Some(_), None) => return Err(WorkerError::InvalidTls("a client certificate needs its key: set temporal.tls_client_key (or TEMPORAL_TLS_CLIENT_KEY_DATA)".into())),
        (None, Some(_)) => return Err(WorkerError::InvalidTls("a client key needs its certificate: set temporal.tls_client_cert (or TEMPORAL_TLS_CLIENT_CERT_DATA)".into())),
    };
    if !temporal.tls_server_ca.is_empty() && !temporal.tls_server_ca.contains("-----BEGIN") {
        return Err(WorkerError::InvalidTls("temporal.tls_server_ca must be PEM text (-----BEGIN CERTIFICATE-----…), not a path".into()));
    }
    let tls_wanted = temporal.tls || client_tls.is_some() || !temporal.tls_server_ca.is_empty() || !temporal.tls_domain.is_empty();
    let mut url = url;
    if (tls_wanted || api_key.is_some()) && url.scheme() == "http" {
        // The gRPC transport only speaks TLS to https:// addresses; Temporal Cloud's are given
        // as host:port, so the scheme of a TLS connection is not left to the user to get right.
        url.set_scheme("https").expect("http and https are both special schemes");
    }
    let tls_options = tls_wanted.then(|| {
        TlsOptions::builder()
            .maybe_client_tls_options(client_tls)
            .maybe_server_root_ca_cert((!temporal.tls_server_ca.is_empty()).then(|| temporal.tls_server_ca.clone().into_bytes()))
            .maybe_domain((!temporal.tls_domain.is_empty()).then(|| temporal.tls_domain.clone()))
            .build()
    });
    Ok(ConnectionOptions::new(url).identity(format!("clickstream@{}", std::process::id())).maybe_tls_options(tls_options).maybe_api_key(api_key).build())
}

/// Connects to Temporal, retrying for up to `patience` (the dev server may still be starting).
pub async fn connect(config: &Config, patience: Duration) -> Result<Client, WorkerError> {
    let address = config.temporal.address.clone();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let options = connection_options(&config.temporal, |variable| std::env::var(variable).ok())?;
        match Connection::connect(options).await {
            Ok(connection) => {
                let client = Client::new(connection, ClientOptions::new(config.temporal.namespace.clone()).build())
                    .map_err(|error| WorkerError::Connect { address: address.clone(), reason: error.to_string() })?;
                return Ok(client);
            }
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(WorkerError::Connect { address, reason: error.to_string() });
            }
            Err(error) => {
                tracing::info!(%address, %error, "Temporal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

pub fn schedule_id(project_id: &str) -> String {
    format!("etl-{project_id}")
}

pub fn etl_input(config: &Config, project: &ProjectConfig) -> EtlInput {
    EtlInput {
        project_id: project.id.clone(),
        buffer_seconds: project.etl_buffer_seconds,
        max_files_per_load: MAX_FILES_PER_LOAD,
        warehouse_task_queue: config.warehouse_task_queue(project).to_string(),
        metadata_scan: Some(metadata_scan_input(config, project)),
    }
}

/// Input of the project's metadata scan, which its loads ask for.
pub fn metadata_scan_input(config: &Config, project: &ProjectConfig) -> ScanMetadataInput {
    ScanMetadataInput {
        project_id: project.id.clone(),
        app_ids: project.apps.clone(),
        min_age_seconds: config.metadata.scan_min_age_seconds,
        warehouse_task_queue: config.warehouse_task_queue(project).to_string(),
    }
}

/// Id of a project's daily retention schedule.
pub fn retention_schedule_id(project_id: &str) -> String {
    format!("clear-expired-{project_id}")
}

pub fn clear_expired_input(config: &Config, project: &ProjectConfig) -> ClearExpiredInput {
    ClearExpiredInput {
        project_id: project.id.clone(),
        app_ids: project.apps.clone(),
        retention_days: project.retention_days,
        warehouse_task_queue: config.warehouse_task_queue(project).to_string(),
    }
}

/// Id of a project's daily catalog schedule.
pub fn partitions_schedule_id(project_id: &str) -> String {
    format!("partitions-{project_id}")
}

/// Input of the project's `AthenaPartitionWorkflow`; `None` when no catalog is configured.
pub fn catalog_input(config: &Config, project: &ProjectConfig) -> Option<CatalogInput> {
    let kind = match config.catalog_kind() {
        CatalogKind::Glue => "glue",
        CatalogKind::Duckdb => "duckdb",
        CatalogKind::None | CatalogKind::Auto => return None,
    };
    Some(CatalogInput { project_id: project.id.clone(), kind: kind.into(), warehouse_task_queue: config.warehouse_task_queue(project).to_string() })
}

/// When a project's ETL runs: its cron expression, else its interval.
pub fn etl_schedule_spec(project: &ProjectConfig) -> ScheduleSpec {
    match &project.etl_cron {
        Some(cron) => {
            let mut spec = ScheduleSpec::default();
            spec.cron_strings = vec![cron.clone()];
            spec
        }
        None => ScheduleSpec::from_interval(Duration::from_secs(project.etl_interval_seconds)),
    }
}

/// Creates each project's schedules, or brings existing ones in line with the config: the ETL
/// (its interval or cron expression), the daily clearing of expired warehouse data, and the
/// daily catalog registration (Glue or DuckDB views) unless `catalog.kind = "none"`.
/// Overlap policy skip: a run still going when the next is due makes the next one wait.
pub async fn ensure_schedules(client: &Client, config: &Config) -> Result<(), WorkerError> {
    for project in &config.projects {
        ensure_etl_schedule(client, config, project).await?;
        ensure_warehouse_schedules(client, config, project).await?;
    }
    Ok(())
}

/// The project's ETL schedule (its interval or cron expression).
pub async fn ensure_etl_schedule(client: &Client, config: &Config, project: &ProjectConfig) -> Result<String, WorkerError> {
    let etl_id = schedule_id(&project.id);
    let etl_action = || ScheduleAction::start_workflow(EtlWorkflow::run, etl_input(config, project), config.temporal.task_queue.clone(), etl_id.clone());
    let etl_note = match &project.etl_cron {
        Some(cron) => format!("ETL of project {} on cron `{cron}` (UTC)", project.id),
        None => format!("ETL of project {} every {}s", project.id, project.etl_interval_seconds),
    };
    upsert_schedule(client, &etl_id, etl_action, etl_schedule_spec(project), etl_note).await?;
    Ok(etl_id)
}

/// The project's daily schedules over its warehouse data: retention, and catalog
/// registration unless `catalog.kind = "none"`. Returns their ids.
pub async fn ensure_warehouse_schedules(client: &Client, config: &Config, project: &ProjectConfig) -> Result<Vec<String>, WorkerError> {
    let retention_id = retention_schedule_id(&project.id);
    let retention_action = || ScheduleAction::start_workflow(ClearExpiredEventsWorkflow::run, clear_expired_input(config, project), config.temporal.task_queue.clone(), retention_id.clone());
    let retention_note = format!("Deletes project {}'s warehouse data older than {} days, daily", project.id, project.retention_days);
    upsert_schedule(client, &retention_id, retention_action, ScheduleSpec::from_interval(Duration::from_secs(86_400)), retention_note).await?;
    let mut ids = vec![retention_id];
    if let Some(input) = catalog_input(config, project) {
        let partitions_id = partitions_schedule_id(&project.id);
        let note = format!("Registers project {}'s tables and partitions ({}), daily", project.id, input.kind);
        let partitions_action = || ScheduleAction::start_workflow(AthenaPartitionWorkflow::run, input.clone(), config.temporal.task_queue.clone(), partitions_id.clone());
        upsert_schedule(client, &partitions_id, partitions_action, ScheduleSpec::from_interval(Duration::from_secs(86_400)), note).await?;
        ids.push(partitions_id);
    }
    Ok(ids)
}

/// Deletes a schedule; one that does not exist is fine (deleting twice is a no-op).
pub async fn delete_schedule(client: &Client, schedule_id: &str) -> Result<(), WorkerError> {
    match client.get_schedule_handle(schedule_id.to_string()).delete(Default::default()).await {
        Ok(()) => {
            tracing::info!(%schedule_id, "deleted schedule");
            Ok(())
        }
        Err(temporalio_client::schedules::ScheduleError::Rpc(status)) if status.code() == tonic::Code::NotFound => Ok(()),
        Err(error) => Err(WorkerError::Schedule { schedule_id: schedule_id.to_string(), reason: error.to_string() }),
    }
}

/// Creates a schedule, or updates the one with this id to the given action and spec.
async fn upsert_schedule(client: &Client, schedule_id: &str, action: impl Fn() -> ScheduleAction, spec: ScheduleSpec, note: String) -> Result<(), WorkerError> {
    let options = CreateScheduleOptions::builder().action(action()).spec(spec.clone()).overlap_policy(ScheduleOverlapPolicy::Skip).note(note.clone()).build();
    let schedule_error = |reason: String| WorkerError::Schedule { schedule_id: schedule_id.to_string(), reason };
    match client.create_schedule(schedule_id.to_string(), options).await {
        Ok(_) => tracing::info!(%schedule_id, %note, "created schedule"),
        Err(temporalio_client::schedules::ScheduleError::Rpc(status)) if status.code() == tonic_code_already_exists() => {
            let handle = client.get_schedule_handle(schedule_id.to_string());
            let new_action = action();
            handle
                .update(
                    move |update| {
                        update.set_spec(spec);
                        update.set_action(new_action);
                        update.set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await
                .map_err(|error| schedule_error(error.to_string()))?;
            tracing::info!(%schedule_id, %note, "updated schedule");
        }
        Err(error) => return Err(schedule_error(error.to_string())),
    }
    Ok(())
}

fn tonic_code_already_exists() -> tonic::Code {
    tonic::Code::AlreadyExists
}

pub fn runtime() -> Result<Runtime, WorkerError> {
    Runtime::from_current_tokio(Default::default()).map_err(|error| WorkerError::Runtime(error.to_string()))
}

/// The warehouse activities of this process: DuckDB's when it owns the DuckDB file
/// (`duckdb`), Redshift's when a project uses Redshift, and the configured metadata store.
pub async fn warehouse_activities(config: &Arc<Config>, storage: &Storage, duckdb: Option<Arc<DuckDbWarehouse>>) -> WarehouseActivityImplementations {
    let redshift = if config.projects.iter().any(|project| project.warehouse == WarehouseKind::Redshift) {
        Some(Arc::new(RedshiftWarehouse::connect(&config.warehouse.redshift, storage.clone()).await))
    } else {
        None
    };
    let duckdb = duckdb.map(|warehouse| Arc::new(DuckDbLoader { storage: storage.clone(), warehouse }));
    let metadata = open_metadata_store(config, storage.clone()).await;
    WarehouseActivityImplementations { warehouses: Warehouses { config: config.clone(), duckdb, redshift }, metadata }
}

/// The worker of the ETL task queue: every workflow and the ETL activities, which run the
/// configured ETL engine (load it once per process with [`EtlEngine::load`]), and the
/// warehouse activities of projects on Redshift (see [`warehouse_activities`], without DuckDB).
pub fn etl_worker(
    runtime: &Runtime,
    client: Client,
    engine: Arc<EtlEngine>,
    storage: Storage,
    redshift_activities: Option<WarehouseActivityImplementations>,
    lifecycle_activities: Option<lifecycle::LifecycleActivityImplementations>,
) -> Result<Worker, WorkerError> {
    let task_queue = engine.config().temporal.task_queue.clone();
    let create_error = |reason: String| WorkerError::CreateWorker { task_queue: task_queue.clone(), reason };
    let options = WorkerOptions::new(task_queue.clone())
        .register_workflow::<EtlWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<LoadDataWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<ClearExpiredEventsWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<BackfillWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<AthenaPartitionWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<ScanMetadataWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_workflow::<PipelineLifecycleWorkflow>()
        .map_err(|error| create_error(error.to_string()))?
        .register_activities(EtlActivityImplementations { storage, engine });
    let options = match redshift_activities {
        Some(activities) => options.register_activities(activities),
        None => options,
    };
    let options = match lifecycle_activities {
        Some(activities) => options.register_activities(activities),
        None => options,
    };
    Worker::new(runtime, client, options.build()).map_err(|error| create_error(error.to_string()))
}

/// The worker of the warehouse task queue; only the warehouse owner may run it.
pub fn warehouse_worker(runtime: &Runtime, client: Client, config: &Config, activities: WarehouseActivityImplementations) -> Result<Worker, WorkerError> {
    let task_queue = config.temporal.warehouse_task_queue.clone();
    let options = WorkerOptions::new(task_queue.clone()).register_activities(activities).build();
    Worker::new(runtime, client, options).map_err(|error| WorkerError::CreateWorker { task_queue, reason: error.to_string() })
}

/// The publisher of the task queues' backlog to CloudWatch (`control.backlog_metric`):
/// `control.backlog_task_queues`, else this process's ETL and warehouse queues; with the
/// CloudFormation provisioner also every pipeline's own ETL queue.
pub async fn backlog_publisher(config: &Config, temporal: &Client) -> backlog::BacklogPublisher {
    let sdk = clickstream_control::dynamodb::sdk_config(&config.control.cloudformation_region, &config.control.cloudwatch_endpoint).await;
    let task_queues = match config.control.backlog_task_queues.is_empty() {
        true => vec![config.temporal.task_queue.clone(), config.temporal.warehouse_task_queue.clone()],
        false => config.control.backlog_task_queues.clone(),
    };
    let pipeline_projects = match config.control.provisioner {
        clickstream_core::config::ProvisionerKind::Cloudformation => Some(config.live_projects.clone()),
        clickstream_core::config::ProvisionerKind::Local => None,
    };
    backlog::BacklogPublisher { temporal: temporal.clone(), namespace: config.temporal.namespace.clone(), cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk), task_queues, pipeline_projects }
}

/// The lifecycle activities of this process: the configured provisioner over the control
/// plane's store.
pub async fn lifecycle_activities(config: &Arc<Config>, storage: &Storage, client: &Client, control: clickstream_control::ControlPlane) -> lifecycle::LifecycleActivityImplementations {
    let provisioner: Arc<dyn lifecycle::Provisioner> = match config.control.provisioner {
        clickstream_core::config::ProvisionerKind::Local => {
            Arc::new(lifecycle::local::LocalProvisioner { config: config.clone(), storage: storage.clone(), client: client.clone(), control: control.clone() })
        }
        clickstream_core::config::ProvisionerKind::Cloudformation => Arc::new(lifecycle::cloudformation::CloudFormationProvisioner::connect(config.clone(), control.clone()).await),
    };
    lifecycle::LifecycleActivityImplementations { provisioner, control }
}
