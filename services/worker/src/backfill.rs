//! Starting a backfill and following it: what `clickstream etl backfill` does.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clickstream_core::Config;
use clickstream_workflows::{BackfillWorkflow, types::{BackfillInput, BackfillProgress}};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowQueryOptions, WorkflowStartOptions};

use crate::{MAX_FILES_PER_LOAD, WorkerError};

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// A wrong request: fix the command line or the configuration.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// Temporal refused the start (retry when the server is back).
    #[error("cannot start the backfill workflow `{workflow_id}`: {reason}")]
    Start { workflow_id: String, reason: String },
    /// The workflow failed or was terminated; its history in the Temporal UI says why.
    #[error("the backfill workflow `{workflow_id}` did not complete: {reason}")]
    Failed { workflow_id: String, reason: String },
}

/// The workflow id of a backfill: the same request gives the same id, so running the command
/// again follows the backfill already under way instead of starting a second one.
pub fn backfill_workflow_id(project_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!("backfill-{project_id}-{}-{}", from.format("%Y%m%dT%H%M%SZ"), to.format("%Y%m%dT%H%M%SZ"))
}

/// Starts (or finds) the backfill of a project over [from, to) and returns its workflow id.
pub async fn start_backfill(client: &Client, config: &Config, project_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<String, BackfillError> {
    if config.project(project_id).is_none() {
        let known: Vec<&str> = config.projects.iter().map(|project| project.id.as_str()).collect();
        return Err(BackfillError::Usage(format!("--pipeline `{project_id}` is not a configured project (configured: {})", known.join(", "))));
    }
    if from >= to {
        return Err(BackfillError::Usage(format!("--from ({from}) must be before --to ({to})")));
    }
    if to > Utc::now() {
        return Err(BackfillError::Usage(format!("--to ({to}) is in the future: the scheduled ETL handles recent data")));
    }
    let workflow_id = backfill_workflow_id(project_id, from, to);
    let project = config.project(project_id).expect("checked above");
    let input = BackfillInput {
        project_id: project_id.to_string(),
        from_ms: from.timestamp_millis(),
        to_ms: to.timestamp_millis(),
        max_files_per_load: MAX_FILES_PER_LOAD,
        warehouse_task_queue: config.warehouse_task_queue(&project).to_string(),
        metadata_scan: Some(crate::metadata_scan_input(config, &project)),
        carried_over: BackfillProgress::default(),
    };
    let options = WorkflowStartOptions::new(config.temporal.task_queue.clone(), workflow_id.clone()).id_conflict_policy(WorkflowIdConflictPolicy::UseExisting).build();
    client
        .start_workflow(BackfillWorkflow::run, input, options)
        .await
        .map_err(|error| BackfillError::Start { workflow_id: workflow_id.clone(), reason: error.to_string() })?;
    Ok(workflow_id)
}

/// Follows a backfill to its end, reporting its progress every `interval`.
pub async fn follow_backfill(client: &Client, workflow_id: &str, interval: Duration, mut on_progress: impl FnMut(&BackfillProgress)) -> Result<BackfillProgress, BackfillError> {
    let handle = client.get_workflow_handle::<BackfillWorkflow>(workflow_id.to_string());
    let result = handle.get_result(WorkflowGetResultOptions::default());
    tokio::pin!(result);
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            outcome = &mut result => {
                return outcome.map_err(|error| BackfillError::Failed { workflow_id: workflow_id.to_string(), reason: error.to_string() });
            }
            _ = ticker.tick() => {
                // A query needs a worker; without one the bar waits (the result will come).
                if let Ok(progress) = handle.query(BackfillWorkflow::progress, (), WorkflowQueryOptions::default()).await {
                    on_progress(&progress);
                }
            }
        }
    }
}
