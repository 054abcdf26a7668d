//! Configuration: one TOML file plus `CLICKSTREAM_*` environment overrides.
//!
//! Nested keys are separated by a double underscore in the environment, for example
//! `CLICKSTREAM_INGEST__LISTEN=0.0.0.0:8080` overrides `[ingest] listen`. Lists (the
//! projects) are only read from the file. Every value is checked once at start, and an
//! invalid one fails with the key's name and the reason, never later at run time.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, LazyLock, RwLock},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What went wrong while reading the configuration. Retrying never helps: the file or the
/// environment must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// figment could not read or parse a value; its message names the key and the source.
    #[error("invalid configuration: {0}")]
    Unreadable(#[from] Box<figment::Error>),
    /// A value parsed but breaks a rule of clickstream.
    #[error("invalid configuration: key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub ingest: IngestConfig,
    pub console: ConsoleConfig,
    pub worker: WorkerConfig,
    pub temporal: TemporalConfig,
    pub storage: StorageConfig,
    pub warehouse: WarehouseConfig,
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub metadata: MetadataConfig,
    pub kafka: KafkaConfig,
    pub kinesis: KinesisConfig,
    pub etl: EtlConfig,
    #[serde(default)]
    pub control: ControlConfig,
    /// Projects (pipelines) and the apps that may send to them, from the file. Pipelines
    /// created in the console live in the control plane's store and reach every process
    /// through [`Config::live_projects`].
    pub projects: Vec<ProjectConfig>,
    /// Projects defined in the control plane's store, kept current by a refresher in each
    /// process and shared by every clone of this configuration.
    #[serde(skip)]
    pub live_projects: LiveProjects,
}

/// The projects of the control plane's store as last read: one shared, swappable list.
#[derive(Debug, Clone, Default)]
pub struct LiveProjects(Arc<RwLock<Arc<Vec<ProjectConfig>>>>);

impl LiveProjects {
    pub fn snapshot(&self) -> Arc<Vec<ProjectConfig>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the list; returns whether it changed.
    pub fn replace(&self, projects: Vec<ProjectConfig>) -> bool {
        let mut current = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current == projects {
            return false;
        }
        *current = Arc::new(projects);
        true
    }

    /// The store project an app belongs to.
    pub fn project_of_app(&self, app_id: &str) -> Option<ProjectConfig> {
        self.snapshot().iter().find(|project| project.apps.iter().any(|app| app == app_id)).cloned()
    }
}

/// Where the control plane keeps projects, apps, pipelines, plugins and display names, and
/// how pipelines are provisioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub store: ControlStoreKind,
    /// The embedded store's SQLite file (store `embedded`); several processes may open it.
    /// Empty: `control.sqlite` next to the DuckDB warehouse file.
    pub embedded_path: PathBuf,
    pub dynamodb_table: String,
    /// DynamoDB endpoint override (moto); empty for AWS.
    pub dynamodb_endpoint: String,
    pub dynamodb_region: String,
    /// How often each process re-reads the store's pipelines (new apps and projects take
    /// effect after at most this long).
    pub refresh_seconds: u64,
    pub provisioner: ProvisionerKind,
    /// CloudFormation endpoint override (moto); empty for AWS.
    pub cloudformation_endpoint: String,
    pub cloudformation_region: String,
    /// The pipeline stack templates (`ingestion.yaml`, `processing.yaml`, `modeling.yaml`,
    /// `reporting.yaml`).
    pub templates_dir: PathBuf,
    /// Stack names are `<stack_prefix>-<project>-<stack>`.
    pub stack_prefix: String,
    /// Parameters added to (or overriding) what the provisioner passes to one template, by
    /// template name, e.g. `[control.stack_parameters.ingestion] VpcId = "vpc-…"`.
    pub stack_parameters: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Publish the task queues' backlog to CloudWatch (`Clickstream/TaskQueueBacklog`) once a
    /// minute from the process that runs the ETL worker: the pipelines' worker autoscaling
    /// tracks it. On AWS deployments (the control-plane stack turns it on).
    pub backlog_metric: bool,
    /// The task queues whose backlog is published; empty: this process's ETL and warehouse
    /// queues. The control plane names the pipelines' queue (`clickstream-etl`).
    pub backlog_task_queues: Vec<String>,
    /// CloudWatch endpoint override (moto); empty for AWS. The region is
    /// `cloudformation_region`.
    pub cloudwatch_endpoint: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            store: ControlStoreKind::Embedded,
            embedded_path: PathBuf::new(),
            dynamodb_table: "clickstream-control".into(),
            dynamodb_endpoint: String::new(),
            dynamodb_region: "us-east-1".into(),
            refresh_seconds: 5,
            provisioner: ProvisionerKind::Local,
            cloudformation_endpoint: String::new(),
            cloudformation_region: "us-east-1".into(),
            templates_dir: "infra/cloudformation".into(),
            stack_prefix: "clickstream".into(),
            stack_parameters: Default::default(),
            backlog_metric: false,
            backlog_task_queues: Vec::new(),
            cloudwatch_endpoint: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ControlStoreKind {
    /// A SQLite file on local disk: the dev stack.
    #[default]
    Embedded,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerKind {
    /// Directories, tables, topics and Temporal schedules of the local stack.
    #[default]
    Local,
    /// CloudFormation stacks from `control.templates_dir`.
    Cloudformation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Address the collector listens on.
    pub listen: SocketAddr,
    /// Path the SDKs post to (CAoA default `/collect`).
    pub path: String,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Origins allowed to send from a browser (CORS): exact (`https://shop.example.com`) or
    /// with `*` wildcards (`http://localhost:*`, `https://*.example.com`).
    pub cors_allowed_origins: Vec<String>,
    /// Requests (reading the body included) taking longer get 408.
    pub request_timeout_ms: u64,
    /// The write-ahead spool: a request gets its 200 once its record is fsynced here.
    pub spool_dir: PathBuf,
    /// While the spool holds this many bytes (the sink is behind or down), requests get 503.
    pub spool_max_bytes: u64,
    /// A raw object is shipped once this many bytes are spooled…
    pub sink_batch_max_bytes: u64,
    /// …or once the oldest spooled record is this old.
    pub sink_batch_max_age_ms: u64,
    /// Optional OIDC authentication of the SDKs' requests (off by default).
    pub oidc: OidcConfig,
    /// When running from a configuration file, its apps are re-read this often, so apps added
    /// to a project are accepted without a restart.
    pub app_refresh_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub enabled: bool,
    /// The expected `iss` claim of tokens.
    pub issuer: String,
    /// The issuer's discovery document; `<issuer>/.well-known/openid-configuration` when empty.
    pub discovery_url: String,
    /// The expected `aud` claim; not checked when empty.
    pub audience: String,
    /// Cookie carrying the token when there is no `Authorization: Bearer` header; none when empty.
    pub cookie_name: String,
    /// How long the issuer's keys are cached (unknown key ids refresh them sooner).
    pub jwks_cache_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub listen: SocketAddr,
    /// Base URL of the Temporal web UI, used for links from the console.
    pub temporal_ui_url: String,
    /// The built web console (`node services/console/web/build.mjs`).
    #[serde(default = "default_web_dir")]
    pub web_dir: PathBuf,
    /// The collector URL the SDK snippets show; `http://<ingest.listen><ingest.path>` when empty.
    #[serde(default)]
    pub public_ingest_url: String,
    #[serde(default)]
    pub oidc: ConsoleOidcConfig,
}

fn default_web_dir() -> PathBuf {
    "services/console/web/dist".into()
}

/// Sign-in to the console and its API. Off by default (the dev stack); the console then
/// shows that it is off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleOidcConfig {
    pub enabled: bool,
    /// The expected `iss` claim, and the authority the console signs in with.
    pub issuer: String,
    /// The issuer's discovery document; `<issuer>/.well-known/openid-configuration` when empty.
    pub discovery_url: String,
    /// The console's OIDC client (authorization code + PKCE, no secret).
    pub client_id: String,
    /// The expected `aud` claim; `client_id` when empty (the console sends its ID token).
    pub audience: String,
    /// The claim listing the user's roles (`admin`, `operator`, `analyst`), e.g. `roles`, or
    /// `cognito:groups` for Cognito.
    pub roles_claim: String,
    /// Scopes the console asks for.
    pub scopes: String,
    pub jwks_cache_seconds: u64,
}

