//! `/api/v1`: JSON over the warehouse.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::DateTime;
use clickstream_activities::{
    DuckDbWarehouse,
    metadata::{AppMetadata, AttributeMetadata, EventMetadata, ParameterMetadata},
    warehouse::{DailyEventCount, WarehouseError},
};
use serde::Deserialize;

use crate::ConsoleState;

/// An API error: the status says whether the caller can fix it (4xx) or may retry (5xx).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Invalid fields by JSON path (400 only).
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), fields: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<clickstream_control::ControlError> for ApiError {
    fn from(error: clickstream_control::ControlError) -> Self {
        use clickstream_control::{ControlError, StoreError};
        match error {
            ControlError::Invalid(fields) => ApiError { status: StatusCode::BAD_REQUEST, message: ControlError::Invalid(fields.clone()).to_string(), fields: Some(fields) },
            ControlError::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, message),
            ControlError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            ControlError::Store(error @ StoreError::Corrupt { .. }) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
            ControlError::Store(error) => ApiError::unavailable(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message, fields: self.fields })).into_response()
    }
}

/// `from` and `to` as RFC 3339 instants; both optional (all time).
#[derive(Debug, Deserialize)]
pub struct TimeRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl TimeRange {
    /// The range in epoch milliseconds, `[from, to)`.
    pub fn to_millis(&self) -> Result<(i64, i64), ApiError> {
        let parse = |name: &str, value: &Option<String>, default: i64| -> Result<i64, ApiError> {
            match value {
                None => Ok(default),
                Some(text) => DateTime::parse_from_rfc3339(text)
                    .map(|instant| instant.timestamp_millis())
                    .map_err(|error| ApiError::bad_request(format!("`{name}` must be an RFC 3339 time such as 2026-01-31T00:00:00Z: {error}"))),
            }
        };
        let from = parse("from", &self.from, i64::MIN)?;
        let to = parse("to", &self.to, i64::MAX)?;
        if from > to {
            return Err(ApiError::bad_request("`from` is after `to`"));
        }
        Ok((from, to))
    }
}

/// The project of an app of the configuration file or of the control store; 404 otherwise.
pub(crate) async fn known_app(state: &ConsoleState, app_id: &str) -> Result<String, ApiError> {
    if let Some(project) = state.config.project_of_app(app_id) {
        return Ok(project.id);
    }
    match state.control.app(app_id).await {
        Ok(app) => Ok(app.project_id),
        Err(clickstream_control::ControlError::NotFound(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("app `{app_id}` is not registered"))),
        Err(error) => Err(error.into()),
    }
}

/// Runs a warehouse query off the async threads.
pub(crate) async fn query_warehouse<T: Send + 'static>(
    state: &ConsoleState,
    query: impl FnOnce(&DuckDbWarehouse) -> Result<T, WarehouseError> + Send + 'static,
) -> Result<T, ApiError> {
    let warehouse = state.warehouse.clone();
    tokio::task::spawn_blocking(move || query(&warehouse))
        .await
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?
        .map_err(|error| ApiError::unavailable(format!("warehouse query failed: {error}")))
}

pub async fn count_events(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>, Query(range): Query<TimeRange>) -> Result<Json<serde_json::Value>, ApiError> {
    known_app(&state, &app_id).await?;
    let (from, to) = range.to_millis()?;
    let query_app = app_id.clone();
    let count = query_warehouse(&state, move |warehouse| warehouse.count_distinct_events(&query_app, from, to)).await?;
    Ok(Json(serde_json::json!({ "app_id": app_id, "count": count })))
}

pub async fn daily_events(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>, Query(range): Query<TimeRange>) -> Result<Json<Vec<DailyEventCount>>, ApiError> {
    known_app(&state, &app_id).await?;
    let (from, to) = range.to_millis()?;
    Ok(Json(query_warehouse(&state, move |warehouse| warehouse.events_per_day(&app_id, from, to)).await?))
}

pub async fn loads(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    known_app(&state, &app_id).await?;
    let query_app = app_id.clone();
    let loaded_files = query_warehouse(&state, move |warehouse| warehouse.loaded_file_count(&query_app)).await?;
    Ok(Json(serde_json::json!({ "app_id": app_id, "loaded_files": loaded_files })))
}

/// Any other `/api/` path: a JSON 404 rather than the web console's page.
pub async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no API route {}", uri.path()))
}

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What the last metadata scan found for an app; empty lists (and no scan time) before the
/// first scan.
pub(crate) async fn scanned_metadata(state: &ConsoleState, app_id: &str) -> Result<AppMetadata, ApiError> {
    let project_id = known_app(state, app_id).await?;
    let found = state
        .metadata
        .app(&project_id, app_id)
        .await
        .map_err(|error| ApiError::unavailable(format!("metadata store read failed: {error}")))?;
    Ok(found.unwrap_or_else(|| AppMetadata { app_id: app_id.to_string(), ..AppMetadata::default() }))
}

/// Everything the last scan found: events, event parameters, user attributes.
pub async fn app_metadata(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>) -> Result<Json<AppMetadata>, ApiError> {
    Ok(Json(scanned_metadata(&state, &app_id).await?))
}

/// Event names with their totals, platforms, SDKs and daily counts.
pub async fn metadata_events(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>) -> Result<Json<Vec<EventMetadata>>, ApiError> {
    Ok(Json(scanned_metadata(&state, &app_id).await?.events))
}

/// `?event=<name>` keeps one event's parameters.
#[derive(Debug, Deserialize)]
pub struct ParameterFilter {
    pub event: Option<String>,
}

/// Event parameters with their value types and most frequent values.
pub async fn metadata_parameters(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>, Query(filter): Query<ParameterFilter>) -> Result<Json<Vec<ParameterMetadata>>, ApiError> {
    let parameters = scanned_metadata(&state, &app_id).await?.event_parameters;
    Ok(Json(parameters.into_iter().filter(|parameter| filter.event.as_ref().is_none_or(|event| &parameter.event_name == event)).collect()))
}

/// User attributes with their value types and most frequent values.
pub async fn metadata_user_attributes(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>) -> Result<Json<Vec<AttributeMetadata>>, ApiError> {
    Ok(Json(scanned_metadata(&state, &app_id).await?.user_attributes))
}
