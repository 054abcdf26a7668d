//! Inputs and outputs exchanged between workflows and activities. All are small: keys and
//! counters, never records.

use serde::{Deserialize, Serialize};

/// Input of one scheduled ETL run of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlInput {
    pub project_id: String,
    /// Raw objects younger than this are left for the next run (they may still be in flight).
    pub buffer_seconds: u64,
    /// Largest number of files one warehouse load batch takes (CAoA `maxFilesLimit`).
    pub max_files_per_load: u32,
    /// Task queue served by the process that owns the warehouse (DuckDB allows one writer).
    pub warehouse_task_queue: String,
    /// The metadata scan the load asks for once it is done; none for runs started before
    /// the scan existed.
    #[serde(default)]
    pub metadata_scan: Option<ScanMetadataInput>,
}

/// What one ETL run will process, written to the object store at `plan_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlPlan {
    pub project_id: String,
    pub plan_key: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub raw_object_count: u64,
    pub chunk_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformChunkInput {
    pub project_id: String,
    pub plan_key: String,
    pub chunk_index: u32,
}

/// Counters of a transform; added up over the chunks of a run. Fields added after the first
/// release default to 0, so results recorded by older runs still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransformCounters {
    pub raw_records: u64,
    /// Events written to `event_v2`.
    pub events: u64,
    /// Whole raw records quarantined (unreadable).
    pub quarantined_records: u64,
    pub files_written: u64,
    /// Events found in the readable records.
    #[serde(default)]
    pub events_in: u64,
    /// Single events quarantined (missing or unreadable fields).
    #[serde(default)]
    pub quarantined_events: u64,
    #[serde(default)]
    pub filtered_unknown_app: u64,
    #[serde(default)]
    pub filtered_stale: u64,
    #[serde(default)]
    pub filtered_future: u64,
    #[serde(default)]
    pub filtered_bot: u64,
    #[serde(default)]
    pub item_rows: u64,
    #[serde(default)]
    pub session_rows: u64,
}

impl TransformCounters {
    pub fn add(&mut self, other: &TransformCounters) {
        self.raw_records += other.raw_records;
        self.events += other.events;
        self.quarantined_records += other.quarantined_records;
        self.files_written += other.files_written;
        self.events_in += other.events_in;
        self.quarantined_events += other.quarantined_events;
        self.filtered_unknown_app += other.filtered_unknown_app;
        self.filtered_stale += other.filtered_stale;
        self.filtered_future += other.filtered_future;
        self.filtered_bot += other.filtered_bot;
        self.item_rows += other.item_rows;
        self.session_rows += other.session_rows;
    }
}

/// Input of the user merge that closes a window: the users its chunks saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeUsersInput {
    pub project_id: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
}

/// What the user merge of a window did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserMergeSummary {
    /// Distinct users seen in the window (one `user_v2` row each).
    pub users: u64,
    /// Of those, users known from earlier windows.
    pub returning_users: u64,
    pub files_written: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitWindowInput {
    pub project_id: String,
    pub window_end_ms: i64,
}

/// Summary returned by `EtlWorkflow`, visible in the Temporal UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlRunSummary {
    pub plan: EtlPlan,
    pub transformed: TransformCounters,
    /// Absent for runs that started before the user merge existed.
    #[serde(default)]
    pub users: Option<UserMergeSummary>,
    pub loaded: LoadSummary,
}

/// Input of `LoadDataWorkflow`; the counters carry over a continue-as-new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadInput {
    pub project_id: String,
    pub max_files_per_batch: u32,
    pub warehouse_task_queue: String,
    pub carried_over: LoadSummary,
    /// Started (unless one is running) after the aggregates are refreshed.
    #[serde(default)]
    pub metadata_scan: Option<ScanMetadataInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareLoadBatchInput {
    pub project_id: String,
    pub max_files: u32,
}

/// One batch of pending files, described by a CAoA manifest in the object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBatch {
    pub project_id: String,
    pub manifest_key: String,
    pub file_count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    pub batches: u64,
    pub files: u64,
    /// New `event_v2` rows (events already loaded are skipped).
    pub rows_inserted: u64,
    /// New `item_v2` rows.
    #[serde(default)]
    pub item_rows_inserted: u64,
    /// `user_v2` rows inserted or replaced by a newer state of the user.
    #[serde(default)]
    pub user_rows_merged: u64,
    /// `session` rows inserted or replaced by a preferred row of the session.
    #[serde(default)]
    pub session_rows_merged: u64,
}

impl LoadSummary {
    pub fn add(&mut self, other: &LoadSummary) {
        self.batches += other.batches;
        self.files += other.files;
        self.rows_inserted += other.rows_inserted;
        self.item_rows_inserted += other.item_rows_inserted;
        self.user_rows_merged += other.user_rows_merged;
        self.session_rows_merged += other.session_rows_merged;
    }
}

/// Input of `ClearExpiredEventsWorkflow`: a project's apps and how long their data is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClearExpiredInput {
    pub project_id: String,
    pub app_ids: Vec<String>,
    pub retention_days: u32,
    pub warehouse_task_queue: String,
}

