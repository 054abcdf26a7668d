//! Activities of the ETL task queue: plan a window, transform its chunks, commit the window,
//! and keep the pending-load bookkeeping of the load workflow.

use std::{collections::{BTreeMap, HashSet}, sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use clickstream_core::{Config, layout, storage::Storage, wire::gzip};
use clickstream_workflows::{activities::names, types::*};
use futures::TryStreamExt;
use object_store::{ObjectMeta, path::Path};
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{
    errors::ActivityFailure,
    event_table::{EVENT_TABLE_NAME, encode_parquet},
    manifest::{LoadManifest, ManifestEntry, ManifestEntryMeta, PendingLoad},
    object_io::*,
    transform::{EventRow, TransformOutput, transform_raw_lines},
};

/// A chunk holds at most this many raw objects…
pub const MAX_OBJECTS_PER_CHUNK: usize = 64;
/// …and at most this many compressed bytes.
pub const MAX_BYTES_PER_CHUNK: u64 = 64 * 1024 * 1024;

/// Progress of a project's ETL, kept in the object store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EtlState {
    /// Every raw object last modified before this instant has been transformed.
    pub processed_until_ms: i64,
}

/// The raw objects of one run, split into chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EtlPlanDocument {
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub chunks: Vec<Vec<RawObject>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawObject {
    pub key: String,
    pub size: u64,
}

pub struct EtlActivityImplementations {
    pub storage: Storage,
    pub config: Arc<Config>,
}

#[activities]
impl EtlActivityImplementations {
    #[activity(name = names::PLAN_ETL_WINDOW)]
    pub async fn plan_etl_window(self: Arc<Self>, _ctx: ActivityContext, input: EtlInput) -> Result<EtlPlan, ActivityError> {
        self.plan(&input, Utc::now()).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::TRANSFORM_CHUNK)]
    pub async fn transform_chunk(self: Arc<Self>, ctx: ActivityContext, input: TransformChunkInput) -> Result<TransformCounters, ActivityError> {
        self.transform(&input, Some(&ctx)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::COMMIT_ETL_WINDOW)]
    pub async fn commit_etl_window(self: Arc<Self>, _ctx: ActivityContext, input: CommitWindowInput) -> Result<(), ActivityError> {
        self.commit(&input).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::PREPARE_LOAD_BATCH)]
    pub async fn prepare_load_batch(self: Arc<Self>, _ctx: ActivityContext, input: PrepareLoadBatchInput) -> Result<Option<LoadBatch>, ActivityError> {
        self.prepare_batch(&input).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::COMPLETE_LOAD_BATCH)]
    pub async fn complete_load_batch(self: Arc<Self>, _ctx: ActivityContext, input: LoadBatch) -> Result<(), ActivityError> {
        self.complete_batch(&input).await.map_err(ActivityFailure::into_activity_error)
    }
}

impl EtlActivityImplementations {
    fn store(&self) -> &dyn object_store::ObjectStore {
        self.storage.store.as_ref()
    }

    fn known_apps(&self, project_id: &str) -> Result<HashSet<String>, ActivityFailure> {
        let project = self
            .config
            .project(project_id)
            .ok_or_else(|| ActivityFailure::InvalidInput(format!("project `{project_id}` is not configured")))?;
        Ok(project.apps.iter().cloned().collect())
    }

    /// Lists the raw objects modified in [processed_until, now − buffer) and writes the plan.
    pub async fn plan(&self, input: &EtlInput, now: DateTime<Utc>) -> Result<EtlPlan, ActivityFailure> {
        self.known_apps(&input.project_id)?;
        let state: EtlState = get_json(self.store(), &layout::etl_state_key(&input.project_id), "ETL state").await?.unwrap_or_default();
        let window_start_ms = state.processed_until_ms;
        let window_end_ms = (now - Duration::from_secs(input.buffer_seconds)).timestamp_millis().max(window_start_ms);

        let mut objects: Vec<ObjectMeta> = Vec::new();
        for prefix in raw_listing_prefixes(&input.project_id, window_start_ms, window_end_ms) {
            let listed: Vec<ObjectMeta> = self
                .store()
                .list(Some(&Path::from(prefix.as_str())))
                .try_collect()
                .await
                .map_err(ActivityFailure::object_store("list", prefix.clone()))?;
            objects.extend(listed.into_iter().filter(|object| {
                let modified_ms = object.last_modified.timestamp_millis();
                modified_ms >= window_start_ms && modified_ms < window_end_ms
            }));
        }
        objects.sort_by(|left, right| (left.last_modified, &left.location).cmp(&(right.last_modified, &right.location)));
        let raw_object_count = objects.len() as u64;
        let chunks = split_into_chunks(objects);

        let plan_key = layout::etl_plan_key(&input.project_id, window_start_ms, window_end_ms);
        let document = EtlPlanDocument { window_start_ms, window_end_ms, chunks };
        if !document.chunks.is_empty() {
            put_json(self.store(), &plan_key, &document).await?;
        }
        tracing::info!(project = %input.project_id, window_start_ms, window_end_ms, raw_object_count, chunks = document.chunks.len(), "planned ETL window");
        Ok(EtlPlan {
            project_id: input.project_id.clone(),
            plan_key,
            window_start_ms,
            window_end_ms,
            raw_object_count,
            chunk_count: document.chunks.len() as u32,
        })
    }

