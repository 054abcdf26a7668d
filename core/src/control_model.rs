//! What the control plane keeps: projects, apps, pipelines (their spec and status), plugins and
//! metadata display names. The REST API, the store and `PipelineLifecycleWorkflow` share these
//! types; their JSON is the API's (see docs/control-plane.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::{ProjectConfig, SinkKind, WarehouseKind};

/// Bookkeeping of every stored record: `version` guards concurrent changes (an update names
/// the version it read; another one stored since is a conflict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct Stamp {
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Dev,
    Test,
    Prod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub environment: Environment,
    #[serde(flatten)]
    pub stamp: Stamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    #[default]
    Web,
    Android,
    Ios,
    Flutter,
    ReactNative,
    WechatMiniprogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// The SDKs' `appId`, unique across projects.
    pub id: String,
    pub project_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform: Platform,
    /// IANA time zone of the app's reports (days start at midnight there).
    pub timezone: String,
    #[serde(flatten)]
    pub stamp: Stamp,
}

/// A pipeline as CAoA configures one: ingestion (sink and buffer), processing (schedule,
/// freshness, enrichment chain, plugins), modeling and reporting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineSpec {
    pub ingestion: IngestionSpec,
    pub processing: ProcessingSpec,
    pub modeling: ModelingSpec,
    pub reporting: ReportingSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestionSpec {
    #[schema(value_type = String, example = "s3")]
    pub sink: SinkKind,
    #[serde(default)]
    pub s3_buffer: S3BufferSpec,
    #[serde(default)]
    pub kafka: KafkaSpec,
    #[serde(default)]
    pub kinesis: KinesisSpec,
}

/// The collector writes a raw object when this many bytes are buffered or the oldest
/// buffered event is this old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct S3BufferSpec {
    pub max_bytes: u64,
    pub max_age_seconds: u64,
}

