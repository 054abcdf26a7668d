//! `/api/v1` of the control plane: projects, apps, pipelines, plugins, display names and the
//! session. Validation and the rules between records are the control crate's
//! ([`ControlPlane`]); this module maps them to HTTP and drives each pipeline's
//! `PipelineLifecycleWorkflow` (start on create; `update`, `retry` and `delete` signals;
//! `status` query).

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{FromRequest, Path, Request, State},
    http::StatusCode,
};
use clickstream_control::{
    live::refresh_live_projects_after,
    service::{AppChanges, NewApp, NewPipeline, NewPlugin, NewProject, PipelineChanges, PluginChanges, ProjectChanges},
};
use clickstream_core::control_model::{App, DisplayName, Pipeline, PipelinePhase, PipelineSpec, PipelineStatus, Plugin, PluginKind, Project};
use clickstream_plugins::PluginWorld;
use clickstream_workflows::{
    PipelineLifecycleWorkflow,
    types::{PipelineLifecycleInput, PipelineSpecUpdate},
};
use serde::{Serialize, de::DeserializeOwned};
use temporalio_client::{Client, WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions};
use utoipa::ToSchema;

use crate::{
    ConsoleState,
    api::{ApiError, ErrorBody},
    auth::Caller,
};

/// A JSON body whose parse errors are 400s in the API's error format (axum answers 422 in
/// plain text otherwise).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError::bad_request(format!("invalid JSON body: {}", rejection.body_text()))),
        }
    }
}

type Shared = State<Arc<ConsoleState>>;

// Projects.

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", responses((status = 200, body = [Project])))]
pub async fn list_projects(State(state): Shared) -> Result<Json<Vec<Project>>, ApiError> {
    Ok(Json(state.control.list_projects().await?))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_project(State(state): Shared, JsonBody(new): JsonBody<NewProject>) -> Result<(StatusCode, Json<Project>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.control.create_project(new).await?)))
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
pub async fn get_project(State(state): Shared, Path(project_id): Path<String>) -> Result<Json<Project>, ApiError> {
    Ok(Json(state.control.project(&project_id).await?))
}

#[utoipa::path(put, path = "/api/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)), request_body = ProjectChanges,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_project(State(state): Shared, Path(project_id): Path<String>, JsonBody(changes): JsonBody<ProjectChanges>) -> Result<Json<Project>, ApiError> {
    Ok(Json(state.control.update_project(&project_id, changes).await?))
}

#[utoipa::path(delete, path = "/api/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_project(State(state): Shared, Path(project_id): Path<String>) -> Result<StatusCode, ApiError> {
    state.control.delete_project(&project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// Apps.

/// An app with the collector URL its SDKs send to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    pub endpoint: String,
}

/// An app with its project's collector URL: the deployed ingestion stack's (each pipeline has
/// its own load balancer), else the configured `console.public_ingest_url`.
async fn app_view(state: &ConsoleState, app: App) -> AppView {
    let pipeline_id = clickstream_core::control_model::pipeline_id_of_project(&app.project_id);
    let deployed = match state.control.pipeline_status(&pipeline_id).await {
        Ok(status) => status.ingest_endpoint().map(str::to_string),
        Err(error) => {
            // The app is still worth showing; the configured URL stands in.
            tracing::warn!(%pipeline_id, %error, "the pipeline's status could not be read for its collector URL");
            None
        }
    };
    AppView { endpoint: deployed.unwrap_or_else(|| state.config.public_ingest_url()), app }
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/apps", tag = "apps", params(("project_id" = String, Path)),
    responses((status = 200, body = [AppView]), (status = 404, body = ErrorBody)))]
pub async fn list_apps(State(state): Shared, Path(project_id): Path<String>) -> Result<Json<Vec<AppView>>, ApiError> {
    state.control.project(&project_id).await?;
    let apps = state.control.list_apps(&project_id).await?;
    let mut views = Vec::with_capacity(apps.len());
    for app in apps {
        views.push(app_view(&state, app).await);
    }
    Ok(Json(views))
}

