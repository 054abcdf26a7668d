//! The production provisioner: each level is one or two CloudFormation stacks from the
//! templates in `control.templates_dir`, named `<stack_prefix>-<project>-<template>`.
//!
//! | level | stacks, in order |
//! |---|---|
//! | ingestion and processing | `processing` (data bucket, worker), then `ingestion` (collector, buffer; it takes the bucket) |
//! | modeling | `modeling` (Redshift, Glue database), then, with Redshift, an update of `processing` that hands its workers the COPY role |
//! | reporting | `reporting` (QuickSight's data source role), then the QuickSight assets through the API ([`super::quicksight`]) |
//!
//! Deploying creates a missing stack or updates an existing one ("no updates" is success),
//! then polls DescribeStacks until the stack settles; the activity heartbeats meanwhile. A
//! stack that ends anywhere but `CREATE_COMPLETE`/`UPDATE_COMPLETE`, or that CloudFormation
//! refuses, fails the deployment without retry; the workflow then rolls the level back.

use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_sdk_cloudformation::{
    Client,
    error::DisplayErrorContext,
    types::{Capability, Parameter, Stack, StackStatus as CfnStackStatus},
};
use clickstream_activities::errors::ActivityFailure;
use clickstream_core::{
    Config,
    config::{ProjectPlugin, SinkKind, WarehouseKind},
    control_model::{PipelineLevel, StackStatus, project_config_of_spec},
    layout,
    storage::StorageLocation,
};
use clickstream_workflows::types::{PipelineLevelInput, PipelineLevelOutcome};

use super::{
    Provisioner,
    quicksight::{PublishedApp, QuickSightPublisher, QuickSightTarget},
};
use clickstream_control::ControlPlane;
use sha2::{Digest, Sha256};

/// Pause between two DescribeStacks calls of a stack still in progress.
pub const STACK_POLL_INTERVAL: Duration = Duration::from_secs(2);

pub struct CloudFormationProvisioner {
    pub config: Arc<Config>,
    pub client: Client,
    /// The reporting level's QuickSight assets.
    pub quicksight: QuickSightPublisher,
    /// Where the apps of a project (and their time zones) are read.
    pub control: ControlPlane,
}

/// The longest value CloudFormation takes for a parameter.
const MAX_PARAMETER_BYTES: usize = 4096;

/// What the stacks' parameters take from the control store besides the spec.
#[derive(Default)]
struct StoredInputs {
    /// The project's apps (its processes refuse a project without).
    app_ids: Vec<String>,
    /// The spec's custom plugins as the `[[projects.plugins]]` and `[projects.transformer]`
    /// tables of the stacks' configuration, with the modules' URLs in the control plane's
    /// bucket; empty without plugins.
    plugin_tables: String,
    /// `bucket[/prefix]/_plugins`, whose modules the pipeline's workers may read; empty
    /// without plugins.
    plugin_modules_location: String,
}

