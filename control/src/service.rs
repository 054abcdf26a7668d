//! The control plane's operations, as the REST API calls them: validation, the rules between
//! records, and the store. Talking to Temporal (starting and signalling the lifecycle
//! workflow) is the API's part.

use std::sync::Arc;

use clickstream_core::{
    Config,
    config::KNOWN_ENRICHERS,
    control_model::{App, DisplayName, Environment, Pipeline, PipelinePhase, PipelineSpec, PipelineStatus, Platform, Plugin, PluginKind, Project, SavedExploration, Stamp, pipeline_id_of_project},
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    store::{ControlStore, StoreError, StoredDisplayName, StoredPipelineStatus},
    validation::{self, FieldErrors},
};

/// Why an operation was refused; the API maps each to its status code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// 400: the listed fields are invalid.
    #[error("invalid input: {}", describe_fields(.0))]
    Invalid(FieldErrors),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the change clashes with what is stored (id taken, stale version, a state that
    /// does not allow it).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

fn describe_fields(errors: &FieldErrors) -> String {
    errors.iter().map(|(field, reason)| format!("{field}: {reason}")).collect::<Vec<_>>().join("; ")
}

impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists { .. } | StoreError::VersionConflict { .. } => ControlError::Conflict(error.to_string()),
            other => ControlError::Store(other),
        }
    }
}

fn invalid_unless_empty(errors: FieldErrors) -> Result<(), ControlError> {
    if errors.is_empty() { Ok(()) } else { Err(ControlError::Invalid(errors)) }
}