impl Default for ConsoleOidcConfig {
    fn default() -> Self {
        ConsoleOidcConfig {
            enabled: false,
            issuer: String::new(),
            discovery_url: String::new(),
            client_id: String::new(),
            audience: String::new(),
            roles_claim: "roles".into(),
            scopes: "openid profile roles".into(),
            jwks_cache_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Address of the worker's `/metrics` and `/health` endpoints.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalConfig {
    /// gRPC address of the Temporal frontend, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    pub namespace: String,
    /// Task queue of the ETL workflows and activities.
    pub task_queue: String,
    /// Task queue served only by the process that owns the DuckDB warehouse file.
    pub warehouse_task_queue: String,
    /// Connect with TLS (implied by a client certificate or an API key): a frontend behind a
    /// TLS load balancer, or Temporal Cloud.
    #[serde(default)]
    pub tls: bool,
    /// The client certificate and its private key, PEM text, for mTLS (Temporal Cloud's
    /// namespace certificates). When empty, Temporal's own variables
    /// `TEMPORAL_TLS_CLIENT_CERT_DATA` and `TEMPORAL_TLS_CLIENT_KEY_DATA` are read, which the
    /// control-plane template sets from Secrets Manager.
    #[serde(default)]
    pub tls_client_cert: String,
    #[serde(default)]
    pub tls_client_key: String,
    /// A CA certificate (PEM text) for a frontend whose certificate the system does not trust.
    #[serde(default)]
    pub tls_server_ca: String,
    /// The name the server's certificate is checked against, when not the address's host.
    #[serde(default)]
    pub tls_domain: String,
    /// A Temporal Cloud API key, instead of a client certificate; `TEMPORAL_API_KEY` when empty.
    #[serde(default)]
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Where raw and processed data live: `file:///abs/dir` or `s3://bucket[/prefix]`.
    pub url: String,
    /// S3 endpoint override (moto, MinIO); empty for AWS.
    pub endpoint: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// The DuckDB database file. Only one process may open it for writing.
    pub duckdb_path: PathBuf,
    /// Redshift, for projects with `warehouse = "redshift"`.
    #[serde(default)]
    pub redshift: RedshiftConfig,
}

/// Which warehouse holds a project's tables.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarehouseKind {
    /// The DuckDB file of the console process (`warehouse.duckdb_path`).
    #[default]
    Duckdb,
    /// Amazon Redshift through the Data API (`[warehouse.redshift]`); needs S3 storage.
    Redshift,
}

/// A Redshift Serverless workgroup or a provisioned cluster, reached through the Data API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedshiftConfig {
    /// Redshift Serverless workgroup; set this or `cluster_identifier`.
    pub workgroup_name: String,
    /// Provisioned cluster; set this or `workgroup_name`.
    pub cluster_identifier: String,
    pub database: String,
    /// Database user for temporary credentials (provisioned clusters); empty with a secret
    /// or a workgroup.
    pub db_user: String,
    /// Secrets Manager secret with the database credentials; empty for IAM authentication.
    pub secret_arn: String,
    /// IAM role Redshift assumes to read the Parquet files and manifests (`COPY … IAM_ROLE`).
    pub copy_role_arn: String,
    /// Data API endpoint override (moto); empty for AWS.
    pub endpoint: String,
    pub region: String,
}

