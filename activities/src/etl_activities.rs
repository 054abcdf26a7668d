//! Activities of the ETL task queue: plan a window, transform its chunks, commit the window,
//! and keep the pending-load bookkeeping of the load workflow.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use clickstream_core::{layout, storage::Storage};
use clickstream_etl::{
    engine::EtlEngine,
    runner::{OutputLayout, Progress, PublishedFile, publish_file, publish_files, transform_objects},
    tables::BatchContext,
    user_state::UserMerge,
};
use clickstream_workflows::{activities::names, types::*};
use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{
    errors::ActivityFailure,
    heartbeat::{ChunkProgress, HEARTBEAT_INTERVAL, Heartbeat, heartbeat_while},
    manifest::{LoadManifest, ManifestEntry, ManifestEntryMeta, PendingLoad},
    metrics::record_transform,
    object_io::*,
};

/// A chunk holds at most this many raw objects…
pub const MAX_OBJECTS_PER_CHUNK: usize = 64;
/// …and at most this many compressed bytes.
pub const MAX_BYTES_PER_CHUNK: u64 = 64 * 1024 * 1024;

/// A chunk is transformed and published in parts of this many raw objects; a retried
/// transform resumes at the first part its last heartbeat did not report done.
pub const OBJECTS_PER_PART: usize = 8;

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
    /// The configured engine: projects, quality rules and the enrichers' data.
    pub engine: Arc<EtlEngine>,
}