/// A saved exploration: its name and query (the console checks the query).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewExploration {
    pub name: String,
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ExplorationChanges {
    pub name: String,
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// The version this change was made from (409 if it is no longer the stored one).
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewProject {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub environment: Environment,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProjectChanges {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub environment: Environment,
    /// The version read before the change.
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewApp {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform: Platform,
    #[serde(default = "utc")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AppChanges {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform: Platform,
    pub timezone: String,
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewPipeline {
    pub project_id: String,
    pub spec: PipelineSpec,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PipelineChanges {
    pub spec: PipelineSpec,
    pub version: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewPlugin {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: PluginKind,
    /// Empty until the module is uploaded (`PUT /api/v1/plugins/{id}/module`), or a
    /// `file:///…` path on the workers.
    #[serde(default)]
    pub module_uri: String,
    /// Text handed to the plugin with every batch (its settings).
    #[serde(default)]
    pub config: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PluginChanges {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: PluginKind,
    /// A new `file:///…` location; absent keeps the current module (uploads change it).
    #[serde(default)]
    pub module_uri: Option<String>,
    #[serde(default)]
    pub config: String,
    pub version: u64,
}

/// The built-in enrichers, listed as plugins (CAoA lists its enrichment plugins the same way).
pub fn built_in_plugins() -> Vec<Plugin> {
    let describe = |name: &str| match name {
        "page_url" => "Splits page URLs into host, path and query parameters.",
        "traffic_source" => "Derives the traffic source (source, medium, campaign, channel group) from UTM parameters, click ids and referrers.",
        "user_agent" => "Parses the user agent into browser, OS and device (ua-parser regexes).",
        "ip_geo" => "Looks up the country, region and city of the client IP (MaxMind-format database).",
        _ => "",
    };
    KNOWN_ENRICHERS
        .iter()
        .map(|name| Plugin {
            id: name.to_string(),
            name: name.replace('_', " "),
            description: describe(name).into(),
            kind: PluginKind::Enrichment,
            module_uri: String::new(),
            module_sha256: String::new(),
            config: String::new(),
            built_in: true,
            stamp: Stamp::default(),
        })
        .collect()
}

#[derive(Clone)]
pub struct ControlPlane {
    pub store: ControlStore,
    pub config: Arc<Config>,
}

impl ControlPlane {
    pub fn new(store: ControlStore, config: Arc<Config>) -> ControlPlane {
        ControlPlane { store, config }
    }

    // Projects.

    pub async fn list_projects(&self) -> Result<Vec<Project>, ControlError> {
        Ok(self.store.list::<Project>().await?)
    }

    pub async fn project(&self, project_id: &str) -> Result<Project, ControlError> {
        self.store.get::<Project>(project_id).await?.ok_or_else(|| ControlError::NotFound(format!("no project `{project_id}`")))
    }

    pub async fn create_project(&self, new: NewProject) -> Result<Project, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_project_id(&new.id, &mut errors);
        validation::check_name_and_description(&new.name, &new.description, &mut errors);
        invalid_unless_empty(errors)?;
        if self.config.projects.iter().any(|project| project.id == new.id) {
            return Err(ControlError::Conflict(format!("project `{}` is defined in the configuration file", new.id)));
        }
        let project = Project { id: new.id, name: new.name, description: new.description, environment: new.environment, stamp: Stamp::default() };
        Ok(self.store.create(project).await?)
    }

    pub async fn update_project(&self, project_id: &str, changes: ProjectChanges) -> Result<Project, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_name_and_description(&changes.name, &changes.description, &mut errors);
        invalid_unless_empty(errors)?;
        let mut project = self.project(project_id).await?;
        project.name = changes.name;
        project.description = changes.description;
        project.environment = changes.environment;
        project.stamp.version = changes.version;
        Ok(self.store.update(project).await?)
    }

    /// Deletes a project and its apps; refused while it has a pipeline (delete that first).
    pub async fn delete_project(&self, project_id: &str) -> Result<(), ControlError> {
        self.project(project_id).await?;
        if self.store.get::<Pipeline>(&pipeline_id_of_project(project_id)).await?.is_some() {
            return Err(ControlError::Conflict(format!("project `{project_id}` has a pipeline: delete the pipeline first")));
        }
        for app in self.list_apps(project_id).await? {
            self.store.delete::<App>(&app.id).await?;
        }
        self.store.delete::<Project>(project_id).await?;
        Ok(())
    }

    // Apps.

    pub async fn list_apps(&self, project_id: &str) -> Result<Vec<App>, ControlError> {
        Ok(self.store.list::<App>().await?.into_iter().filter(|app| app.project_id == project_id).collect())
    }

    pub async fn app(&self, app_id: &str) -> Result<App, ControlError> {
        self.store.get::<App>(app_id).await?.ok_or_else(|| ControlError::NotFound(format!("no app `{app_id}`")))
    }

    pub async fn create_app(&self, project_id: &str, new: NewApp) -> Result<App, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_app_id(&new.id, &mut errors);
        validation::check_name_and_description(&new.name, &new.description, &mut errors);
        validation::check_timezone(&new.timezone, &mut errors);
        invalid_unless_empty(errors)?;
        self.project(project_id).await?;
        if let Some(owner) = self.config.projects.iter().find(|project| project.apps.contains(&new.id)) {
            return Err(ControlError::Conflict(format!("app `{}` belongs to project `{}` of the configuration file", new.id, owner.id)));
        }
        let app = App { id: new.id, project_id: project_id.into(), name: new.name, description: new.description, platform: new.platform, timezone: new.timezone, stamp: Stamp::default() };
        match self.store.create(app).await {
            Err(StoreError::AlreadyExists { key, .. }) => Err(ControlError::Conflict(format!("app id `{key}` is taken (app ids are unique across projects)"))),
            other => Ok(other?),
        }
    }

    pub async fn update_app(&self, app_id: &str, changes: AppChanges) -> Result<App, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_name_and_description(&changes.name, &changes.description, &mut errors);
        validation::check_timezone(&changes.timezone, &mut errors);
        invalid_unless_empty(errors)?;
        let mut app = self.app(app_id).await?;
        app.name = changes.name;
        app.description = changes.description;
        app.platform = changes.platform;
        app.timezone = changes.timezone;
        app.stamp.version = changes.version;
        Ok(self.store.update(app).await?)
    }

    /// Deletes an app: the collector refuses its events from the next refresh on; what was
    /// accepted before is still processed.
    pub async fn delete_app(&self, app_id: &str) -> Result<(), ControlError> {
        self.app(app_id).await?;
        self.store.delete::<App>(app_id).await?;
        Ok(())
    }

    // Pipelines.

    pub async fn list_pipelines(&self) -> Result<Vec<Pipeline>, ControlError> {
        Ok(self.store.list::<Pipeline>().await?)
    }

    pub async fn pipeline(&self, pipeline_id: &str) -> Result<Pipeline, ControlError> {
        self.store.get::<Pipeline>(pipeline_id).await?.ok_or_else(|| ControlError::NotFound(format!("no pipeline `{pipeline_id}`")))
    }

    async fn check_spec(&self, spec: &PipelineSpec) -> Result<(), ControlError> {
        let known_plugins = self.store.list::<Plugin>().await?;
        let mut errors = FieldErrors::new();
        validation::check_pipeline_spec(spec, &self.config, &known_plugins, &mut errors);
        invalid_unless_empty(errors)
    }

    /// Stores a new pipeline (status `creating`); the caller starts its lifecycle workflow.
    pub async fn create_pipeline(&self, new: NewPipeline) -> Result<Pipeline, ControlError> {
        self.check_spec(&new.spec).await?;
        if self.store.get::<Project>(&new.project_id).await?.is_none() {
            let mut errors = FieldErrors::new();
            errors.insert("project_id".into(), format!("no project `{}`", new.project_id));
            return Err(ControlError::Invalid(errors));
        }
        let pipeline = Pipeline { id: pipeline_id_of_project(&new.project_id), project_id: new.project_id, spec: new.spec, stamp: Stamp::default() };
        let pipeline = match self.store.create(pipeline).await {
            Err(StoreError::AlreadyExists { .. }) => {
                return Err(ControlError::Conflict("this project has a pipeline already (one pipeline per project)".into()));
            }
            other => other?,
        };
        self.record_status(&pipeline.id, &PipelineStatus { spec_version: 1, ..PipelineStatus::default() }).await?;
        Ok(pipeline)
    }

    /// Stores a changed spec (the version must be the one read); the caller signals the
    /// lifecycle workflow, which deploys it.
    pub async fn update_pipeline(&self, pipeline_id: &str, changes: PipelineChanges) -> Result<Pipeline, ControlError> {
        self.check_spec(&changes.spec).await?;
        let mut pipeline = self.pipeline(pipeline_id).await?;
        let phase = self.pipeline_status(pipeline_id).await?.phase;
        if matches!(phase, PipelinePhase::Deleting | PipelinePhase::Deleted) {
            return Err(ControlError::Conflict(format!("pipeline `{pipeline_id}` is being deleted")));
        }
        pipeline.spec = changes.spec;
        pipeline.stamp.version = changes.version;
        Ok(self.store.update(pipeline).await?)
    }

    /// The status the lifecycle workflow last recorded.
    pub async fn pipeline_status(&self, pipeline_id: &str) -> Result<PipelineStatus, ControlError> {
        Ok(self.store.get::<StoredPipelineStatus>(pipeline_id).await?.map(|stored| stored.status).unwrap_or_default())
    }

    pub async fn record_status(&self, pipeline_id: &str, status: &PipelineStatus) -> Result<(), ControlError> {
        Ok(self.store.put(&StoredPipelineStatus { pipeline_id: pipeline_id.into(), status: status.clone() }).await?)
    }

    /// Forgets a deleted pipeline (the lifecycle workflow's last step).
    pub async fn remove_pipeline(&self, pipeline_id: &str) -> Result<(), ControlError> {
        self.store.delete::<Pipeline>(pipeline_id).await?;
        self.store.delete::<StoredPipelineStatus>(pipeline_id).await?;
        Ok(())
    }

    // Plugins.

    pub async fn list_plugins(&self) -> Result<Vec<Plugin>, ControlError> {
        let mut plugins = built_in_plugins();
        plugins.extend(self.store.list::<Plugin>().await?);
        Ok(plugins)
    }

    pub async fn plugin(&self, plugin_id: &str) -> Result<Plugin, ControlError> {
        if let Some(built_in) = built_in_plugins().into_iter().find(|plugin| plugin.id == plugin_id) {
            return Ok(built_in);
        }
        self.store.get::<Plugin>(plugin_id).await?.ok_or_else(|| ControlError::NotFound(format!("no plugin `{plugin_id}`")))
    }

    fn refuse_built_in(plugin_id: &str) -> Result<(), ControlError> {
        if KNOWN_ENRICHERS.contains(&plugin_id) {
            return Err(ControlError::Conflict(format!("`{plugin_id}` is a built-in plugin and cannot be changed")));
        }
        Ok(())
    }

    pub async fn create_plugin(&self, new: NewPlugin) -> Result<Plugin, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_plugin_id(&new.id, &mut errors);
        validation::check_name_and_description(&new.name, &new.description, &mut errors);
        validation::check_module_uri(&new.module_uri, &mut errors);
        invalid_unless_empty(errors)?;
        Self::refuse_built_in(&new.id)?;
        let plugin = Plugin {
            id: new.id,
            name: new.name,
            description: new.description,
            kind: new.kind,
            module_uri: new.module_uri,
            module_sha256: String::new(),
            config: new.config,
            built_in: false,
            stamp: Stamp::default(),
        };
        Ok(self.store.create(plugin).await?)
    }

    pub async fn update_plugin(&self, plugin_id: &str, changes: PluginChanges) -> Result<Plugin, ControlError> {
        Self::refuse_built_in(plugin_id)?;
        let mut errors = FieldErrors::new();
        validation::check_name_and_description(&changes.name, &changes.description, &mut errors);
        if let Some(module_uri) = &changes.module_uri {
            validation::check_module_uri(module_uri, &mut errors);
        }
        invalid_unless_empty(errors)?;
        let mut plugin = self.plugin(plugin_id).await?;
        plugin.name = changes.name;
        plugin.description = changes.description;
        plugin.kind = changes.kind;
        plugin.config = changes.config;
        if let Some(module_uri) = changes.module_uri {
            plugin.module_uri = module_uri;
            plugin.module_sha256 = String::new();
        }
        plugin.stamp.version = changes.version;
        Ok(self.store.update(plugin).await?)
    }

    /// Records an uploaded module (the caller checked and stored it at `module_uri`). The
    /// pipelines using the plugin run the new module from their next ETL run on.
    pub async fn set_plugin_module(&self, plugin_id: &str, module_uri: String, module_sha256: String) -> Result<Plugin, ControlError> {
        Self::refuse_built_in(plugin_id)?;
        let mut plugin = self.plugin(plugin_id).await?;
        plugin.module_uri = module_uri;
        plugin.module_sha256 = module_sha256;
        let plugin = self.store.update(plugin).await?;
        crate::live::refresh_live_projects_after("plugin module uploaded", &self.config, &self.store).await;
        Ok(plugin)
    }

    /// Deletes a custom plugin; refused while a pipeline uses it.
    pub async fn delete_plugin(&self, plugin_id: &str) -> Result<(), ControlError> {
        Self::refuse_built_in(plugin_id)?;
        self.plugin(plugin_id).await?;
        let uses = |spec: &PipelineSpec| spec.processing.plugins.iter().any(|plugin| plugin == plugin_id) || spec.processing.transformer.as_deref() == Some(plugin_id);
        if let Some(user) = self.list_pipelines().await?.into_iter().find(|pipeline| uses(&pipeline.spec)) {
            return Err(ControlError::Conflict(format!("pipeline `{}` uses plugin `{plugin_id}`", user.id)));
        }
        self.store.delete::<Plugin>(plugin_id).await?;
        Ok(())
    }

    // Saved explorations.

    pub async fn list_explorations(&self, app_id: &str) -> Result<Vec<SavedExploration>, ControlError> {
        let mut saved: Vec<SavedExploration> = self.store.list::<SavedExploration>().await?.into_iter().filter(|exploration| exploration.app_id == app_id).collect();
        saved.sort_by(|left, right| left.name.cmp(&right.name).then_with(|| left.id.cmp(&right.id)));
        Ok(saved)
    }

    pub async fn exploration(&self, app_id: &str, exploration_id: &str) -> Result<SavedExploration, ControlError> {
        self.store.get::<SavedExploration>(&format!("{app_id}/{exploration_id}")).await?.ok_or_else(|| ControlError::NotFound(format!("app `{app_id}` has no saved exploration `{exploration_id}`")))
    }

    pub async fn create_exploration(&self, app_id: &str, new: NewExploration, created_by: &str) -> Result<SavedExploration, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_name(&new.name, &mut errors);
        invalid_unless_empty(errors)?;
        let exploration = SavedExploration { id: uuid::Uuid::new_v4().to_string(), app_id: app_id.into(), name: new.name, query: new.query, created_by: created_by.into(), stamp: Stamp::default() };
        Ok(self.store.create(exploration).await?)
    }

    pub async fn update_exploration(&self, app_id: &str, exploration_id: &str, changes: ExplorationChanges) -> Result<SavedExploration, ControlError> {
        let mut errors = FieldErrors::new();
        validation::check_name(&changes.name, &mut errors);
        invalid_unless_empty(errors)?;
        let mut exploration = self.exploration(app_id, exploration_id).await?;
        exploration.name = changes.name;
        exploration.query = changes.query;
        exploration.stamp.version = changes.version;
        Ok(self.store.update(exploration).await?)
    }

    pub async fn delete_exploration(&self, app_id: &str, exploration_id: &str) -> Result<(), ControlError> {
        self.exploration(app_id, exploration_id).await?;
        self.store.delete::<SavedExploration>(&format!("{app_id}/{exploration_id}")).await?;
        Ok(())
    }

    // Display names.

    pub async fn display_names(&self, app_id: &str) -> Result<Vec<DisplayName>, ControlError> {
        let stored = self.store.list::<StoredDisplayName>().await?;
        Ok(stored.into_iter().filter(|name| name.app_id == app_id).map(|name| name.display_name).collect())
    }

    /// Sets display names (each replaces the one of the same kind and name).
    pub async fn put_display_names(&self, app_id: &str, names: Vec<DisplayName>) -> Result<Vec<DisplayName>, ControlError> {
        let mut errors = FieldErrors::new();
        for (index, name) in names.iter().enumerate() {
            if name.name.trim().is_empty() {
                errors.insert(format!("[{index}].name"), "must not be empty".into());
            }
            if name.display_name.chars().count() > validation::MAX_NAME_LENGTH {
                errors.insert(format!("[{index}].display_name"), format!("must be at most {} characters", validation::MAX_NAME_LENGTH));
            }
            if name.description.chars().count() > validation::MAX_DESCRIPTION_LENGTH {
                errors.insert(format!("[{index}].description"), format!("must be at most {} characters", validation::MAX_DESCRIPTION_LENGTH));
            }
        }
        invalid_unless_empty(errors)?;
        for name in names {
            self.store.put(&StoredDisplayName { app_id: app_id.into(), display_name: name }).await?;
        }
        self.display_names(app_id).await
    }
}