/// Where the metadata scan keeps what it found (event names, parameters, user attributes).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetadataStoreKind {
    /// JSON documents in the object store, under `<project>/metadata/`.
    #[default]
    Local,
    /// A DynamoDB table (`metadata.dynamodb_table`).
    Dynamodb,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    pub store: MetadataStoreKind,
    pub dynamodb_table: String,
    /// DynamoDB endpoint override (moto); empty for AWS.
    pub dynamodb_endpoint: String,
    pub dynamodb_region: String,
    /// A scan is skipped when the last successful one is younger than this (CAoA: a day).
    pub scan_min_age_seconds: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig { store: MetadataStoreKind::Local, dynamodb_table: "clickstream-metadata".into(), dynamodb_endpoint: String::new(), dynamodb_region: "us-east-1".into(), scan_min_age_seconds: 86_400 }
    }
}

/// Where the processed tables are registered for queries outside the warehouse.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    /// `glue` when the storage is S3, else `duckdb`.
    #[default]
    Auto,
    /// A Glue database per project (`clickstream_<project>`) with the four tables, the raw
    /// table and their partitions, for Athena.
    Glue,
    /// Views in the DuckDB warehouse (schema `<project>_lake`) over the Parquet files.
    Duckdb,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    pub kind: CatalogKind,
    /// Glue endpoint override (moto); empty for AWS.
    pub glue_endpoint: String,
    pub glue_region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated (`host:port`). Ignored when `msk_cluster_arn` is set.
    pub brokers: String,
    /// An Amazon MSK cluster's ARN: the collector and the bridge then ask MSK for its
    /// plaintext bootstrap brokers when they start (`kafka:GetBootstrapBrokers`, in the
    /// ARN's region). The pipeline's ingestion stack sets it when it creates the cluster,
    /// whose brokers only exist once it is up. Empty: `brokers`.
    #[serde(default)]
    pub msk_cluster_arn: String,
    /// Endpoint override of the MSK API (moto); empty for AWS.
    #[serde(default)]
    pub msk_endpoint: String,
    /// Partitions of the topics the collector creates for Kafka-sink projects.
    pub topic_partitions: i32,
    /// Replicas of each partition of the topics the collector creates: 1 for a single local
    /// broker; -1 takes the cluster's `default.replication.factor` (MSK: 2 on two
    /// availability zones, 3 on three).
    #[serde(default = "one_replica")]
    pub topic_replication_factor: i32,
    /// Hours the topics the collector creates keep records (`retention.ms`); 0 leaves the
    /// cluster's default (MSK: 7 days). The bridge drains a topic within seconds, so this only
    /// needs to outlast a bridge outage, and it bounds the brokers' disks.
    #[serde(default)]
    pub topic_retention_hours: u32,
    /// Consumer group of the Kafka → S3 bridge.
    pub bridge_group_id: String,
}

fn one_replica() -> i32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// Endpoint override (moto); empty for AWS. Credentials come from the usual `AWS_*` variables.
    pub endpoint: String,
    pub region: String,
    /// Shards of the streams the collector creates for Kinesis-sink projects.
    pub shard_count: i32,
    /// How often the Kinesis → S3 bridge lists a stream's shards to find those that resharding
    /// (a split, a merge, `UpdateShardCount`) created. A child shard is read once its parents
    /// are read to their end, whenever that happens.
    pub shard_discovery_interval_ms: u64,
}

/// The enrichers an ETL chain may name, in their default order (`clickstream-etl` implements
/// them under these names).
pub const KNOWN_ENRICHERS: [&str; 4] = ["page_url", "traffic_source", "user_agent", "ip_geo"];

/// How raw events become the processed tables (defaults for every project).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtlConfig {
    /// Enrichers run on every event, in this order: `page_url`, `traffic_source`, `user_agent`,
    /// `ip_geo`. A project may name its own chain.
    pub enrichers: Vec<String>,
    /// uap-core's `regexes.yaml`, read by the `user_agent` enricher.
    pub user_agent_regexes: PathBuf,
    /// A MaxMind-format city database (GeoLite2-City), read by the `ip_geo` enricher.
    pub geo_database: PathBuf,
    /// Per-app traffic-source rules: `<dir>/<app id>/traffic_source_channel_rule_v1.json` and
    /// `traffic_source_category_rule_v1.json` (CAoA's files); built-in rules when empty.
    pub traffic_source_rules_dir: PathBuf,
    /// Events older than this when they arrive are filtered (`_first_open`, `_first_visit` and
    /// `_profile_set` are exempt).
    pub freshness_hours: u64,
    /// Drop events whose user agent is a bot's (needs the `user_agent` enricher).
    pub filter_bots: bool,
    /// Correct event times by the client's clock skew when requests carry `upload_timestamp`.
    pub correct_clock_skew: bool,
    /// Users not seen for this long are dropped from the `user_v2` state.
    pub user_keep_days: u32,
    /// Fuel (about one WebAssembly instruction each) a custom plugin gets per event of a
    /// batch; a plugin that uses it all fails the batch (docs/plugins.md).
    pub plugin_fuel_per_event: u64,
    /// The most memory a custom plugin may grow to, in MiB.
    pub plugin_memory_mib: u64,
}