#[activities]
impl EtlActivityImplementations {
    #[activity(name = names::PLAN_ETL_WINDOW)]
    pub async fn plan_etl_window(self: Arc<Self>, _ctx: ActivityContext, input: EtlInput) -> Result<EtlPlan, ActivityError> {
        self.plan(&input, Utc::now()).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::PLAN_BACKFILL_SLICE)]
    pub async fn plan_backfill_slice(self: Arc<Self>, _ctx: ActivityContext, input: BackfillSliceInput) -> Result<EtlPlan, ActivityError> {
        self.plan_backfill(&input).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::REGISTER_GLUE_CATALOG)]
    pub async fn register_glue_catalog(self: Arc<Self>, ctx: ActivityContext, input: CatalogInput) -> Result<CatalogSummary, ActivityError> {
        let catalog = crate::catalog::GlueCatalog::connect(&self.engine.config().catalog, self.storage.clone()).await;
        heartbeat_while(&ctx, catalog.register(&input.project_id)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::TRANSFORM_CHUNK)]
    pub async fn transform_chunk(self: Arc<Self>, ctx: ActivityContext, input: TransformChunkInput) -> Result<TransformCounters, ActivityError> {
        // Details a previous attempt left; unreadable ones (another version's) mean a fresh start.
        let resume_from = ctx.heartbeat_details().deserialize::<ChunkProgress>().unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring unreadable heartbeat details: the chunk starts over");
            None
        });
        self.transform(&input, resume_from, &ctx).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::MERGE_WINDOW_USERS)]
    pub async fn merge_window_users(self: Arc<Self>, ctx: ActivityContext, input: MergeUsersInput) -> Result<UserMergeSummary, ActivityError> {
        heartbeat_while(&ctx, self.merge_users(&input)).await.map_err(ActivityFailure::into_activity_error)
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

    fn ensure_project(&self, project_id: &str) -> Result<(), ActivityFailure> {
        match self.engine.config().project(project_id) {
            Some(_) => Ok(()),
            None => Err(ActivityFailure::InvalidInput(format!("project `{project_id}` is not configured"))),
        }
    }

    /// Registers a processed file for the load workflow.
    async fn mark_pending(&self, project_id: &str, file: &PublishedFile) -> Result<(), ActivityFailure> {
        let pending = PendingLoad { key: file.key.clone(), content_length: file.bytes };
        put_json(self.store(), &pending_marker_key(project_id, &file.key), &pending).await
    }

    /// Lists the raw objects modified in [processed_until, now − buffer) and writes the plan.
    pub async fn plan(&self, input: &EtlInput, now: DateTime<Utc>) -> Result<EtlPlan, ActivityFailure> {
        self.ensure_project(&input.project_id)?;
        let state: EtlState = get_json(self.store(), &layout::etl_state_key(&input.project_id), "ETL state").await?.unwrap_or_default();
        let window_start_ms = state.processed_until_ms;
        let window_end_ms = (now - Duration::from_secs(input.buffer_seconds)).timestamp_millis().max(window_start_ms);

        let mut objects: Vec<ObjectMeta> = Vec::new();
        for prefix in raw_listing_prefixes(&input.project_id, window_start_ms, window_end_ms) {
            let listed = list_objects(self.store(), &prefix).await?;
            objects.extend(listed.into_iter().filter(|object| {
                let modified_ms = object.last_modified.timestamp_millis();
                modified_ms >= window_start_ms && modified_ms < window_end_ms
            }));
        }
        objects.sort_by(|left, right| (left.last_modified, &left.location).cmp(&(right.last_modified, &right.location)));
        let plan_key = layout::etl_plan_key(&input.project_id, window_start_ms, window_end_ms);
        self.write_plan(&input.project_id, plan_key, window_start_ms, window_end_ms, objects).await
    }

    /// Lists the raw objects that arrived in the hours of [slice start, slice end) — by their
    /// key's hour, whenever they were last modified — and writes the plan.
    pub async fn plan_backfill(&self, input: &BackfillSliceInput) -> Result<EtlPlan, ActivityFailure> {
        self.ensure_project(&input.project_id)?;
        let mut objects: Vec<ObjectMeta> = Vec::new();
        for prefix in hour_prefixes(&input.project_id, input.slice_start_ms, input.slice_end_ms) {
            let listed = list_objects(self.store(), &prefix).await?;
            objects.extend(listed);
        }
        objects.sort_by(|left, right| left.location.cmp(&right.location));
        let plan_key = layout::backfill_plan_key(&input.project_id, input.slice_start_ms, input.slice_end_ms);
        self.write_plan(&input.project_id, plan_key, input.slice_start_ms, input.slice_end_ms, objects).await
    }

    /// Splits the objects into chunks and writes the plan document (none when there is
    /// nothing to do).
    async fn write_plan(&self, project_id: &str, plan_key: String, window_start_ms: i64, window_end_ms: i64, objects: Vec<ObjectMeta>) -> Result<EtlPlan, ActivityFailure> {
        let raw_object_count = objects.len() as u64;
        let document = EtlPlanDocument { window_start_ms, window_end_ms, chunks: split_into_chunks(objects) };
        if !document.chunks.is_empty() {
            put_json(self.store(), &plan_key, &document).await?;
        }
        tracing::info!(project = %project_id, window_start_ms, window_end_ms, raw_object_count, chunks = document.chunks.len(), plan_key, "planned ETL work");
        Ok(EtlPlan { project_id: project_id.to_string(), plan_key, window_start_ms, window_end_ms, raw_object_count, chunk_count: document.chunks.len() as u32 })
    }

    /// Transforms one chunk with the ETL engine: the four tables' Parquet (registered as
    /// pending loads), the quarantine, and the users it saw (left for the window's user merge).
    ///
    /// The chunk is done in parts of [`OBJECTS_PER_PART`] raw objects, each published before
    /// the next starts, and the heartbeat carries the parts done with their counters: a retried
    /// attempt (after a crash or a timeout) resumes after the last part it heard of. Every key
    /// derives from the part's raw keys, so a part done twice overwrites its own outputs.
    pub async fn transform(&self, input: &TransformChunkInput, resume_from: Option<ChunkProgress>, heartbeat: &impl Heartbeat) -> Result<TransformCounters, ActivityFailure> {
        self.ensure_project(&input.project_id)?;
        let plan: EtlPlanDocument = get_json(self.store(), &input.plan_key, "ETL plan")
            .await?
            .ok_or_else(|| ActivityFailure::InvalidInput(format!("ETL plan `{}` does not exist", input.plan_key)))?;
        let chunk = plan
            .chunks
            .get(input.chunk_index as usize)
            .ok_or_else(|| ActivityFailure::InvalidInput(format!("ETL plan `{}` has no chunk {}", input.plan_key, input.chunk_index)))?;
        let parts: Vec<&[RawObject]> = chunk.chunks(OBJECTS_PER_PART).collect();
        let mut progress = resume_from.unwrap_or_default();
        if progress.parts_done > 0 {
            tracing::info!(project = %input.project_id, chunk = input.chunk_index, parts_done = progress.parts_done, parts = parts.len(), "resuming a chunk from its last heartbeat");
        }
        for part in parts.iter().skip(progress.parts_done) {
            let counters = self.transform_part(input, &plan, part, &progress, heartbeat).await?;
            progress.counters.add(&counters);
            progress.parts_done += 1;
            progress.objects_done_in_part = 0;
            heartbeat.record(&progress).await;
        }
        tracing::info!(project = %input.project_id, chunk = input.chunk_index, counters = ?progress.counters, "transformed chunk");
        Ok(progress.counters)
    }

    /// Transforms and publishes one part of a chunk.
    async fn transform_part(&self, input: &TransformChunkInput, plan: &EtlPlanDocument, part: &[RawObject], progress: &ChunkProgress, heartbeat: &impl Heartbeat) -> Result<TransformCounters, ActivityFailure> {
        let part_id = stable_id(part.iter().map(|object| object.key.as_str()));
        let mut settings = self.engine.job_settings(&input.project_id, &part_id).map_err(|error| ActivityFailure::InvalidInput(error.to_string()))?;
        self.engine.add_plugins(&mut settings, &input.project_id, &self.storage.store).await?;
        let keys: Vec<String> = part.iter().map(|object| object.key.clone()).collect();
        let staging = tempfile::tempdir()?;
        let now = Utc::now();

        // The transform runs on a blocking thread; its progress comes back here as heartbeats.
        let (progress_sender, mut progress_receiver) = tokio::sync::watch::channel(0usize);
        let on_progress: Progress = Box::new(move |objects_done, _| {
            let _ = progress_sender.send(objects_done);
        });
        let transform = transform_objects(self.engine.resources(), settings, self.storage.store.clone(), keys, staging.path().join("transform"), now, on_progress);
        tokio::pin!(transform);
        let mut progress_open = true;
        // Also on a timer: one large raw object must not look like a dead worker.
        let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
        let output = loop {
            tokio::select! {
                result = &mut transform => break result.map_err(ActivityFailure::etl)?,
                changed = progress_receiver.changed(), if progress_open => {
                    if changed.is_err() {
                        progress_open = false;
                    }
                }
                _ = ticker.tick() => {}
            }
            let in_part = ChunkProgress { objects_done_in_part: *progress_receiver.borrow() as u64, ..progress.clone() };
            heartbeat.record(&in_part).await;
        };

        let layout = OutputLayout::for_project(&input.project_id);
        let published = publish_files(self.storage.store.clone(), &layout, &output.staging, &output.files).await.map_err(ActivityFailure::etl)?;
        for file in &published {
            self.mark_pending(&input.project_id, file).await?;
        }
        if let Some(path) = &output.quarantine_file {
            let key = layout.quarantine_key(now.date_naive(), &part_id);
            publish_file(self.storage.store.clone(), path, &key).await.map_err(ActivityFailure::etl)?;
            tracing::warn!(project = %input.project_id, records = output.counters.quarantined_records, events = output.counters.quarantined_events, key, "quarantined raw records and events");
        }
        if let Some(path) = &output.users_file {
            let key = layout::pending_users_key(&input.project_id, plan.window_start_ms, plan.window_end_ms, &part_id);
            publish_file(self.storage.store.clone(), path, &key).await.map_err(ActivityFailure::etl)?;
        }
        record_transform(&input.project_id, &output.counters, &output.rows);
        let quality = &output.counters;
        Ok(TransformCounters {
            raw_records: quality.raw_records,
            events: quality.events_out,
            quarantined_records: quality.quarantined_records,
            files_written: published.len() as u64,
            events_in: quality.events_in,
            quarantined_events: quality.quarantined_events,
            filtered_unknown_app: quality.filtered_unknown_app,
            filtered_stale: quality.filtered_stale,
            filtered_future: quality.filtered_future,
            filtered_bot: quality.filtered_bot,
            item_rows: output.rows.item_v2,
            session_rows: output.rows.session,
        })
    }

    /// Merges the users the transforms saw (this window's chunks, and any backfill's) into the
    /// user state and writes their `user_v2` rows. Merging is idempotent, so a retry after a
    /// partial merge gives the same state; the pending user files are deleted last.
    pub async fn merge_users(&self, input: &MergeUsersInput) -> Result<UserMergeSummary, ActivityFailure> {
        self.ensure_project(&input.project_id)?;
        // Every pending user file of the project: this window's, and those a backfill left
        // (backfills do not merge users themselves, so merges never run concurrently).
        let prefix = layout::pending_users_root(&input.project_id);
        let mut pending = list_objects(self.store(), &prefix).await?;
        if pending.is_empty() {
            return Ok(UserMergeSummary::default());
        }
        pending.sort_by(|left, right| left.location.cmp(&right.location));
        let staging = tempfile::tempdir()?;
        let mut incoming = Vec::with_capacity(pending.len());
        for (index, object) in pending.iter().enumerate() {
            let path = staging.path().join(format!("incoming-{index}.ndjson.gz"));
            tokio::fs::write(&path, get_bytes(self.store(), object.location.as_ref()).await?).await?;
            incoming.push(path);
        }
        let now = Utc::now();
        let window_id = format!("users-{}-{}", input.window_start_ms, input.window_end_ms);
        let context = BatchContext {
            process_job_id: window_id,
            process_time: clickstream_etl::raw_record::java_instant_text(now.timestamp_millis()),
            created_time_micros: now.timestamp_micros(),
        };
        let layout = OutputLayout::for_project(&input.project_id);
        let merge = UserMerge { store: self.store(), state_prefix: layout.user_state_prefix.clone(), keep_days: self.engine.config().etl.user_keep_days, now, context };
        let output_directory = staging.path().join("user_v2");
        let (files, counts) = merge.run(&incoming, &output_directory).await.map_err(|error| ActivityFailure::etl(error.into()))?;
        let published = publish_files(self.storage.store.clone(), &layout, &output_directory, &files).await.map_err(ActivityFailure::etl)?;
        for file in &published {
            self.mark_pending(&input.project_id, file).await?;
        }
        for object in &pending {
            delete_if_present(self.store(), object.location.as_ref()).await?;
        }
        tracing::info!(project = %input.project_id, users = counts.users, returning = counts.returning_users, expired = counts.expired_users, "merged the window's users");
        Ok(UserMergeSummary { users: counts.users, returning_users: counts.returning_users, files_written: published.len() as u64 })
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
        let mut markers = list_objects(self.store(), &prefix).await?;
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
pub fn pending_marker_key(project_id: &str, file_key: &str) -> String {
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
    hour_prefixes(project_id, window_start_ms - HOUR_MS, window_end_ms + HOUR_MS + 1)
}

const HOUR_MS: i64 = 3_600_000;

/// The raw layer's hour partitions that start in [from, to).
fn hour_prefixes(project_id: &str, from_ms: i64, to_ms: i64) -> Vec<String> {
    let first_hour = from_ms.div_euclid(HOUR_MS);
    let end_hour = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS);
    (first_hour..end_hour)
        .map(|hour| {
            let at = Utc.timestamp_millis_opt(hour * HOUR_MS).single().unwrap_or_default();
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

    #[test]
    fn backfill_slices_list_the_hours_they_cover() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 22, 0, 0).unwrap().timestamp_millis();
        let prefixes = hour_prefixes("p", start, start + 3 * HOUR_MS);
        assert_eq!(
            prefixes,
            ["p/data/buffer/year=2026/month=01/day=01/hour=22/", "p/data/buffer/year=2026/month=01/day=01/hour=23/", "p/data/buffer/year=2026/month=01/day=02/hour=00/"]
        );
        assert_eq!(hour_prefixes("p", start + 1, start + HOUR_MS + 1).len(), 2, "partial hours count whole");
    }
}
