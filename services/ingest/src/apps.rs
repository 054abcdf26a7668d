//! The registry of apps the collector accepts: appId → project.
//!
//! Built from the configuration at start and, when the collector runs from a configuration
//! file, re-read from it periodically, so an app added to (or removed from) a project takes
//! effect without a restart. A project of the file that did not exist at start is not picked up
//! (its sink was not set up); that needs a restart, and the refresh says so in the log. Apps
//! of the control plane's pipelines come from [`Config::live_projects`], refreshed from the
//! store every `control.refresh_seconds` (their sinks are set up by the pipeline's
//! provisioning).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use clickstream_core::Config;

pub struct AppRegistry {
    /// The configuration the collector started with: which projects (and sinks) exist.
    started_with: Arc<Config>,
    project_of_app: RwLock<Arc<HashMap<String, String>>>,
}

impl AppRegistry {
    pub fn new(config: Arc<Config>) -> AppRegistry {
        let project_of_app = RwLock::new(Arc::new(Self::index(&config, &config)));
        AppRegistry { started_with: config, project_of_app }
    }

    /// The project of an app, if the app is registered: in the configuration file, else in
    /// a pipeline of the control plane's store (kept current by the live-project refresher).
    pub fn project_of(&self, app_id: &str) -> Option<String> {
        if let Some(project) = self.project_of_app.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(app_id) {
            return Some(project.clone());
        }
        self.started_with.live_projects.project_of_app(app_id).map(|project| project.id)
    }

    /// Whether the project has a transformer plugin, so its apps may send bodies in a format of
    /// their own (asked only when a body is not the SDKs' format, so it is off the hot path).
    pub fn has_transformer(&self, project_id: &str) -> bool {
        self.started_with.project(project_id).is_some_and(|project| project.transformer.is_some())
    }

    /// Apps of `latest` whose project existed at start (with the same sink).
    fn index(started_with: &Config, latest: &Config) -> HashMap<String, String> {
        let mut index = HashMap::new();
        for project in &latest.projects {
            let known = started_with.project(&project.id).is_some_and(|at_start| at_start.sink == project.sink);
            if !known {
                tracing::warn!(project = %project.id, "project is new or changed its sink since start: restart the collector to accept its apps");
                continue;
            }
            for app in &project.apps {
                index.insert(app.clone(), project.id.clone());
            }
        }
        index
    }

    /// Re-reads the apps from `latest`; an invalid file leaves the registry as it is.
    pub fn refresh(&self, latest: &Config) {
        let index = Self::index(&self.started_with, latest);
        let mut current = self.project_of_app.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current != index {
            tracing::info!(apps = index.len(), "app registry refreshed");
            *current = Arc::new(index);
        }
    }

    /// Re-reads the configuration file every `every` until the registry is dropped.
    pub fn refresh_from_file(self: &Arc<Self>, file: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                interval.tick().await;
                let Some(registry) = registry.upgrade() else { return };
                match Config::load(Some(&file)) {
                    Ok(latest) => registry.refresh(&latest),
                    Err(error) => tracing::warn!(%error, file = %file.display(), "cannot re-read the app registry; keeping the current one"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickstream_core::ProjectConfig;

    fn project(id: &str, apps: &[&str]) -> ProjectConfig {
        ProjectConfig { id: id.into(), apps: apps.iter().map(|app| app.to_string()).collect(), ..ProjectConfig::default() }
    }

    #[test]
    fn apps_added_and_removed_later_take_effect_but_new_projects_wait_for_a_restart() {
        let mut config = Config::default();
        config.projects = vec![project("shop", &["web"])];
        let registry = AppRegistry::new(Arc::new(config.clone()));
        assert_eq!(registry.project_of("web").as_deref(), Some("shop"));
        assert_eq!(registry.project_of("ios"), None);

        config.projects = vec![project("shop", &["ios"]), project("blog", &["blog-web"])];
        registry.refresh(&config);
        assert_eq!(registry.project_of("ios").as_deref(), Some("shop"));
        assert_eq!(registry.project_of("web"), None, "removed");
        assert_eq!(registry.project_of("blog-web"), None, "its project is new since start");
    }
}