impl Default for EtlConfig {
    fn default() -> Self {
        EtlConfig {
            enrichers: KNOWN_ENRICHERS.iter().map(|name| name.to_string()).collect(),
            user_agent_regexes: "/usr/share/clickstream/regexes.yaml".into(),
            geo_database: "/usr/share/clickstream/GeoLite2-City.mmdb".into(),
            traffic_source_rules_dir: PathBuf::new(),
            freshness_hours: 72,
            filter_bots: true,
            correct_clock_skew: true,
            user_keep_days: 180,
            plugin_fuel_per_event: 1_000_000,
            plugin_memory_mib: 256,
        }
    }
}

/// Where a project's collector sends raw records. Kafka and Kinesis are drained to S3 by the
/// bridge, so S3 always holds the raw layer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    #[default]
    S3,
    Kafka,
    Kinesis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project id, as in CAoA: lower case letters, digits and `_`.
    pub id: String,
    /// App ids accepted for this project; any other appId gets 403 at the collector.
    pub apps: Vec<String>,
    /// Seconds between two scheduled ETL runs.
    #[serde(default = "default_etl_interval_seconds")]
    pub etl_interval_seconds: u64,
    /// Raw objects younger than this are left to the next run, so that an object still
    /// being written is never skipped.
    #[serde(default = "default_etl_buffer_seconds")]
    pub etl_buffer_seconds: u64,
    /// The collector's sink for this project.
    #[serde(default)]
    pub sink: SinkKind,
    /// Kafka topic of this project (sink `kafka`); the project id when empty.
    #[serde(default)]
    pub kafka_topic: String,
    /// Kinesis stream of this project (sink `kinesis`); the project id when empty.
    #[serde(default)]
    pub kinesis_stream: String,
    /// This project's enricher chain; `etl.enrichers` when absent.
    #[serde(default)]
    pub enrichers: Option<Vec<String>>,
    /// This project's freshness window; `etl.freshness_hours` when absent.
    #[serde(default)]
    pub freshness_hours: Option<u64>,
    /// A cron expression (five fields, UTC, e.g. `"*/15 * * * *"`) for the ETL schedule;
    /// when set it replaces `etl_interval_seconds`.
    #[serde(default)]
    pub etl_cron: Option<String>,
    /// Days the warehouse keeps events, items, sessions and inactive users; a daily
    /// ClearExpiredEventsWorkflow deletes what is older (CAoA's default: 365).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// The warehouse of this project's tables.
    #[serde(default)]
    pub warehouse: WarehouseKind,
    /// Custom enricher plugins, run in this order after the built-in enrichers.
    #[serde(default)]
    pub plugins: Vec<ProjectPlugin>,
    /// A transformer plugin that turns request bodies in another format into CAoA SDK
    /// events; with one, the collector accepts any JSON body for this project's apps.
    #[serde(default)]
    pub transformer: Option<ProjectPlugin>,
}

/// A custom plugin a project runs (docs/plugins.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ProjectPlugin {
    /// The plugin's id, as registered with the control plane.
    pub id: String,
    /// Where its component is: a key in the platform's object store (uploads go to
    /// `_plugins/<id>/<sha256>.wasm`), `s3://bucket/key` (a deployed pipeline's workers read
    /// the control plane's uploads there), or `file:///absolute/path.wasm`.
    pub module_uri: String,
    /// The text handed to the plugin with every batch (empty when none was registered).
    #[serde(default)]
    pub config: String,
}

impl Default for ProjectConfig {
    /// A project with no apps yet and every other key at its default.
    fn default() -> Self {
        ProjectConfig {
            id: String::new(),
            apps: Vec::new(),
            etl_interval_seconds: default_etl_interval_seconds(),
            etl_buffer_seconds: default_etl_buffer_seconds(),
            sink: SinkKind::default(),
            kafka_topic: String::new(),
            kinesis_stream: String::new(),
            enrichers: None,
            freshness_hours: None,
            etl_cron: None,
            retention_days: default_retention_days(),
            warehouse: WarehouseKind::default(),
            plugins: Vec::new(),
            transformer: None,
        }
    }
}

impl ProjectConfig {
    pub fn kafka_topic(&self) -> &str {
        if self.kafka_topic.is_empty() { &self.id } else { &self.kafka_topic }
    }

    pub fn kinesis_stream(&self) -> &str {
        if self.kinesis_stream.is_empty() { &self.id } else { &self.kinesis_stream }
    }

    /// The enricher chain this project runs.
    pub fn enrichers<'a>(&'a self, etl: &'a EtlConfig) -> &'a [String] {
        self.enrichers.as_deref().unwrap_or(&etl.enrichers)
    }

    pub fn freshness_hours(&self, etl: &EtlConfig) -> u64 {
        self.freshness_hours.unwrap_or(etl.freshness_hours)
    }
}

fn default_etl_interval_seconds() -> u64 {
    60
}

fn default_etl_buffer_seconds() -> u64 {
    10
}

