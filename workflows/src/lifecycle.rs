//! `PipelineLifecycleWorkflow`: one per pipeline (workflow id = pipeline id), alive as long as
//! the pipeline exists.
//!
//! It deploys the pipeline in levels — ingestion and processing, then modeling, then
//! reporting — and then waits for commands: `update` (a new spec), `retry` (after a failure)
//! and `delete`. Commands arrive as signals and queue up, so concurrent changes to one
//! pipeline are applied one after the other. The `status` query answers the phase, the last
//! message and each level's stacks.
//!
//! A level that fails is rolled back (what that step created is removed; an updated stack
//! goes back to its previous template) and the pipeline is `failed` (never active) or
//! `warning` (it keeps running its previous configuration). Every status change is also
//! written to the control store, so the API can list pipelines without querying each
//! workflow.

use std::{collections::VecDeque, time::Duration};

use clickstream_core::control_model::{LevelState, PipelineLevel, PipelinePhase, PipelineSpec, PipelineStatus};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::{activities::LifecycleActivities, types::*};

/// Commands handled before the run continues as new, keeping its history bounded.
pub const COMMANDS_BEFORE_CONTINUE_AS_NEW: u64 = 50;

/// What the pipeline is asked to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PipelineCommand {
    Update(PipelineSpecUpdate),
    Retry,
    Delete,
}

#[workflow]
#[derive(Default)]
pub struct PipelineLifecycleWorkflow {
    status: PipelineStatus,
    commands: VecDeque<PipelineCommand>,
}

/// Provisioning may take long (a CloudFormation stack takes minutes); it heartbeats while it
/// waits. A few attempts cover a lost worker or a throttled API; a stack that fails is a
/// non-retryable failure and goes straight to the rollback.
fn provisioning_activity_options() -> ActivityOptions {
    let retry = temporalio_common::RetryPolicy::builder()
        .initial_interval(Duration::from_secs(2))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(5)
        .build();
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(3600)).heartbeat_timeout(Duration::from_secs(120)).retry_policy(retry).build()
}

/// The innermost message of an activity failure (the activity's own words).
fn failure_message(error: &temporalio_common::error::ActivityExecutionError) -> String {
    let mut failure = error.failure();
    let mut message = error.to_string();
    while let Some(current) = failure {
        if !current.message.is_empty() {
            message = current.message.clone();
        }
        failure = current.cause.as_deref();
    }
    message
}

#[workflow_methods]
impl PipelineLifecycleWorkflow {
    #[run(name = "PipelineLifecycleWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: PipelineLifecycleInput) -> WorkflowResult<PipelineStatus> {
        let mut commands_handled = 0u64;
        // What the pipeline runs: nothing before its first successful deployment.
        let mut running: Option<PipelineSpec> = input.running_spec.clone();
        let mut wanted = input.spec.clone();
        let mut wanted_version = input.spec_version;

        match input.carried_status.clone() {
            // A continued run: the previous one deployed already.
            Some(status) => ctx.state_mut(|state| state.status = status),
            None => {
                set_phase(ctx, &input, PipelinePhase::Creating, "deploying", wanted_version).await?;
                if deploy(ctx, &input, &wanted, None, wanted_version).await? {
                    running = Some(wanted.clone());
                }
            }
        }
        loop {
            ctx.wait_condition(|state: &Self| !state.commands.is_empty()).await?;
            let command = ctx.state_mut(|state| state.commands.pop_front()).expect("waited for a command");
            commands_handled += 1;
            match command {
                PipelineCommand::Update(update) => {
                    wanted = update.spec;
                    wanted_version = update.spec_version;
                    let phase = if running.is_some() { PipelinePhase::Updating } else { PipelinePhase::Creating };
                    set_phase(ctx, &input, phase, "deploying the new configuration", wanted_version).await?;
                    if deploy(ctx, &input, &wanted, running.as_ref(), wanted_version).await? {
                        running = Some(wanted.clone());
                    }
                }
                PipelineCommand::Retry => {
                    let phase = ctx.state(|state| state.status.phase);
                    if !matches!(phase, PipelinePhase::Failed | PipelinePhase::Warning) {
                        continue; // nothing failed: nothing to retry
                    }
                    let retry_phase = if running.is_some() { PipelinePhase::Updating } else { PipelinePhase::Creating };
                    set_phase(ctx, &input, retry_phase, "retrying", wanted_version).await?;
                    if deploy(ctx, &input, &wanted, running.as_ref(), wanted_version).await? {
                        running = Some(wanted.clone());
                    }
                }
                PipelineCommand::Delete => {
                    set_phase(ctx, &input, PipelinePhase::Deleting, "removing the stacks", wanted_version).await?;
                    tear_down(ctx, &input, &wanted).await?;
                    set_phase(ctx, &input, PipelinePhase::Deleted, "deleted; the data in the bucket and the warehouse is kept", wanted_version).await?;
                    ctx.execute_activity(LifecycleActivities::forget_pipeline, input.pipeline_id.clone(), crate::short_activity_options()).await?;
                    return Ok(ctx.state(|state| state.status.clone()));
                }
            }
            let idle = ctx.state(|state| state.commands.is_empty());
            if idle && commands_handled >= COMMANDS_BEFORE_CONTINUE_AS_NEW {
                // The next run starts from what this one left.
                let next = PipelineLifecycleInput {
                    spec: wanted.clone(),
                    spec_version: wanted_version,
                    carried_status: Some(ctx.state(|state| state.status.clone())),
                    running_spec: running.clone(),
                    ..input.clone()
                };
                match ctx.continue_as_new(next, temporalio_sdk::ContinueAsNewOptions::default())? {}
            }
        }
    }

    /// Asks for a new spec to be deployed (queued behind earlier commands).
    #[signal]
    pub fn update(&mut self, _ctx: &mut SyncWorkflowContext<Self>, update: PipelineSpecUpdate) {
        self.commands.push_back(PipelineCommand::Update(update));
    }

    /// Deploys the wanted spec again after a failure.
    #[signal]
    pub fn retry(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.commands.push_back(PipelineCommand::Retry);
    }

    /// Removes the pipeline's stacks; the workflow ends when they are gone.
    #[signal]
    pub fn delete(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.commands.push_back(PipelineCommand::Delete);
    }

    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> PipelineStatus {
        self.status.clone()
    }
}

