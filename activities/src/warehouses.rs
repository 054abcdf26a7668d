//! The [`Warehouse`] trait: what the load, reporting, retention and metadata workflows need
//! from a warehouse, with two implementations — [`DuckDbLoader`] over the local DuckDB file
//! and [`crate::redshift::RedshiftWarehouse`] through Redshift's Data API — and the
//! [`Warehouses`] that picks a project's.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use clickstream_core::{Config, config::WarehouseKind, layout, storage::Storage};
use clickstream_workflows::types::{ExpiredRows, LoadBatch, LoadOutcome, LoadSummary, SubmittedLoad};

use crate::{
    errors::ActivityFailure,
    etl_activities::{file_key_of_entry, read_manifest},
    metadata::{AppMetadata, assemble_app_metadata},
    object_io::get_bytes,
    warehouse::DuckDbWarehouse,
};

#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// Starts loading a batch's files; the answer is final when the warehouse loads
    /// synchronously, else `Running` with a statement to [`Warehouse::check_load`].
    async fn submit_load(&self, batch: &LoadBatch, attempt: u32) -> Result<SubmittedLoad, ActivityFailure>;
    /// Where a submitted load stands now.
    async fn check_load(&self, submitted: SubmittedLoad) -> Result<SubmittedLoad, ActivityFailure>;
    /// Rebuilds the reporting aggregates of the apps; returns the aggregate rows (when known).
    async fn refresh_reporting_aggregates(&self, app_ids: &[String]) -> Result<u64, ActivityFailure>;
    /// Deletes an app's rows whose event time is before `cutoff_ms`.
    async fn delete_rows_before(&self, app_id: &str, cutoff_ms: i64) -> Result<ExpiredRows, ActivityFailure>;
    /// Collects an app's event names, parameters and user attributes.
    async fn scan_metadata(&self, app_id: &str, scanned_at_ms: i64) -> Result<AppMetadata, ActivityFailure>;
}

/// Counts rows stored per table into a load summary.
pub fn add_table_rows(summary: &mut LoadSummary, table: &str, rows: u64) {
    match table {
        "item_v2" => summary.item_rows_inserted += rows,
        "user_v2" => summary.user_rows_merged += rows,
        "session" => summary.session_rows_merged += rows,
        _ => summary.rows_inserted += rows,
    }
}

/// The DuckDB warehouse: loads synchronously (downloading the files to scratch space, as
/// DuckDB reads local files and httpfs is not available offline).
pub struct DuckDbLoader {
    pub storage: Storage,
    pub warehouse: Arc<DuckDbWarehouse>,
}

