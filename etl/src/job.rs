//! One ETL job: raw NDJSON in, partitioned Parquet, quarantine and user states out.
//!
//! The input is read in batches of [`RECORDS_PER_BATCH`] raw records; each batch is decoded,
//! filtered, enriched, and written before the next is read, so memory does not grow with the
//! input. Sessions and users are collected across batches (they aggregate many events), and
//! are written out early when too many are held ([`MAX_SESSIONS_IN_MEMORY`],
//! [`MAX_USERS_IN_MEMORY`]): partial rows of one session or user combine again in the
//! warehouse and in the user-state merge, so an early write changes no result.
//!
//! Everything lands in a local staging directory; the caller uploads it ([`crate::runner`]).

use std::{
    fs::File,
    io::{BufRead, BufWriter, Write},
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use clickstream_plugins::RawRequest;
use crate::{
    custom_parameters::CustomParameters,
    enrich::{Enricher, EnricherKind, EnrichmentResources, plugin::{ChainPlugin, PluginCaller, PluginEnricher}},
    output::{OutputError, PartitionKey, PartitionedWriter, WrittenFile, utc_day_of as day_of},
    raw_record::{DecodedRecord, java_instant_text},
    rows::{EventRow, ItemRow},
    sessions::{SessionCollector, SessionRow},
    tables::{self, BatchContext},
    transform::{QualityCounters, QualityRules, Quarantined, event_rows_of_record},
    users::{UserCollector, UserState},
};

/// Raw records (requests) decoded and written together.
pub const RECORDS_PER_BATCH: usize = 512;
/// Sessions held before their rows are written early.
pub const MAX_SESSIONS_IN_MEMORY: usize = 200_000;
/// Users held before their states are written early.
pub const MAX_USERS_IN_MEMORY: usize = 200_000;

/// Name of the user-state file in the staging directory.
pub const USERS_FILE: &str = "users.ndjson.gz";
/// Name of the quarantine file in the staging directory.
pub const QUARANTINE_FILE: &str = "quarantine.ndjson.gz";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot read input {input}: {source}")]
    ReadInput { input: String, source: std::io::Error },
    #[error("cannot write {path} in the staging directory: {source}")]
    Staging { path: String, source: std::io::Error },
}

/// What a job does with its events.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub rules: QualityRules,
    pub enrichers: Vec<EnricherKind>,
    /// Custom enricher plugins, run after the built-in enrichers.
    pub plugins: Vec<ChainPlugin>,
    /// A transformer plugin: request bodies go through it before they are parsed as CAoA SDK
    /// events.
    pub transformer: Option<ChainPlugin>,
    /// Drop events whose user agent is a bot's (needs the `user_agent` enricher).
    pub filter_bots: bool,
    /// Names the job's files and is `process_info.process_job_id`.
    pub job_id: String,
}

/// Rows written per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub event_v2: u64,
    pub item_v2: u64,
    pub session: u64,
    /// User states handed to the user merge (one per user and job, or more if spilled).
    pub user_states: u64,
}

/// Where a job spent its time (seconds of the thread running it), for benchmarks and tuning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Reading raw objects: decompression and line splitting.
    pub read: f64,
    /// Raw records to request bodies (JSON, base64, gzip).
    pub decode: f64,
    /// Events to rows: parsing, quality rules, field mapping.
    pub transform: f64,
    /// Each enricher, by name.
    pub enrich: std::collections::BTreeMap<String, f64>,
    /// Sessions and users.
    pub aggregate: f64,
    /// Arrow columns and Parquet files.
    pub encode: f64,
}

/// Seconds since `start`, and `start` moved to now.
fn lap(start: &mut std::time::Instant) -> f64 {
    let now = std::time::Instant::now();
    let seconds = (now - *start).as_secs_f64();
    *start = now;
    seconds
}

/// Everything a finished job produced, in its staging directory.
#[derive(Debug, Clone)]
pub struct JobOutput {
    pub staging: PathBuf,
    pub files: Vec<WrittenFile>,
    /// `USERS_FILE`, when any user was seen.
    pub users_file: Option<PathBuf>,
    /// `QUARANTINE_FILE`, when anything was quarantined.
    pub quarantine_file: Option<PathBuf>,
    pub counters: QualityCounters,
    pub rows: TableRows,
    pub phases: PhaseTimes,
}