#[utoipa::path(post, path = "/api/v1/projects/{project_id}/apps", tag = "apps", params(("project_id" = String, Path)), request_body = NewApp,
    responses((status = 201, body = AppView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_app(State(state): Shared, Path(project_id): Path<String>, JsonBody(new): JsonBody<NewApp>) -> Result<(StatusCode, Json<AppView>), ApiError> {
    let app = state.control.create_app(&project_id, new).await?;
    refresh_live_projects_after("an app was created", &state.config, &state.control.store).await;
    Ok((StatusCode::CREATED, Json(app_view(&state, app).await)))
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}", tag = "apps", params(("app_id" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = ErrorBody)))]
pub async fn get_app(State(state): Shared, Path(app_id): Path<String>) -> Result<Json<AppView>, ApiError> {
    // An app of the configuration file is shown with defaults (it has no stored record).
    if let Some(project) = state.config.projects.iter().find(|project| project.apps.contains(&app_id)) {
        let app = App { id: app_id.clone(), project_id: project.id.clone(), name: app_id, description: "from the configuration file".into(), platform: Default::default(), timezone: "UTC".into(), stamp: Default::default() };
        return Ok(Json(app_view(&state, app).await));
    }
    let app = state.control.app(&app_id).await?;
    Ok(Json(app_view(&state, app).await))
}

#[utoipa::path(put, path = "/api/v1/apps/{app_id}", tag = "apps", params(("app_id" = String, Path)), request_body = AppChanges,
    responses((status = 200, body = AppView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_app(State(state): Shared, Path(app_id): Path<String>, JsonBody(changes): JsonBody<AppChanges>) -> Result<Json<AppView>, ApiError> {
    let app = state.control.update_app(&app_id, changes).await?;
    Ok(Json(app_view(&state, app).await))
}

#[utoipa::path(delete, path = "/api/v1/apps/{app_id}", tag = "apps", params(("app_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_app(State(state): Shared, Path(app_id): Path<String>) -> Result<StatusCode, ApiError> {
    state.control.delete_app(&app_id).await?;
    refresh_live_projects_after("an app was deleted", &state.config, &state.control.store).await;
    Ok(StatusCode::NO_CONTENT)
}

// Pipelines.

/// A pipeline with its live status and links to its runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineView {
    #[serde(flatten)]
    pub pipeline: Pipeline,
    pub status: PipelineStatus,
    /// The lifecycle workflow in the Temporal UI.
    pub workflow_url: String,
    /// The project's ETL runs in the Temporal UI.
    pub runs_url: String,
}

fn temporal_client(state: &ConsoleState) -> Result<&Client, ApiError> {
    state.temporal.get().ok_or_else(|| ApiError::unavailable("not connected to Temporal yet; retry in a moment"))
}

/// The workflow's answer when it runs, else what it last recorded in the store.
async fn live_status(state: &ConsoleState, pipeline: &Pipeline) -> Result<PipelineStatus, ApiError> {
    if let Some(client) = state.temporal.get() {
        let handle = client.get_workflow_handle::<PipelineLifecycleWorkflow>(pipeline.id.clone());
        match handle.query(PipelineLifecycleWorkflow::status, (), WorkflowQueryOptions::default()).await {
            Ok(status) => return Ok(status),
            Err(error) => tracing::debug!(pipeline = %pipeline.id, %error, "status query failed; using the stored status"),
        }
    }
    Ok(state.control.pipeline_status(&pipeline.id).await?)
}

async fn pipeline_view(state: &ConsoleState, pipeline: Pipeline) -> Result<PipelineView, ApiError> {
    let status = live_status(state, &pipeline).await?;
    let ui = state.config.console.temporal_ui_url.trim_end_matches('/');
    let namespace = &state.config.temporal.namespace;
    let workflow_url = format!("{ui}/namespaces/{namespace}/workflows/{}", pipeline.id);
    let query = format!("WorkflowId STARTS_WITH \"etl-{}\"", pipeline.project_id);
    let runs_url = format!("{ui}/namespaces/{namespace}/workflows?query={}", url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>());
    Ok(PipelineView { pipeline, status, workflow_url, runs_url })
}

#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines", responses((status = 200, body = [PipelineView])))]
pub async fn list_pipelines(State(state): Shared) -> Result<Json<Vec<PipelineView>>, ApiError> {
    let mut views = Vec::new();
    for pipeline in state.control.list_pipelines().await? {
        views.push(pipeline_view(&state, pipeline).await?);
    }
    Ok(Json(views))
}

#[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines", request_body = NewPipeline,
    responses((status = 201, body = PipelineView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_pipeline(State(state): Shared, JsonBody(new): JsonBody<NewPipeline>) -> Result<(StatusCode, Json<PipelineView>), ApiError> {
    let client = temporal_client(&state)?.clone();
    let pipeline = state.control.create_pipeline(new).await?;
    let input = PipelineLifecycleInput {
        pipeline_id: pipeline.id.clone(),
        project_id: pipeline.project_id.clone(),
        spec: pipeline.spec.clone(),
        spec_version: pipeline.stamp.version,
        carried_status: None,
        running_spec: None,
    };
    let options = WorkflowStartOptions::new(state.config.temporal.task_queue.clone(), pipeline.id.clone()).build();
    if let Err(error) = client.start_workflow(PipelineLifecycleWorkflow::run, input, options).await {
        // Nothing was deployed: forget the pipeline so that creating it again works.
        state.control.remove_pipeline(&pipeline.id).await?;
        return Err(ApiError::unavailable(format!("cannot start the pipeline's lifecycle workflow: {error}")));
    }
    Ok((StatusCode::CREATED, Json(pipeline_view(&state, pipeline).await?)))
}

#[utoipa::path(get, path = "/api/v1/pipelines/{pipeline_id}", tag = "pipelines", params(("pipeline_id" = String, Path)),
    responses((status = 200, body = PipelineView), (status = 404, body = ErrorBody)))]
pub async fn get_pipeline(State(state): Shared, Path(pipeline_id): Path<String>) -> Result<Json<PipelineView>, ApiError> {
    let pipeline = state.control.pipeline(&pipeline_id).await?;
    Ok(Json(pipeline_view(&state, pipeline).await?))
}

/// Sends a signal to a pipeline's workflow; a workflow that is gone is a conflict.
async fn signal_pipeline<F>(state: &ConsoleState, pipeline_id: &str, send: F) -> Result<(), ApiError>
where
    F: AsyncFnOnce(temporalio_client::WorkflowHandle<Client, PipelineLifecycleWorkflow>) -> Result<(), temporalio_client::errors::WorkflowInteractionError>,
{
    let handle = temporal_client(state)?.get_workflow_handle::<PipelineLifecycleWorkflow>(pipeline_id.to_string());
    send(handle).await.map_err(|error| ApiError::new(StatusCode::CONFLICT, format!("the lifecycle workflow of `{pipeline_id}` does not take changes: {error}")))
}

#[utoipa::path(put, path = "/api/v1/pipelines/{pipeline_id}", tag = "pipelines", params(("pipeline_id" = String, Path)), request_body = PipelineChanges,
    responses((status = 202, body = PipelineView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_pipeline(State(state): Shared, Path(pipeline_id): Path<String>, JsonBody(changes): JsonBody<PipelineChanges>) -> Result<(StatusCode, Json<PipelineView>), ApiError> {
    temporal_client(&state)?;
    let pipeline = state.control.update_pipeline(&pipeline_id, changes).await?;
    let update = PipelineSpecUpdate { spec: pipeline.spec.clone(), spec_version: pipeline.stamp.version };
    signal_pipeline(&state, &pipeline_id, async move |handle| handle.signal(PipelineLifecycleWorkflow::update, update, WorkflowSignalOptions::default()).await).await?;
    Ok((StatusCode::ACCEPTED, Json(pipeline_view(&state, pipeline).await?)))
}

#[utoipa::path(delete, path = "/api/v1/pipelines/{pipeline_id}", tag = "pipelines", params(("pipeline_id" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_pipeline(State(state): Shared, Path(pipeline_id): Path<String>) -> Result<StatusCode, ApiError> {
    state.control.pipeline(&pipeline_id).await?;
    signal_pipeline(&state, &pipeline_id, async move |handle| handle.signal(PipelineLifecycleWorkflow::delete, (), WorkflowSignalOptions::default()).await).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline_id}/retry", tag = "pipelines", params(("pipeline_id" = String, Path)),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry_pipeline(State(state): Shared, Path(pipeline_id): Path<String>) -> Result<StatusCode, ApiError> {
    let pipeline = state.control.pipeline(&pipeline_id).await?;
    let phase = live_status(&state, &pipeline).await?.phase;
    if !matches!(phase, PipelinePhase::Failed | PipelinePhase::Warning) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("pipeline `{pipeline_id}` is {phase:?}: only a failed pipeline (or one with a warning) is retried").to_lowercase()));
    }
    signal_pipeline(&state, &pipeline_id, async move |handle| handle.signal(PipelineLifecycleWorkflow::retry, (), WorkflowSignalOptions::default()).await).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The spec the console's wizard starts from.