/// One app's expired data to delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClearExpiredAppInput {
    pub app_id: String,
    pub retention_days: u32,
}

/// Rows deleted because they were older than the retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpiredRows {
    pub events: u64,
    pub items: u64,
    pub sessions: u64,
    /// Users whose latest activity is older than the retention.
    pub users: u64,
}

impl ExpiredRows {
    pub fn add(&mut self, other: &ExpiredRows) {
        self.events += other.events;
        self.items += other.items;
        self.sessions += other.sessions;
        self.users += other.users;
    }
}

/// Input of `BackfillWorkflow`: re-process the raw objects that arrived in [from, to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillInput {
    pub project_id: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub max_files_per_load: u32,
    pub warehouse_task_queue: String,
    #[serde(default)]
    pub metadata_scan: Option<ScanMetadataInput>,
    /// Progress of earlier runs of this backfill (continue-as-new); default for a new one.
    #[serde(default)]
    pub carried_over: BackfillProgress,
}

/// One slice of a backfill to plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSliceInput {
    pub project_id: String,
    pub slice_start_ms: i64,
    pub slice_end_ms: i64,
}

/// How far a backfill is: answered by its `progress` query, and its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackfillProgress {
    pub slices_total: u32,
    pub slices_done: u32,
    pub raw_objects: u64,
    pub transformed: TransformCounters,
    pub loaded: LoadSummary,
}

/// Input of `AthenaPartitionWorkflow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogInput {
    pub project_id: String,
    /// `glue` (Glue tables and partitions) or `duckdb` (views in the warehouse).
    pub kind: String,
    pub warehouse_task_queue: String,
}

/// What one catalog registration did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogSummary {
    pub tables: u64,
    pub partitions_found: u64,
    pub partitions_created: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshReportingInput {
    pub project_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportingSummary {
    /// Rows of the reporting aggregates after the refresh.
    pub aggregate_rows: u64,
}

/// Input of the load submission: a batch and how many times it was submitted before (a
/// failed Redshift transaction is submitted again, up to a limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitLoadInput {
    pub batch: LoadBatch,
    pub attempt: u32,
}

/// Where a submitted load stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoadOutcome {
    /// The warehouse is still running it (Redshift); check again later.
    Running,
    Finished(LoadSummary),
    /// The warehouse rolled the load back (the statement failed or was aborted): nothing of
    /// it is stored, so submitting it again is safe.
    Failed { reason: String },
}

/// A load handed to the warehouse. DuckDB loads before answering (`outcome` is final);
/// Redshift answers with the Data API statement to poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedLoad {
    pub batch: LoadBatch,
    /// The Data API statement running the load; `None` when the warehouse loaded synchronously.
    pub statement_id: Option<String>,
    /// Sub-statements whose row counts are the load's counters (index, table).
    pub counted_statements: Vec<(u32, String)>,
    pub outcome: LoadOutcome,
}

/// Input of `ScanMetadataWorkflow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanMetadataInput {
    pub project_id: String,
    pub app_ids: Vec<String>,
    /// A scan is skipped when the last successful one is younger than this.
    pub min_age_seconds: u64,
    pub warehouse_task_queue: String,
}

/// What a metadata scan found, or that it was skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataScanSummary {
    /// The last successful scan is younger than `min_age_seconds`.
    pub skipped_as_recent: bool,
    pub apps: u64,
    pub events: u64,
    pub event_parameters: u64,
    pub user_attributes: u64,
}

/// Input of a pipeline's `PipelineLifecycleWorkflow` (workflow id = pipeline id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineLifecycleInput {
    pub pipeline_id: String,
    pub project_id: String,
    pub spec: clickstream_core::control_model::PipelineSpec,
    /// The stored version of `spec`.
    pub spec_version: u64,
    /// Set when a run continues as new: the status it left (no deployment at start then).
    #[serde(default)]
    pub carried_status: Option<clickstream_core::control_model::PipelineStatus>,
    /// Set when a run continues as new: the spec that runs (it differs from `spec` after a
    /// failed update).
    #[serde(default)]
    pub running_spec: Option<clickstream_core::control_model::PipelineSpec>,
}

/// A changed spec for a running pipeline (the `update` signal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpecUpdate {
    pub spec: clickstream_core::control_model::PipelineSpec,
    pub spec_version: u64,
}

/// One level of one pipeline, to deploy, roll back or delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineLevelInput {
    pub pipeline_id: String,
    pub project_id: String,
    pub spec: clickstream_core::control_model::PipelineSpec,
    pub level: clickstream_core::control_model::PipelineLevel,
    /// Whether this level was deployed before this step (an update), or is new (a
    /// rollback then removes it).
    pub existed_before: bool,
}

/// What a level's provisioning left: one entry per stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PipelineLevelOutcome {
    pub stacks: Vec<clickstream_core::control_model::StackStatus>,
}

/// A status for the control store (what the API lists without asking each workflow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPipelineStatusInput {
    pub pipeline_id: String,
    pub status: clickstream_core::control_model::PipelineStatus,
}