/// SHA-256 (hex) of parameters' keys and values, whatever their order.
fn parameters_digest(parameters: &[Parameter]) -> String {
    let mut pairs: Vec<(&str, &str)> = parameters.iter().map(|parameter| (parameter.parameter_key().unwrap_or_default(), parameter.parameter_value().unwrap_or_default())).collect();
    pairs.sort_unstable();
    let mut hasher = Sha256::new();
    for (key, value) in pairs {
        // A separator no key or value holds, so that moving text between them changes the digest.
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    format!("{:x}", hasher.finalize())
}

/// A stack as seen by DescribeStacks: `None` when it does not exist.
struct StackView {
    status: CfnStackStatus,
    reason: String,
    outputs: HashMap<String, String>,
}

fn view(stack: &Stack) -> StackView {
    let outputs = stack.outputs().iter().filter_map(|output| Some((output.output_key()?.to_string(), output.output_value()?.to_string()))).collect();
    StackView { status: stack.stack_status().cloned().unwrap_or(CfnStackStatus::CreateInProgress), reason: stack.stack_status_reason().unwrap_or_default().to_string(), outputs }
}

fn unavailable(action: &str, error: impl std::fmt::Debug + std::error::Error + 'static) -> ActivityFailure {
    ActivityFailure::ProvisionerUnavailable(format!("CloudFormation {action}: {}", DisplayErrorContext(error)))
}

/// Whether an API error is CloudFormation refusing the request (a bad template or parameter,
/// a resource that cannot be created) rather than a transient failure.
fn is_refusal<E: aws_sdk_cloudformation::error::ProvideErrorMetadata>(error: &aws_sdk_cloudformation::error::SdkError<E>) -> bool {
    let Some(service) = error.as_service_error() else { return false };
    let code = service.code().unwrap_or_default();
    !matches!(code, "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "ServiceUnavailable" | "InternalFailure")
}

fn is_in_progress(status: &CfnStackStatus) -> bool {
    status.as_str().ends_with("_IN_PROGRESS")
}

impl CloudFormationProvisioner {
    pub async fn connect(config: Arc<Config>, control: ControlPlane) -> CloudFormationProvisioner {
        let sdk = clickstream_control::dynamodb::sdk_config(&config.control.cloudformation_region, &config.control.cloudformation_endpoint).await;
        let quicksight = QuickSightPublisher { client: aws_sdk_quicksight::Client::new(&sdk) };
        CloudFormationProvisioner { client: Client::new(&sdk), config, quicksight, control }
    }

    /// Where the reporting level's QuickSight assets go, from the `reporting` stack's
    /// parameters and outputs; None when the stack names no QuickSight principal or the
    /// project does not model on Redshift with a known endpoint (then QuickSight is skipped).
    fn quicksight_target(parameters: &[Parameter], outputs: &HashMap<String, String>) -> Option<QuickSightTarget> {
        let parameter = |key: &str| parameters.iter().find(|parameter| parameter.parameter_key() == Some(key)).and_then(|parameter| parameter.parameter_value()).unwrap_or_default().to_string();
        if parameter("Engine") != "redshift" || parameter("RedshiftEndpointAddress").is_empty() {
            return None;
        }
        Some(QuickSightTarget {
            asset_id_prefix: outputs.get("AssetIdPrefix")?.clone(),
            principal_arn: outputs.get("QuickSightPrincipalArn")?.clone(),
            data_source_role_arn: outputs.get("DataSourceRoleArn")?.clone(),
            redshift_host: parameter("RedshiftEndpointAddress"),
            redshift_port: parameter("RedshiftEndpointPort").parse().unwrap_or(5439),
            redshift_database: Some(parameter("RedshiftDatabase")).filter(|database| !database.is_empty()).unwrap_or_else(|| "dev".into()),
            vpc_connection_arn: Some(parameter("QuickSightVpcConnectionArn")).filter(|arn| !arn.is_empty()),
        })
    }

    /// The project's apps with their time zones.
    async fn published_apps(&self, project_id: &str) -> Result<Vec<PublishedApp>, ActivityFailure> {
        let apps = self.control.list_apps(project_id).await.map_err(|error| ActivityFailure::ControlStore(error.to_string()))?;
        Ok(apps.into_iter().map(|app| PublishedApp { app_id: app.id, timezone: app.timezone }).collect())
    }

    /// The target of the reporting stack as deployed now (None: no QuickSight).
    async fn deployed_quicksight_target(&self, level: &PipelineLevelInput) -> Result<Option<QuickSightTarget>, ActivityFailure> {
        let Some(stack) = self.describe(&self.stack_name(&level.project_id, "reporting")).await? else { return Ok(None) };
        let parameters = self.parameters("reporting", level, &self.outputs_of_deployed(&level.project_id).await?, &StoredInputs::default());
        Ok(Self::quicksight_target(&parameters, &stack.outputs))
    }

    /// The project's apps and the plugins its spec chose, from the control store.
    async fn stored_inputs(&self, level: &PipelineLevelInput, apps: &[PublishedApp]) -> Result<StoredInputs, ActivityFailure> {
        let app_ids: Vec<String> = apps.iter().map(|app| app.app_id.clone()).collect();
        let plugins = self.control.list_plugins().await.map_err(|error| ActivityFailure::ControlStore(error.to_string()))?;
        let project = project_config_of_spec(&level.project_id, &level.spec, app_ids.clone(), &plugins);
        if project.plugins.is_empty() && project.transformer.is_none() {
            return Ok(StoredInputs { app_ids, ..Default::default() });
        }
        // The modules stay where the console stored the uploads: the workers read them from
        // the control plane's bucket, which the processing stack lets them read.
        let refuse = |reason: String| ActivityFailure::ProvisionFailed(format!("the custom plugins cannot be handed to the pipeline: {reason}"));
        let location = StorageLocation::parse(&self.config.storage.url).map_err(|error| refuse(error.to_string()))?;
        let StorageLocation::S3 { .. } = location else {
            return Err(refuse(format!("the control plane's storage.url ({}) is not on S3, so the pipeline's workers cannot read the modules", self.config.storage.url)));
        };
        let in_bucket = |plugin: &ProjectPlugin| {
            let stored_key = !plugin.module_uri.is_empty() && !plugin.module_uri.contains("://");
            let module_uri = if stored_key { location.url_of_key(&plugin.module_uri) } else { plugin.module_uri.clone() };
            ProjectPlugin { module_uri, ..plugin.clone() }
        };
        let enrichers = project.plugins.iter().map(|plugin| ("[[projects.plugins]]", plugin));
        let transformer = project.transformer.iter().map(|plugin| ("[projects.transformer]", plugin));
        let mut plugin_tables = String::new();
        for (header, plugin) in enrichers.chain(transformer) {
            plugin_tables.push_str(header);
            plugin_tables.push('\n');
            plugin_tables.push_str(&toml::to_string(&in_bucket(plugin)).expect("a plugin's settings serialize to TOML"));
        }
        if plugin_tables.len() > MAX_PARAMETER_BYTES {
            return Err(refuse(format!("their settings take {} bytes, over the {MAX_PARAMETER_BYTES} of a CloudFormation parameter; shorten the plugins' configurations", plugin_tables.len())));
        }
        let plugin_modules_location = location.url_of_key(layout::PLUGIN_MODULES_ROOT).trim_start_matches("s3://").to_string();
        Ok(StoredInputs { app_ids, plugin_tables, plugin_modules_location })
    }

    /// Stack names allow letters, digits and `-` only.
    pub fn stack_name(&self, project_id: &str, template: &str) -> String {
        format!("{}-{}-{template}", self.config.control.stack_prefix, project_id.replace('_', "-"))
    }

    fn templates(level: PipelineLevel) -> &'static [&'static str] {
        match level {
            PipelineLevel::IngestionProcessing => &["processing", "ingestion"],
            PipelineLevel::Modeling => &["modeling"],
            PipelineLevel::Reporting => &["reporting"],
        }
    }

    async fn describe(&self, name: &str) -> Result<Option<StackView>, ActivityFailure> {
        match self.client.describe_stacks().stack_name(name).send().await {
            Ok(described) => Ok(described.stacks().first().map(view).filter(|stack| stack.status != CfnStackStatus::DeleteComplete)),
            // DescribeStacks answers a ValidationError "Stack with id … does not exist".
            Err(error) if error.as_service_error().and_then(|service| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(service)).is_some_and(|message| message.contains("does not exist")) => Ok(None),
            Err(error) => Err(unavailable("DescribeStacks", error)),
        }
    }

    /// Polls until the stack is no longer in progress; `None` once it is gone.
    async fn settle(&self, name: &str) -> Result<Option<StackView>, ActivityFailure> {
        loop {
            match self.describe(name).await? {
                Some(stack) if is_in_progress(&stack.status) => tokio::time::sleep(STACK_POLL_INTERVAL).await,
                settled => return Ok(settled),
            }
        }
    }

    /// The parameters of one template from the spec, the configuration and what earlier
    /// stacks of the pipeline output; `control.stack_parameters.<template>` adds or overrides.
    fn parameters(&self, template: &str, level: &PipelineLevelInput, earlier_outputs: &HashMap<String, String>, inputs: &StoredInputs) -> Vec<Parameter> {
        let spec = &level.spec;
        let config = &self.config;
        let mut values: Vec<(&str, String)> = vec![("PipelineId", level.pipeline_id.clone()), ("ProjectId", level.project_id.clone())];
        let data_bucket = earlier_outputs.get("DataBucketName").cloned().unwrap_or_default();
        let engine = match (spec.modeling.engine, spec.modeling.athena) {
            (WarehouseKind::Redshift, _) => "redshift",
            (WarehouseKind::Duckdb, true) => "athena",
            (WarehouseKind::Duckdb, false) => "none",
        };
        match template {
            "processing" => {
                // The stack's configuration lists the apps (a project needs at least one).
                values.push(("AppIds", inputs.app_ids.join(",")));
                values.push(("PluginTables", inputs.plugin_tables.clone()));
                values.push(("PluginModulesLocation", inputs.plugin_modules_location.clone()));
                let schedule = &spec.processing.schedule;
                values.push(("EtlIntervalSeconds", schedule.interval_seconds.unwrap_or(3600).to_string()));
                values.push(("EtlBufferSeconds", spec.processing.buffer_seconds.to_string()));
                values.push(("RetentionDays", spec.processing.retention_days.to_string()));
                values.push(("Enrichers", spec.processing.enrichers.join(",")));
                values.push(("DataFreshnessHours", spec.processing.data_freshness_hours.to_string()));
                values.push(("EtlCron", schedule.cron.clone().unwrap_or_default()));
                values.push(("TemporalAddress", config.temporal.address.clone()));
                values.push(("TemporalNamespace", config.temporal.namespace.clone()));
                values.extend(self.processing_warehouse(spec.modeling.engine, earlier_outputs));
            }
            "ingestion" => {
                let sink = match spec.ingestion.sink {
                    SinkKind::S3 => "s3",
                    SinkKind::Kafka => "kafka",
                    SinkKind::Kinesis => "kinesis",
                };
                values.push(("SinkType", sink.into()));
                values.push(("AppIds", inputs.app_ids.join(",")));
                // The collector accepts any JSON body for a project with a transformer.
                values.push(("PluginTables", inputs.plugin_tables.clone()));
                values.push(("KinesisShardCount", spec.ingestion.kinesis.shard_count.to_string()));
                values.push(("KafkaTopic", spec.ingestion.kafka.topic.clone()));
                if spec.ingestion.sink == SinkKind::Kafka {
                    values.push(("KafkaTopicPartitions", spec.ingestion.kafka.partitions.to_string()));
                }
                // The collector's (or, with a stream sink, the bridge's) raw objects.
                values.push(("SinkBatchMaxBytes", spec.ingestion.s3_buffer.max_bytes.to_string()));
                values.push(("SinkBatchMaxAgeSeconds", spec.ingestion.s3_buffer.max_age_seconds.to_string()));
                values.push(("DataBucketName", data_bucket));
            }
            "modeling" => {
                values.push(("Engine", engine.into()));
                values.push(("EnableAthena", spec.modeling.athena.to_string()));
                values.push(("RedshiftWorkgroupName", config.warehouse.redshift.workgroup_name.clone()));
                values.push(("DataBucketName", data_bucket));
            }
            "reporting" => {
                values.push(("Engine", engine.into()));
                values.push(("RedshiftWorkgroupName", config.warehouse.redshift.workgroup_name.clone()));
                values.push(("DataBucketName", data_bucket));
            }
            _ => {}
        }
        let overrides = config.control.stack_parameters.get(template);
        let mut parameters: Vec<Parameter> = values
            .into_iter()
            .filter(|(key, _)| overrides.is_none_or(|overrides| !overrides.contains_key(*key)))
            .map(|(key, value)| Parameter::builder().parameter_key(key).parameter_value(value).build())
            .collect();
        for (key, value) in overrides.into_iter().flatten() {
            parameters.push(Parameter::builder().parameter_key(key).parameter_value(value).build());
        }
        // Their processes read the project's configuration (an SSM parameter) when a task
        // starts: the digest in the task definitions makes a change of it replace the tasks.
        if matches!(template, "processing" | "ingestion") {
            let digest = parameters_digest(&parameters);
            parameters.push(Parameter::builder().parameter_key("ConfigDigest").parameter_value(digest).build());
        }
        parameters
    }

    /// The processing stack's warehouse parameters. Redshift only once the COPY role is known
    /// (the control plane's `copy_role_arn`, else the modeling stack's output): the worker's
    /// configuration check refuses a Redshift project without one, so before the modeling
    /// level the loads stay on the warehouse task queue and the files wait in the bucket.
    fn processing_warehouse(&self, engine: WarehouseKind, earlier_outputs: &HashMap<String, String>) -> Vec<(&'static str, String)> {
        let redshift = &self.config.warehouse.redshift;
        let output = |key: &str| earlier_outputs.get(key).filter(|value| !value.is_empty() && value.as_str() != "none").cloned();
        let first_set = |configured: &String, key: &str| Some(configured.clone()).filter(|value| !value.is_empty()).or_else(|| output(key));
        let copy_role_arn = first_set(&redshift.copy_role_arn, "RedshiftCopyRoleArn");
        let workgroup_name = match redshift.cluster_identifier.is_empty() {
            true => first_set(&redshift.workgroup_name, "RedshiftWorkgroupName"),
            false => None,
        };
        let reachable = workgroup_name.is_some() || !redshift.cluster_identifier.is_empty();
        let Some(copy_role_arn) = copy_role_arn.filter(|_| engine == WarehouseKind::Redshift && reachable) else {
            return vec![("Warehouse", "duckdb".into())];
        };
        vec![
            ("Warehouse", "redshift".into()),
            ("RedshiftWorkgroupName", workgroup_name.unwrap_or_default()),
            ("RedshiftClusterIdentifier", redshift.cluster_identifier.clone()),
            ("RedshiftDatabase", first_set(&redshift.database, "RedshiftDatabase").unwrap_or_else(|| "dev".into())),
            ("RedshiftDbUser", redshift.db_user.clone()),
            ("RedshiftSecretArn", redshift.secret_arn.clone()),
            ("RedshiftCopyRoleArn", copy_role_arn),
        ]
    }

    fn template_body(&self, template: &str) -> Result<String, ActivityFailure> {
        let path = self.config.control.templates_dir.join(format!("{template}.yaml"));
        std::fs::read_to_string(&path).map_err(|error| ActivityFailure::ProvisionFailed(format!("cannot read the template {}: {error}", path.display())))
    }

    /// Creates or updates one stack and waits for it; its outputs on success.
    async fn deploy_stack(&self, name: &str, template: &str, parameters: Vec<Parameter>) -> Result<StackView, ActivityFailure> {
        let body = self.template_body(template)?;
        let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
        let existing = self.settle(name).await?;
        let failed = |reason: String| ActivityFailure::ProvisionFailed(format!("stack {name}: {reason}"));
        match existing {
            // A stack whose creation failed cannot be updated: remove it and create anew.
            Some(stack) if matches!(stack.status, CfnStackStatus::RollbackComplete | CfnStackStatus::RollbackFailed | CfnStackStatus::CreateFailed) => {
                self.delete_stack(name).await?;
                return Box::pin(self.deploy_stack(name, template, parameters)).await;
            }
            Some(_) => {
                let updated = self.client.update_stack().stack_name(name).template_body(body).set_parameters(Some(parameters)).set_capabilities(Some(capabilities.to_vec())).send().await;
                match updated {
                    Ok(_) => {}
                    Err(error) if error.as_service_error().and_then(|service| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(service)).is_some_and(|message| message.contains("No updates are to be performed")) => {}
                    Err(error) if is_refusal(&error) => return Err(failed(format!("UpdateStack refused: {}", DisplayErrorContext(error)))),
                    Err(error) => return Err(unavailable("UpdateStack", error)),
                }
            }
            None => {
                let created = self
                    .client
                    .create_stack()
                    .stack_name(name)
                    .template_body(body)
                    .set_parameters(Some(parameters))
                    .set_capabilities(Some(capabilities.to_vec()))
                    .tags(aws_sdk_cloudformation::types::Tag::builder().key("clickstream:managed-by").value("PipelineLifecycleWorkflow").build())
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    Err(error) if is_refusal(&error) => return Err(failed(format!("CreateStack refused: {}", DisplayErrorContext(error)))),
                    Err(error) => return Err(unavailable("CreateStack", error)),
                }
            }
        }
        let settled = self.settle(name).await?.ok_or_else(|| failed("disappeared while it was deployed".into()))?;
        match settled.status {
            CfnStackStatus::CreateComplete | CfnStackStatus::UpdateComplete => Ok(settled),
            other => Err(failed(format!("ended in {}: {}", other.as_str(), settled.reason))),
        }
    }

    /// Deletes a stack (whatever state it is in) and waits until it is gone.
    async fn delete_stack(&self, name: &str) -> Result<StackStatus, ActivityFailure> {
        if self.describe(name).await?.is_none() {
            return Ok(StackStatus { name: name.into(), state: "DELETE_COMPLETE".into(), reason: "did not exist".into(), ..Default::default() });
        }
        self.client.delete_stack().stack_name(name).send().await.map_err(|error| unavailable("DeleteStack", error))?;
        match self.settle(name).await? {
            None => Ok(StackStatus { name: name.into(), state: "DELETE_COMPLETE".into(), reason: String::new(), ..Default::default() }),
            Some(stack) if stack.status == CfnStackStatus::DeleteFailed => Err(ActivityFailure::ProvisionFailed(format!("stack {name} could not be deleted: {}", stack.reason))),
            Some(stack) => Err(ActivityFailure::ProvisionerUnavailable(format!("stack {name} is still {} after DeleteStack", stack.status.as_str()))),
        }
    }

    /// The outputs of the deployed stacks other templates take: the processing stack's (the
    /// data bucket) and the modeling stack's (the Redshift COPY role), so that redeploying a
    /// level keeps what a later level gave an earlier one.
    async fn outputs_of_deployed(&self, project_id: &str) -> Result<HashMap<String, String>, ActivityFailure> {
        let mut outputs = HashMap::new();
        for template in ["processing", "modeling"] {
            if let Some(stack) = self.describe(&self.stack_name(project_id, template)).await? {
                outputs.extend(stack.outputs);
            }
        }
        Ok(outputs)
    }

    async fn delete_level(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        let mut stacks = Vec::new();
        // The QuickSight assets go first: the data source signs in with the stack's role.
        if level.level == PipelineLevel::Reporting
            && let Some(target) = self.deployed_quicksight_target(level).await?
        {
            self.quicksight.remove(&target, &self.published_apps(&level.project_id).await?).await?;
            stacks.push(StackStatus { name: format!("quicksight:{}", target.asset_id_prefix), state: "DELETE_COMPLETE".into(), reason: String::new(), ..Default::default() });
        }
        for template in Self::templates(level.level).iter().rev() {
            stacks.push(self.delete_stack(&self.stack_name(&level.project_id, template)).await?);
        }
        Ok(PipelineLevelOutcome { stacks })
    }
}

