//! `clickstream`: one binary, one subcommand per service. The work is done in the service
//! crates; this file only parses the command line and starts them.

mod serve;

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
    /// Run a Temporal worker for the ETL task queue (EtlWorkflow, LoadDataWorkflow and the ETL
    /// activities) and keep one ETL schedule per configured project. Serves /metrics and /health.
    Worker,
    /// Run the console (REST API under /api/v1 and web pages). It owns the DuckDB warehouse, so it
    /// also runs the worker of the warehouse task queue that loads data into it.
    Console,
    /// Run ingest, worker and console in one process: the local development stack
    /// (see local/up, which also starts Temporal and the other servers).
    Dev,
}

fn main() -> std::process::ExitCode {
    let command = Command::parse();
    serve::init_logging();
    let config = match clickstream_core::Config::load(command.config.as_deref()) {
        Ok(config) => std::sync::Arc::new(config),
        Err(error) => {
            eprintln!("clickstream: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let outcome = runtime.block_on(async {
        match command.role {
            Role::Ingest => serve::run(config, serve::Roles { ingest: true, worker: false, console: false }).await,
            Role::Worker => serve::run(config, serve::Roles { ingest: false, worker: true, console: false }).await,
            Role::Console => serve::run(config, serve::Roles { ingest: false, worker: false, console: true }).await,
            Role::Dev => serve::run(config, serve::Roles { ingest: true, worker: true, console: true }).await,
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
