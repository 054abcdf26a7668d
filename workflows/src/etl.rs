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

/// Marks histories whose runs merge pending users even when their window was empty.
pub const MERGE_BACKFILLED_USERS_PATCH: &str = "merge-backfilled-users";

#[workflow]
#[derive(Default)]
pub struct EtlWorkflow;

#[workflow_methods]
impl EtlWorkflow {
    #[run(name = "EtlWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: EtlInput) -> WorkflowResult<EtlRunSummary> {
        let short_activity = crate::short_activity_options();
        let plan = ctx
            .execute_activity(EtlActivities::plan_etl_window, input.clone(), short_activity.clone())
            .await?;

        let transformed = transform_chunks(ctx, &input.project_id, &plan).await?;

        // One merge per window, after every chunk: the user state is read and written by one
        // activity at a time, and only here (backfills leave their users to the next run). A
        // window without raw objects merges what backfills left, if any; runs recorded before
        // that (no marker of the second patch) merged only after transforming something.
        let mut users = None;
        let merge_users = ctx.patched(USER_MERGE_PATCH) && (plan.chunk_count > 0 || ctx.patched(MERGE_BACKFILLED_USERS_PATCH));
        if merge_users {
            let merge_activity = crate::long_activity_options(Duration::from_secs(900), None);
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

        // Runs of one project never overlap (the schedule skips). A backfill's loads may run
        // beside this one: loading is idempotent and the warehouse applies merges one at a time.
        let load_workflow_id = format!("{}-load", ctx.workflow_id());
        let loaded = load_pending_files(ctx, &input.project_id, input.max_files_per_load, &input.warehouse_task_queue, input.metadata_scan.clone(), load_workflow_id).await?;

        Ok(EtlRunSummary { plan, transformed, users, loaded })
    }
}

/// Options of the transform activity: long, with heartbeats (a retried attempt resumes from
/// the last one).
fn transform_activity_options() -> ActivityOptions {
    crate::long_activity_options(Duration::from_secs(900), None)
}

/// Transforms every chunk of a plan, at most [`MAX_PARALLEL_TRANSFORMS`] at a time.
pub(crate) async fn transform_chunks<W>(ctx: &WorkflowContext<W>, project_id: &str, plan: &EtlPlan) -> WorkflowResult<TransformCounters> {
    let mut transformed = TransformCounters::default();
    let chunk_indexes: Vec<u32> = (0..plan.chunk_count).collect();
    for wave in chunk_indexes.chunks(MAX_PARALLEL_TRANSFORMS) {
        let in_flight = wave.iter().map(|&chunk_index| {
            ctx.execute_activity(
                EtlActivities::transform_chunk,
                TransformChunkInput { project_id: project_id.to_string(), plan_key: plan.plan_key.clone(), chunk_index },
                transform_activity_options(),
            )
        });
        for counters in futures::future::join_all(in_flight).await {
            transformed.add(&counters?);
        }
    }
    Ok(transformed)
}

/// Loads every pending file of the project in a child `LoadDataWorkflow`. A child keeps its
/// history separate and shows as its own run in the Temporal UI.
pub(crate) async fn load_pending_files<W>(
    ctx: &WorkflowContext<W>,
    project_id: &str,
    max_files_per_load: u32,
    warehouse_task_queue: &str,
    metadata_scan: Option<ScanMetadataInput>,
    load_workflow_id: String,
) -> WorkflowResult<LoadSummary> {
    let load = ctx
        .start_child_workflow(
            LoadDataWorkflow::run,
            LoadInput { project_id: project_id.to_string(), max_files_per_batch: max_files_per_load, warehouse_task_queue: warehouse_task_queue.to_string(), carried_over: LoadSummary::default(), metadata_scan },
            ChildWorkflowOptions::workflow_id(load_workflow_id),
        )
        .await?;
    Ok(load.result().await?)
}
