//! The console: the control plane's REST API, the web console (a single-page app built from
//! `services/console/web`) and the queries over the warehouse.
//!
//! The console process owns the DuckDB warehouse file (DuckDB allows one writer), so its
//! queries and the warehouse loads of the worker go through the same [`DuckDbWarehouse`].

pub mod api;
pub mod auth;
pub mod control_api;
pub mod openapi;
pub mod reporting_api;

use std::sync::{Arc, OnceLock};

use axum::{
    Router,
    routing::{get, post},
};
use clickstream_activities::DuckDbWarehouse;
use clickstream_control::ControlPlane;
use clickstream_core::Config;
use tower_http::services::{ServeDir, ServeFile};

pub struct ConsoleState {
    pub config: Arc<Config>,
    pub warehouse: Arc<DuckDbWarehouse>,
    /// Where the metadata scan keeps event names, parameters and user attributes.
    pub metadata: Arc<dyn clickstream_activities::metadata::MetadataStore>,
    /// Projects, apps, pipelines, plugins and display names.
    pub control: ControlPlane,
    /// Set once the process has connected to Temporal (pipelines need it; the rest does not).
    pub temporal: OnceLock<temporalio_client::Client>,
    /// Present when `console.oidc.enabled`.
    pub token_validator: Option<clickstream_auth::TokenValidator>,
    /// Reports of apps whose project models on Redshift run here (present when
    /// `[warehouse.redshift]` names a workgroup or a cluster).
    pub redshift: Option<Arc<clickstream_activities::redshift::RedshiftWarehouse>>,
    /// Each app's reporting catalog and metadata with the time they were read (see
    /// `reporting_api::app_catalog`).
    pub report_catalogs: ReportCatalogs,
    /// The object store, where uploaded plugin modules are kept.
    pub storage: clickstream_core::storage::Storage,
    /// Checks uploaded plugin modules (compiles them and their interface) before storing them.
    pub plugins: Arc<clickstream_plugins::PluginRuntime>,
}

pub type ReportCatalogs = std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, clickstream_reporting::Catalog, clickstream_activities::metadata::AppMetadata)>>;

pub fn router(state: Arc<ConsoleState>) -> Router {
    use control_api as control;
    use reporting_api as reporting;
    let api = Router::new()
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/auth/config", get(control::auth_config))
        .route("/api/v1/me", get(control::me))
        .route("/api/v1/projects", get(control::list_projects).post(control::create_project))
        .route("/api/v1/projects/{project_id}", get(control::get_project).put(control::update_project).delete(control::delete_project))
        .route("/api/v1/projects/{project_id}/apps", get(control::list_apps).post(control::create_app))
        .route("/api/v1/apps/{app_id}", get(control::get_app).put(control::update_app).delete(control::delete_app))
        .route("/api/v1/pipelines", get(control::list_pipelines).post(control::create_pipeline))
        .route("/api/v1/pipelines/default-spec", get(control::default_spec))
        .route("/api/v1/pipelines/{pipeline_id}", get(control::get_pipeline).put(control::update_pipeline).delete(control::delete_pipeline))
        .route("/api/v1/pipelines/{pipeline_id}/retry", post(control::retry_pipeline))
        .route("/api/v1/plugins", get(control::list_plugins).post(control::create_plugin))
        .route("/api/v1/plugins/{plugin_id}", get(control::get_plugin).put(control::update_plugin).delete(control::delete_plugin))
        .route("/api/v1/plugins/{plugin_id}/module", axum::routing::put(control::upload_plugin_module).layer(axum::extract::DefaultBodyLimit::max(control::MAX_PLUGIN_MODULE_BYTES)))
        .route("/api/v1/apps/{app_id}/events/count", get(api::count_events))
        .route("/api/v1/apps/{app_id}/events/daily", get(api::daily_events))
        .route("/api/v1/apps/{app_id}/loads", get(api::loads))
        .route("/api/v1/apps/{app_id}/metadata", get(api::app_metadata))
        .route("/api/v1/apps/{app_id}/metadata/events", get(api::metadata_events))
        .route("/api/v1/apps/{app_id}/metadata/parameters", get(api::metadata_parameters))
        .route("/api/v1/apps/{app_id}/metadata/user-attributes", get(api::metadata_user_attributes))
        .route("/api/v1/apps/{app_id}/metadata/display-names", get(control::list_display_names).put(control::put_display_names))
        .route("/api/v1/apps/{app_id}/catalog", get(reporting::catalog))
        .route("/api/v1/apps/{app_id}/explorations/run", post(reporting::run_exploration))
        .route("/api/v1/apps/{app_id}/explorations", get(reporting::list_explorations).post(reporting::create_exploration))
        .route("/api/v1/apps/{app_id}/explorations/{exploration_id}", get(reporting::get_exploration).put(reporting::update_exploration).delete(reporting::delete_exploration))
        .route("/api/v1/apps/{app_id}/explorations/{exploration_id}/csv", get(reporting::export_exploration))
        .route("/api/v1/apps/{app_id}/dashboards/{page}", get(reporting::dashboard))
        .route("/api/{*rest}", get(api::unknown_route).post(api::unknown_route).put(api::unknown_route).delete(api::unknown_route));
    // The web console: its files, and index.html for every other path (the app routes itself).
    let web = &state.config.console.web_dir;
    let web_console = ServeDir::new(web).fallback(ServeFile::new(web.join("index.html")));
    api.route("/health", get(api::health))
        .fallback_service(web_console)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(axum::middleware::map_response(close_after_refused_body))
        .with_state(state)
}

/// A body refused for its size (413, e.g. a plugin module over the limit) was not read to its
/// end, so the connection cannot carry another request: the answer says it closes, or a
/// keep-alive client sends its next request on it and gets a broken answer.
async fn close_after_refused_body(mut response: axum::response::Response) -> axum::response::Response {
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}
