//! `LoadDataWorkflow`: loads pending Parquet files into the warehouse in manifest batches.
//!
//! prepare a batch (manifest in the object store) → submit it to the warehouse → poll its
//! status with backoff timers (Redshift's Data API runs statements asynchronously; DuckDB
//! answers finished at once) → mark it loaded → repeat until nothing is pending → refresh the
//! reporting aggregates → ask for a metadata scan. Loading merges on the tables' natural keys,
//! so a batch loaded twice (a retry after a crash between load and mark) inserts nothing the
//! second time.

use std::time::Duration;

use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowOptions, ChildWorkflowStartError, ContinueAsNewOptions, ParentClosePolicy, StartChildWorkflowExecutionFailedCause,
    WorkflowContext, WorkflowResult,
};

use crate::{
    activities::{EtlActivities, WarehouseActivities},
    metadata::ScanMetadataWorkflow,
    types::*,
};

/// Marks histories whose runs refresh the reporting aggregates after loading.
pub const REFRESH_REPORTING_PATCH: &str = "refresh-reporting-aggregates";
/// Marks histories whose loads are submitted, then polled (earlier runs loaded in one activity).
pub const SUBMIT_THEN_POLL_PATCH: &str = "submit-then-poll-load";
/// Marks histories whose runs ask for a metadata scan at the end.
pub const REQUEST_METADATA_SCAN_PATCH: &str = "request-metadata-scan";

/// Batches loaded by one run before it continues as new, keeping its history bounded.
pub const BATCHES_BEFORE_CONTINUE_AS_NEW: u64 = 100;
/// Times a batch is submitted again after the warehouse rolled it back, before the run fails
/// (its files stay pending, so the next scheduled run tries them again).
pub const MAX_LOAD_SUBMISSIONS: u32 = 3;
/// Waits between two status checks of a running load: doubling from the first to the last.
pub const FIRST_POLL_DELAY: Duration = Duration::from_secs(1);
pub const LONGEST_POLL_DELAY: Duration = Duration::from_secs(30);

/// The id of a project's metadata scan: one at a time per project.
pub fn metadata_scan_workflow_id(project_id: &str) -> String {
    format!("scan-metadata-{project_id}")
}

#[workflow]
#[derive(Default)]
pub struct LoadDataWorkflow;

#[workflow_methods]
impl LoadDataWorkflow {
    #[run(name = "LoadDataWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: LoadInput) -> WorkflowResult<LoadSummary> {
        let short_activity = crate::short_activity_options();
        let warehouse_activity = crate::long_activity_options(Duration::from_secs(1800), Some(&input.warehouse_task_queue));

        let mut summary = input.carried_over.clone();
        let mut batches_this_run = 0u64;
        loop {
            let prepared = ctx
                .execute_activity(
                    EtlActivities::prepare_load_batch,
                    PrepareLoadBatchInput { project_id: input.project_id.clone(), max_files: input.max_files_per_batch },
                    short_activity.clone(),
                )
                .await?;
            let Some(batch) = prepared else {
                // Reports read aggregates: rebuild them once everything pending is in. Runs
                // recorded before this step existed replay without it.
                if summary.batches > 0 && ctx.patched(REFRESH_REPORTING_PATCH) {
                    let refresh_input = RefreshReportingInput { project_id: input.project_id.clone() };
                    ctx.execute_activity(WarehouseActivities::refresh_reporting_aggregates, refresh_input, warehouse_activity.clone()).await?;
                }
                if summary.batches > 0
                    && let Some(scan) = &input.metadata_scan
                    && ctx.patched(REQUEST_METADATA_SCAN_PATCH)
                {
                    request_metadata_scan(ctx, scan.clone()).await?;
                }
                return Ok(summary);
            };
            let loaded = if ctx.patched(SUBMIT_THEN_POLL_PATCH) {
                submit_and_poll(ctx, &batch, &warehouse_activity).await?
            } else {
                ctx.execute_activity(WarehouseActivities::load_batch_into_warehouse, batch.clone(), warehouse_activity.clone()).await?
            };
            ctx.execute_activity(EtlActivities::complete_load_batch, batch, short_activity.clone()).await?;
            summary.add(&loaded);
            batches_this_run += 1;

            if batches_this_run >= BATCHES_BEFORE_CONTINUE_AS_NEW {
                let next_input = LoadInput { carried_over: summary, ..input.clone() };
                match ctx.continue_as_new(next_input, ContinueAsNewOptions::default())? {}
            }
        }
    }
}

/// Submits a batch and waits for the warehouse to finish it, checking with growing pauses
/// (durable timers: a worker restart resumes the wait). A load the warehouse rolled back is
/// submitted again, up to [`MAX_LOAD_SUBMISSIONS`] times.
async fn submit_and_poll(ctx: &WorkflowContext<LoadDataWorkflow>, batch: &LoadBatch, warehouse_activity: &ActivityOptions) -> WorkflowResult<LoadSummary> {
    let mut attempt = 0;
    loop {
        let submit_input = SubmitLoadInput { batch: batch.clone(), attempt };
        let mut submitted = ctx.execute_activity(WarehouseActivities::submit_warehouse_load, submit_input, warehouse_activity.clone()).await?;
        let mut delay = FIRST_POLL_DELAY;
        while submitted.outcome == LoadOutcome::Running {
            ctx.timer(delay).await;
            delay = (delay * 2).min(LONGEST_POLL_DELAY);
            submitted = ctx.execute_activity(WarehouseActivities::check_warehouse_load, submitted, crate::short_activity_options()).await?;
        }
        match submitted.outcome {
            LoadOutcome::Finished(loaded) => return Ok(loaded),
            // The reason is in the check activity's result, visible in the history.
            LoadOutcome::Failed { .. } if attempt + 1 < MAX_LOAD_SUBMISSIONS => attempt += 1,
            LoadOutcome::Failed { reason } => {
                let message = format!("the warehouse rolled back the load of `{}` {MAX_LOAD_SUBMISSIONS} times; last reason: {reason}", batch.manifest_key);
                return Err(ApplicationFailure::non_retryable(message).into());
            }
            LoadOutcome::Running => unreachable!("the loop above waits while the load runs"),
        }
    }
}

/// Starts the project's metadata scan unless one is running (its workflow id is per project),
/// and does not wait for it: the scan decides itself whether it is due.
async fn request_metadata_scan(ctx: &WorkflowContext<LoadDataWorkflow>, scan: ScanMetadataInput) -> WorkflowResult<()> {
    let mut options = ChildWorkflowOptions::workflow_id(metadata_scan_workflow_id(&scan.project_id));
    options.parent_close_policy = ParentClosePolicy::Abandon;
    match ctx.start_child_workflow(ScanMetadataWorkflow::run, scan, options).await {
        Ok(_started) => Ok(()),
        Err(ChildWorkflowStartError::StartFailed { cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists, .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