    /// Transforms one chunk: Parquet per (app, day), quarantine for broken records, and a
    /// pending-load marker per file. All keys derive from the chunk's raw keys.
    pub async fn transform(&self, input: &TransformChunkInput, ctx: Option<&ActivityContext>) -> Result<TransformCounters, ActivityFailure> {
        let known_apps = self.known_apps(&input.project_id)?;
        let plan: EtlPlanDocument = get_json(self.store(), &input.plan_key, "ETL plan")
            .await?
            .ok_or_else(|| ActivityFailure::InvalidInput(format!("ETL plan `{}` does not exist", input.plan_key)))?;
        let chunk = plan
            .chunks
            .get(input.chunk_index as usize)
            .ok_or_else(|| ActivityFailure::InvalidInput(format!("ETL plan `{}` has no chunk {}", input.plan_key, input.chunk_index)))?;
        let chunk_id = stable_id(chunk.iter().map(|object| object.key.as_str()));

        let mut output = TransformOutput::default();
        for (index, object) in chunk.iter().enumerate() {
            let bytes = get_bytes(self.store(), &object.key).await?;
            match gunzip_text(&object.key, &bytes) {
                Ok(text) => transform_raw_lines(&text, &input.project_id, &known_apps, &mut output),
                Err(error) => output.quarantined.push(crate::transform::QuarantinedRecord { reason: error.to_string(), original: object.key.clone() }),
            }
            if let Some(ctx) = ctx {
                // Progress only: a failed heartbeat must not fail the transform.
                if let Err(error) = ctx.record_heartbeat(index as u64).await {
                    tracing::debug!(%error, "heartbeat not recorded");
                }
            }
        }

        let created_time_micros = Utc::now().timestamp_micros();
        let mut rows_by_file: BTreeMap<(String, chrono::NaiveDate), Vec<&EventRow>> = BTreeMap::new();
        for row in &output.rows {
            let day = Utc.timestamp_micros(row.event_timestamp_micros).single().unwrap_or_default().date_naive();
            rows_by_file.entry((row.app_id.clone(), day)).or_default().push(row);
        }
        let mut files_written = 0;
        for ((app_id, day), rows) in &rows_by_file {
            let key = layout::processed_object_key(&input.project_id, EVENT_TABLE_NAME, app_id, *day, &chunk_id);
            let parquet = encode_parquet(rows, created_time_micros)?;
            let pending = PendingLoad { key: key.clone(), content_length: parquet.len() as u64 };
            put_bytes(self.store(), &key, parquet).await?;
            put_json(self.store(), &pending_marker_key(&input.project_id, &key), &pending).await?;
            files_written += 1;
        }
        if !output.quarantined.is_empty() {
            let mut ndjson = Vec::new();
            for record in &output.quarantined {
                serde_json::to_writer(&mut ndjson, record).expect("quarantine records serialize");
                ndjson.push(b'\n');
            }
            let key = layout::quarantine_object_key(&input.project_id, Utc::now().date_naive(), &chunk_id);
            put_bytes(self.store(), &key, gzip(&ndjson)).await?;
            tracing::warn!(project = %input.project_id, quarantined = output.quarantined.len(), key, "quarantined raw records");
        }
        let counters = TransformCounters {
            raw_records: output.raw_records,
            events: output.rows.len() as u64,
            quarantined_records: output.quarantined.len() as u64,
            files_written,
        };
        tracing::info!(project = %input.project_id, chunk = input.chunk_index, ?counters, events_of_unknown_apps = output.events_of_unknown_apps, "transformed chunk");
        Ok(counters)
    }

    /// Moves the watermark forward (never back: a retried older commit changes nothing).
    pub async fn commit(&self, input: &CommitWindowInput) -> Result<(), ActivityFailure> {
        let key = layout::etl_state_key(&input.project_id);
        let state: EtlState = get_json(self.store(), &key, "ETL state").await?.unwrap_or_default();
        if state.processed_until_ms >= input.window_end_ms {
            return Ok(());
        }
        put_json(self.store(), &key, &EtlState { processed_until_ms: input.window_end_ms }).await
    }