fn default_retention_days() -> u32 {
    365
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ingest: IngestConfig {
                listen: "127.0.0.1:8080".parse().expect("static address"),
                path: "/collect".into(),
                max_body_bytes: 1024 * 1024,
                cors_allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
                request_timeout_ms: 10_000,
                spool_dir: "/var/lib/clickstream/spool".into(),
                spool_max_bytes: 1024 * 1024 * 1024,
                sink_batch_max_bytes: 10 * 1024 * 1024,
                sink_batch_max_age_ms: 60_000,
                oidc: OidcConfig { jwks_cache_seconds: 3600, ..OidcConfig::default() },
                app_refresh_seconds: 30,
            },
            console: ConsoleConfig {
                listen: "127.0.0.1:3000".parse().expect("static address"),
                temporal_ui_url: "http://127.0.0.1:8233".into(),
                web_dir: default_web_dir(),
                public_ingest_url: String::new(),
                oidc: ConsoleOidcConfig::default(),
            },
            worker: WorkerConfig { listen: "127.0.0.1:9090".parse().expect("static address") },
            temporal: TemporalConfig {
                address: "http://127.0.0.1:7233".into(),
                namespace: "default".into(),
                task_queue: "clickstream-etl".into(),
                warehouse_task_queue: "clickstream-warehouse".into(),
                tls: false,
                tls_client_cert: String::new(),
                tls_client_key: String::new(),
                tls_server_ca: String::new(),
                tls_domain: String::new(),
                api_key: String::new(),
            },
            storage: StorageConfig {
                url: "file:///var/lib/clickstream/data".into(),
                endpoint: String::new(),
                region: "us-east-1".into(),
            },
            warehouse: WarehouseConfig {
                duckdb_path: "/var/lib/clickstream/warehouse.duckdb".into(),
                redshift: RedshiftConfig { database: "dev".into(), region: "us-east-1".into(), ..RedshiftConfig::default() },
            },
            metadata: MetadataConfig::default(),
            catalog: CatalogConfig { kind: CatalogKind::Auto, glue_endpoint: String::new(), glue_region: "us-east-1".into() },
            kinesis: KinesisConfig { endpoint: String::new(), region: "us-east-1".into(), shard_count: 2, shard_discovery_interval_ms: 30_000 },
            kafka: KafkaConfig {
                brokers: "127.0.0.1:9092".into(),
                msk_cluster_arn: String::new(),
                msk_endpoint: String::new(),
                topic_partitions: 3,
                topic_replication_factor: one_replica(),
                topic_retention_hours: 0,
                bridge_group_id: "clickstream-bridge".into(),
            },
            etl: EtlConfig::default(),
            control: ControlConfig::default(),
            projects: Vec::new(),
            live_projects: LiveProjects::default(),
        }
    }
}

pub static PROJECT_ID_PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]{0,126}$").expect("static regex"));
pub static APP_ID_PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9_-]{0,126}$").expect("static regex"));