#[utoipa::path(get, path = "/api/v1/pipelines/default-spec", tag = "pipelines", responses((status = 200, body = PipelineSpec)))]
pub async fn default_spec() -> Json<PipelineSpec> {
    Json(PipelineSpec::default())
}

// Plugins.

#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", responses((status = 200, body = [Plugin])))]
pub async fn list_plugins(State(state): Shared) -> Result<Json<Vec<Plugin>>, ApiError> {
    Ok(Json(state.control.list_plugins().await?))
}

#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", request_body = NewPlugin,
    responses((status = 201, body = Plugin), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_plugin(State(state): Shared, JsonBody(new): JsonBody<NewPlugin>) -> Result<(StatusCode, Json<Plugin>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.control.create_plugin(new).await?)))
}

#[utoipa::path(get, path = "/api/v1/plugins/{plugin_id}", tag = "plugins", params(("plugin_id" = String, Path)),
    responses((status = 200, body = Plugin), (status = 404, body = ErrorBody)))]
pub async fn get_plugin(State(state): Shared, Path(plugin_id): Path<String>) -> Result<Json<Plugin>, ApiError> {
    Ok(Json(state.control.plugin(&plugin_id).await?))
}

#[utoipa::path(put, path = "/api/v1/plugins/{plugin_id}", tag = "plugins", params(("plugin_id" = String, Path)), request_body = PluginChanges,
    responses((status = 200, body = Plugin), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_plugin(State(state): Shared, Path(plugin_id): Path<String>, JsonBody(changes): JsonBody<PluginChanges>) -> Result<Json<Plugin>, ApiError> {
    Ok(Json(state.control.update_plugin(&plugin_id, changes).await?))
}

#[utoipa::path(delete, path = "/api/v1/plugins/{plugin_id}", tag = "plugins", params(("plugin_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_plugin(State(state): Shared, Path(plugin_id): Path<String>) -> Result<StatusCode, ApiError> {
    state.control.delete_plugin(&plugin_id).await?;
    // Then its uploaded modules. The record is gone first, so no pipeline can choose the
    // plugin while they are deleted; a module left behind by a failure here is only space.
    let prefix = object_store::path::Path::from(clickstream_core::layout::plugin_module_prefix(&plugin_id));
    let modules: Vec<object_store::ObjectMeta> = futures::TryStreamExt::try_collect(state.storage.store.list(Some(&prefix))).await.unwrap_or_default();
    for module in modules {
        if let Err(error) = state.storage.store.delete(&module.location).await {
            tracing::warn!(%error, module = %module.location, "cannot delete a deleted plugin's module");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The largest plugin module an upload may send.
pub const MAX_PLUGIN_MODULE_BYTES: usize = 32 * 1024 * 1024;

/// Uploads a plugin's WebAssembly component. It is compiled and checked against the
/// plugin's world (`enricher` or `transformer`, docs/plugins.md) first: a module that does
/// not fit is refused with the reason and nothing changes. The module is stored under its
/// SHA-256, and pipelines using the plugin run it from their next ETL run on.
#[utoipa::path(put, path = "/api/v1/plugins/{plugin_id}/module", tag = "plugins", params(("plugin_id" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component (a wasm32-wasip2 build)"),
    responses((status = 200, body = Plugin), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413)))]