/// A gzip NDJSON file written line by line, created on the first line.
struct NdjsonFile {
    path: PathBuf,
    encoder: Option<GzEncoder<BufWriter<File>>>,
}

impl NdjsonFile {
    fn new(path: PathBuf) -> NdjsonFile {
        NdjsonFile { path, encoder: None }
    }

    fn staging_error(&self) -> impl Fn(std::io::Error) -> JobError + '_ {
        |source| JobError::Staging { path: self.path.display().to_string(), source }
    }

    fn append<T: Serialize>(&mut self, value: &T) -> Result<(), JobError> {
        if self.encoder.is_none() {
            let file = File::create(&self.path).map_err(self.staging_error())?;
            self.encoder = Some(GzEncoder::new(BufWriter::new(file), Compression::fast()));
        }
        let path = self.path.display().to_string();
        let encoder = self.encoder.as_mut().expect("created above");
        serde_json::to_writer(&mut *encoder, value).map_err(|error| JobError::Staging { path: path.clone(), source: error.into() })?;
        encoder.write_all(b"\n").map_err(|source| JobError::Staging { path, source })
    }

    fn finish(self) -> Result<Option<PathBuf>, JobError> {
        let Some(encoder) = self.encoder else {
            return Ok(None);
        };
        let path = self.path.display().to_string();
        let mut buffered = encoder.finish().map_err(|source| JobError::Staging { path: path.clone(), source })?;
        buffered.flush().map_err(|source| JobError::Staging { path, source })?;
        Ok(Some(self.path))
    }
}

/// Runs a transformer plugin over the bodies of a batch's records and puts its CAoA SDK
/// events in their place. A request the plugin refuses is quarantined with its reason; when
/// the plugin fails the whole batch, every request of it is.
fn transform_bodies<'l>(
    transformer: &mut PluginCaller,
    records: Vec<(&'l String, DecodedRecord<'l>)>,
    input_name: &str,
    counters: &mut QualityCounters,
    quarantined: &mut Vec<Quarantined>,
) -> Vec<(&'l String, DecodedRecord<'l>)> {
    if records.is_empty() {
        return records;
    }
    let requests: Vec<RawRequest> = records
        .iter()
        .map(|(_, record)| RawRequest {
            app_id: record.context.app_id.as_deref().unwrap_or_default().to_string(),
            body: record.body.as_bytes().to_vec(),
            user_agent: record.context.ua.as_deref().map(str::to_string),
            client_ip: record.context.first_ip().map(str::to_string),
            ingest_time_msec: record.context.ingest_time_msec,
        })
        .collect();
    let mut quarantine = |line: &str, reason: String| {
        counters.quarantined_records += 1;
        quarantined.push(Quarantined { reason, input: input_name.to_string(), event_index: None, original: line.to_string() });
    };
    let plugin_id = transformer.chain_plugin.id.clone();
    let answers = match transformer.call(|session, config| session.transform(config, &requests)) {
        Ok(answers) => answers,
        Err(failure) => {
            tracing::warn!(%failure, plugin = %plugin_id, requests = records.len(), input = input_name, "quarantining a batch a transformer plugin failed");
            for (line, _) in &records {
                quarantine(line, format!("transformer plugin `{plugin_id}` failed the batch: {failure}"));
            }
            return Vec::new();
        }
    };
    records
        .into_iter()
        .zip(answers)
        .filter_map(|((line, mut record), answer)| match answer {
            Ok(events) => {
                record.body = std::borrow::Cow::Owned(events);
                Some((line, record))
            }
            Err(reason) => {
                quarantine(line, format!("transformer plugin `{plugin_id}` refused the request: {reason}"));
                None
            }
        })
        .collect()
}

pub struct EtlJob {
    settings: JobSettings,
    /// The transformer plugin, kept in one instance for the job like the enricher plugins.
    transformer: Option<PluginCaller>,
    chain: Vec<Box<dyn Enricher>>,
    context: BatchContext,
    staging: PathBuf,
    writer: PartitionedWriter,
    sessions: SessionCollector,
    users: UserCollector,
    users_file: NdjsonFile,
    quarantine_file: NdjsonFile,
    counters: QualityCounters,
    rows: TableRows,
    phases: PhaseTimes,
}

