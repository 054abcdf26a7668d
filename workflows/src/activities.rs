//! Activity contracts: names, inputs and outputs. The bodies live in `clickstream-activities`,
//! which registers implementations under the same names.

use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

use crate::types::*;

/// Activity names shared by the definitions here and the implementations.
pub mod names {
    pub const PLAN_ETL_WINDOW: &str = "plan_etl_window";
    pub const PLAN_BACKFILL_SLICE: &str = "plan_backfill_slice";
    pub const TRANSFORM_CHUNK: &str = "transform_chunk";
    pub const COMMIT_ETL_WINDOW: &str = "commit_etl_window";
    pub const MERGE_WINDOW_USERS: &str = "merge_window_users";
    pub const PREPARE_LOAD_BATCH: &str = "prepare_load_batch";
    pub const LOAD_BATCH_INTO_WAREHOUSE: &str = "load_batch_into_warehouse";
    pub const COMPLETE_LOAD_BATCH: &str = "complete_load_batch";
    pub const CLEAR_EXPIRED_EVENTS: &str = "clear_expired_events";
    pub const REGISTER_GLUE_CATALOG: &str = "register_glue_catalog";
    pub const REFRESH_LAKE_VIEWS: &str = "refresh_lake_views";
    pub const REFRESH_REPORTING_AGGREGATES: &str = "refresh_reporting_aggregates";
    pub const SUBMIT_WAREHOUSE_LOAD: &str = "submit_warehouse_load";
    pub const CHECK_WAREHOUSE_LOAD: &str = "check_warehouse_load";
    pub const SCAN_METADATA: &str = "scan_metadata";
    pub const DEPLOY_PIPELINE_LEVEL: &str = "deploy_pipeline_level";
    pub const ROLL_BACK_PIPELINE_LEVEL: &str = "roll_back_pipeline_level";
    pub const DELETE_PIPELINE_LEVEL: &str = "delete_pipeline_level";
    pub const RECORD_PIPELINE_STATUS: &str = "record_pipeline_status";
    pub const FORGET_PIPELINE: &str = "forget_pipeline";
}

/// Activities of the ETL task queue (any worker process).
pub struct EtlActivities;

#[activity_definitions]
impl EtlActivities {
    /// Lists the raw objects of the run's window and writes them, in chunks, to a plan object.
    #[activity(name = names::PLAN_ETL_WINDOW)]
    pub fn plan_etl_window(_input: EtlInput) -> Result<EtlPlan, ActivityError> {
        unimplemented!()
    }

    /// Lists the raw objects that arrived in a backfill slice's hours and writes them, in
    /// chunks, to a plan object (the same format as a window's).
    #[activity(name = names::PLAN_BACKFILL_SLICE)]
    pub fn plan_backfill_slice(_input: BackfillSliceInput) -> Result<EtlPlan, ActivityError> {
        unimplemented!()
    }

    /// Transforms one chunk of the plan into Parquet and registers the files as pending loads.
    #[activity(name = names::TRANSFORM_CHUNK)]
    pub fn transform_chunk(_input: TransformChunkInput) -> Result<TransformCounters, ActivityError> {
        unimplemented!()
    }

    /// Folds the users a window's chunks saw into the cross-run user state and writes their
    /// `user_v2` rows (registered as pending loads).
    #[activity(name = names::MERGE_WINDOW_USERS)]
    pub fn merge_window_users(_input: MergeUsersInput) -> Result<UserMergeSummary, ActivityError> {
        unimplemented!()
    }

