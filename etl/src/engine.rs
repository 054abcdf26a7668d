//! The engine as a service configures it: the enrichers' shared data loaded once from the
//! configuration, and the job settings of each project.

use std::{collections::HashSet, sync::Arc};

use clickstream_core::Config;

use clickstream_plugins::{PluginError, PluginLimits, PluginRuntime, PluginWorld};
use object_store::ObjectStore;

use crate::{
    enrich::{EnricherKind, EnrichmentError, EnrichmentFiles, EnrichmentResources, plugin::ChainPlugin},
    job::JobSettings,
    transform::QualityRules,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Enrichment(#[from] EnrichmentError),
    /// The configuration names no such project; retrying does not help.
    #[error("project `{0}` is not configured")]
    UnknownProject(String),
    /// A plugin's module could not be read (the object store or the file system); a retry
    /// may help.
    #[error("cannot read the module of plugin `{plugin}` at {uri}: {reason}")]
    PluginModule { plugin: String, uri: String, reason: String },
    /// A plugin's module is not a usable enricher; retrying does not help: upload a fixed one.
    #[error("plugin `{plugin}` cannot be loaded: {source}")]
    Plugin { plugin: String, source: PluginError },
}

impl EngineError {
    /// Whether running the same step again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EngineError::PluginModule { .. } | EngineError::Plugin { source: PluginError::Sandbox(_), .. })
    }
}

pub struct EtlEngine {
    config: Arc<Config>,
    resources: Arc<EnrichmentResources>,
    plugins: Arc<PluginRuntime>,
}

/// The sandbox limits the configuration sets.
pub fn plugin_limits(config: &Config) -> PluginLimits {
    PluginLimits {
        fuel_per_item: config.etl.plugin_fuel_per_event,
        memory_bytes: usize::try_from(config.etl.plugin_memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX),
        ..PluginLimits::default()
    }
}

/// The enricher kinds of configured names (validated by the configuration already).
pub fn enricher_kinds(names: &[String]) -> Vec<EnricherKind> {
    names.iter().filter_map(|name| EnricherKind::parse(name)).collect()
}

fn configured_path(path: &std::path::Path) -> Option<&std::path::Path> {
    (!path.as_os_str().is_empty()).then_some(path)
}

impl EtlEngine {
    /// Loads what the enrichers of every configured project need; a missing or unreadable
    /// file fails here, at start, with the configuration key to fix.
    pub fn load(config: Arc<Config>) -> Result<EtlEngine, EngineError> {
        let kinds = enricher_kinds(&config.enrichers_in_use());
        let files = EnrichmentFiles {
            user_agent_regexes: configured_path(&config.etl.user_agent_regexes),
            geo_database: configured_path(&config.etl.geo_database),
            traffic_source_rules_dir: configured_path(&config.etl.traffic_source_rules_dir),
        };
        let resources = Arc::new(EnrichmentResources::load(&files, &kinds)?);
        let plugins = PluginRuntime::new(plugin_limits(&config)).map_err(|source| EngineError::Plugin { plugin: "(runtime)".into(), source })?;
        Ok(EtlEngine { config, resources, plugins: Arc::new(plugins) })
    }

    /// Sets the project's custom plugins into job settings: its enricher chain and its
    /// transformer, ready to run.
    pub async fn add_plugins(&self, settings: &mut JobSettings, project_id: &str, store: &Arc<dyn ObjectStore>) -> Result<(), EngineError> {
        let project = self.config.project(project_id).ok_or_else(|| EngineError::UnknownProject(project_id.to_string()))?;
        settings.plugins.clear();
        for configured in &project.plugins {
            settings.plugins.push(self.load_plugin(configured, PluginWorld::Enricher, store).await?);
        }
        settings.transformer = match &project.transformer {
            Some(configured) => Some(self.load_plugin(configured, PluginWorld::Transformer, store).await?),
            None => None,
        };
        Ok(())
    }

