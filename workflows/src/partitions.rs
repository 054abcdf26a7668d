//! `AthenaPartitionWorkflow`: keeps a project's processed data queryable outside the
//! warehouse. With Glue, the database, the four tables and the raw table are created or
//! updated and new partitions added (Athena reads them); locally, the DuckDB warehouse gets
//! views over the Parquet files (on the warehouse owner's task queue). Runs daily.

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::{
    activities::{EtlActivities, WarehouseActivities},
    types::*,
};

#[workflow]
#[derive(Default)]
pub struct AthenaPartitionWorkflow;

#[workflow_methods]
impl AthenaPartitionWorkflow {
    #[run(name = "AthenaPartitionWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: CatalogInput) -> WorkflowResult<CatalogSummary> {
        let summary = if input.kind == "glue" {
            ctx.execute_activity(EtlActivities::register_glue_catalog, input.clone(), crate::long_activity_options(Duration::from_secs(1800), None)).await?
        } else {
            let options = crate::long_activity_options(Duration::from_secs(600), Some(&input.warehouse_task_queue));
            ctx.execute_activity(WarehouseActivities::refresh_lake_views, input.clone(), options).await?
        };
        Ok(summary)
    }
}
