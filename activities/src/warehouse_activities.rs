//! Activities of the warehouse task queue: only the process that owns the DuckDB file runs them.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use clickstream_core::{layout, storage::Storage};
use clickstream_workflows::{activities::names, types::*};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{
    errors::ActivityFailure,
    etl_activities::{file_key_of_entry, read_manifest},
    heartbeat::heartbeat_while,
    object_io::get_bytes,
    warehouse::DuckDbWarehouse,
};

pub struct WarehouseActivityImplementations {
    pub storage: Storage,
    pub warehouse: Arc<DuckDbWarehouse>,
}

#[activities]
impl WarehouseActivityImplementations {
    #[activity(name = names::LOAD_BATCH_INTO_WAREHOUSE)]
    pub async fn load_batch_into_warehouse(self: Arc<Self>, ctx: ActivityContext, input: LoadBatch) -> Result<LoadSummary, ActivityError> {
        heartbeat_while(&ctx, self.load(&input)).await.map_err(ActivityFailure::into_activity_error)
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
}

impl WarehouseActivityImplementations {
    /// Views over the project's Parquet files; they need the files on this machine.
    pub async fn lake_views(&self, input: &CatalogInput) -> Result<CatalogSummary, ActivityFailure> {
        let clickstream_core::storage::StorageLocation::LocalDirectory { path } = &self.storage.location else {
            return Err(ActivityFailure::InvalidInput("DuckDB views need file:// storage; with S3 use catalog.kind = \"glue\"".into()));
        };
        let processed_root = path.join(layout::processed_prefix(&input.project_id));
        let project_id = input.project_id.clone();
        let summary = self.on_warehouse(move |warehouse| Ok(warehouse.create_lake_views(&project_id, &processed_root)?)).await?;
        tracing::info!(project = %input.project_id, tables = summary.tables, "created the DuckDB views over the Parquet files");
        Ok(summary)
    }

    /// Deletes an app's rows older than `now` minus its retention.
    pub async fn clear_expired(&self, input: &ClearExpiredAppInput, now: chrono::DateTime<chrono::Utc>) -> Result<ExpiredRows, ActivityFailure> {
        if input.retention_days == 0 {
            return Err(ActivityFailure::InvalidInput("retention_days must be greater than 0".into()));
        }
        let cutoff_ms = (now - chrono::Duration::days(i64::from(input.retention_days))).timestamp_millis();
        let app_id = input.app_id.clone();
        let deleted = self.on_warehouse(move |warehouse| Ok(warehouse.delete_rows_before(&app_id, cutoff_ms)?)).await?;
        tracing::info!(app = %input.app_id, retention_days = input.retention_days, cutoff_ms, ?deleted, "cleared expired warehouse rows");
        Ok(deleted)
    }

    /// Rebuilds every app's reporting aggregate.
    pub async fn refresh_reporting(&self, input: &RefreshReportingInput) -> Result<ReportingSummary, ActivityFailure> {
        let rows = self.on_warehouse(|warehouse| Ok(warehouse.refresh_reporting_aggregates()?)).await?;
        tracing::info!(project = %input.project_id, aggregate_rows = rows, "refreshed the reporting aggregates");
        Ok(ReportingSummary { aggregate_rows: rows })
    }

    /// Runs warehouse work on a blocking thread (DuckDB calls block), off the async workers.
    async fn on_warehouse<T: Send + 'static>(&self, work: impl FnOnce(&DuckDbWarehouse) -> Result<T, ActivityFailure> + Send + 'static) -> Result<T, ActivityFailure> {
        let warehouse = self.warehouse.clone();
        tokio::task::spawn_blocking(move || work(&warehouse))
            .await
            .map_err(|join_error| ActivityFailure::LocalIo(std::io::Error::other(join_error.to_string())))?
    }

    /// Downloads the manifest's files to scratch space (DuckDB reads local files; httpfs is not
    /// available offline) and merges them, app by app.
    pub async fn load(&self, batch: &LoadBatch) -> Result<LoadSummary, ActivityFailure> {
        let manifest = read_manifest(&self.storage, &batch.manifest_key).await?;
        let scratch = tempfile::tempdir()?;
        let mut files_by_table: BTreeMap<(String, String), Vec<(PathBuf, String)>> = BTreeMap::new();
        for (index, entry) in manifest.entries.iter().enumerate() {
            let key = file_key_of_entry(&self.storage, entry)?;
            let app_id = layout::app_of_processed_key(key).ok_or_else(|| ActivityFailure::InvalidInput(format!("`{key}` has no partition_app= segment")))?;
            let table = layout::table_of_processed_key(key).ok_or_else(|| ActivityFailure::InvalidInput(format!("`{key}` is not under data/processed/<table>/")))?;
            let bytes = get_bytes(self.storage.store.as_ref(), key).await?;
            let local_path = scratch.path().join(format!("{index}.parquet"));
            tokio::fs::write(&local_path, &bytes).await?;
            files_by_table.entry((app_id.to_string(), table.to_string())).or_default().push((local_path, entry.url.clone()));
        }
        let mut summary = self
            .on_warehouse(move |warehouse| {
                let mut summary = LoadSummary::default();
                for ((app_id, table), files) in &files_by_table {
                    let merged = warehouse.merge_table_files(app_id, table, files)?;
                    match table.as_str() {
                        "item_v2" => summary.item_rows_inserted += merged,
                        "user_v2" => summary.user_rows_merged += merged,
                        "session" => summary.session_rows_merged += merged,
                        _ => summary.rows_inserted += merged,
                    }
                }
                drop(scratch);
                Ok(summary)
            })
            .await?;
        summary.batches = 1;
        summary.files = manifest.entries.len() as u64;
        tracing::info!(project = %batch.project_id, manifest = %batch.manifest_key, ?summary, "loaded batch into DuckDB");
        Ok(summary)
    }
}
