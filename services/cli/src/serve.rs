//! Starts the chosen roles in this process and stops them cleanly on SIGINT/SIGTERM.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, routing::get};
use clickstream_core::{Config, storage::Storage};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// How long a stopping collector keeps shipping its spool before leaving the rest on disk.
const SHIPPER_DRAIN_PATIENCE: Duration = Duration::from_secs(20);

pub struct Roles {
    pub ingest: bool,
    pub worker: bool,
    pub console: bool,
    pub bridge: bool,
}

impl Roles {
    pub const NONE: Roles = Roles { ingest: false, worker: false, console: false, bridge: false };
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("CLICKSTREAM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the roles until a shutdown signal, then drains them.
pub async fn run(config: Arc<Config>, config_file: Option<std::path::PathBuf>, roles: Roles) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the Prometheus recorder")?;
    let storage = Storage::open(&config.storage).context("opening the object store")?;
    // Every role serves the pipelines of the control store too: read them before serving.
    let control_store = clickstream_control::open_store(&config).await.context("opening the control plane's store (see [control])")?;
    if let Err(error) = clickstream_control::live::refresh_live_projects(&config, &control_store).await {
        tracing::warn!(%error, "cannot read the control store's pipelines yet; retrying in the background");
    }
    clickstream_control::live::keep_live_projects_fresh(config.clone(), control_store.clone());
    let control = clickstream_control::ControlPlane::new(control_store, config.clone());
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let mut servers = tokio::task::JoinSet::new();
    let mut ingest_drain = None;
    if roles.ingest {
        let service = clickstream_ingest::IngestService::start(config.clone(), storage.store.clone()).await.context("starting the collector")?;
        if let Some(file) = config_file {
            service.state.apps.refresh_from_file(file, Duration::from_secs(config.ingest.app_refresh_seconds));
        }
        let router = with_metrics(clickstream_ingest::router(service.state), metrics.clone());
        servers.spawn(serve_http("ingest", config.ingest.listen, router, shutdown.clone()));
        ingest_drain = Some((service.spool_writer, service.shipper));
    }
    // The enrichers' data is loaded before anything is served, so a missing file stops the
    // process at start with the key to fix.
    let etl_engine = if roles.worker {
        let engine = clickstream_worker::EtlEngine::load(config.clone()).context("loading the ETL enrichers' data (see the [etl] configuration)")?;
        Some(Arc::new(engine))
    } else {
        None
    };
    let mut console_state = None;
    let warehouse = if roles.console {
        let path = config.warehouse.duckdb_path.clone();
        let warehouse = clickstream_activities::DuckDbWarehouse::open(&path).with_context(|| format!("opening the DuckDB warehouse {}", path.display()))?;
        Some(Arc::new(warehouse))
    } else {
        None
    };
    if let Some(warehouse) = &warehouse {
        let metadata = clickstream_activities::metadata::open_metadata_store(&config, storage.clone()).await;
        let state = Arc::new(clickstream_console::ConsoleState {
            config: config.clone(),
            warehouse: warehouse.clone(),
            metadata,
            control: control.clone(),
            temporal: std::sync::OnceLock::new(),
            token_validator: clickstream_console::auth::token_validator(&config.console.oidc),
            redshift: redshift_for_reports(&config, &storage).await,
            report_catalogs: Default::default(),
            storage: storage.clone(),
            plugins: Arc::new(clickstream_plugins::PluginRuntime::new(clickstream_etl::engine::plugin_limits(&config)).context("setting up the plugin sandbox")?),
        });
        console_state = Some(state.clone());
        let router = with_metrics(clickstream_console::router(state), metrics.clone());
        servers.spawn(serve_http("console", config.console.listen, router, shutdown.clone()));
    }
    if roles.bridge {
        let (bridge_config, store, bridge_shutdown) = (config.clone(), storage.store.clone(), shutdown.clone());
        servers.spawn(async move {
            let stopped = async move { bridge_shutdown.cancelled().await };
            clickstream_ingest::bridge::run_bridges(bridge_config, store, stopped).await.context("the bridge failed")
        });
        if !roles.ingest && !roles.console && !roles.worker {
            let router = with_metrics(Router::new().route("/health", get(|| async { "ok" })), metrics.clone());
            servers.spawn(serve_http("bridge", config.worker.listen, router, shutdown.clone()));
        }
    }
    if roles.worker && !roles.console {
        let router = with_metrics(Router::new().route("/health", get(|| async { "ok" })), metrics.clone());
        servers.spawn(serve_http("worker", config.worker.listen, router, shutdown.clone()));
    }

    if roles.worker || warehouse.is_some() {
        run_temporal_workers(&config, &storage, etl_engine, warehouse, TemporalUsers { control, console: console_state }, shutdown.clone()).await?;
    } else {
        shutdown.cancelled().await;
    }

    while let Some(result) = servers.join_next().await {
        result.context("an HTTP server task panicked")??;
    }
    if let Some((spool_writer, shipper)) = ingest_drain {
        // The router is gone, so the spool writer seals its last segment and stops; the shipper
        // then ships what is left. Whatever it cannot ship in time stays in the spool on disk
        // and is shipped at the next start: nothing acknowledged is lost either way.
        tokio::task::spawn_blocking(move || spool_writer.join()).await?.map_err(|_| anyhow::anyhow!("the spool writer panicked"))?;
        match tokio::time::timeout(SHIPPER_DRAIN_PATIENCE, shipper).await {
            Ok(joined) => {
                joined.context("the ingest shipper panicked")?;
                tracing::info!("ingest spool drained to the object store");
            }
            Err(_) => tracing::warn!(patience = ?SHIPPER_DRAIN_PATIENCE, "the object store is slow or down: the rest of the spool is shipped at the next start"),
        }
    }
    Ok(())
}

/// What needs the Temporal connection besides the workers: the lifecycle activities (over the
/// control plane) and the console's pipeline routes.
struct TemporalUsers {
    control: clickstream_control::ControlPlane,
    console: Option<Arc<clickstream_console::ConsoleState>>,
}

/// Drives the Temporal workers on this thread (`Worker::run` is not `Send`) until shutdown.
async fn run_temporal_workers(
    config: &Arc<Config>,
    storage: &Storage,
    etl: Option<Arc<clickstream_worker::EtlEngine>>,
    warehouse: Option<Arc<clickstream_activities::DuckDbWarehouse>>,
    users: TemporalUsers,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = tokio::select! {
        client = clickstream_worker::connect(config, Duration::from_secs(120)) => client?,
        () = shutdown.cancelled() => return Ok(()),
    };
    if let Some(console) = &users.console {
        let _ = console.temporal.set(client.clone());
    }
    let runtime = clickstream_worker::runtime()?;
    let mut workers = Vec::new();
    if let Some(engine) = etl {
        clickstream_worker::ensure_schedules(&client, config).await?;
        if config.control.backlog_metric {
            let publisher = clickstream_worker::backlog_publisher(config, &client).await;
            tokio::spawn(publisher.run(shutdown.clone()));
        }
        let uses_redshift = config.projects.iter().any(|project| project.warehouse == clickstream_core::config::WarehouseKind::Redshift);
        let redshift_activities = if uses_redshift { Some(clickstream_worker::warehouse_activities(config, storage, None).await) } else { None };
        let lifecycle = clickstream_worker::lifecycle_activities(config, storage, &client, users.control.clone()).await;
        workers.push(clickstream_worker::etl_worker(&runtime, client.clone(), engine, storage.clone(), redshift_activities, Some(lifecycle))?);
    }
    if let Some(warehouse) = warehouse {
        let activities = clickstream_worker::warehouse_activities(config, storage, Some(warehouse)).await;
        workers.push(clickstream_worker::warehouse_worker(&runtime, client.clone(), config, activities)?);
    }
    let stop_handles: Vec<_> = workers.iter().map(|worker| worker.shutdown_handle()).collect();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            tokio::task::spawn_local(async move {
                shutdown.cancelled().await;
                for stop in stop_handles {
                    stop();
                }
            });
            let runs = workers.iter_mut().map(|worker| worker.run());
            for result in futures::future::join_all(runs).await {
                result.context("a Temporal worker failed")?;
            }
            anyhow::Ok(())
        })
        .await
}

fn with_metrics(router: Router, metrics: PrometheusHandle) -> Router {
    router.route("/metrics", get(move || std::future::ready(metrics.render())))
}

async fn serve_http(name: &'static str, listen: SocketAddr, router: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("{name}: cannot listen on {listen}"))?;
    tracing::info!(service = name, address = %listen, "listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .with_context(|| format!("{name}: HTTP server failed"))
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested; draining");
    shutdown.cancel();
}

/// The Redshift warehouse the console's reports of Redshift projects run on, when
/// `[warehouse.redshift]` names a workgroup or a cluster.
async fn redshift_for_reports(config: &Config, storage: &Storage) -> Option<Arc<clickstream_activities::redshift::RedshiftWarehouse>> {
    let settings = &config.warehouse.redshift;
    if settings.workgroup_name.is_empty() && settings.cluster_identifier.is_empty() {
        return None;
    }
    Some(Arc::new(clickstream_activities::redshift::RedshiftWarehouse::connect(settings, storage.clone()).await))
}