impl Default for S3BufferSpec {
    fn default() -> Self {
        S3BufferSpec { max_bytes: 10 * 1024 * 1024, max_age_seconds: 60 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KafkaSpec {
    /// The project id when empty.
    #[serde(default)]
    pub topic: String,
    pub partitions: i32,
}

impl Default for KafkaSpec {
    fn default() -> Self {
        KafkaSpec { topic: String::new(), partitions: 3 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KinesisSpec {
    /// The project id when empty.
    #[serde(default)]
    pub stream: String,
    pub shard_count: i32,
}

impl Default for KinesisSpec {
    fn default() -> Self {
        KinesisSpec { stream: String::new(), shard_count: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessingSpec {
    pub enabled: bool,
    pub schedule: ScheduleSpec,
    /// Raw objects younger than this wait for the next run.
    pub buffer_seconds: u64,
    /// Events older than this (by their own timestamp) are quarantined.
    pub data_freshness_hours: u64,
    /// The enrichment chain, in order.
    pub enrichers: Vec<String>,
    /// Custom plugins (ids), run after the enrichers.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// A transformer plugin (id) for request bodies in a format other than the CAoA SDKs'
    /// (docs/plugins.md); the collector then accepts any JSON body for the project's apps.
    #[serde(default)]
    pub transformer: Option<String>,
    pub retention_days: u32,
}

/// When the ETL runs: every `interval_seconds`, or on a five-field UTC cron expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelingSpec {
    /// The warehouse the data is modeled in.
    #[schema(value_type = String, example = "duckdb")]
    pub engine: WarehouseKind,
    /// Also register the tables in the Glue catalog for Athena.
    #[serde(default)]
    pub athena: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportingSpec {
    pub enabled: bool,
}

impl Default for PipelineSpec {
    /// What the console's wizard proposes: S3 sink, ETL every minute, every enricher,
    /// DuckDB, reporting on.
    fn default() -> Self {
        PipelineSpec {
            ingestion: IngestionSpec { sink: SinkKind::S3, s3_buffer: S3BufferSpec::default(), kafka: KafkaSpec::default(), kinesis: KinesisSpec::default() },
            processing: ProcessingSpec {
                enabled: true,
                schedule: ScheduleSpec { interval_seconds: Some(60), cron: None },
                buffer_seconds: 10,
                data_freshness_hours: 72,
                enrichers: crate::config::KNOWN_ENRICHERS.iter().map(|name| name.to_string()).collect(),
                plugins: Vec::new(),
                transformer: None,
                retention_days: 365,
            },
            modeling: ModelingSpec { engine: WarehouseKind::Duckdb, athena: false },
            reporting: ReportingSpec { enabled: true },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    /// `pipeline-<project_id>`; also the id of its lifecycle workflow.
    pub id: String,
    pub project_id: String,
    pub spec: PipelineSpec,
    #[serde(flatten)]
    pub stamp: Stamp,
}

/// The pipeline id of a project (one pipeline per project, as in CAoA).
pub fn pipeline_id_of_project(project_id: &str) -> String {
    format!("pipeline-{project_id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PipelinePhase {
    #[default]
    Creating,
    Active,
    Updating,
    Deleting,
    Deleted,
    /// The pipeline never became active: the failed level was rolled back.
    Failed,
    /// The pipeline runs, but its last change failed and was rolled back (it keeps the
    /// previous configuration); retry or update again.
    Warning,
}

/// The three levels a pipeline is deployed in, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PipelineLevel {
    IngestionProcessing,
    Modeling,
    Reporting,
}

impl PipelineLevel {
    pub const ALL: [PipelineLevel; 3] = [PipelineLevel::IngestionProcessing, PipelineLevel::Modeling, PipelineLevel::Reporting];

    pub fn name(self) -> &'static str {
        match self {
            PipelineLevel::IngestionProcessing => "ingestion_processing",
            PipelineLevel::Modeling => "modeling",
            PipelineLevel::Reporting => "reporting",
        }
    }

    /// Whether `spec` asks for this level (ingestion and processing always exist).
    pub fn wanted_by(self, spec: &PipelineSpec) -> bool {
        match self {
            PipelineLevel::IngestionProcessing => true,
            PipelineLevel::Modeling => spec.processing.enabled,
            PipelineLevel::Reporting => spec.processing.enabled && spec.reporting.enabled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LevelState {
    #[default]
    Pending,
    Deploying,
    Deployed,
    Failed,
    RolledBack,
    Deleting,
    Deleted,
    Skipped,
}

/// One provisioned unit of a level: a CloudFormation stack in production, a group of local
/// resources in the dev stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StackStatus {
    pub name: String,
    /// The provisioner's own words, e.g. `CREATE_COMPLETE`.
    pub state: String,
    #[serde(default)]
    pub reason: String,
    /// What the stack gives out once deployed (CloudFormation outputs: the ingestion stack's
    /// `IngestEndpoint`, the data bucket, …); empty otherwise.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl PipelineStatus {
    /// The collector URL of the deployed ingestion stack (its `IngestEndpoint` output), which
    /// the project's apps send to; `None` before it is deployed, or with the local provisioner.
    pub fn ingest_endpoint(&self) -> Option<&str> {
        self.level(PipelineLevel::IngestionProcessing).stacks.iter().find_map(|stack| stack.outputs.get("IngestEndpoint")).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelStatus {
    pub level: PipelineLevel,
    pub state: LevelState,
    #[serde(default)]
    pub stacks: Vec<StackStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStatus {
    pub phase: PipelinePhase,
    /// What happened last, or why it failed.
    #[serde(default)]
    pub message: String,
    pub levels: Vec<LevelStatus>,
    /// The spec version the status is about.
    #[serde(default)]
    pub spec_version: u64,
}

impl Default for PipelineStatus {
    fn default() -> Self {
        PipelineStatus {
            phase: PipelinePhase::Creating,
            message: String::new(),
            levels: PipelineLevel::ALL.iter().map(|&level| LevelStatus { level, state: LevelState::Pending, stacks: Vec::new() }).collect(),
            spec_version: 0,
        }
    }
}

impl PipelineStatus {
    pub fn level_mut(&mut self, level: PipelineLevel) -> &mut LevelStatus {
        let index = PipelineLevel::ALL.iter().position(|&candidate| candidate == level).expect("every level is listed");
        &mut self.levels[index]
    }

    pub fn level(&self, level: PipelineLevel) -> &LevelStatus {
        let index = PipelineLevel::ALL.iter().position(|&candidate| candidate == level).expect("every level is listed");
        &self.levels[index]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    #[default]
    Transformer,
    Enrichment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plugin {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: PluginKind,
    /// Where the plugin's component is: the object-store key its upload went to
    /// (`_plugins/<id>/<sha256>.wasm`), or `file:///…`; empty for built-in plugins and until
    /// a module is uploaded.
    #[serde(default)]
    pub module_uri: String,
    /// SHA-256 of the uploaded component, hex.
    #[serde(default)]
    pub module_sha256: String,
    /// Text handed to the plugin with every batch (its settings, often JSON).
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub built_in: bool,
    #[serde(flatten)]
    pub stamp: Stamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MetadataKind {
    Event,
    Parameter,
    UserAttribute,
}

impl MetadataKind {
    pub fn name(self) -> &'static str {
        match self {
            MetadataKind::Event => "event",
            MetadataKind::Parameter => "parameter",
            MetadataKind::UserAttribute => "user_attribute",
        }
    }
}

/// The name analysts see for an event, parameter or user attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisplayName {
    pub kind: MetadataKind,
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
}

/// An exploration an analyst saved for an app. `query` is the exploration as the reporting
/// API takes it (checked by the console against the app's catalog when saved and when run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavedExploration {
    pub id: String,
    pub app_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// The subject of the token that saved it (`anonymous` with auth off).
    pub created_by: String,
    #[serde(flatten)]
    pub stamp: Stamp,
}

/// The processing configuration of a project's pipeline spec, in the form the ETL, the
/// collector and the warehouse read (the same as a `[[projects]]` table of the configuration
/// file). `plugins` are the stored plugins, which the spec names by id.
pub fn project_config_of_spec(project_id: &str, spec: &PipelineSpec, app_ids: Vec<String>, plugins: &[Plugin]) -> ProjectConfig {
    // A plugin deleted since the spec was checked keeps its place with no module, so the ETL
    // fails with its name rather than silently skipping it.
    let chosen = |plugin_id: &String| {
        let stored = plugins.iter().find(|plugin| plugin.id == *plugin_id);
        crate::config::ProjectPlugin {
            id: plugin_id.clone(),
            module_uri: stored.map(|plugin| plugin.module_uri.clone()).unwrap_or_default(),
            config: stored.map(|plugin| plugin.config.clone()).unwrap_or_default(),
        }
    };
    let chosen_plugins = spec.processing.plugins.iter().map(chosen).collect();
    let chosen_transformer = spec.processing.transformer.as_ref().map(chosen);
    ProjectConfig {
        id: project_id.to_string(),
        apps: app_ids,
        etl_interval_seconds: spec.processing.schedule.interval_seconds.unwrap_or(3600),
        etl_buffer_seconds: spec.processing.buffer_seconds,
        sink: spec.ingestion.sink,
        kafka_topic: spec.ingestion.kafka.topic.clone(),
        kinesis_stream: spec.ingestion.kinesis.stream.clone(),
        enrichers: Some(spec.processing.enrichers.clone()),
        freshness_hours: Some(spec.processing.data_freshness_hours),
        etl_cron: spec.processing.schedule.cron.clone(),
        retention_days: spec.processing.retention_days,
        warehouse: spec.modeling.engine,
        plugins: chosen_plugins,
        transformer: chosen_transformer,
    }
}
