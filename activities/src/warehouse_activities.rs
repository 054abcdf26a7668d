//! Activities of the warehouse task queues. For DuckDB projects only the process that owns the
//! DuckDB file runs them; for Redshift projects any worker does (they call the Data API).

use std::{sync::Arc, time::Duration};

use clickstream_core::layout;
use clickstream_workflows::{activities::names, types::*};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{errors::ActivityFailure, heartbeat::heartbeat_while, metadata::MetadataStore, warehouses::Warehouses};

pub struct WarehouseActivityImplementations {
    pub warehouses: Warehouses,
    pub metadata: Arc<dyn MetadataStore>,
}

#[activities]
impl WarehouseActivityImplementations {
    /// The one-step load of histories recorded before loads were submitted and polled.
    #[activity(name = names::LOAD_BATCH_INTO_WAREHOUSE)]
    pub async fn load_batch_into_warehouse(self: Arc<Self>, ctx: ActivityContext, input: LoadBatch) -> Result<LoadSummary, ActivityError> {
        heartbeat_while(&ctx, self.load_to_completion(&input)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::SUBMIT_WAREHOUSE_LOAD)]
    pub async fn submit_warehouse_load(self: Arc<Self>, ctx: ActivityContext, input: SubmitLoadInput) -> Result<SubmittedLoad, ActivityError> {
        let submitted = async { self.warehouses.of_project(&input.batch.project_id)?.submit_load(&input.batch, input.attempt).await };
        heartbeat_while(&ctx, submitted).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::CHECK_WAREHOUSE_LOAD)]
    pub async fn check_warehouse_load(self: Arc<Self>, _ctx: ActivityContext, input: SubmittedLoad) -> Result<SubmittedLoad, ActivityError> {
        let checked = async { self.warehouses.of_project(&input.batch.project_id)?.check_load(input).await };
        checked.await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::REFRESH_REPORTING_AGGREGATES)]
    pub async fn refresh_reporting_aggregates(self: Arc<Self>, ctx: ActivityContext, input: RefreshReportingInput) -> Result<ReportingSummary, ActivityError> {
        heartbeat_while(&ctx, self.refresh_reporting(&input)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::REFRESH_LAKE_VIEWS)]
    pub async fn refresh_lake_views(self: Arc<Self>, _ctx: ActivityContext, input: CatalogInput) -> Result<CatalogSummary, ActivityError> {
        self.lake_views(&input).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::CLEAR_EXPIRED_EVENTS)]
    pub async fn clear_expired_events(self: Arc<Self>, ctx: ActivityContext, input: ClearExpiredAppInput) -> Result<ExpiredRows, ActivityError> {
        heartbeat_while(&ctx, self.clear_expired(&input, chrono::Utc::now())).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::SCAN_METADATA)]
    pub async fn scan_metadata(self: Arc<Self>, ctx: ActivityContext, input: ScanMetadataInput) -> Result<MetadataScanSummary, ActivityError> {
        heartbeat_while(&ctx, self.scan(&input, chrono::Utc::now())).await.map_err(ActivityFailure::into_activity_error)
    }
}

impl WarehouseActivityImplementations {
    /// Submits a batch and waits for the warehouse to finish it.
    pub async fn load_to_completion(&self, batch: &LoadBatch) -> Result<LoadSummary, ActivityFailure> {
        let warehouse = self.warehouses.of_project(&batch.project_id)?;
        let mut submitted = warehouse.submit_load(batch, 0).await?;
        loop {
            match submitted.outcome {
                LoadOutcome::Finished(summary) => return Ok(summary),
                LoadOutcome::Failed { reason } => return Err(ActivityFailure::Redshift { action: "load", reason }),
                LoadOutcome::Running => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    submitted = warehouse.check_load(submitted).await?;
                }
            }
        }
    }

    /// Views over the project's Parquet files; they need the files on this machine and DuckDB.
    pub async fn lake_views(&self, input: &CatalogInput) -> Result<CatalogSummary, ActivityFailure> {
        let Some(duckdb) = &self.warehouses.duckdb else {
            return Err(ActivityFailure::InvalidInput("DuckDB views need the process that owns the DuckDB warehouse".into()));
        };
        let clickstream_core::storage::StorageLocation::LocalDirectory { path } = &duckdb.storage.location else {
            return Err(ActivityFailure::InvalidInput("DuckDB views need file:// storage; with S3 use catalog.kind = \"glue\"".into()));
        };
        let processed_root = path.join(layout::processed_prefix(&input.project_id));
        let project_id = input.project_id.clone();
        let summary = duckdb.on_warehouse(move |warehouse| Ok(warehouse.create_lake_views(&project_id, &processed_root)?)).await?;
        tracing::info!(project = %input.project_id, tables = summary.tables, "created the DuckDB views over the Parquet files");
        Ok(summary)
    }

    /// Deletes an app's rows older than `now` minus its retention.
    pub async fn clear_expired(&self, input: &ClearExpiredAppInput, now: chrono::DateTime<chrono::Utc>) -> Result<ExpiredRows, ActivityFailure> {
        if input.retention_days == 0 {
            return Err(ActivityFailure::InvalidInput("retention_days must be greater than 0".into()));
        }
        let cutoff_ms = (now - chrono::Duration::days(i64::from(input.retention_days))).timestamp_millis();
        let deleted = self.warehouses.of_app(&input.app_id)?.delete_rows_before(&input.app_id, cutoff_ms).await?;
        tracing::info!(app = %input.app_id, retention_days = input.retention_days, cutoff_ms, ?deleted, "cleared expired warehouse rows");
        Ok(deleted)
    }

    /// Rebuilds the project's reporting aggregates.
    pub async fn refresh_reporting(&self, input: &RefreshReportingInput) -> Result<ReportingSummary, ActivityFailure> {
        let apps = self.warehouses.config.project(&input.project_id).map(|project| project.apps.clone()).unwrap_or_default();
        let rows = self.warehouses.of_project(&input.project_id)?.refresh_reporting_aggregates(&apps).await?;
        tracing::info!(project = %input.project_id, aggregate_rows = rows, "refreshed the reporting aggregates");
        Ok(ReportingSummary { aggregate_rows: rows })
    }

    /// Scans the project's apps into the metadata store, unless the last scan is recent.
    pub async fn scan(&self, input: &ScanMetadataInput, now: chrono::DateTime<chrono::Utc>) -> Result<MetadataScanSummary, ActivityFailure> {
        let now_ms = now.timestamp_millis();
        if let Some(last_ms) = self.metadata.last_successful_scan_ms(&input.project_id).await?
            && now_ms - last_ms < (input.min_age_seconds as i64).saturating_mul(1000)
        {
            tracing::info!(project = %input.project_id, last_ms, "metadata scan skipped: the last one is recent");
            return Ok(MetadataScanSummary { skipped_as_recent: true, ..MetadataScanSummary::default() });
        }
        let warehouse = self.warehouses.of_project(&input.project_id)?;
        let mut summary = MetadataScanSummary::default();
        for app_id in &input.app_ids {
            let metadata = warehouse.scan_metadata(app_id, now_ms).await?;
            summary.apps += 1;
            summary.events += metadata.events.len() as u64;
            summary.event_parameters += metadata.event_parameters.len() as u64;
            summary.user_attributes += metadata.user_attributes.len() as u64;
            self.metadata.save_app(&input.project_id, &metadata).await?;
        }
        self.metadata.record_successful_scan(&input.project_id, now_ms).await?;
        tracing::info!(project = %input.project_id, ?summary, "scanned the project's metadata");
        Ok(summary)
    }
}