/// Sets the phase and message and writes the status to the control store.
async fn set_phase(ctx: &WorkflowContext<PipelineLifecycleWorkflow>, input: &PipelineLifecycleInput, phase: PipelinePhase, message: &str, spec_version: u64) -> WorkflowResult<()> {
    let status = ctx.state_mut(|state| {
        state.status.phase = phase;
        state.status.message = message.to_string();
        state.status.spec_version = spec_version;
        state.status.clone()
    });
    record(ctx, input, status).await
}

async fn record(ctx: &WorkflowContext<PipelineLifecycleWorkflow>, input: &PipelineLifecycleInput, status: PipelineStatus) -> WorkflowResult<()> {
    let record_input = RecordPipelineStatusInput { pipeline_id: input.pipeline_id.clone(), status };
    ctx.execute_activity(LifecycleActivities::record_pipeline_status, record_input, crate::short_activity_options()).await?;
    Ok(())
}

fn level_input(input: &PipelineLifecycleInput, spec: &PipelineSpec, level: PipelineLevel, existed_before: bool) -> PipelineLevelInput {
    PipelineLevelInput { pipeline_id: input.pipeline_id.clone(), project_id: input.project_id.clone(), spec: spec.clone(), level, existed_before }
}

/// Deploys `wanted` level by level; `running` is what runs now (None before the first
/// success). Returns whether every level deployed. On a failure the failed level is rolled
/// back and the phase becomes `failed` (never ran) or `warning` (keeps running `running`).
async fn deploy(ctx: &WorkflowContext<PipelineLifecycleWorkflow>, input: &PipelineLifecycleInput, wanted: &PipelineSpec, running: Option<&PipelineSpec>, spec_version: u64) -> WorkflowResult<bool> {
    for level in PipelineLevel::ALL {
        let existed_before = running.is_some_and(|spec| level.wanted_by(spec));
        if !level.wanted_by(wanted) {
            if existed_before {
                // Turned off by this change (e.g. reporting): remove it.
                set_level(ctx, level, LevelState::Deleting, None);
                let outcome = ctx.execute_activity(LifecycleActivities::delete_pipeline_level, level_input(input, wanted, level, true), provisioning_activity_options()).await?;
                set_level(ctx, level, LevelState::Deleted, Some(outcome));
            } else {
                set_level(ctx, level, LevelState::Skipped, Some(PipelineLevelOutcome::default()));
            }
            continue;
        }
        set_level(ctx, level, LevelState::Deploying, None);
        let status = ctx.state(|state| state.status.clone());
        record(ctx, input, status).await?;
        let this_level = level_input(input, wanted, level, existed_before);
        match ctx.execute_activity(LifecycleActivities::deploy_pipeline_level, this_level.clone(), provisioning_activity_options()).await {
            Ok(outcome) => set_level(ctx, level, LevelState::Deployed, Some(outcome)),
            Err(error) => {
                let reason = failure_message(&error);
                set_level(ctx, level, LevelState::Failed, None);
                let rolled_back = ctx.execute_activity(LifecycleActivities::roll_back_pipeline_level, this_level, provisioning_activity_options()).await?;
                set_level(ctx, level, LevelState::RolledBack, Some(rolled_back));
                let (phase, message) = match running {
                    None => (PipelinePhase::Failed, format!("level {} failed and was rolled back: {reason}", level.name())),
                    Some(_) => (PipelinePhase::Warning, format!("the update of level {} failed and was rolled back; the previous configuration keeps running: {reason}", level.name())),
                };
                set_phase(ctx, input, phase, &message, spec_version).await?;
                return Ok(false);
            }
        }
    }
    set_phase(ctx, input, PipelinePhase::Active, "all levels deployed", spec_version).await?;
    Ok(true)
}

/// Removes the levels in reverse order (reporting first, ingestion last).
async fn tear_down(ctx: &WorkflowContext<PipelineLifecycleWorkflow>, input: &PipelineLifecycleInput, spec: &PipelineSpec) -> WorkflowResult<()> {
    for level in PipelineLevel::ALL.into_iter().rev() {
        let state = ctx.state(|workflow| workflow.status.level(level).state);
        if matches!(state, LevelState::Pending | LevelState::Skipped | LevelState::Deleted) {
            continue;
        }
        set_level(ctx, level, LevelState::Deleting, None);
        let status = ctx.state(|workflow| workflow.status.clone());
        record(ctx, input, status).await?;
        let outcome = ctx.execute_activity(LifecycleActivities::delete_pipeline_level, level_input(input, spec, level, true), provisioning_activity_options()).await?;
        set_level(ctx, level, LevelState::Deleted, Some(outcome));
    }
    Ok(())
}

fn set_level(ctx: &WorkflowContext<PipelineLifecycleWorkflow>, level: PipelineLevel, state: LevelState, outcome: Option<PipelineLevelOutcome>) {
    ctx.state_mut(|workflow| {
        let status = workflow.status.level_mut(level);
        status.state = state;
        if let Some(outcome) = outcome {
            status.stacks = outcome.stacks;
        }
    });
}
