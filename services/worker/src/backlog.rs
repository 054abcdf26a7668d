//! The task-queue backlog metric the pipelines' worker autoscaling tracks
//! (`infra/cloudformation/processing.yaml`: `Clickstream/TaskQueueBacklog`, dimension
//! `TaskQueue`). Once a minute the control plane's worker asks Temporal for each queue's
//! approximate backlog (workflow and activity tasks waiting for a worker) and puts the sum to
//! CloudWatch. Turned on by `control.backlog_metric`.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::{
    enums::v1::{TaskQueueKind, TaskQueueType},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::DescribeTaskQueueRequest,
};
use tokio_util::sync::CancellationToken;

pub const METRIC_NAMESPACE: &str = "Clickstream";
pub const METRIC_NAME: &str = "TaskQueueBacklog";
/// How often the backlog is published (the scaling policy's metric period is a minute).
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    #[error("Temporal DescribeTaskQueue of `{task_queue}` failed (retried at the next publication): {reason}")]
    Describe { task_queue: String, reason: String },
    #[error("CloudWatch PutMetricData failed (retried at the next publication): {0}")]
    Publish(String),
}

pub struct BacklogPublisher {
    pub temporal: Client,
    pub namespace: String,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub task_queues: Vec<String>,
    /// With the CloudFormation provisioner, the store's projects: each deployed pipeline's
    /// workers poll a queue of their own ([`Config::pipeline_etl_task_queue`]), published too.
    ///
    /// [`Config::pipeline_etl_task_queue`]: clickstream_core::config::Config::pipeline_etl_task_queue
    pub pipeline_projects: Option<clickstream_core::config::LiveProjects>,
}

impl BacklogPublisher {
    /// The queues published this round: the configured ones, then every pipeline's.
    pub fn queues(&self) -> Vec<String> {
        let mut queues = self.task_queues.clone();
        let Some(projects) = &self.pipeline_projects else { return queues };
        for project in projects.snapshot().iter() {
            let queue = clickstream_core::config::Config::pipeline_etl_task_queue(&project.id);
            if !queues.contains(&queue) {
                queues.push(queue);
            }
        }
        queues
    }

    /// A queue's approximate backlog: its workflow and activity tasks not yet taken.
    pub async fn backlog(&self, task_queue: &str) -> Result<i64, BacklogError> {
        let mut total = 0;
        for task_queue_type in [TaskQueueType::Workflow, TaskQueueType::Activity] {
            let request = DescribeTaskQueueRequest {
                namespace: self.namespace.clone(),
                task_queue: Some(TaskQueue { name: task_queue.to_string(), kind: TaskQueueKind::Normal as i32, ..Default::default() }),
                task_queue_type: task_queue_type as i32,
                report_stats: true,
                ..Default::default()
            };
            let described = self
                .temporal
                .connection()
                .workflow_service()
                .describe_task_queue(temporalio_client::tonic::Request::new(request))
                .await
                .map_err(|status| BacklogError::Describe { task_queue: task_queue.to_string(), reason: status.message().to_string() })?;
            total += described.into_inner().stats.map_or(0, |stats| stats.approximate_backlog_count);
        }
        Ok(total)
    }

    /// Publishes every queue's backlog once; returns what was published.
    pub async fn publish_once(&self) -> Result<Vec<(String, i64)>, BacklogError> {
        let mut published = Vec::new();
        let mut data = Vec::new();
        for task_queue in self.queues() {
            let backlog = self.backlog(&task_queue).await?;
            let dimension = Dimension::builder().name("TaskQueue").value(&task_queue).build();
            data.push(MetricDatum::builder().metric_name(METRIC_NAME).dimensions(dimension).value(backlog as f64).unit(StandardUnit::Count).build());
            published.push((task_queue.clone(), backlog));
        }
        self.cloudwatch
            .put_metric_data()
            .namespace(METRIC_NAMESPACE)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|error| BacklogError::Publish(aws_sdk_cloudwatch::error::DisplayErrorContext(&error).to_string()))?;
        Ok(published)
    }

    /// Publishes every [`PUBLISH_INTERVAL`] until shutdown; a failed round is logged and the
    /// next one tries again.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.publish_once().await {
                Ok(published) => tracing::debug!(?published, "published the task-queue backlog"),
                Err(error) => tracing::warn!(%error, "the task-queue backlog was not published"),
            }
            tokio::select! {
                () = tokio::time::sleep(PUBLISH_INTERVAL) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}
