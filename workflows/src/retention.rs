//! `ClearExpiredEventsWorkflow`: deletes what a project's warehouse holds beyond its retention
//! (`projects[].retention_days`, default 365), app by app, on the warehouse task queue. It runs
//! daily from a schedule; deleting is idempotent, so a retried or repeated run is harmless.

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::{activities::WarehouseActivities, types::*};

#[workflow]
#[derive(Default)]
pub struct ClearExpiredEventsWorkflow;

#[workflow_methods]
impl ClearExpiredEventsWorkflow {
    #[run(name = "ClearExpiredEventsWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ClearExpiredInput) -> WorkflowResult<ExpiredRows> {
        let warehouse_activity = crate::long_activity_options(Duration::from_secs(1800), Some(&input.warehouse_task_queue));
        let mut deleted = ExpiredRows::default();
        for app_id in &input.app_ids {
            let app_input = ClearExpiredAppInput { app_id: app_id.clone(), retention_days: input.retention_days };
            let app_deleted = ctx.execute_activity(WarehouseActivities::clear_expired_events, app_input, warehouse_activity.clone()).await?;
            deleted.add(&app_deleted);
        }
        Ok(deleted)
    }
}