#[async_trait::async_trait]
impl Provisioner for CloudFormationProvisioner {
    async fn deploy(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        let mut outputs = self.outputs_of_deployed(&level.project_id).await?;
        let apps = self.published_apps(&level.project_id).await?;
        let inputs = self.stored_inputs(level, &apps).await?;
        let mut stacks = Vec::new();
        for template in Self::templates(level.level) {
            let name = self.stack_name(&level.project_id, template);
            let parameters = self.parameters(template, level, &outputs, &inputs);
            let deployed = self.deploy_stack(&name, template, parameters.clone()).await?;
            tracing::info!(stack = %name, status = deployed.status.as_str(), "stack deployed");
            stacks.push(StackStatus { name, state: deployed.status.as_str().into(), reason: deployed.reason, outputs: deployed.outputs.clone().into_iter().collect() });
            outputs.extend(deployed.outputs);
            if *template == "reporting"
                && let Some(target) = Self::quicksight_target(&parameters, &outputs)
            {
                let published = self.quicksight.publish(&target, &apps).await?;
                tracing::info!(data_source = %published.data_source, dashboards = ?published.dashboards, "QuickSight assets published");
                let reason = format!("data source {}, dashboards {}", published.data_source, published.dashboards.join(", "));
                stacks.push(StackStatus { name: format!("quicksight:{}", target.asset_id_prefix), state: "PUBLISHED".into(), reason, ..Default::default() });
            }
        }
        // The processing stack came first, without the COPY role the modeling stack has just
        // made: update it so that its workers load into Redshift (a new task definition;
        // ECS replaces the tasks).
        let processing_deployed = outputs.contains_key("DataBucketName");
        if level.level == PipelineLevel::Modeling && level.spec.modeling.engine == WarehouseKind::Redshift && processing_deployed {
            let name = self.stack_name(&level.project_id, "processing");
            let deployed = self.deploy_stack(&name, "processing", self.parameters("processing", level, &outputs, &inputs)).await?;
            tracing::info!(stack = %name, status = deployed.status.as_str(), "processing stack given the Redshift settings");
            stacks.push(StackStatus { name, state: deployed.status.as_str().into(), reason: "the workers load into Redshift".into(), outputs: deployed.outputs.into_iter().collect() });
        }
        Ok(PipelineLevelOutcome { stacks })
    }