impl Config {
    /// Reads the defaults, then the TOML file (if given), then `CLICKSTREAM_*` variables,
    /// and validates the result.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config".into(),
                    reason: format!("file {} does not exist", file.display()),
                });
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only `SECTION__KEY` variables are configuration; others of the prefix
        // (CLICKSTREAM_CONFIG, CLICKSTREAM_LOG_FORMAT, …) belong to the command line or tools.
        figment = figment.merge(Env::prefixed("CLICKSTREAM_").filter(|key| key.as_str().contains("__")).split("__"));
        Self::from_figment(figment)
    }

    /// Extracts and validates a configuration from any figment (tests build their own).
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid { key: key.into(), reason };
        if !self.ingest.path.starts_with('/') {
            return Err(invalid("ingest.path", format!("`{}` must start with `/`", self.ingest.path)));
        }
        if self.ingest.max_body_bytes == 0 {
            return Err(invalid("ingest.max_body_bytes", "must be greater than 0".into()));
        }
        for (key, value) in [
            ("ingest.sink_batch_max_bytes", self.ingest.sink_batch_max_bytes),
            ("ingest.sink_batch_max_age_ms", self.ingest.sink_batch_max_age_ms),
            ("ingest.spool_max_bytes", self.ingest.spool_max_bytes),
            ("ingest.request_timeout_ms", self.ingest.request_timeout_ms),
            ("ingest.app_refresh_seconds", self.ingest.app_refresh_seconds),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        if self.ingest.oidc.enabled && !(self.ingest.oidc.issuer.starts_with("https://") || self.ingest.oidc.issuer.starts_with("http://")) {
            return Err(invalid("ingest.oidc.issuer", "must be the issuer's URL when ingest.oidc.enabled is true".into()));
        }
        for origin in &self.ingest.cors_allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid("ingest.cors_allowed_origins", format!("`{origin}` must start with http:// or https://")));
            }
        }
        if !(self.temporal.address.starts_with("http://") || self.temporal.address.starts_with("https://")) {
            return Err(invalid(
                "temporal.address",
                format!("`{}` must be an http:// or https:// URL", self.temporal.address),
            ));
        }
        if self.temporal.task_queue == self.temporal.warehouse_task_queue {
            return Err(invalid(
                "temporal.warehouse_task_queue",
                "must differ from temporal.task_queue: only the warehouse owner may poll it".into(),
            ));
        }
        crate::storage::StorageLocation::parse(&self.storage.url)
            .map_err(|error| invalid("storage.url", error.to_string()))?;
        if !self.kafka.msk_cluster_arn.is_empty() && region_of_msk_cluster_arn(&self.kafka.msk_cluster_arn).is_none() {
            return Err(invalid(
                "kafka.msk_cluster_arn",
                format!("`{}` is not an MSK cluster ARN (arn:aws:kafka:<region>:<account>:cluster/<name>/<id>)", self.kafka.msk_cluster_arn),
            ));
        }
        if self.kafka.topic_replication_factor == 0 || self.kafka.topic_replication_factor < -1 {
            return Err(invalid("kafka.topic_replication_factor", "must be -1 (the cluster's default) or at least 1".into()));
        }
        validate_enrichers("etl.enrichers", &self.etl.enrichers)?;
        if self.etl.freshness_hours == 0 {
            return Err(invalid("etl.freshness_hours", "must be greater than 0".into()));
        }
        if self.etl.user_keep_days == 0 {
            return Err(invalid("etl.user_keep_days", "must be greater than 0".into()));
        }
        let mut seen_apps = std::collections::HashSet::new();
        for (index, project) in self.projects.iter().enumerate() {
            let key = |field: &str| format!("projects[{index}].{field}");
            if !PROJECT_ID_PATTERN.is_match(&project.id) {
                return Err(invalid(
                    &key("id"),
                    format!("`{}` must match {}", project.id, PROJECT_ID_PATTERN.as_str()),
                ));
            }
            if project.apps.is_empty() {
                return Err(invalid(&key("apps"), "a project needs at least one app".into()));
            }
            for app in &project.apps {
                if !APP_ID_PATTERN.is_match(app) {
                    return Err(invalid(&key("apps"), format!("`{app}` must match {}", APP_ID_PATTERN.as_str())));
                }
                if !seen_apps.insert(app.clone()) {
                    return Err(invalid(&key("apps"), format!("app `{app}` belongs to two projects")));
                }
            }
            if project.etl_interval_seconds == 0 {
                return Err(invalid(&key("etl_interval_seconds"), "must be greater than 0".into()));
            }
            if let Some(enrichers) = &project.enrichers {
                validate_enrichers(&key("enrichers"), enrichers)?;
            }
            if project.freshness_hours == Some(0) {
                return Err(invalid(&key("freshness_hours"), "must be greater than 0".into()));
            }
            if project.retention_days == 0 {
                return Err(invalid(&key("retention_days"), "must be greater than 0".into()));
            }
            if let Some(cron) = &project.etl_cron
                && let Err(reason) = validate_cron(cron)
            {
                return Err(invalid(&key("etl_cron"), reason));
            }
            if project.warehouse == WarehouseKind::Redshift {
                self.validate_redshift(&key("warehouse"))?;
            }
        }
        if self.console.oidc.enabled {
            if self.console.oidc.issuer.is_empty() {
                return Err(invalid("console.oidc.issuer", "must be the issuer's URL when console.oidc.enabled is true".into()));
            }
            if self.console.oidc.client_id.is_empty() {
                return Err(invalid("console.oidc.client_id", "must be the console's OIDC client id when console.oidc.enabled is true".into()));
            }
        }
        if self.control.refresh_seconds == 0 {
            return Err(invalid("control.refresh_seconds", "must be greater than 0".into()));
        }
        if self.metadata.store == MetadataStoreKind::Dynamodb && self.metadata.dynamodb_table.is_empty() {
            return Err(invalid("metadata.dynamodb_table", "must name the table when metadata.store is \"dynamodb\"".into()));
        }
        Ok(())
    }

    /// Redshift loads `COPY` from S3 with a role, into one workgroup or cluster.
    pub fn validate_redshift(&self, project_key: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid { key: key.into(), reason };
        let redshift = &self.warehouse.redshift;
        if !self.storage.url.starts_with("s3://") {
            return Err(invalid(project_key, "\"redshift\" needs storage.url = \"s3://…\": Redshift COPY reads the Parquet files from S3".into()));
        }
        self.validate_redshift_target()?;
        if redshift.copy_role_arn.is_empty() {
            return Err(invalid("warehouse.redshift.copy_role_arn", "must be the IAM role Redshift assumes to read S3".into()));
        }
        Ok(())
    }

    /// Whether `[warehouse.redshift]` names one workgroup or cluster and a database: what a
    /// pipeline deployed with CloudFormation needs from the control plane (its modeling stack
    /// makes the COPY role, and its bucket is the storage).
    pub fn validate_redshift_target(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid { key: key.into(), reason };
        let redshift = &self.warehouse.redshift;
        if redshift.workgroup_name.is_empty() == redshift.cluster_identifier.is_empty() {
            return Err(invalid("warehouse.redshift.workgroup_name", "set exactly one of workgroup_name (Serverless) and cluster_identifier (provisioned)".into()));
        }
        if redshift.database.is_empty() {
            return Err(invalid("warehouse.redshift.database", "must name the database".into()));
        }
        Ok(())
    }

    /// The catalog in use, `auto` resolved from the storage.
    pub fn catalog_kind(&self) -> CatalogKind {
        match self.catalog.kind {
            CatalogKind::Auto if self.storage.url.starts_with("s3://") => CatalogKind::Glue,
            CatalogKind::Auto => CatalogKind::Duckdb,
            kind => kind,
        }
    }

    /// Every enricher some project may run (what the ETL worker must load): the default
    /// chain, which pipelines created later choose from, and each project's own.
    pub fn enrichers_in_use(&self) -> Vec<String> {
        let mut names: Vec<String> = self.etl.enrichers.clone();
        for project in &self.projects {
            for name in project.enrichers(&self.etl) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// The project an app belongs to, if the app is registered (in the file or the store).
    pub fn project_of_app(&self, app_id: &str) -> Option<ProjectConfig> {
        match self.projects.iter().find(|project| project.apps.iter().any(|app| app == app_id)) {
            Some(project) => Some(project.clone()),
            None => self.live_projects.project_of_app(app_id),
        }
    }

    /// The file's projects, then the store's (a store project never shadows a file one).
    pub fn all_projects(&self) -> Vec<ProjectConfig> {
        let mut projects = self.projects.clone();
        for live in self.live_projects.snapshot().iter() {
            if !projects.iter().any(|project| project.id == live.id) {
                projects.push(live.clone());
            }
        }
        projects
    }

    /// The ETL task queue of a pipeline deployed by the CloudFormation provisioner: each
    /// pipeline's workers read its own bucket, so they poll a queue of their own
    /// (`infra/cloudformation/processing.yaml` sets the same name).
    pub fn pipeline_etl_task_queue(project_id: &str) -> String {
        format!("clickstream-etl-{project_id}")
    }

    /// The task queue of a project's warehouse activities: DuckDB's owner, or any worker for
    /// Redshift (its Data API can be called from anywhere).
    pub fn warehouse_task_queue(&self, project: &ProjectConfig) -> &str {
        match project.warehouse {
            WarehouseKind::Duckdb => &self.temporal.warehouse_task_queue,
            WarehouseKind::Redshift => &self.temporal.task_queue,
        }
    }

    pub fn project(&self, project_id: &str) -> Option<ProjectConfig> {
        if let Some(project) = self.projects.iter().find(|project| project.id == project_id) {
            return Some(project.clone());
        }
        self.live_projects.snapshot().iter().find(|project| project.id == project_id).cloned()
    }

    /// The embedded control store's file: `control.embedded_path`, else next to the warehouse.
    pub fn control_store_path(&self) -> PathBuf {
        if !self.control.embedded_path.as_os_str().is_empty() {
            return self.control.embedded_path.clone();
        }
        self.warehouse.duckdb_path.with_file_name("control.sqlite")
    }

    /// The collector URL apps send to, as the SDK snippets show it.
    pub fn public_ingest_url(&self) -> String {
        if self.console.public_ingest_url.is_empty() {
            format!("http://{}{}", self.ingest.listen, self.ingest.path)
        } else {
            self.console.public_ingest_url.clone()
        }
    }
}

/// The region of an MSK cluster ARN (`arn:<partition>:kafka:<region>:<account>:cluster/…`),
/// where its API must be asked; `None` when the text is not such an ARN.
pub fn region_of_msk_cluster_arn(arn: &str) -> Option<&str> {
    let mut fields = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("kafka"), Some(region), Some(_account), Some(resource)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    (!region.is_empty() && resource.starts_with("cluster/")).then_some(region)
}

/// A standard five-field cron expression (minute hour day-of-month month day-of-week), the
/// form Temporal schedules take.
pub fn validate_cron(expression: &str) -> Result<(), String> {
    let fields = expression.split_whitespace().count();
    if fields != 5 {
        return Err(format!("`{expression}` has {fields} fields; expected 5 (minute hour day-of-month month day-of-week)"));
    }
    // The `cron` crate wants a seconds field first.
    <cron::Schedule as std::str::FromStr>::from_str(&format!("0 {expression}")).map(|_| ()).map_err(|error| format!("`{expression}` is not a valid cron expression: {error}"))
}

fn validate_enrichers(key: &str, enrichers: &[String]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for name in enrichers {
        if !KNOWN_ENRICHERS.contains(&name.as_str()) {
            return Err(ConfigError::Invalid { key: key.into(), reason: format!("unknown enricher `{name}`; known: {}", KNOWN_ENRICHERS.join(", ")) });
        }
        if !seen.insert(name) {
            return Err(ConfigError::Invalid { key: key.into(), reason: format!("enricher `{name}` is listed twice") });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figment_with(toml: &str) -> Figment {
        Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml))
    }

    #[test]
    fn a_valid_file_is_read_and_defaults_fill_the_rest() {
        let config = Config::from_figment(figment_with(
            r#"
            [ingest]
            listen = "127.0.0.1:9999"
            [[projects]]
            id = "demo"
            apps = ["demo-app"]
            "#,
        ))
        .unwrap();
        assert_eq!(config.ingest.listen.port(), 9999);
        assert_eq!(config.ingest.path, "/collect");
        assert_eq!(config.projects[0].etl_interval_seconds, 60);
        assert_eq!(config.project_of_app("demo-app").unwrap().id, "demo");
        assert!(config.project_of_app("other").is_none());
    }

    #[test]
    fn an_unparsable_value_names_its_key() {
        let error = Config::from_figment(figment_with("[ingest]\nlisten = \"not an address\"")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("ingest.listen"), "{message}");
    }

    #[test]
    fn an_unknown_key_is_rejected() {
        let error = Config::from_figment(figment_with("[ingest]\nlisten_port = 1")).unwrap_err();
        assert!(error.to_string().contains("listen_port"), "{error}");
    }

    #[test]
    fn an_msk_cluster_arn_gives_its_region_and_anything_else_is_refused() {
        let arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/clickstream-demo/6c1d-2";
        assert_eq!(region_of_msk_cluster_arn(arn), Some("eu-west-1"));
        assert_eq!(region_of_msk_cluster_arn("arn:aws:kinesis:eu-west-1:123456789012:stream/demo"), None);
        assert_eq!(region_of_msk_cluster_arn("b-1.demo.kafka.eu-west-1.amazonaws.com:9092"), None);
        let config = Config::from_figment(figment_with(&format!("[kafka]\nmsk_cluster_arn = \"{arn}\""))).unwrap();
        assert_eq!(config.kafka.topic_replication_factor, 1);
        let error = Config::from_figment(figment_with("[kafka]\nmsk_cluster_arn = \"my-cluster\"")).unwrap_err();
        assert!(error.to_string().contains("kafka.msk_cluster_arn"), "{error}");
        let error = Config::from_figment(figment_with("[kafka]\ntopic_replication_factor = 0")).unwrap_err();
        assert!(error.to_string().contains("kafka.topic_replication_factor"), "{error}");
    }

    #[test]
    fn a_bad_project_id_names_the_project() {
        let error = Config::from_figment(figment_with(
            "[[projects]]\nid = \"Bad-Id\"\napps = [\"a\"]",
        ))
        .unwrap_err();
        assert!(error.to_string().contains("projects[0].id"), "{error}");
    }

    #[test]
    fn an_app_in_two_projects_is_rejected() {
        let error = Config::from_figment(figment_with(
            "[[projects]]\nid = \"a\"\napps = [\"x\"]\n[[projects]]\nid = \"b\"\napps = [\"x\"]",
        ))
        .unwrap_err();
        assert!(error.to_string().contains("two projects"), "{error}");
    }

    #[test]
    fn an_unknown_enricher_is_rejected_with_the_known_ones() {
        let error = Config::from_figment(figment_with("[etl]\nenrichers = [\"user_agent\", \"weather\"]")).unwrap_err();
        assert!(error.to_string().contains("etl.enrichers") && error.to_string().contains("weather") && error.to_string().contains("ip_geo"), "{error}");
        let error = Config::from_figment(figment_with("[[projects]]\nid = \"a\"\napps = [\"x\"]\nenrichers = [\"page_url\", \"page_url\"]")).unwrap_err();
        assert!(error.to_string().contains("projects[0].enrichers"), "{error}");
    }

    #[test]
    fn a_project_chain_overrides_the_default() {
        let config = Config::from_figment(figment_with("[[projects]]\nid = \"a\"\napps = [\"x\"]\nenrichers = [\"traffic_source\"]\n[[projects]]\nid = \"b\"\napps = [\"y\"]")).unwrap();
        assert_eq!(config.projects[0].enrichers(&config.etl), ["traffic_source".to_string()]);
        assert_eq!(config.projects[1].enrichers(&config.etl).len(), 4);
        assert_eq!(config.enrichers_in_use().len(), 4);
    }

    #[test]
    fn schedules_and_retention_are_checked() {
        let config = Config::from_figment(figment_with("[[projects]]\nid = \"a\"\napps = [\"x\"]\netl_cron = \"*/15 * * * *\"")).unwrap();
        assert_eq!(config.projects[0].etl_cron.as_deref(), Some("*/15 * * * *"));
        assert_eq!(config.projects[0].retention_days, 365);
        for (bad, reason) in [("etl_cron = \"* * * *\"", "expected 5"), ("etl_cron = \"61 * * * *\"", "not a valid cron"), ("retention_days = 0", "greater than 0")] {
            let error = Config::from_figment(figment_with(&format!("[[projects]]\nid = \"a\"\napps = [\"x\"]\n{bad}"))).unwrap_err();
            assert!(error.to_string().contains("projects[0].") && error.to_string().contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn a_redshift_project_needs_s3_one_target_and_a_copy_role() {
        let project = "[[projects]]\nid = \"a\"\napps = [\"x\"]\nwarehouse = \"redshift\"\n";
        let s3 = "[storage]\nurl = \"s3://bucket\"\n";
        let complete = "[warehouse.redshift]\nworkgroup_name = \"wg\"\ndatabase = \"dev\"\ncopy_role_arn = \"arn:aws:iam::1:role/r\"\n";
        let config = Config::from_figment(figment_with(&format!("{s3}{complete}{project}"))).unwrap();
        assert_eq!(config.warehouse_task_queue(&config.projects[0]), config.temporal.task_queue, "any worker calls the Data API");
        for (toml, key) in [
            (format!("{complete}{project}"), "projects[0].warehouse"),
            (format!("{s3}[warehouse.redshift]\ndatabase = \"dev\"\ncopy_role_arn = \"r\"\n{project}"), "workgroup_name"),
            (format!("{s3}[warehouse.redshift]\nworkgroup_name = \"wg\"\ncluster_identifier = \"c\"\ncopy_role_arn = \"r\"\n{project}"), "workgroup_name"),
            (format!("{s3}[warehouse.redshift]\nworkgroup_name = \"wg\"\n{project}"), "copy_role_arn"),
        ] {
            let error = Config::from_figment(figment_with(&toml)).unwrap_err();
            assert!(error.to_string().contains(key), "{toml}: {error}");
        }
    }

    #[test]
    fn a_bad_storage_url_is_rejected() {
        let error = Config::from_figment(figment_with("[storage]\nurl = \"ftp://x\"")).unwrap_err();
        assert!(error.to_string().contains("storage.url"), "{error}");
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let example = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("../clickstream.example.toml");
        let config = Config::load(Some(&example)).unwrap();
        assert_eq!(config.projects[0].apps, vec!["demo-app".to_string()]);
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[ingest]\nlisten = \"127.0.0.1:1\"")?;
            jail.set_env("CLICKSTREAM_INGEST__LISTEN", "127.0.0.1:2");
            jail.set_env("CLICKSTREAM_LOG_FORMAT", "json");
            let config = Config::load(Some(std::path::Path::new("c.toml"))).unwrap();
            assert_eq!(config.ingest.listen.port(), 2);
            Ok(())
        });
    }

    /// A list in one variable, as the ingestion stack sets the allowed origins.
    #[test]
    fn a_list_comes_from_one_environment_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_INGEST__CORS_ALLOWED_ORIGINS", r#"["https://shop.example.com", "https://*.example.com"]"#);
            let config = Config::load(None).unwrap();
            assert_eq!(config.ingest.cors_allowed_origins, ["https://shop.example.com", "https://*.example.com"]);
            Ok(())
        });
    }
}
