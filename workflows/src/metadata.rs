//! `ScanMetadataWorkflow`: collects what a project's data contains (event names with daily
//! counts, platforms and SDKs; event parameters with value types and top values; user
//! attributes with their values) into the metadata store the console reads.
//!
//! The load workflow asks for it after each load; it is skipped when the last successful scan
//! is younger than the configured age (default a day), and its workflow id (one per project)
//! keeps two from running at once.

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::{activities::WarehouseActivities, types::*};

#[workflow]
#[derive(Default)]
pub struct ScanMetadataWorkflow;

#[workflow_methods]
impl ScanMetadataWorkflow {
    #[run(name = "ScanMetadataWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ScanMetadataInput) -> WorkflowResult<MetadataScanSummary> {
        let warehouse_activity = crate::long_activity_options(Duration::from_secs(3600), Some(&input.warehouse_task_queue));
        Ok(ctx.execute_activity(WarehouseActivities::scan_metadata, input, warehouse_activity).await?)
    }
}
