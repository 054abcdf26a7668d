//! `clickstream etl run`: the engine over a file, a directory or an S3 prefix of raw objects,
//! into a directory or an S3 prefix, outside Temporal. It runs [`CompleteRun`], the code the
//! scheduled workflow runs, with a progress bar on stderr.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use clickstream_core::{
    Config,
    config::StorageConfig,
    storage::{Storage, StorageError},
};
use futures::TryStreamExt;
use object_store::{ObjectStore, local::LocalFileSystem};

use crate::{
    engine::enricher_kinds,
    enrich::{EnricherKind, EnrichmentError, EnrichmentFiles, EnrichmentResources},
    job::JobSettings,
    runner::{CompleteRun, OutputLayout, RunError, RunReport},
    transform::QualityRules,
};

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct OneShotRequest {
    /// A raw file (`.gz` or plain NDJSON), a directory of them, or `s3://bucket/prefix`.
    pub input: String,
    /// A directory or `s3://bucket/prefix`.
    pub output: String,
    pub project_id: String,
    /// Apps whose events are kept; the configured project's apps when empty.
    pub apps: Vec<String>,
    /// Enrichers to run; the project's (or `etl.enrichers`) when empty.
    pub enrichers: Vec<String>,
    pub show_progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot list the input {location}: {source}")]
    ListInput { location: String, source: object_store::Error },
    #[error(transparent)]
    Enrichment(#[from] EnrichmentError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// An object store and the keys to read from it.
struct Input {
    store: Arc<dyn ObjectStore>,
    keys: Vec<String>,
    description: String,
}

fn s3_storage(url: &str, config: &Config) -> Result<Arc<dyn ObjectStore>, OneShotError> {
    let storage = Storage::open(&StorageConfig { url: url.to_string(), endpoint: config.storage.endpoint.clone(), region: config.storage.region.clone() })?;
    Ok(storage.store)
}

fn absolute(path: &Path) -> Result<PathBuf, OneShotError> {
    std::path::absolute(path).map_err(|error| OneShotError::Usage(format!("cannot resolve {}: {error}", path.display())))
}

async fn resolve_input(location: &str, config: &Config) -> Result<Input, OneShotError> {
    if location.starts_with("s3://") {
        let store = s3_storage(location, config)?;
        let keys: Vec<String> = store
            .list(None)
            .map_ok(|object| object.location.to_string())
            .try_collect()
            .await
            .map_err(|source| OneShotError::ListInput { location: location.into(), source })?;
        let mut keys = keys;
        keys.sort();
        return Ok(Input { store, keys, description: location.to_string() });
    }
    let path = absolute(Path::new(location))?;
    if path.is_file() {
        let directory = path.parent().expect("a file has a directory");
        let name = path.file_name().expect("a file has a name").to_string_lossy().to_string();
        let store = Arc::new(LocalFileSystem::new_with_prefix(directory).map_err(|source| OneShotError::ListInput { location: location.into(), source })?);
        return Ok(Input { store, keys: vec![name], description: path.display().to_string() });
    }
    if path.is_dir() {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&path).map_err(|source| OneShotError::ListInput { location: location.into(), source })?);
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|object| object.location.to_string())
            .try_collect()
            .await
            .map_err(|source| OneShotError::ListInput { location: location.into(), source })?;
        keys.sort();
        return Ok(Input { store, keys, description: path.display().to_string() });
    }
    Err(OneShotError::Usage(format!("--input {location}: no such file or directory (expected a raw file, a directory, or s3://bucket/prefix)")))
}

fn resolve_output(location: &str, config: &Config) -> Result<Arc<dyn ObjectStore>, OneShotError> {
    if location.starts_with("s3://") {
        return s3_storage(location, config);
    }
    let path = absolute(Path::new(location))?;
    std::fs::create_dir_all(&path).map_err(|error| OneShotError::Usage(format!("--output {location}: cannot create the directory: {error}")))?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(&path).map_err(|source| OneShotError::ListInput { location: location.into(), source })?))
}