    async fn roll_back(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        if !level.existed_before {
            return self.delete_level(level).await;
        }
        // CloudFormation rolls a failed update back itself: wait for it and report.
        let mut stacks = Vec::new();
        for template in Self::templates(level.level) {
            let name = self.stack_name(&level.project_id, template);
            let state = match self.settle(&name).await? {
                Some(stack) => StackStatus { name, state: stack.status.as_str().into(), reason: stack.reason, ..Default::default() },
                None => StackStatus { name, state: "DELETE_COMPLETE".into(), reason: "missing".into(), ..Default::default() },
            };
            stacks.push(state);
        }
        Ok(PipelineLevelOutcome { stacks })
    }

    async fn delete(&self, level: &PipelineLevelInput) -> Result<PipelineLevelOutcome, ActivityFailure> {
        self.delete_level(level).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter(key: &str, value: &str) -> Parameter {
        Parameter::builder().parameter_key(key).parameter_value(value).build()
    }

    #[test]
    fn the_digest_follows_every_value_but_not_the_order() {
        let base = [parameter("AppIds", "web"), parameter("PluginTables", "")];
        let digest = parameters_digest(&base);
        assert_eq!(digest.len(), 64);
        assert_eq!(parameters_digest(&[parameter("PluginTables", ""), parameter("AppIds", "web")]), digest);
        assert_ne!(parameters_digest(&[parameter("AppIds", "web,app"), parameter("PluginTables", "")]), digest);
        assert_ne!(parameters_digest(&[parameter("AppIds", "web"), parameter("PluginTables", "[[projects.plugins]]")]), digest);
        assert_ne!(parameters_digest(&[parameter("AppIds", ""), parameter("PluginTables", "web")]), digest, "a value moved to another key");
    }
}