    /// One plugin: its module read from the object store (or a `file://` path) and compiled
    /// on a blocking thread, once per process per module.
    async fn load_plugin(&self, configured: &clickstream_core::config::ProjectPlugin, world: PluginWorld, store: &Arc<dyn ObjectStore>) -> Result<ChainPlugin, EngineError> {
        let bytes = read_plugin_module(store, &self.config.storage, &configured.module_uri)
            .await
            .map_err(|reason| EngineError::PluginModule { plugin: configured.id.clone(), uri: configured.module_uri.clone(), reason })?;
        let runtime = self.plugins.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load(&bytes, world))
            .await
            .map_err(|error| EngineError::Plugin { plugin: configured.id.clone(), source: PluginError::Sandbox(error.to_string()) })?
            .map_err(|source| EngineError::Plugin { plugin: configured.id.clone(), source })?;
        Ok(ChainPlugin { id: configured.id.clone(), plugin: loaded, config: configured.config.clone() })
    }

    pub fn resources(&self) -> Arc<EnrichmentResources> {
        self.resources.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How a job of this project runs.
    pub fn job_settings(&self, project_id: &str, job_id: &str) -> Result<JobSettings, EngineError> {
        let project = self.config.project(project_id).ok_or_else(|| EngineError::UnknownProject(project_id.to_string()))?;
        let etl = &self.config.etl;
        Ok(JobSettings {
            rules: QualityRules {
                project_id: project.id.clone(),
                apps: project.apps.iter().cloned().collect::<HashSet<String>>(),
                freshness_msec: project.freshness_hours(etl) as i64 * 3_600_000,
                correct_clock_skew: etl.correct_clock_skew,
            },
            enrichers: enricher_kinds(project.enrichers(etl)),
            plugins: Vec::new(),
            transformer: None,
            filter_bots: etl.filter_bots,
            job_id: job_id.to_string(),
        })
    }
}

/// A plugin module's bytes. `uri` is a key of `store`, a `file://` path, or an
/// `s3://bucket/key` URL of another bucket (a deployed pipeline's workers read the control
/// plane's uploads from its bucket), which is reached with `storage`'s region and endpoint.
pub async fn read_plugin_module(store: &Arc<dyn ObjectStore>, storage: &clickstream_core::config::StorageConfig, uri: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        return tokio::fs::read(path).await.map_err(|error| error.to_string());
    }
    if uri.is_empty() {
        return Err("no module has been uploaded".into());
    }
    if let Some(bucket_and_key) = uri.strip_prefix("s3://") {
        let Some((bucket, key)) = bucket_and_key.split_once('/') else {
            return Err(format!("{uri} names a bucket but no key"));
        };
        let bucket_store = clickstream_core::config::StorageConfig { url: format!("s3://{bucket}"), ..storage.clone() };
        let other = clickstream_core::storage::Storage::open(&bucket_store).map_err(|error| error.to_string())?;
        return read_object(&other.store, key).await;
    }
    read_object(store, uri).await
}

async fn read_object(store: &Arc<dyn ObjectStore>, key: &str) -> Result<Vec<u8>, String> {
    let object = store.get(&object_store::path::Path::from(key)).await.map_err(|error| error.to_string())?;
    let bytes = object.bytes().await.map_err(|error| error.to_string())?;
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_knows_every_enricher_by_its_name() {
        let known: Vec<&str> = clickstream_core::config::KNOWN_ENRICHERS.to_vec();
        let implemented: Vec<&str> = EnricherKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(known, implemented);
    }

    #[test]
    fn a_missing_regexes_file_is_an_error_naming_the_key() {
        let mut config = Config::default();
        config.etl.user_agent_regexes = "/nonexistent/regexes.yaml".into();
        config.projects.push(clickstream_core::ProjectConfig { id: "p".into(), apps: vec!["a".into()], enrichers: Some(vec!["user_agent".into()]), ..Default::default() });
        let error = EtlEngine::load(Arc::new(config)).err().unwrap();
        assert!(error.to_string().contains("/nonexistent/regexes.yaml"), "{error}");
    }

    #[test]
    fn projects_get_their_own_settings() {
        let mut config = Config::default();
        // The default chain is loaded too (pipelines created later choose from it).
        config.etl.enrichers = vec!["page_url".into()];
        config.projects.push(clickstream_core::ProjectConfig { id: "p".into(), apps: vec!["a".into()], enrichers: Some(vec!["traffic_source".into()]), freshness_hours: Some(1), ..Default::default() });
        let engine = EtlEngine::load(Arc::new(config)).unwrap();
        let settings = engine.job_settings("p", "job").unwrap();
        assert_eq!(settings.enrichers, vec![EnricherKind::TrafficSource]);
        assert_eq!(settings.rules.freshness_msec, 3_600_000);
        assert!(matches!(engine.job_settings("other", "job"), Err(EngineError::UnknownProject(_))));
    }
}