pub async fn upload_plugin_module(State(state): Shared, Path(plugin_id): Path<String>, module: axum::body::Bytes) -> Result<Json<Plugin>, ApiError> {
    let plugin = state.control.plugin(&plugin_id).await?;
    if plugin.built_in {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("`{plugin_id}` is a built-in plugin and cannot be changed")));
    }
    if module.is_empty() {
        return Err(ApiError::bad_request("the body is empty: send the component's bytes (Content-Type: application/wasm)"));
    }
    let world = match plugin.kind {
        PluginKind::Enrichment => PluginWorld::Enricher,
        PluginKind::Transformer => PluginWorld::Transformer,
    };
    let (runtime, bytes) = (state.plugins.clone(), module.clone());
    let loaded = tokio::task::spawn_blocking(move || runtime.load(&bytes, world))
        .await
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("checking the module failed: {error}")))?
        .map_err(|error| ApiError::bad_request(format!("the module is not a usable {} plugin: {error}", world.name())))?;
    let key = clickstream_core::layout::plugin_module_key(&plugin_id, &loaded.sha256);
    state
        .storage
        .store
        .put(&object_store::path::Path::from(key.as_str()), module.into())
        .await
        .map_err(|error| ApiError::unavailable(format!("cannot store the module (retry): {error}")))?;
    tracing::info!(plugin = %plugin_id, sha256 = %loaded.sha256, key, "plugin module uploaded");
    Ok(Json(state.control.set_plugin_module(&plugin_id, key, loaded.sha256.clone()).await?))
}

