//! `LoadDataWorkflow`: loads pending Parquet files into the warehouse in manifest batches.
//!
//! prepare a batch (manifest in the object store) → load it on the warehouse task queue →
//! mark it loaded → repeat until nothing is pending → refresh the reporting aggregates. Loading merges on `event_id`, so a batch
//! loaded twice (a retry after a crash between load and mark) inserts nothing the second time.

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowResult};

use crate::{
    activities::{EtlActivities, WarehouseActivities},
    types::*,
};

/// Marks histories whose runs refresh the reporting aggregates after loading.
pub const REFRESH_REPORTING_PATCH: &str = "refresh-reporting-aggregates";

/// Batches loaded by one run before it continues as new, keeping its history bounded.
pub const BATCHES_BEFORE_CONTINUE_AS_NEW: u64 = 100;

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
                return Ok(summary);
            };
            let loaded = ctx
                .execute_activity(WarehouseActivities::load_batch_into_warehouse, batch.clone(), warehouse_activity.clone())
                .await?;
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