    /// Records that everything up to the window's end has been transformed.
    #[activity(name = names::COMMIT_ETL_WINDOW)]
    pub fn commit_etl_window(_input: CommitWindowInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Gathers up to `max_files` pending files into a manifest; `None` when nothing is pending.
    #[activity(name = names::PREPARE_LOAD_BATCH)]
    pub fn prepare_load_batch(_input: PrepareLoadBatchInput) -> Result<Option<LoadBatch>, ActivityError> {
        unimplemented!()
    }

    /// Creates or updates the project's Glue database, tables and partitions (for Athena).
    #[activity(name = names::REGISTER_GLUE_CATALOG)]
    pub fn register_glue_catalog(_input: CatalogInput) -> Result<CatalogSummary, ActivityError> {
        unimplemented!()
    }

    /// Removes the pending markers of a loaded batch.
    #[activity(name = names::COMPLETE_LOAD_BATCH)]
    pub fn complete_load_batch(_input: LoadBatch) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

/// Activities of the warehouse task queue, served only by the process owning the warehouse.
pub struct WarehouseActivities;

#[activity_definitions]
impl WarehouseActivities {
    /// Merges the manifest's files into the warehouse, skipping events already there.
    #[activity(name = names::LOAD_BATCH_INTO_WAREHOUSE)]
    pub fn load_batch_into_warehouse(_input: LoadBatch) -> Result<LoadSummary, ActivityError> {
        unimplemented!()
    }

    /// Hands a batch to the warehouse: DuckDB merges it before answering; Redshift starts a
    /// Data API transaction (COPY into staging, then merge) and answers with its statement id.
    #[activity(name = names::SUBMIT_WAREHOUSE_LOAD)]
    pub fn submit_warehouse_load(_input: SubmitLoadInput) -> Result<SubmittedLoad, ActivityError> {
        unimplemented!()
    }

    /// Asks the warehouse where a submitted load stands (Redshift's DescribeStatement).
    #[activity(name = names::CHECK_WAREHOUSE_LOAD)]
    pub fn check_warehouse_load(_input: SubmittedLoad) -> Result<SubmittedLoad, ActivityError> {
        unimplemented!()
    }

    /// Collects the project's event names, parameters and user attributes from the warehouse
    /// into the metadata store, unless the last scan is younger than the input's minimum age.
    #[activity(name = names::SCAN_METADATA)]
    pub fn scan_metadata(_input: ScanMetadataInput) -> Result<MetadataScanSummary, ActivityError> {
        unimplemented!()
    }

    /// Rebuilds the reporting aggregates the console's reports read, after a load.
    #[activity(name = names::REFRESH_REPORTING_AGGREGATES)]
    pub fn refresh_reporting_aggregates(_input: RefreshReportingInput) -> Result<ReportingSummary, ActivityError> {
        unimplemented!()
    }

    /// Creates the warehouse's views over the project's Parquet files (schema `<project>_lake`).
    #[activity(name = names::REFRESH_LAKE_VIEWS)]
    pub fn refresh_lake_views(_input: CatalogInput) -> Result<CatalogSummary, ActivityError> {
        unimplemented!()
    }

    /// Deletes an app's events, items, sessions and users older than the retention.
    #[activity(name = names::CLEAR_EXPIRED_EVENTS)]
    pub fn clear_expired_events(_input: ClearExpiredAppInput) -> Result<ExpiredRows, ActivityError> {
        unimplemented!()
    }
}

/// Activities of the pipeline lifecycle (ETL task queue): the provisioner (CloudFormation in
/// production, local resources in the dev stack) and the control store.
pub struct LifecycleActivities;

#[activity_definitions]
impl LifecycleActivities {
    /// Creates or updates a level's stacks and waits until they are complete (heartbeating);
    /// fails non-retryably when a stack fails.
    #[activity(name = names::DEPLOY_PIPELINE_LEVEL)]
    pub fn deploy_pipeline_level(_input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        unimplemented!()
    }

    /// Undoes a failed deployment step: removes what the step created (a level new in this
    /// step), or waits for the provisioner's own rollback of an update.
    #[activity(name = names::ROLL_BACK_PIPELINE_LEVEL)]
    pub fn roll_back_pipeline_level(_input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        unimplemented!()
    }

    /// Removes a level's stacks (the data buckets and the warehouse keep the data).
    #[activity(name = names::DELETE_PIPELINE_LEVEL)]
    pub fn delete_pipeline_level(_input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        unimplemented!()
    }

    /// Writes the pipeline's status into the control store.
    #[activity(name = names::RECORD_PIPELINE_STATUS)]
    pub fn record_pipeline_status(_input: RecordPipelineStatusInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Removes a deleted pipeline from the control store.
    #[activity(name = names::FORGET_PIPELINE)]
    pub fn forget_pipeline(_input: String) -> Result<(), ActivityError> {
        unimplemented!()
    }
}
