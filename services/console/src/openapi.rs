//! The OpenAPI document of `/api/v1`, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{control_api, reporting_api};

#[derive(OpenApi)]
#[openapi(
    info(title = "clickstream control plane", description = "Projects, apps, pipelines, plugins, metadata and reporting of clickstream. See docs/control-plane.md and docs/reporting.md."),
    paths(
        control_api::list_projects, control_api::create_project, control_api::get_project, control_api::update_project, control_api::delete_project,
        control_api::list_apps, control_api::create_app, control_api::get_app, control_api::update_app, control_api::delete_app,
        control_api::list_pipelines, control_api::create_pipeline, control_api::get_pipeline, control_api::update_pipeline, control_api::delete_pipeline,
        control_api::retry_pipeline, control_api::default_spec,
        control_api::list_plugins, control_api::create_plugin, control_api::get_plugin, control_api::update_plugin, control_api::delete_plugin, control_api::upload_plugin_module,
        control_api::list_display_names, control_api::put_display_names,
        control_api::auth_config, control_api::me,
        reporting_api::catalog, reporting_api::run_exploration, reporting_api::list_explorations, reporting_api::create_exploration, reporting_api::get_exploration,
        reporting_api::update_exploration, reporting_api::delete_exploration, reporting_api::export_exploration, reporting_api::dashboard,
    ),
    modifiers(&BearerToken),
    security(("bearer" = [])),
)]
pub struct ApiDocument;

/// Every route takes an OIDC bearer token (the console sends its ID token).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDocument::openapi())
}
