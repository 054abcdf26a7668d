//! Running the engine against object stores: read raw objects, transform them in a blocking
//! thread, publish the staged files, and merge the users. The ETL activities and
//! `clickstream etl run` are both built from these steps, so they run the same code.

use std::{
    io::{BufRead, BufReader, Cursor, Read},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Datelike, Utc};
use futures::TryStreamExt;
use object_store::{GetResultPayload, ObjectStore, path::Path as ObjectPath};
use tokio::io::AsyncWriteExt;

use crate::{
    enrich::EnrichmentResources,
    job::{EtlJob, JobError, JobOutput, JobSettings},
    output::WrittenFile,
    tables::BatchContext,
    transform::QualityCounters,
    user_state::{UserMerge, UserMergeCounts, UserStateError},
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read raw object `{key}`: {source}")]
    ReadObject { key: String, source: object_store::Error },
    #[error("cannot read raw object `{key}`: {source}")]
    ReadLocal { key: String, source: std::io::Error },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("cannot publish `{key}`: {reason}")]
    Publish { key: String, reason: String },
    #[error(transparent)]
    UserState(#[from] UserStateError),
    #[error("cannot create a staging directory: {0}")]
    Staging(std::io::Error),
    #[error("the transform thread stopped: {0}")]
    Thread(String),
}

impl RunError {
    /// Whether running the same step again can succeed (the store or the disk may recover).
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::ReadObject { .. } | RunError::ReadLocal { .. } | RunError::Publish { .. } | RunError::Staging(_) | RunError::Thread(_) => true,
            RunError::UserState(error) => error.is_retryable(),
            RunError::Job(JobError::Staging { .. }) => true,
            RunError::Job(_) => false,
        }
    }
}

/// Where a run's outputs go in the output store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    /// `<table>/partition_app=…/…` goes under this.
    pub processed_prefix: String,
    /// Quarantined records: `<prefix>/year=…/month=…/day=…/<job>.ndjson.gz`.
    pub quarantine_prefix: String,
    /// The user state shards.
    pub user_state_prefix: String,
}

impl OutputLayout {
    /// A project's layout in the shared store (what the workflows use).
    pub fn for_project(project_id: &str) -> OutputLayout {
        OutputLayout {
            processed_prefix: clickstream_core::layout::processed_prefix(project_id),
            quarantine_prefix: clickstream_core::layout::quarantine_prefix(project_id),
            user_state_prefix: clickstream_core::layout::user_state_prefix(project_id),
        }
    }

    /// A plain output directory (the one-shot CLI): tables at its top.
    pub fn for_directory() -> OutputLayout {
        OutputLayout { processed_prefix: String::new(), quarantine_prefix: "_quarantine".into(), user_state_prefix: "_user_state".into() }
    }

    pub fn processed_key(&self, relative_path: &str) -> String {
        join_key(&self.processed_prefix, relative_path)
    }

    pub fn quarantine_key(&self, day: chrono::NaiveDate, job_id: &str) -> String {
        join_key(&self.quarantine_prefix, &format!("year={:04}/month={:02}/day={:02}/{job_id}.ndjson.gz", day.year(), day.month(), day.day()))
    }
}

fn join_key(prefix: &str, rest: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { rest.to_string() } else { format!("{prefix}/{rest}") }
}

/// A file in the output store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PublishedFile {
    pub key: String,
    pub table: String,
    pub app_id: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Called after each raw object with how many are done and the counters so far.
pub type Progress = Box<dyn FnMut(usize, &QualityCounters) + Send>;