    /// Gathers up to `max_files` pending files, oldest keys first, into a CAoA manifest.
    pub async fn prepare_batch(&self, input: &PrepareLoadBatchInput) -> Result<Option<LoadBatch>, ActivityFailure> {
        let prefix = layout::pending_loads_prefix(&input.project_id);
        let mut markers: Vec<ObjectMeta> = self
            .store()
            .list(Some(&Path::from(prefix.as_str())))
            .try_collect()
            .await
            .map_err(ActivityFailure::object_store("list", prefix.clone()))?;
        if markers.is_empty() {
            return Ok(None);
        }
        markers.sort_by(|left, right| left.location.cmp(&right.location));
        markers.truncate(input.max_files.max(1) as usize);

        let mut entries = Vec::with_capacity(markers.len());
        for marker in &markers {
            let Some(pending): Option<PendingLoad> = get_json(self.store(), marker.location.as_ref(), "pending load").await? else {
                continue; // completed by a concurrent batch since the listing
            };
            entries.push(ManifestEntry {
                url: self.storage.location.url_of_key(&pending.key),
                meta: ManifestEntryMeta { content_length: pending.content_length },
            });
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let batch_id = stable_id(entries.iter().map(|entry| entry.url.as_str()));
        let manifest_key = layout::load_manifest_key(&input.project_id, &batch_id);
        let file_count = entries.len() as u32;
        put_json(self.store(), &manifest_key, &LoadManifest { entries }).await?;
        Ok(Some(LoadBatch { project_id: input.project_id.clone(), manifest_key, file_count }))
    }

    /// Removes the pending markers of a loaded batch.
    pub async fn complete_batch(&self, batch: &LoadBatch) -> Result<(), ActivityFailure> {
        let manifest = read_manifest(&self.storage, &batch.manifest_key).await?;
        for entry in &manifest.entries {
            let key = file_key_of_entry(&self.storage, entry)?;
            delete_if_present(self.store(), &pending_marker_key(&batch.project_id, key)).await?;
        }
        Ok(())
    }
}

/// The pending-load marker of a processed file: written by the transform, deleted once loaded.
fn pending_marker_key(project_id: &str, file_key: &str) -> String {
    layout::pending_load_key(project_id, &stable_id([file_key]))
}

pub async fn read_manifest(storage: &Storage, manifest_key: &str) -> Result<LoadManifest, ActivityFailure> {
    get_json(storage.store.as_ref(), manifest_key, "load manifest")
        .await?
        .ok_or_else(|| ActivityFailure::InvalidInput(format!("load manifest `{manifest_key}` does not exist")))
}

pub fn file_key_of_entry<'a>(storage: &Storage, entry: &'a ManifestEntry) -> Result<&'a str, ActivityFailure> {
    storage
        .location
        .key_of_url(&entry.url)
        .ok_or_else(|| ActivityFailure::InvalidInput(format!("manifest url `{}` is outside the storage root", entry.url)))
}

/// The raw prefixes to list for a window: the whole raw layer on the first run, else the hour
/// partitions from an hour before the window (writers' clocks may lag) to its end.
fn raw_listing_prefixes(project_id: &str, window_start_ms: i64, window_end_ms: i64) -> Vec<String> {
    if window_start_ms == 0 {
        return vec![layout::raw_prefix(project_id)];
    }
    let hour_ms = 3_600_000;
    let first_hour = (window_start_ms - hour_ms) / hour_ms;
    let last_hour = window_end_ms / hour_ms + 1;
    (first_hour..=last_hour)
        .map(|hour| {
            let at = Utc.timestamp_millis_opt(hour * hour_ms).single().unwrap_or_default();
            let key = layout::raw_object_key(project_id, at, "");
            key.trim_end_matches(".gz").to_string()
        })
        .collect()
}

fn split_into_chunks(objects: Vec<ObjectMeta>) -> Vec<Vec<RawObject>> {
    let mut chunks: Vec<Vec<RawObject>> = Vec::new();
    let mut current: Vec<RawObject> = Vec::new();
    let mut current_bytes = 0;
    for object in objects {
        if !current.is_empty() && (current.len() >= MAX_OBJECTS_PER_CHUNK || current_bytes + object.size > MAX_BYTES_PER_CHUNK) {
            chunks.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += object.size;
        current.push(RawObject { key: object.location.to_string(), size: object.size });
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_prefixes_cover_the_window_hours() {
        assert_eq!(raw_listing_prefixes("p", 0, 10), vec!["p/data/buffer/"]);
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap().timestamp_millis();
        let end = Utc.with_ymd_and_hms(2026, 1, 1, 11, 5, 0).unwrap().timestamp_millis();
        let prefixes = raw_listing_prefixes("p", start, end);
        assert_eq!(prefixes.first().unwrap(), "p/data/buffer/year=2026/month=01/day=01/hour=09/");
        assert_eq!(prefixes.last().unwrap(), "p/data/buffer/year=2026/month=01/day=01/hour=12/");
    }
}
