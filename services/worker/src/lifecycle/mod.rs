//! The pipeline lifecycle's activities: provisioning a level (through a [`Provisioner`]) and
//! keeping the control store's view of the pipeline.
//!
//! Two provisioners: [`cloudformation::CloudFormationProvisioner`] deploys the templates of
//! `infra/cloudformation` as stacks (production), [`local::LocalProvisioner`] sets up what the
//! dev stack needs (the project's storage, its Kafka topic or Kinesis stream, its Temporal
//! schedules).

pub mod cloudformation;
pub mod local;
pub mod quicksight;

use std::sync::Arc;

use clickstream_activities::{errors::ActivityFailure, heartbeat::heartbeat_while};
use clickstream_control::{ControlError, ControlPlane, live::refresh_live_projects_after};
use clickstream_workflows::{activities::names, types::*};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Sets up, rolls back and removes the levels of a pipeline. Every operation is idempotent:
/// an activity retried after a lost worker repeats it safely.
#[async_trait::async_trait]
pub trait Provisioner: Send + Sync {
    /// Creates or updates the level's resources and waits until they are ready.
    async fn deploy(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure>;
    /// Undoes a failed deploy of this level: removes it when it is new in this step
    /// (`existed_before` false), else waits until the previous configuration is back.
    async fn roll_back(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure>;
    /// Removes the level's resources (data is kept).
    async fn delete(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure>;
}

pub struct LifecycleActivityImplementations {
    pub provisioner: Arc<dyn Provisioner>,
    pub control: ControlPlane,
}

fn control_failure(error: ControlError) -> ActivityFailure {
    ActivityFailure::ControlStore(error.to_string())
}

#[activities]
impl LifecycleActivityImplementations {
    #[activity(name = names::DEPLOY_PIPELINE_LEVEL)]
    pub async fn deploy_pipeline_level(self: Arc<Self>, ctx: ActivityContext, input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        let deployed = heartbeat_while(&ctx, self.provisioner.deploy(&input)).await.map_err(ActivityFailure::into_activity_error)?;
        refresh_live_projects_after("a pipeline level was deployed", &self.control.config, &self.control.store).await;
        Ok(deployed)
    }

    #[activity(name = names::ROLL_BACK_PIPELINE_LEVEL)]
    pub async fn roll_back_pipeline_level(self: Arc<Self>, ctx: ActivityContext, input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        heartbeat_while(&ctx, self.provisioner.roll_back(&input)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::DELETE_PIPELINE_LEVEL)]
    pub async fn delete_pipeline_level(self: Arc<Self>, ctx: ActivityContext, input: PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityError> {
        heartbeat_while(&ctx, self.provisioner.delete(&input)).await.map_err(ActivityFailure::into_activity_error)
    }

    #[activity(name = names::RECORD_PIPELINE_STATUS)]
    pub async fn record_pipeline_status(self: Arc<Self>, _ctx: ActivityContext, input: RecordPipelineStatusInput) -> Result<(), ActivityError> {
        self.control.record_status(&input.pipeline_id, &input.status).await.map_err(|error| control_failure(error).into_activity_error())
    }

    #[activity(name = names::FORGET_PIPELINE)]
    pub async fn forget_pipeline(self: Arc<Self>, _ctx: ActivityContext, pipeline_id: String) -> Result<(), ActivityError> {
        self.control.remove_pipeline(&pipeline_id).await.map_err(|error| control_failure(error).into_activity_error())?;
        refresh_live_projects_after("a pipeline was deleted", &self.control.config, &self.control.store).await;
        Ok(())
    }
}