impl EtlJob {
    /// A job writing into `staging` (which must exist and be empty).
    pub fn new(settings: JobSettings, resources: &EnrichmentResources, staging: &Path, now: chrono::DateTime<chrono::Utc>) -> EtlJob {
        let context = BatchContext {
            process_job_id: settings.job_id.clone(),
            process_time: java_instant_text(now.timestamp_millis()),
            created_time_micros: now.timestamp_micros(),
        };
        EtlJob {
            transformer: settings.transformer.clone().map(PluginCaller::new),
            chain: resources.chain(&settings.enrichers).into_iter().chain(settings.plugins.iter().map(|plugin| -> Box<dyn Enricher> { Box::new(PluginEnricher::new(plugin.clone())) })).collect(),
            writer: PartitionedWriter::new(staging, &settings.job_id),
            users_file: NdjsonFile::new(staging.join(USERS_FILE)),
            quarantine_file: NdjsonFile::new(staging.join(QUARANTINE_FILE)),
            staging: staging.to_path_buf(),
            settings,
            context,
            sessions: SessionCollector::default(),
            users: UserCollector::default(),
            counters: QualityCounters::default(),
            rows: TableRows::default(),
            phases: PhaseTimes::default(),
        }
    }

    /// Adds an enricher at the end of the chain (benchmarks compare enrichers this way).
    pub fn add_enricher(&mut self, enricher: Box<dyn Enricher>) {
        self.chain.push(enricher);
    }

    pub fn counters(&self) -> &QualityCounters {
        &self.counters
    }