/// Opens a raw object as lines: local files are streamed, remote objects read whole (they
/// are bounded by the collector's batch size); gzip is recognised by its magic bytes.
fn open_raw_object(handle: &tokio::runtime::Handle, store: &dyn ObjectStore, key: &str) -> Result<Box<dyn BufRead>, RunError> {
    let result = handle.block_on(store.get(&ObjectPath::from(key))).map_err(|source| RunError::ReadObject { key: key.into(), source })?;
    let mut reader: Box<dyn BufRead> = match result.payload {
        GetResultPayload::File(file, _) => Box::new(BufReader::with_capacity(256 * 1024, file)),
        GetResultPayload::Stream(stream) => {
            let chunks: Vec<bytes::Bytes> = handle.block_on(stream.try_collect()).map_err(|source| RunError::ReadObject { key: key.into(), source })?;
            Box::new(Cursor::new(chunks.concat()))
        }
    };
    let head = reader.fill_buf().map_err(|source| RunError::ReadLocal { key: key.into(), source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder: Box<dyn Read> = Box::new(flate2::read::MultiGzDecoder::new(reader));
        return Ok(Box::new(BufReader::with_capacity(256 * 1024, decoder)));
    }
    Ok(reader)
}

/// Transforms raw objects into a staging directory, in a blocking thread (the work is CPU).
pub async fn transform_objects(
    resources: Arc<EnrichmentResources>,
    settings: JobSettings,
    input: Arc<dyn ObjectStore>,
    keys: Vec<String>,
    staging: PathBuf,
    now: DateTime<Utc>,
    mut progress: Progress,
) -> Result<JobOutput, RunError> {
    let handle = tokio::runtime::Handle::current();
    tokio::fs::create_dir_all(&staging).await.map_err(RunError::Staging)?;
    tokio::task::spawn_blocking(move || -> Result<JobOutput, RunError> {
        let mut job = EtlJob::new(settings, &resources, &staging, now);
        for (index, key) in keys.iter().enumerate() {
            let reader = open_raw_object(&handle, input.as_ref(), key)?;
            job.process_object(reader, key)?;
            progress(index + 1, job.counters());
        }
        Ok(job.finish()?)
    })
    .await
    .map_err(|error| RunError::Thread(error.to_string()))?
}

/// Uploads a local file (multipart when large).
pub async fn publish_file(store: Arc<dyn ObjectStore>, local_path: &Path, key: &str) -> Result<(), RunError> {
    let failure = |reason: String| RunError::Publish { key: key.to_string(), reason };
    let mut file = tokio::fs::File::open(local_path).await.map_err(|error| failure(error.to_string()))?;
    let mut writer = object_store::buffered::BufWriter::new(store, ObjectPath::from(key));
    tokio::io::copy(&mut file, &mut writer).await.map_err(|error| failure(error.to_string()))?;
    writer.shutdown().await.map_err(|error| failure(error.to_string()))?;
    Ok(())
}

/// Uploads the staged table files of a job or merge.
pub async fn publish_files(store: Arc<dyn ObjectStore>, layout: &OutputLayout, staging: &Path, files: &[WrittenFile]) -> Result<Vec<PublishedFile>, RunError> {
    let mut published = Vec::with_capacity(files.len());
    for file in files {
        let key = layout.processed_key(&file.relative_path);
        publish_file(store.clone(), &staging.join(&file.relative_path), &key).await?;
        published.push(PublishedFile { key, table: file.table.clone(), app_id: file.app_id.clone(), rows: file.rows, bytes: file.bytes });
    }
    Ok(published)
}

/// Everything one complete run did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    pub raw_objects: u64,
    pub counters: QualityCounters,
    pub rows: crate::job::TableRows,
    pub user_merge: UserMergeCounts,
    pub files: Vec<PublishedFile>,
    pub quarantine_key: Option<String>,
    /// Where the transform spent its time.
    pub phases: crate::job::PhaseTimes,
    /// Seconds to merge the users and write `user_v2`.
    pub user_merge_seconds: f64,
}

/// A complete run: transform, publish, merge users, publish users. What `clickstream etl run`
/// does, and what the scheduled workflow does across its activities.
pub struct CompleteRun {
    pub resources: Arc<EnrichmentResources>,
    pub settings: JobSettings,
    pub input: Arc<dyn ObjectStore>,
    pub keys: Vec<String>,
    pub output: Arc<dyn ObjectStore>,
    pub layout: OutputLayout,
    pub user_keep_days: u32,
    pub now: DateTime<Utc>,
}

impl CompleteRun {
    pub async fn run(self, progress: Progress) -> Result<RunReport, RunError> {
        let staging = tempfile::tempdir().map_err(RunError::Staging)?;
        let job_id = self.settings.job_id.clone();
        let raw_objects = self.keys.len() as u64;
        let job = transform_objects(self.resources, self.settings, self.input, self.keys, staging.path().join("transform"), self.now, progress).await?;
        let mut files = publish_files(self.output.clone(), &self.layout, &job.staging, &job.files).await?;
        let quarantine_key = match &job.quarantine_file {
            Some(path) => {
                let key = self.layout.quarantine_key(self.now.date_naive(), &job_id);
                publish_file(self.output.clone(), path, &key).await?;
                Some(key)
            }
            None => None,
        };
        let context = BatchContext {
            process_job_id: job_id,
            process_time: crate::raw_record::java_instant_text(self.now.timestamp_millis()),
            created_time_micros: self.now.timestamp_micros(),
        };
        let merge = UserMerge { store: self.output.as_ref(), state_prefix: self.layout.user_state_prefix.clone(), keep_days: self.user_keep_days, now: self.now, context };
        let users_staging = staging.path().join("users");
        let incoming: Vec<PathBuf> = job.users_file.iter().cloned().collect();
        let merge_started = std::time::Instant::now();
        let (user_files, user_merge) = merge.run(&incoming, &users_staging).await?;
        let user_merge_seconds = merge_started.elapsed().as_secs_f64();
        files.extend(publish_files(self.output.clone(), &self.layout, &users_staging, &user_files).await?);
        Ok(RunReport { raw_objects, counters: job.counters, rows: job.rows, user_merge, files, quarantine_key, phases: job.phases, user_merge_seconds })
    }
}
