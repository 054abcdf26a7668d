//! `EtlWorkflow`: one scheduled run of a project's ETL.
//!
//! plan the window → transform its chunks (bounded fan-out) → merge the window's users into
//! the user state → commit the window → load.
//! Re-running a window rewrites the same Parquet keys (chunk ids are derived from the raw
//! keys) and the warehouse merge skips events it already has, so a retry never duplicates.

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, ChildWorkflowOptions, WorkflowContext, WorkflowResult};

use crate::{activities::EtlActivities, load::LoadDataWorkflow, types::*};

/// How many transform activities of one run may be in flight at once.
pub const MAX_PARALLEL_TRANSFORMS: usize = 4;

/// Marks histories that include the user merge; runs started before it existed replay
/// without it (Temporal's patching).
pub const USER_MERGE_PATCH: &str = "merge-window-users";

#[workflow]
#[derive(Default)]
pub struct EtlWorkflow;

#[workflow_methods]
impl EtlWorkflow {
    #[run(name = "EtlWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: EtlInput) -> WorkflowResult<EtlRunSummary> {
        let short_activity = crate::short_activity_options();
        let transform_activity = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(900))
            .heartbeat_timeout(Duration::from_secs(60))
            .retry_policy(crate::retry_policy())
            .build();

        let plan = ctx
            .execute_activity(EtlActivities::plan_etl_window, input.clone(), short_activity.clone())
            .await?;

        let mut transformed = TransformCounters::default();
        let chunk_indexes: Vec<u32> = (0..plan.chunk_count).collect();
        for wave in chunk_indexes.chunks(MAX_PARALLEL_TRANSFORMS) {
            let in_flight = wave.iter().map(|&chunk_index| {
                ctx.execute_activity(
                    EtlActivities::transform_chunk,
                    TransformChunkInput {
                        project_id: input.project_id.clone(),
                        plan_key: plan.plan_key.clone(),
                        chunk_index,
                    },
                    transform_activity.clone(),
                )
            });
            for counters in futures::future::join_all(in_flight).await {
                transformed.add(&counters?);
            }
        }

        // One merge per window, after every chunk: the user state is read and written by one
        // activity at a time. A window without raw objects has no users to merge.
        let mut users = None;
        if ctx.patched(USER_MERGE_PATCH) && plan.chunk_count > 0 {
            let merge_activity = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(900)).retry_policy(crate::retry_policy()).build();
            let merged = ctx
                .execute_activity(
                    EtlActivities::merge_window_users,
                    MergeUsersInput { project_id: input.project_id.clone(), window_start_ms: plan.window_start_ms, window_end_ms: plan.window_end_ms },
                    merge_activity,
                )
                .await?;
            users = Some(merged);
        }

        ctx.execute_activity(
            EtlActivities::commit_etl_window,
            CommitWindowInput { project_id: input.project_id.clone(), window_end_ms: plan.window_end_ms },
            short_activity,
        )
        .await?;

        // The load runs as a child so that its history stays separate and it shows as its own
        // run in the Temporal UI. Runs of one project never overlap (the schedule skips), so
        // neither do their loads.
        let load_workflow_id = format!("{}-load", ctx.workflow_id());
        let load = ctx
            .start_child_workflow(
                LoadDataWorkflow::run,
                LoadInput {
                    project_id: input.project_id.clone(),
                    max_files_per_batch: input.max_files_per_load,
                    warehouse_task_queue: input.warehouse_task_queue.clone(),
                    carried_over: LoadSummary::default(),
                },
                ChildWorkflowOptions::workflow_id(load_workflow_id),
            )
            .await?;
        let loaded = load.result().await?;

        Ok(EtlRunSummary { plan, transformed, users, loaded })
    }
}