    /// Processes the NDJSON lines of one raw object. A line that is not UTF-8 is quarantined;
    /// an object that cannot be decompressed is quarantined from the point it breaks (the
    /// records before it are processed, and the warehouse drops their duplicates if the object
    /// is reprocessed). Other read errors fail the job: they may pass on a retry.
    pub fn process_object(&mut self, mut reader: impl BufRead, input_name: &str) -> Result<(), JobError> {
        let started = std::time::Instant::now();
        let processing_before = self.processing_seconds();
        let mut lines = Vec::with_capacity(RECORDS_PER_BATCH);
        let mut buffer = Vec::with_capacity(4096);
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if matches!(error.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput | std::io::ErrorKind::UnexpectedEof) => {
                    self.counters.quarantined_records += 1;
                    let reason = format!("the raw object cannot be decompressed after {} records: {error}", self.counters.raw_records);
                    self.quarantine_file.append(&Quarantined { reason, input: input_name.to_string(), event_index: None, original: String::new() })?;
                    break;
                }
                Err(source) => return Err(JobError::ReadInput { input: input_name.to_string(), source }),
            }
            while buffer.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
                buffer.pop();
            }
            // A fresh buffer of the same capacity: the next line needs no growing.
            let capacity = buffer.capacity();
            let line = match String::from_utf8(std::mem::replace(&mut buffer, Vec::with_capacity(capacity))) {
                Ok(line) => line,
                Err(not_utf8) => {
                    self.counters.raw_records += 1;
                    self.counters.quarantined_records += 1;
                    let original = String::from_utf8_lossy(not_utf8.as_bytes()).into_owned();
                    self.quarantine_file.append(&Quarantined { reason: "raw record is not UTF-8".into(), input: input_name.to_string(), event_index: None, original })?;
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            lines.push(line);
            if lines.len() == RECORDS_PER_BATCH {
                self.process_batch(&lines, input_name)?;
                lines.clear();
            }
        }
        if !lines.is_empty() {
            self.process_batch(&lines, input_name)?;
        }
        self.phases.read += started.elapsed().as_secs_f64() - (self.processing_seconds() - processing_before);
        Ok(())
    }

    fn processing_seconds(&self) -> f64 {
        let phases = &self.phases;
        phases.decode + phases.transform + phases.enrich.values().sum::<f64>() + phases.aggregate + phases.encode
    }

    /// Processes one batch of raw record lines.
    pub fn process_batch(&mut self, lines: &[String], input_name: &str) -> Result<(), JobError> {
        let mut clock = std::time::Instant::now();
        let mut quarantined = Vec::new();
        let mut records = Vec::with_capacity(lines.len());
        for line in lines {
            self.counters.raw_records += 1;
            match DecodedRecord::decode(line, input_name) {
                Ok(record) => records.push((line, record)),
                Err(defect) => {
                    self.counters.quarantined_records += 1;
                    quarantined.push(Quarantined { reason: defect.to_string(), input: input_name.to_string(), event_index: None, original: line.clone() });
                }
            }
        }
        self.phases.decode += lap(&mut clock);
        if let Some(transformer) = &mut self.transformer {
            records = transform_bodies(transformer, records, input_name, &mut self.counters, &mut quarantined);
            *self.phases.enrich.entry(transformer.chain_plugin.id.clone()).or_default() += lap(&mut clock);
        }
        let mut rows: Vec<EventRow<'_>> = Vec::with_capacity(records.len() * 10);
        for (line, record) in &records {
            match record.events() {
                Ok(events) => event_rows_of_record(record, events, &self.settings.rules, line, &mut self.counters, &mut quarantined, &mut rows),
                Err(defect) => {
                    self.counters.quarantined_records += 1;
                    quarantined.push(Quarantined { reason: defect.to_string(), input: input_name.to_string(), event_index: None, original: line.to_string() });
                }
            }
        }
        self.phases.transform += lap(&mut clock);
        for enricher in &mut self.chain {
            let outcome = enricher.enrich(&mut rows);
            *self.phases.enrich.entry(enricher.name().to_string()).or_default() += lap(&mut clock);
            if let Err(failure) = outcome {
                // A plugin failed the batch: none of its rows is written, and every request of
                // the batch is quarantined with the reason, to be replayed once the plugin is
                // fixed. The job goes on with the next batch.
                tracing::warn!(%failure, requests = records.len(), events = rows.len(), input = input_name, "quarantining a batch a plugin failed");
                // What was quarantined alone from a request now quarantined whole would be
                // quarantined twice (and replayed twice): only the whole request is kept.
                let whole_requests: std::collections::HashSet<&str> = records.iter().map(|(line, _)| line.as_str()).collect();
                let (superseded, quarantined_alone): (Vec<Quarantined>, Vec<Quarantined>) = quarantined.into_iter().partition(|record| whole_requests.contains(record.original.as_str()));
                let requests_already_counted = superseded.iter().filter(|record| record.event_index.is_none()).count();
                self.counters.quarantined_records += (records.len() - requests_already_counted) as u64;
                self.counters.quarantined_events += rows.len() as u64;
                for record in &quarantined_alone {
                    self.quarantine_file.append(record)?;
                }
                for (line, _) in &records {
                    self.quarantine_file.append(&Quarantined { reason: failure.to_string(), input: input_name.to_string(), event_index: None, original: line.to_string() })?;
                }
                return Ok(());
            }
        }
        for record in &quarantined {
            self.quarantine_file.append(record)?;
        }
        // Rows are large: from here on they are referred to, never moved.
        let kept: Vec<&EventRow<'_>> = if self.settings.filter_bots { rows.iter().filter(|row| !row.user_agent.is_bot()).collect() } else { rows.iter().collect() };
        self.counters.filtered_bot += (rows.len() - kept.len()) as u64;
        self.counters.events_out += kept.len() as u64;
        self.sessions.add_events(&kept);
        self.users.add_events(&kept);
        self.phases.aggregate += lap(&mut clock);
        Self::write_events_and_items(&mut self.writer, &self.context, &mut self.rows, &kept)?;
        self.phases.encode += lap(&mut clock);
        if self.sessions.len() >= MAX_SESSIONS_IN_MEMORY {
            self.write_sessions()?;
        }
        if self.users.len() >= MAX_USERS_IN_MEMORY {
            self.write_users()?;
        }
        Ok(())
    }

    fn write_events_and_items(writer: &mut PartitionedWriter, context: &BatchContext, counts: &mut TableRows, rows: &[&EventRow<'_>]) -> Result<(), JobError> {
        // A batch spans few partitions (apps × days): a list beats a map here.
        let mut groups: Vec<(String, NaiveDate, Vec<&EventRow<'_>>)> = Vec::new();
        for &row in rows {
            let day = day_of(row.event_time_msec);
            match groups.iter_mut().find(|(app_id, group_day, _)| *app_id == row.sdk.app_id && *group_day == day) {
                Some((_, _, group)) => group.push(row),
                None => groups.push((row.sdk.app_id.to_string(), day, vec![row])),
            }
        }
        for (app_id, day, group) in groups {
            let events = tables::event_v2::record_batch(&group, context);
            writer.write(&PartitionKey { table: tables::event_v2::TABLE_NAME, app_id: app_id.clone(), day }, &events.schema(), &events)?;
            counts.event_v2 += group.len() as u64;
            let items = item_rows(&group);
            if !items.is_empty() {
                let item_references: Vec<&ItemRow<'_, '_>> = items.iter().collect();
                let batch = tables::item_v2::record_batch(&item_references, context);
                writer.write(&PartitionKey { table: tables::item_v2::TABLE_NAME, app_id, day }, &batch.schema(), &batch)?;
                counts.item_v2 += items.len() as u64;
            }
        }
        Ok(())
    }

    fn write_sessions(&mut self) -> Result<(), JobError> {
        let partition_of = |session: &SessionRow| (session.app_id.clone(), day_of(session.event_time_msec));
        let mut sessions = self.sessions.take_rows();
        sessions.sort_by_cached_key(partition_of);
        for group in sessions.chunk_by(|left, right| partition_of(left) == partition_of(right)) {
            let (app_id, day) = partition_of(&group[0]);
            let references: Vec<&SessionRow> = group.iter().collect();
            let batch = tables::session::record_batch(&references, &self.context);
            self.writer.write(&PartitionKey { table: tables::session::TABLE_NAME, app_id, day }, &batch.schema(), &batch)?;
            self.rows.session += group.len() as u64;
        }
        Ok(())
    }

    fn write_users(&mut self) -> Result<(), JobError> {
        for state in self.users.take_states() {
            self.users_file.append(&state)?;
            self.rows.user_states += 1;
        }
        Ok(())
    }

    /// Writes what is still held and closes every file.
    pub fn finish(mut self) -> Result<JobOutput, JobError> {
        let mut clock = std::time::Instant::now();
        self.write_sessions()?;
        self.write_users()?;
        let files = self.writer.finish()?;
        self.phases.encode += lap(&mut clock);
        Ok(JobOutput {
            staging: self.staging,
            files,
            users_file: self.users_file.finish()?,
            quarantine_file: self.quarantine_file.finish()?,
            counters: self.counters,
            rows: self.rows,
            phases: self.phases,
        })
    }
}

/// The items of kept events that have an id; an item listed twice in one event counts once.
fn item_rows<'r, 'a>(events: &[&'r EventRow<'a>]) -> Vec<ItemRow<'r, 'a>> {
    let mut items = Vec::new();
    for &event in events {
        let mut seen: Vec<&str> = Vec::new();
        for item in &event.sdk.items {
            let Some(item_id) = item.id.as_deref().filter(|id| !id.is_empty()) else {
                continue;
            };
            if seen.contains(&item_id) {
                continue;
            }
            seen.push(item_id);
            let custom_parameters = CustomParameters::from_groups(&[&item.custom]);
            let custom_parameters_json = custom_parameters.json_string();
            items.push(ItemRow { event, item, custom_parameters, custom_parameters_json });
        }
    }
    items
}

/// Reads a user-state file written by a job.
pub fn read_user_states(path: &Path) -> Result<Vec<UserState>, JobError> {
    let file = File::open(path).map_err(|source| JobError::ReadInput { input: path.display().to_string(), source })?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut states = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(|source| JobError::ReadInput { input: path.display().to_string(), source })?;
        let state: UserState = serde_json::from_str(&line).map_err(|error| JobError::ReadInput { input: path.display().to_string(), source: error.into() })?;
        states.push(state);
    }
    Ok(states)
}
