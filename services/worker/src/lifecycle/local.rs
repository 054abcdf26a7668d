//! The dev stack's provisioner: what a pipeline needs on one machine.
//!
//! | level | resources |
//! |---|---|
//! | ingestion and processing | the project's spec under `<project>/pipeline/spec.json` in the object store (proves the location is writable), its Kafka topic or Kinesis stream, its ETL schedule |
//! | modeling | the daily retention and catalog schedules over the warehouse (tables are created by the first load) |
//! | reporting | nothing to create: the console serves the dashboards from the warehouse |
//!
//! Deleting keeps the data (objects, warehouse tables, topic contents) and removes the
//! schedules, as CAoA keeps the data bucket of a deleted pipeline.

use std::sync::Arc;

use clickstream_activities::errors::ActivityFailure;
use clickstream_control::ControlPlane;
use clickstream_core::{
    Config, ProjectConfig,
    config::SinkKind,
    control_model::{PipelineLevel, StackStatus, project_config_of_spec},
    storage::Storage,
};
use clickstream_workflows::types::{PipelineLevelInput, PipelineLevelOutcome};
use temporalio_client::Client;

use super::Provisioner;

pub struct LocalProvisioner {
    pub config: Arc<Config>,
    pub storage: Storage,
    pub client: Client,
    pub control: ControlPlane,
}

fn complete(name: impl Into<String>, reason: impl Into<String>) -> StackStatus {
    StackStatus { name: name.into(), state: "CREATE_COMPLETE".into(), reason: reason.into(), ..Default::default() }
}

fn deleted(name: impl Into<String>) -> StackStatus {
    StackStatus { name: name.into(), state: "DELETE_COMPLETE".into(), reason: String::new(), ..Default::default() }
}

fn unavailable(error: impl std::fmt::Display) -> ActivityFailure {
    ActivityFailure::ProvisionerUnavailable(error.to_string())
}

fn spec_key(project_id: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("{project_id}/pipeline/spec.json"))
}

impl LocalProvisioner {
    /// The level's project as the ETL and the schedules see it, with the apps of the store.
    async fn project(&self, level: &PipelineLevelInput) -> Result<ProjectConfig, ActivityFailure> {
        let apps = self.control.list_apps(&level.project_id).await.map_err(|error| ActivityFailure::ControlStore(error.to_string()))?;
        let plugins = self.control.list_plugins().await.map_err(|error| ActivityFailure::ControlStore(error.to_string()))?;
        Ok(project_config_of_spec(&level.project_id, &level.spec, apps.into_iter().map(|app| app.id).collect(), &plugins))
    }

    async fn deploy_ingestion_and_processing(&self, project: &ProjectConfig, level: &PipelineLevelInput) -> Result<Vec<StackStatus>, ActivityFailure> {
        let key = spec_key(&project.id);
        let spec = serde_json::to_vec_pretty(&level.spec).expect("a spec serializes");
        self.storage.store.put(&key, spec.into()).await.map_err(ActivityFailure::object_store("put", key.to_string()))?;
        let storage = complete("storage", format!("{}/{}", self.config.storage.url.trim_end_matches('/'), project.id));
        let sink = match project.sink {
            SinkKind::S3 => complete("sink", "the collector writes raw objects to the object store"),
            SinkKind::Kafka => {
                let topic = project.kafka_topic().to_string();
                let partitions = level.spec.ingestion.kafka.partitions;
                use clickstream_ingest::sink::kafka::{KafkaSink, NewTopicSettings, bootstrap_brokers};
                let brokers = bootstrap_brokers(&self.config.kafka).await.map_err(unavailable)?;
                let settings = NewTopicSettings { partitions, ..NewTopicSettings::of(&self.config.kafka) };
                KafkaSink::ensure_topics(&brokers, std::slice::from_ref(&topic), &settings).await.map_err(unavailable)?;
                complete("sink", format!("Kafka topic {topic} ({partitions} partitions)"))
            }
            SinkKind::Kinesis => {
                let stream = project.kinesis_stream().to_string();
                let shards = level.spec.ingestion.kinesis.shard_count;
                let client = clickstream_ingest::sink::kinesis::client(&self.config.kinesis).await;
                clickstream_ingest::sink::kinesis::KinesisSink::ensure_streams(&client, std::slice::from_ref(&stream), shards).await.map_err(unavailable)?;
                complete("sink", format!("Kinesis stream {stream} ({shards} shards)"))
            }
        };
        let schedule = crate::ensure_etl_schedule(&self.client, &self.config, project).await.map_err(unavailable)?;
        Ok(vec![storage, sink, complete("etl-schedule", format!("Temporal schedule {schedule}"))])
    }

    async fn deploy_modeling(&self, project: &ProjectConfig) -> Result<Vec<StackStatus>, ActivityFailure> {
        let schedules = crate::ensure_warehouse_schedules(&self.client, &self.config, project).await.map_err(unavailable)?;
        Ok(schedules.into_iter().map(|schedule| complete(schedule.clone(), format!("Temporal schedule {schedule}"))).collect())
    }

    async fn remove(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        let project_id = &level.project_id;
        let stacks = match level.level {
            PipelineLevel::IngestionProcessing => {
                let schedule = crate::schedule_id(project_id);
                crate::delete_schedule(&self.client, &schedule).await.map_err(unavailable)?;
                let key = spec_key(project_id);
                match self.storage.store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(ActivityFailure::object_store("delete", key.to_string())(error)),
                }
                vec![deleted("etl-schedule"), deleted("storage (data kept)"), deleted("sink (topic or stream kept)")]
            }
            PipelineLevel::Modeling => {
                let mut stacks = Vec::new();
                for schedule in [crate::retention_schedule_id(project_id), crate::partitions_schedule_id(project_id)] {
                    crate::delete_schedule(&self.client, &schedule).await.map_err(unavailable)?;
                    stacks.push(deleted(schedule));
                }
                stacks
            }
            PipelineLevel::Reporting => vec![deleted("reporting")],
        };
        Ok(PipelineLevelOutcome { stacks })
    }
}

#[async_trait::async_trait]
impl Provisioner for LocalProvisioner {
    async fn deploy(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        let project = self.project(level).await?;
        let stacks = match level.level {
            PipelineLevel::IngestionProcessing => self.deploy_ingestion_and_processing(&project, level).await?,
            PipelineLevel::Modeling => self.deploy_modeling(&project).await?,
            PipelineLevel::Reporting => vec![complete("reporting", "dashboards are served by the console from the warehouse")],
        };
        Ok(PipelineLevelOutcome { stacks })
    }

    async fn roll_back(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        if !level.existed_before {
            return self.remove(level).await;
        }
        // Schedule updates are atomic: a failed one left the previous schedule in place.
        Ok(PipelineLevelOutcome { stacks: vec![StackStatus { name: level.level.name().into(), state: "UPDATE_ROLLBACK_COMPLETE".into(), reason: "the previous configuration is in place".into(), ..Default::default() }] })
    }

    async fn delete(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        self.remove(level).await
    }
}