/// Settings from the request, falling back on the configured project.
fn job_settings(request: &OneShotRequest, config: &Config, job_id: String) -> Result<JobSettings, OneShotError> {
    let project = config.project(&request.project_id);
    let apps: HashSet<String> = if !request.apps.is_empty() {
        request.apps.iter().cloned().collect()
    } else if let Some(project) = &project {
        project.apps.iter().cloned().collect()
    } else {
        return Err(OneShotError::Usage(format!("--apps is required: project `{}` is not in the configuration", request.project_id)));
    };
    let enricher_names: Vec<String> = if !request.enrichers.is_empty() {
        request.enrichers.clone()
    } else {
        project.as_ref().map_or(&config.etl.enrichers, |project| project.enrichers.as_ref().unwrap_or(&config.etl.enrichers)).clone()
    };
    if let Some(unknown) = enricher_names.iter().find(|name| EnricherKind::parse(name).is_none()) {
        let known: Vec<&str> = EnricherKind::ALL.iter().map(|kind| kind.name()).collect();
        return Err(OneShotError::Usage(format!("--enrichers: unknown enricher `{unknown}`; known: {}", known.join(", "))));
    }
    let freshness_hours = project.as_ref().map_or(config.etl.freshness_hours, |project| project.freshness_hours(&config.etl));
    Ok(JobSettings {
        rules: QualityRules { project_id: request.project_id.clone(), apps, freshness_msec: freshness_hours as i64 * 3_600_000, correct_clock_skew: config.etl.correct_clock_skew },
        enrichers: enricher_kinds(&enricher_names),
        plugins: Vec::new(),
        transformer: None,
        filter_bots: config.etl.filter_bots,
        job_id,
    })
}

/// Runs the engine once over the input; returns what it did.
pub async fn run_one_shot(request: OneShotRequest, config: &Config) -> Result<RunReport, OneShotError> {
    let input = resolve_input(&request.input, config).await?;
    if input.keys.is_empty() {
        return Err(OneShotError::Usage(format!("--input {}: no raw objects found", input.description)));
    }
    let output = resolve_output(&request.output, config)?;
    let now = chrono::Utc::now();
    let job_id = format!("etl-run-{}", now.format("%Y%m%dT%H%M%S"));
    let settings = job_settings(&request, config, job_id)?;
    let configured = |path: &Path| (!path.as_os_str().is_empty()).then_some(path.to_path_buf());
    let (regexes, geo, rules) = (configured(&config.etl.user_agent_regexes), configured(&config.etl.geo_database), configured(&config.etl.traffic_source_rules_dir));
    let files = EnrichmentFiles { user_agent_regexes: regexes.as_deref(), geo_database: geo.as_deref(), traffic_source_rules_dir: rules.as_deref() };
    let resources = Arc::new(EnrichmentResources::load(&files, &settings.enrichers)?);

    let bar = if request.show_progress { indicatif::ProgressBar::new(input.keys.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} raw objects, {msg} [{elapsed_precise}]").expect("static template"));
    let progress_bar = bar.clone();
    let progress = Box::new(move |objects_done: usize, counters: &crate::transform::QualityCounters| {
        progress_bar.set_position(objects_done as u64);
        progress_bar.set_message(format!("{} events out, {} filtered, {} quarantined", counters.events_out, counters.filtered_unknown_app + counters.filtered_stale + counters.filtered_future + counters.filtered_bot, counters.quarantined_records + counters.quarantined_events));
    });
    let run = CompleteRun {
        resources,
        settings,
        input: input.store,
        keys: input.keys,
        output,
        layout: OutputLayout::for_directory(),
        user_keep_days: config.etl.user_keep_days,
        now,
    };
    let report = run.run(progress).await;
    bar.finish_and_clear();
    Ok(report?)
}

/// The report as a few lines for people (the JSON report is for programs).
pub fn summary_text(report: &RunReport) -> String {
    let counters = &report.counters;
    let mut text = format!(
        "raw objects {}, raw records {}, events in {}\n\
         filtered: unknown app {}, older than the freshness window {}, in the future {}, bots {}\n\
         quarantined: {} records, {} events{}\n\
         rows written: event_v2 {}, item_v2 {}, session {}, user_v2 {} ({} returning)\n\
         files written: {}",
        report.raw_objects,
        counters.raw_records,
        counters.events_in,
        counters.filtered_unknown_app,
        counters.filtered_stale,
        counters.filtered_future,
        counters.filtered_bot,
        counters.quarantined_records,
        counters.quarantined_events,
        report.quarantine_key.as_ref().map(|key| format!(" (in {key})")).unwrap_or_default(),
        report.rows.event_v2,
        report.rows.item_v2,
        report.rows.session,
        report.user_merge.users,
        report.user_merge.returning_users,
        report.files.len(),
    );
    let phases = &report.phases;
    let enrich: Vec<String> = phases.enrich.iter().map(|(name, seconds)| format!("{name} {seconds:.1}")).collect();
    text.push_str(&format!(
        "\nseconds: read {:.1}, decode {:.1}, transform {:.1}, enrich [{}], sessions and users {:.1}, Parquet {:.1}, user merge {:.1}",
        phases.read, phases.decode, phases.transform, enrich.join(", "), phases.aggregate, phases.encode, report.user_merge_seconds
    ));
    if counters.time_corrected > 0 {
        text.push_str(&format!("\nevent times corrected for client clock skew: {}", counters.time_corrected));
    }
    text
}