impl DuckDbLoader {
    /// Runs warehouse work on a blocking thread (DuckDB calls block), off the async workers.
    pub async fn on_warehouse<T: Send + 'static>(&self, work: impl FnOnce(&DuckDbWarehouse) -> Result<T, ActivityFailure> + Send + 'static) -> Result<T, ActivityFailure> {
        let warehouse = self.warehouse.clone();
        tokio::task::spawn_blocking(move || work(&warehouse))
            .await
            .map_err(|join_error| ActivityFailure::LocalIo(std::io::Error::other(join_error.to_string())))?
    }

    /// Downloads the manifest's files and merges them, app by app and table by table.
    pub async fn load(&self, batch: &LoadBatch) -> Result<LoadSummary, ActivityFailure> {
        let manifest = read_manifest(&self.storage, &batch.manifest_key).await?;
        let scratch = tempfile::tempdir()?;
        let mut files_by_table: BTreeMap<(String, String), Vec<(PathBuf, String)>> = BTreeMap::new();
        for (index, entry) in manifest.entries.iter().enumerate() {
            let key = file_key_of_entry(&self.storage, entry)?;
            let (app_id, table) = app_and_table_of_key(key)?;
            let bytes = get_bytes(self.storage.store.as_ref(), key).await?;
            let local_path = scratch.path().join(format!("{index}.parquet"));
            tokio::fs::write(&local_path, &bytes).await?;
            files_by_table.entry((app_id.to_string(), table.to_string())).or_default().push((local_path, entry.url.clone()));
        }
        let mut summary = self
            .on_warehouse(move |warehouse| {
                let mut summary = LoadSummary::default();
                for ((app_id, table), files) in &files_by_table {
                    add_table_rows(&mut summary, table, warehouse.merge_table_files(app_id, table, files)?);
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

/// The app and table a processed file belongs to, from its key.
pub fn app_and_table_of_key(key: &str) -> Result<(&str, &str), ActivityFailure> {
    let app_id = layout::app_of_processed_key(key).ok_or_else(|| ActivityFailure::InvalidInput(format!("`{key}` has no partition_app= segment")))?;
    let table = layout::table_of_processed_key(key).ok_or_else(|| ActivityFailure::InvalidInput(format!("`{key}` is not under data/processed/<table>/")))?;
    Ok((app_id, table))
}

#[async_trait::async_trait]
impl Warehouse for DuckDbLoader {
    async fn submit_load(&self, batch: &LoadBatch, _attempt: u32) -> Result<SubmittedLoad, ActivityFailure> {
        let loaded = self.load(batch).await?;
        Ok(SubmittedLoad { batch: batch.clone(), statement_id: None, counted_statements: Vec::new(), outcome: LoadOutcome::Finished(loaded) })
    }

    async fn check_load(&self, submitted: SubmittedLoad) -> Result<SubmittedLoad, ActivityFailure> {
        Ok(submitted) // DuckDB loads are final when submitted
    }

    async fn refresh_reporting_aggregates(&self, _app_ids: &[String]) -> Result<u64, ActivityFailure> {
        self.on_warehouse(|warehouse| Ok(warehouse.refresh_reporting_aggregates()?)).await
    }

    async fn delete_rows_before(&self, app_id: &str, cutoff_ms: i64) -> Result<ExpiredRows, ActivityFailure> {
        let app_id = app_id.to_string();
        self.on_warehouse(move |warehouse| Ok(warehouse.delete_rows_before(&app_id, cutoff_ms)?)).await
    }

    async fn scan_metadata(&self, app_id: &str, scanned_at_ms: i64) -> Result<AppMetadata, ActivityFailure> {
        let owned_app_id = app_id.to_string();
        let (events, parameters, attributes) = self.on_warehouse(move |warehouse| Ok(warehouse.metadata_scan_rows(&owned_app_id)?)).await?;
        Ok(assemble_app_metadata(app_id, scanned_at_ms, events, parameters, attributes))
    }
}

/// The warehouses this process serves, and which project uses which.
pub struct Warehouses {
    pub config: Arc<Config>,
    /// Present in the process that owns the DuckDB file.
    pub duckdb: Option<Arc<DuckDbLoader>>,
    /// Present when some project uses Redshift.
    pub redshift: Option<Arc<crate::redshift::RedshiftWarehouse>>,
}

impl Warehouses {
    /// The warehouse of a project; an error when this process does not serve it (a
    /// misrouted task: the project's warehouse task queue is another process's).
    pub fn of_project(&self, project_id: &str) -> Result<Arc<dyn Warehouse>, ActivityFailure> {
        let project = self.config.project(project_id).ok_or_else(|| ActivityFailure::InvalidInput(format!("project `{project_id}` is not configured")))?;
        let served: Option<Arc<dyn Warehouse>> = match project.warehouse {
            WarehouseKind::Duckdb => self.duckdb.clone().map(|warehouse| warehouse as Arc<dyn Warehouse>),
            WarehouseKind::Redshift => self.redshift.clone().map(|warehouse| warehouse as Arc<dyn Warehouse>),
        };
        served.ok_or_else(|| ActivityFailure::InvalidInput(format!("project `{project_id}`'s {:?} warehouse is not served by this process", project.warehouse)))
    }

    /// The warehouse of the project an app belongs to.
    pub fn of_app(&self, app_id: &str) -> Result<Arc<dyn Warehouse>, ActivityFailure> {
        let project = self.config.project_of_app(app_id).ok_or_else(|| ActivityFailure::InvalidInput(format!("app `{app_id}` belongs to no configured project")))?;
        self.of_project(&project.id)
    }
}
