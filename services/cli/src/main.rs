//! `clickstream`: one binary, one subcommand per service. The work is done in the service
//! crates; this file only parses the command line and starts them.

mod serve;

/// mimalloc instead of the system allocator: the ETL builds and drops many column buffers per
/// batch, and glibc's allocator served them with fresh pages each time (a third of the
/// encoding time; see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clickstream",
    version,
    about = "Self-hostable clickstream analytics: collect events from the CAoA web and mobile SDKs, \
             transform them on a Temporal schedule, load them into a warehouse, and explore them.",
    long_about = None,
    after_help = "Configuration: a TOML file (--config, see clickstream.example.toml) plus environment \
                  overrides named CLICKSTREAM_<SECTION>__<KEY>, e.g. CLICKSTREAM_INGEST__LISTEN=0.0.0.0:8080.\n\
                  Logs: RUST_LOG (default info); CLICKSTREAM_LOG_FORMAT=json for JSON lines."
)]
struct Command {
    /// Configuration file (TOML). Without it, built-in defaults and CLICKSTREAM_* variables apply.
    #[arg(long, short, global = true, env = "CLICKSTREAM_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Run the collector: accepts SDK requests on POST /collect (CAoA wire protocol) and writes
    /// raw records to the object store. Serves /ping, /health and /metrics.
    Ingest,
    /// Run a Temporal worker for the ETL task queue (EtlWorkflow, LoadDataWorkflow,
    /// ClearExpiredEventsWorkflow, BackfillWorkflow and the ETL activities) and keep each
    /// configured project's schedules (ETL, daily retention). Serves /metrics and /health.
    Worker,
    /// Run the console (REST API under /api/v1 and web pages). It owns the DuckDB warehouse, so it
    /// also runs the worker of the warehouse task queue that loads data into it.
    Console,
    /// Drain the Kafka topics and Kinesis streams of the projects using those sinks into the
    /// object store's raw layer (offsets and checkpoints advance only after the write).
    Bridge,
    /// Run ingest, worker and console in one process: the local development stack
    /// (see local/up, which also starts Temporal and the other servers).
    Dev,
    /// Send realistic SDK requests (web and mobile mixes) to a collector for a while, then print
    /// a one-line JSON summary: requests/s, events/s, p50/p99 latency, errors by status.
    Loadgen(LoadgenArguments),
    /// The ETL by hand: run the engine once outside Temporal, backfill a past range through
    /// Temporal, or generate realistic raw data.
    Etl(EtlArguments),
}

#[derive(clap::Args)]
struct EtlArguments {
    #[command(subcommand)]
    command: EtlCommand,
}

#[derive(Subcommand)]
enum EtlCommand {
    /// Transform raw records (CAoA's or ours) into event_v2, item_v2, user_v2 and session
    /// Parquet, partitioned partition_app/partition_year/partition_month/partition_day.
    /// Broken records go to <output>/_quarantine with the reason; user_v2 state is kept in
    /// <output>/_user_state, so running again over new input continues it. Enricher data and
    /// quality rules come from the [etl] configuration. Prints a summary on stderr and the
    /// JSON report on stdout; exits 1 when the run fails, 2 when the request is wrong.
    #[command(after_help = "Example: clickstream etl run --input raw/ --output out/ --project shop --apps shop-web,shop-ios")]
    Run(EtlRunArguments),
    /// Write realistic raw data (what the collector writes) for benchmarks and trials: requests
    /// of 10 events from web visitors and Android/iOS app users, with sessions, referrers and
    /// UTM links, items, purchases, user attributes and some crawlers. Deterministic per seed.
    Generate(EtlGenerateArguments),
    /// Re-process the raw objects of a project that arrived in [--from, --to) through Temporal
    /// (BackfillWorkflow, on the workers of the ETL task queue), with the same code and outputs
    /// as the scheduled ETL: ranges that overlap what was already loaded add no duplicates.
    /// Shows a progress bar until the backfill ends (also visible in the Temporal UI: the
    /// workflow `backfill-<project>-<from>-<to>` and its `progress` query). Running the same
    /// command again follows the backfill under way; after Ctrl-C the backfill goes on.
    /// Users are merged into user_v2 by the project's next scheduled ETL run.
    #[command(after_help = "Example: clickstream etl backfill --pipeline shop --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z")]
    Backfill(EtlBackfillArguments),
}

