//! The store's pipelines as the project list every process serves ([`Config::live_projects`]):
//! the collector accepts their apps, the ETL and the warehouse process their data.

use std::{sync::Arc, time::Duration};

use clickstream_core::{
    Config,
    config::ProjectConfig,
    control_model::{App, Pipeline, PipelinePhase, Plugin, project_config_of_spec},
};

use crate::store::{ControlStore, StoreError, StoredPipelineStatus};

/// The projects of every stored pipeline that is not being deleted, with their apps.
pub async fn projects_of_store(store: &ControlStore) -> Result<Vec<ProjectConfig>, StoreError> {
    let pipelines = store.list::<Pipeline>().await?;
    let apps = store.list::<App>().await?;
    let statuses = store.list::<StoredPipelineStatus>().await?;
    let plugins = store.list::<Plugin>().await?;
    let mut projects = Vec::new();
    for pipeline in pipelines {
        let phase = statuses.iter().find(|status| status.pipeline_id == pipeline.id).map(|status| status.status.phase);
        if matches!(phase, Some(PipelinePhase::Deleted)) {
            continue;
        }
        let app_ids = apps.iter().filter(|app| app.project_id == pipeline.project_id).map(|app| app.id.clone()).collect();
        projects.push(project_config_of_spec(&pipeline.project_id, &pipeline.spec, app_ids, &plugins));
    }
    Ok(projects)
}

/// Reads the store's projects into `config.live_projects` once.
pub async fn refresh_live_projects(config: &Config, store: &ControlStore) -> Result<(), StoreError> {
    let projects = projects_of_store(store).await?;
    let count = projects.len();
    if config.live_projects.replace(projects) {
        tracing::info!(projects = count, "projects of the control store refreshed");
    }
    Ok(())
}

/// Refreshes once after a change this process made (it serves the change at once; the other
/// processes within `control.refresh_seconds`); a failure is only logged, the periodic
/// refresh tries again.
pub async fn refresh_live_projects_after(change: &str, config: &Config, store: &ControlStore) {
    if let Err(error) = refresh_live_projects(config, store).await {
        tracing::warn!(%error, %change, "cannot refresh the live projects; the periodic refresh will");
    }
}

/// Refreshes `config.live_projects` every `control.refresh_seconds` until the process ends;
/// a store that cannot be read leaves the last list in place.
pub fn keep_live_projects_fresh(config: Arc<Config>, store: ControlStore) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(config.control.refresh_seconds));
        loop {
            interval.tick().await;
            if let Err(error) = refresh_live_projects(&config, &store).await {
                tracing::warn!(%error, "cannot read the control store; keeping the last project list");
            }
        }
    })
}
