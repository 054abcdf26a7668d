//! `BackfillWorkflow`: re-processes the raw objects that arrived in a past range, started by
//! `clickstream etl backfill`.
//!
//! The range is cut into slices of [`SLICE_HOURS`] hours of arrival (the raw layer's hour
//! partitions); each slice is planned, transformed chunk by chunk with the same activities as
//! the scheduled `EtlWorkflow`, and loaded by a child `LoadDataWorkflow`. Outputs have the same
//! keys as any other run over the same raw objects and the warehouse merge skips what it has,
//! so overlapping a scheduled window or another backfill duplicates nothing. Users seen are
//! left pending and merged by the project's next scheduled run, the one place the user state
//! is written. The `progress` query answers how far the backfill is; the workflow continues
//! as new every [`SLICES_BEFORE_CONTINUE_AS_NEW`] slices to keep its history bounded.

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::{
    activities::EtlActivities,
    etl::{load_pending_files, transform_chunks},
    types::*,
};

/// Hours of arrival one slice covers.
pub const SLICE_HOURS: i64 = 6;
/// Slices one run handles before it continues as new.
pub const SLICES_BEFORE_CONTINUE_AS_NEW: u32 = 50;

const HOUR_MS: i64 = 3_600_000;
const SLICE_MS: i64 = SLICE_HOURS * HOUR_MS;

/// The slices of [from, to) widened to whole hours (the raw layer's partitions), each
/// [`SLICE_HOURS`] long but the last, so that no hour belongs to two slices.
pub fn backfill_slices(from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    if from_ms >= to_ms {
        return Vec::new();
    }
    let first_hour_ms = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let end_hour_ms = (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS;
    let mut slices = Vec::new();
    let mut start = first_hour_ms;
    while start < end_hour_ms {
        let end = (start + SLICE_MS).min(end_hour_ms);
        slices.push((start, end));
        start = end;
    }
    slices
}

#[workflow]
#[derive(Default)]
pub struct BackfillWorkflow {
    progress: BackfillProgress,
}

#[workflow_methods]
impl BackfillWorkflow {
    #[run(name = "BackfillWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: BackfillInput) -> WorkflowResult<BackfillProgress> {
        let slices = backfill_slices(input.from_ms, input.to_ms);
        let mut progress = BackfillProgress { slices_total: slices.len() as u32, ..input.carried_over.clone() };
        ctx.state_mut(|state| state.progress = progress.clone());
        let mut slices_this_run = 0u32;
        for (index, &(slice_start_ms, slice_end_ms)) in slices.iter().enumerate().skip(progress.slices_done as usize) {
            if slices_this_run >= SLICES_BEFORE_CONTINUE_AS_NEW {
                let next_input = BackfillInput { carried_over: progress, ..input.clone() };
                match ctx.continue_as_new(next_input, ContinueAsNewOptions::default())? {}
            }
            let plan = ctx
                .execute_activity(
                    EtlActivities::plan_backfill_slice,
                    BackfillSliceInput { project_id: input.project_id.clone(), slice_start_ms, slice_end_ms },
                    crate::short_activity_options(),
                )
                .await?;
            if plan.chunk_count > 0 {
                let transformed = transform_chunks(ctx, &input.project_id, &plan).await?;
                progress.transformed.add(&transformed);
                let load_workflow_id = format!("{}-load-{index}", ctx.workflow_id());
                let loaded = load_pending_files(ctx, &input.project_id, input.max_files_per_load, &input.warehouse_task_queue, input.metadata_scan.clone(), load_workflow_id).await?;
                progress.loaded.add(&loaded);
            }
            progress.raw_objects += plan.raw_object_count;
            progress.slices_done += 1;
            slices_this_run += 1;
            ctx.state_mut(|state| state.progress = progress.clone());
        }
        Ok(progress)
    }

    /// How far the backfill is (for `clickstream etl backfill`'s progress bar and the UI).
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> BackfillProgress {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_without_gaps() {
        let hour = HOUR_MS;
        assert_eq!(backfill_slices(0, 13 * hour), vec![(0, 6 * hour), (6 * hour, 12 * hour), (12 * hour, 13 * hour)]);
        assert_eq!(backfill_slices(hour + 5, 2 * hour + 5), vec![(hour, 3 * hour)], "partial hours count whole");
        assert!(backfill_slices(5, 5).is_empty());
    }
}