// Display names.

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/metadata/display-names", tag = "metadata", params(("app_id" = String, Path)),
    responses((status = 200, body = [DisplayName]), (status = 404, body = ErrorBody)))]
pub async fn list_display_names(State(state): Shared, Path(app_id): Path<String>) -> Result<Json<Vec<DisplayName>>, ApiError> {
    crate::api::known_app(&state, &app_id).await?;
    Ok(Json(state.control.display_names(&app_id).await?))
}

#[utoipa::path(put, path = "/api/v1/apps/{app_id}/metadata/display-names", tag = "metadata", params(("app_id" = String, Path)), request_body = [DisplayName],
    responses((status = 200, body = [DisplayName]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_display_names(State(state): Shared, Path(app_id): Path<String>, JsonBody(names): JsonBody<Vec<DisplayName>>) -> Result<Json<Vec<DisplayName>>, ApiError> {
    crate::api::known_app(&state, &app_id).await?;
    Ok(Json(state.control.put_display_names(&app_id, names).await?))
}

// Session.

/// What the web console needs to sign in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthSettings {
    pub enabled: bool,
    pub authority: String,
    pub client_id: String,
    pub scopes: String,
}

#[utoipa::path(get, path = "/api/v1/auth/config", tag = "session", security(()), responses((status = 200, body = AuthSettings)))]
pub async fn auth_config(State(state): Shared) -> Json<AuthSettings> {
    let oidc = &state.config.console.oidc;
    Json(AuthSettings { enabled: oidc.enabled, authority: oidc.issuer.clone(), client_id: oidc.client_id.clone(), scopes: oidc.scopes.clone() })
}

#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = Caller), (status = 401, body = ErrorBody)))]
pub async fn me(Extension(caller): Extension<Caller>) -> Json<Caller> {
    Json(caller)
}