#[derive(clap::Args)]
struct EtlBackfillArguments {
    /// The project (pipeline) id.
    #[arg(long, alias = "project")]
    pipeline: String,
    /// Start of the range, RFC 3339 (e.g. 2026-11-01T00:00:00Z): raw objects that arrived at or
    /// after it. Whole hours are processed: a partial hour counts whole.
    #[arg(long)]
    from: chrono::DateTime<chrono::Utc>,
    /// End of the range, RFC 3339 (exclusive).
    #[arg(long)]
    to: chrono::DateTime<chrono::Utc>,
    /// Start the backfill and return at once (print its workflow id) instead of following it.
    #[arg(long)]
    detach: bool,
}

#[derive(clap::Args)]
struct EtlGenerateArguments {
    /// Directory for the raw objects (raw-NNNNN.gz, gzip NDJSON).
    #[arg(long)]
    output: PathBuf,
    /// How many events.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// App ids the events belong to (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "demo-app")]
    apps: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct EtlRunArguments {
    /// A raw file (gzip or plain NDJSON, one request per line), a directory of them, or
    /// s3://bucket/prefix (S3 endpoint and region from [storage]).
    #[arg(long)]
    input: String,
    /// A directory, or s3://bucket/prefix.
    #[arg(long)]
    output: String,
    /// The project id written to project_id.
    #[arg(long)]
    project: String,
    /// Apps whose events are kept (comma-separated); the configured project's apps if omitted.
    #[arg(long, value_delimiter = ',')]
    apps: Vec<String>,
    /// Enrichers to run, in order (comma-separated: page_url, traffic_source, user_agent,
    /// ip_geo); the project's chain, else etl.enrichers, if omitted.
    #[arg(long, value_delimiter = ',')]
    enrichers: Vec<String>,
}

#[derive(clap::Args)]
struct LoadgenArguments {
    /// Collector URL with its path.
    #[arg(long, default_value = "http://127.0.0.1:8080/collect")]
    url: String,
    /// The appId to send as (must be registered at the collector).
    #[arg(long, default_value = "demo-app")]
    app_id: String,
    /// How long to send, e.g. 30s or 2m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events in each request.
    #[arg(long, default_value_t = 10)]
    events_per_request: usize,
    /// Send every request as the mobile SDKs do (base64 gzip); default is a web/mobile mix.
    #[arg(long)]
    gzip: bool,
    /// Write the event ids of accepted (200) requests to this file, one per line.
    #[arg(long)]
    accepted_ids_file: Option<PathBuf>,
    /// Requests per second over all connections (background load); as fast as the collector
    /// answers when omitted.
    #[arg(long)]
    rate: Option<f64>,
}

fn main() -> std::process::ExitCode {
    let command = Command::parse();
    serve::init_logging();
    let role = match command.role {
        Role::Loadgen(arguments) => return run_loadgen(arguments),
        Role::Etl(EtlArguments { command: EtlCommand::Generate(arguments) }) => return generate_raw_data(arguments),
        other => other,
    };
    let config = match clickstream_core::Config::load(command.config.as_deref()) {
        Ok(config) => std::sync::Arc::new(config),
        Err(error) => {
            eprintln!("clickstream: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Role::Etl(EtlArguments { command: EtlCommand::Run(arguments) }) = role {
        return run_etl(arguments, &config);
    }
    if let Role::Etl(EtlArguments { command: EtlCommand::Backfill(arguments) }) = role {
        return run_backfill(arguments, &config);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let outcome = runtime.block_on(async {
        match role {
            Role::Ingest => serve::run(config, command.config.clone(), serve::Roles { ingest: true, ..serve::Roles::NONE }).await,
            Role::Worker => serve::run(config, command.config.clone(), serve::Roles { worker: true, ..serve::Roles::NONE }).await,
            Role::Console => serve::run(config, command.config.clone(), serve::Roles { console: true, ..serve::Roles::NONE }).await,
            Role::Bridge => serve::run(config, command.config.clone(), serve::Roles { bridge: true, ..serve::Roles::NONE }).await,
            Role::Dev => {
                let needs_bridge = config.projects.iter().any(|project| project.sink != clickstream_core::config::SinkKind::S3);
                serve::run(config, command.config.clone(), serve::Roles { ingest: true, worker: true, console: true, bridge: needs_bridge }).await
            }
            Role::Loadgen(_) | Role::Etl(_) => unreachable!("handled before the services start"),
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clickstream: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `clickstream etl run`: exit 2 for a wrong request, 1 for a failed run.
fn run_etl(arguments: EtlRunArguments, config: &clickstream_core::Config) -> std::process::ExitCode {
    let request = clickstream_etl::one_shot::OneShotRequest {
        input: arguments.input,
        output: arguments.output,
        project_id: arguments.project,
        apps: arguments.apps,
        enrichers: arguments.enrichers,
        show_progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    match runtime.block_on(clickstream_etl::one_shot::run_one_shot(request, config)) {
        Ok(report) => {
            eprintln!("{}", clickstream_etl::one_shot::summary_text(&report));
            println!("{}", serde_json::to_string(&report).expect("the report serializes"));
            std::process::ExitCode::SUCCESS
        }
        Err(error @ clickstream_etl::one_shot::OneShotError::Usage(_)) => {
            eprintln!("clickstream etl run: {error}");
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("clickstream etl run: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `clickstream etl backfill`: exit 2 for a wrong request, 1 when the backfill cannot start or
/// fails; the final progress as JSON on stdout.
fn run_backfill(arguments: EtlBackfillArguments, config: &clickstream_core::Config) -> std::process::ExitCode {
    use clickstream_worker::backfill::{BackfillError, follow_backfill, start_backfill};
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let outcome = runtime.block_on(async {
        let client = clickstream_worker::connect(config, std::time::Duration::from_secs(10)).await?;
        let workflow_id = start_backfill(&client, config, &arguments.pipeline, arguments.from, arguments.to).await?;
        eprintln!("backfill workflow {workflow_id} (see the Temporal UI)");
        if arguments.detach {
            return Ok::<_, BackfillError>(serde_json::json!({ "workflow_id": workflow_id }));
        }
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} slices, {msg} [{elapsed_precise}]").expect("static template"));
        let progress = follow_backfill(&client, &workflow_id, std::time::Duration::from_secs(1), |progress| {
            bar.set_length(u64::from(progress.slices_total));
            bar.set_position(u64::from(progress.slices_done));
            bar.set_message(format!("{} raw objects, {} events transformed, {} loaded", progress.raw_objects, progress.transformed.events, progress.loaded.rows_inserted));
        })
        .await;
        bar.finish_and_clear();
        let progress = progress?;
        Ok(serde_json::json!({ "workflow_id": workflow_id, "progress": progress }))
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error @ BackfillError::Usage(_)) => {
            eprintln!("clickstream etl backfill: {error}");
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("clickstream etl backfill: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `clickstream etl generate`: needs no configuration.
fn generate_raw_data(arguments: EtlGenerateArguments) -> std::process::ExitCode {
    let mut settings = clickstream_loadgen::raw::RawDataSettings::new(arguments.apps, arguments.events);
    settings.seed = arguments.seed;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { indicatif::ProgressBar::new(arguments.events) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events [{elapsed_precise}]").expect("static template"));
    let generated = clickstream_loadgen::raw::generate_raw_objects(&settings, &arguments.output, |events| bar.set_position(events));
    bar.finish_and_clear();
    match generated {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).expect("the summary serializes"));
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("clickstream etl generate: cannot write {}: {error}", arguments.output.display());
            std::process::ExitCode::FAILURE
        }
    }
}

/// The load generator needs no configuration: it only talks HTTP to a collector.
fn run_loadgen(arguments: LoadgenArguments) -> std::process::ExitCode {
    let settings = clickstream_loadgen::LoadSettings {
        url: arguments.url,
        app_id: arguments.app_id,
        duration: arguments.duration,
        concurrency: arguments.concurrency.max(1),
        events_per_request: arguments.events_per_request.max(1),
        gzip: arguments.gzip,
        accepted_ids_file: arguments.accepted_ids_file,
        show_progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        requests_per_second: arguments.rate,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    match runtime.block_on(clickstream_loadgen::run(settings)) {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).expect("the summary serializes"));
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("clickstream loadgen: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
