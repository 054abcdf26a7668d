//! `/api/v1/apps/{app}/…` of reporting (docs/reporting.md): the app's catalog, explorations
//! run or saved (and exported as CSV), and the dashboard pages. Queries are checked against
//! the app's catalog and built by the `reporting` crate; this module finds the app's time
//! zone and catalog, runs the SQL on the warehouse and maps errors to HTTP.

use std::{collections::BTreeSet, sync::Arc};

use axum::{
    Extension, Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use clickstream_activities::metadata::AppMetadata;
use clickstream_control::service::{ExplorationChanges, NewExploration};
use clickstream_core::{config::WarehouseKind, control_model::SavedExploration};
use clickstream_reporting::{
    AppScope, Catalog, Dialect, Exploration, InvalidQuery, ResultTable, Statement, build_exploration, check_exploration,
    dashboards::{Chart, DashboardPage, DashboardRequest, PanelSource, build_dashboard, check_dashboard},
    query::{Column, Condition, DateRange},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    ConsoleState,
    api::{ApiError, ErrorBody, known_app, query_warehouse, scanned_metadata},
    auth::Caller,
    control_api::JsonBody,
};

type Shared = State<Arc<ConsoleState>>;

impl From<InvalidQuery> for ApiError {
    fn from(invalid: InvalidQuery) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: invalid.to_string(), fields: Some(invalid.fields) }
    }
}

/// Which warehouse an app's reports read: its project's (`warehouse` of a configuration
/// project, the modeling engine of a pipeline).
fn dialect_of(state: &ConsoleState, app_id: &str) -> Dialect {
    match state.config.project_of_app(app_id).map(|project| project.warehouse) {
        Some(WarehouseKind::Redshift) => Dialect::Redshift,
        _ => Dialect::DuckDb,
    }
}

/// Runs an app's statements on its warehouse, in order: DuckDB on one blocking task,
/// Redshift through the Data API.
async fn run_statements(state: &ConsoleState, app_id: &str, dialect: Dialect, statements: Vec<Statement>) -> Result<Vec<ResultTable>, ApiError> {
    if dialect == Dialect::DuckDb {
        let query_app = app_id.to_string();
        return query_warehouse(state, move |warehouse| statements.iter().map(|statement| warehouse.run_report(&query_app, statement)).collect::<Result<Vec<_>, _>>()).await;
    }
    let redshift = state.redshift.as_ref().ok_or_else(|| ApiError::unavailable(format!("app `{app_id}` models on Redshift, and [warehouse.redshift] names no workgroup or cluster")))?;
    let mut tables = Vec::with_capacity(statements.len());
    for statement in statements {
        tables.push(redshift.run_report(&statement).await.map_err(|failure| ApiError::unavailable(format!("Redshift query failed: {failure}")))?.table);
    }
    Ok(tables)
}

/// The app's time zone (its record's; UTC for apps of the configuration file).
/// One read of the store: a stored app has its own time zone; an app of the configuration
/// file reports in UTC; any other is unknown (404, as `known_app` answers).
async fn app_scope(state: &ConsoleState, app_id: &str) -> Result<AppScope, ApiError> {
    let timezone = match state.control.app(app_id).await {
        Ok(app) => app.timezone,
        Err(clickstream_control::ControlError::NotFound(_)) if state.config.project_of_app(app_id).is_some() => "UTC".to_string(),
        Err(clickstream_control::ControlError::NotFound(_)) => return Err(ApiError::new(StatusCode::NOT_FOUND, format!("app `{app_id}` is not registered"))),
        Err(error) => return Err(error.into()),
    };
    AppScope::new(app_id, &timezone).map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("app `{app_id}`: {error}")))
}

/// The names an app's queries may use: the metadata scan's, plus the event names in the
/// tables now (cheap, and new events are usable before the next scan). Before the first scan
/// the parameter and attribute names are read from the tables too.
///
/// Kept for [`CATALOG_FRESHNESS`] per app (not when empty: an app before its first load is
/// asked again), so that a dashboard page or a run does not scan the event names each time.
async fn app_catalog(state: &ConsoleState, app_id: &str) -> Result<(Catalog, AppMetadata), ApiError> {
    if let Some((read_at, catalog, metadata)) = state.report_catalogs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(app_id)
        && read_at.elapsed() < CATALOG_FRESHNESS
    {
        return Ok((catalog.clone(), metadata.clone()));
    }
    let (catalog, metadata) = read_app_catalog(state, app_id).await?;
    if !catalog.events.is_empty() {
        state.report_catalogs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(app_id.to_string(), (std::time::Instant::now(), catalog.clone(), metadata.clone()));
    }
    Ok((catalog, metadata))
}

/// How long an app's catalog is reused: a new event name is usable after at most this long.
const CATALOG_FRESHNESS: std::time::Duration = std::time::Duration::from_secs(10);

async fn read_app_catalog(state: &ConsoleState, app_id: &str) -> Result<(Catalog, AppMetadata), ApiError> {
    let metadata = scanned_metadata(state, app_id).await?;
    let scanned = metadata.scanned_at_ms > 0;
    let query_app = app_id.to_string();
    // Redshift apps: the metadata scan's names only (it runs on Redshift too).
    let mut catalog = match dialect_of(state, app_id) {
        Dialect::DuckDb => query_warehouse(state, move |warehouse| warehouse.analysis_catalog(&query_app, !scanned)).await?,
        Dialect::Redshift => Catalog::default(),
    };
    catalog.events.extend(metadata.events.iter().map(|event| event.name.clone()));
    catalog.event_parameters.extend(metadata.event_parameters.iter().map(|parameter| parameter.name.clone()));
    catalog.user_attributes.extend(metadata.user_attributes.iter().map(|attribute| attribute.name.clone()));
    Ok((catalog, metadata))
}

/// What a query of this app may name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogView {
    pub events: BTreeSet<String>,
    pub event_parameters: BTreeSet<String>,
    pub user_attributes: BTreeSet<String>,
    /// The `event_v2` columns a filter or a grouping may use.
    pub columns: Vec<&'static str>,
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/catalog", tag = "reporting", params(("app_id" = String, Path)),
    responses((status = 200, body = CatalogView), (status = 404, body = ErrorBody)))]
pub async fn catalog(State(state): Shared, Path(app_id): Path<String>) -> Result<Json<CatalogView>, ApiError> {
    let (catalog, _) = app_catalog(&state, &app_id).await?;
    Ok(Json(CatalogView {
        events: catalog.events,
        event_parameters: catalog.event_parameters,
        user_attributes: catalog.user_attributes,
        columns: Column::ALL.iter().map(|column| column.name()).collect(),
    }))
}

/// Checks an exploration against the app's catalog, builds and runs it.
async fn run_checked(state: &ConsoleState, app_id: &str, exploration: &Exploration) -> Result<ResultTable, ApiError> {
    let (catalog, _) = app_catalog(state, app_id).await?;
    check_exploration(exploration, &catalog)?;
    run_exploration_checked_already(state, app_id, exploration).await
}

/// Builds and runs an exploration that has passed `check_exploration`.
async fn run_exploration_checked_already(state: &ConsoleState, app_id: &str, exploration: &Exploration) -> Result<ResultTable, ApiError> {
    let scope = app_scope(state, app_id).await?;
    let dialect = dialect_of(state, app_id);
    let statement = build_exploration(exploration, &scope, dialect);
    let mut tables = run_statements(state, app_id, dialect, vec![statement]).await?;
    Ok(tables.pop().unwrap_or_default())
}

/// `?format=csv` asks for CSV instead of JSON.
#[derive(Debug, Deserialize)]
pub struct Format {
    pub format: Option<String>,
}

fn csv_response(table: &ResultTable, file_stem: &str) -> Result<Response, ApiError> {
    let text = table.to_csv().map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("CSV export failed: {error}")))?;
    let safe_stem: String = file_stem.chars().map(|character| if character.is_ascii_alphanumeric() || "-_".contains(character) { character } else { '_' }).collect();
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe_stem}.csv\""))],
        text,
    )
        .into_response())
}

fn table_or_csv(table: ResultTable, format: &Format, file_stem: &str) -> Result<Response, ApiError> {
    match format.format.as_deref() {
        None | Some("json") => Ok(Json(table).into_response()),
        Some("csv") => csv_response(&table, file_stem),
        Some(other) => Err(ApiError::bad_request(format!("unknown format `{other}`: use json or csv"))),
    }
}

#[utoipa::path(post, path = "/api/v1/apps/{app_id}/explorations/run", tag = "reporting", params(("app_id" = String, Path), ("format" = Option<String>, Query, description = "json (default) or csv")),
    request_body = Exploration, responses((status = 200, body = ResultTable), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn run_exploration(State(state): Shared, Path(app_id): Path<String>, Query(format): Query<Format>, JsonBody(exploration): JsonBody<Exploration>) -> Result<Response, ApiError> {
    let table = run_checked(&state, &app_id, &exploration).await?;
    table_or_csv(table, &format, &format!("{app_id}-{}", exploration.kind()))
}

/// A saved query must be an exploration this app can run; it is returned parsed.
async fn check_saved_query(state: &ConsoleState, app_id: &str, query: &serde_json::Value) -> Result<Exploration, ApiError> {
    let exploration: Exploration = serde_json::from_value(query.clone()).map_err(|error| ApiError {
        status: StatusCode::BAD_REQUEST,
        message: format!("`query` is not an exploration: {error}"),
        fields: Some([("query".to_string(), error.to_string())].into()),
    })?;
    let (catalog, _) = app_catalog(state, app_id).await?;
    check_exploration(&exploration, &catalog).map_err(|invalid| {
        let fields = invalid.fields.into_iter().map(|(path, reason)| (format!("query.{path}"), reason)).collect();
        ApiError { status: StatusCode::BAD_REQUEST, message: "the query is invalid".into(), fields: Some(fields) }
    })?;
    Ok(exploration)
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/explorations", tag = "reporting", params(("app_id" = String, Path)),
    responses((status = 200, body = [SavedExploration]), (status = 404, body = ErrorBody)))]
pub async fn list_explorations(State(state): Shared, Path(app_id): Path<String>) -> Result<Json<Vec<SavedExploration>>, ApiError> {
    known_app(&state, &app_id).await?;
    Ok(Json(state.control.list_explorations(&app_id).await?))
}

#[utoipa::path(post, path = "/api/v1/apps/{app_id}/explorations", tag = "reporting", params(("app_id" = String, Path)), request_body = NewExploration,
    responses((status = 201, body = SavedExploration), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_exploration(State(state): Shared, Path(app_id): Path<String>, Extension(caller): Extension<Caller>, JsonBody(new): JsonBody<NewExploration>) -> Result<(StatusCode, Json<SavedExploration>), ApiError> {
    known_app(&state, &app_id).await?;
    check_saved_query(&state, &app_id, &new.query).await?;
    Ok((StatusCode::CREATED, Json(state.control.create_exploration(&app_id, new, &caller.subject).await?)))
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/explorations/{exploration_id}", tag = "reporting", params(("app_id" = String, Path), ("exploration_id" = String, Path)),
    responses((status = 200, body = SavedExploration), (status = 404, body = ErrorBody)))]
pub async fn get_exploration(State(state): Shared, Path((app_id, exploration_id)): Path<(String, String)>) -> Result<Json<SavedExploration>, ApiError> {
    Ok(Json(state.control.exploration(&app_id, &exploration_id).await?))
}

#[utoipa::path(put, path = "/api/v1/apps/{app_id}/explorations/{exploration_id}", tag = "reporting", params(("app_id" = String, Path), ("exploration_id" = String, Path)),
    request_body = ExplorationChanges, responses((status = 200, body = SavedExploration), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_exploration(State(state): Shared, Path((app_id, exploration_id)): Path<(String, String)>, JsonBody(changes): JsonBody<ExplorationChanges>) -> Result<Json<SavedExploration>, ApiError> {
    check_saved_query(&state, &app_id, &changes.query).await?;
    Ok(Json(state.control.update_exploration(&app_id, &exploration_id, changes).await?))
}

#[utoipa::path(delete, path = "/api/v1/apps/{app_id}/explorations/{exploration_id}", tag = "reporting", params(("app_id" = String, Path), ("exploration_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_exploration(State(state): Shared, Path((app_id, exploration_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    state.control.delete_exploration(&app_id, &exploration_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/explorations/{exploration_id}/csv", tag = "reporting", params(("app_id" = String, Path), ("exploration_id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export_exploration(State(state): Shared, Path((app_id, exploration_id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let saved = state.control.exploration(&app_id, &exploration_id).await?;
    let exploration = check_saved_query(&state, &app_id, &saved.query).await?;
    let table = run_exploration_checked_already(&state, &app_id, &exploration).await?;
    csv_response(&table, &saved.name)
}

/// `from` / `to` (`YYYY-MM-DD`, default: the last 7 days in the app's time zone) and
/// `filters` (a JSON array of conditions).
#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub filters: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PanelView {
    pub id: &'static str,
    pub title: &'static str,
    pub chart: Chart,
    pub table: ResultTable,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardView {
    pub page: DashboardPage,
    #[schema(value_type = String, format = Date)]
    pub from: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: chrono::NaiveDate,
    pub timezone: String,
    pub panels: Vec<PanelView>,
}

fn parse_day(name: &str, text: &str) -> Result<chrono::NaiveDate, ApiError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ApiError { status: StatusCode::BAD_REQUEST, message: format!("`{name}` must be a date YYYY-MM-DD"), fields: Some([(name.to_string(), "must be a date YYYY-MM-DD".to_string())].into()) })
}

fn dashboard_request(scope: &AppScope, query: &DashboardQuery) -> Result<DashboardRequest, ApiError> {
    let now = chrono::Utc::now();
    let today = now.with_timezone(&scope.zone).date_naive();
    let to = query.to.as_deref().map(|text| parse_day("to", text)).transpose()?.unwrap_or(today);
    let from = query.from.as_deref().map(|text| parse_day("from", text)).transpose()?.unwrap_or(to - chrono::Duration::days(6));
    let filters: Vec<Condition> = match query.filters.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|error| ApiError { status: StatusCode::BAD_REQUEST, message: format!("`filters` is not a list of conditions: {error}"), fields: Some([("filters".to_string(), error.to_string())].into()) })?,
    };
    Ok(DashboardRequest { range: DateRange { from, to }, filters, now_millis: now.timestamp_millis(), use_aggregates: true })
}

/// The metadata scan's top values as a panel's table.
fn scanned_panel(source: &PanelSource, metadata: &AppMetadata) -> ResultTable {
    let columns = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
    match source {
        PanelSource::ScannedUserAttributes => ResultTable {
            columns: columns(&["attribute", "value", "users"]),
            rows: metadata.user_attributes.iter().flat_map(|attribute| attribute.top_values.iter().map(|top| vec![attribute.name.clone().into(), top.value.clone().into(), top.count.into()])).collect(),
        },
        PanelSource::ScannedEventParameters => ResultTable {
            columns: columns(&["event_name", "parameter", "value", "events"]),
            rows: metadata
                .event_parameters
                .iter()
                .flat_map(|parameter| parameter.top_values.iter().map(|top| vec![parameter.event_name.clone().into(), parameter.name.clone().into(), top.value.clone().into(), top.count.into()]))
                .collect(),
        },
        PanelSource::Sql(_) | PanelSource::Part { .. } => ResultTable::default(),
    }
}

#[utoipa::path(get, path = "/api/v1/apps/{app_id}/dashboards/{page}", tag = "reporting",
    params(("app_id" = String, Path), ("page" = String, Path, description = "overview, acquisition, engagement, retention, device, details or realtime"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("filters" = Option<String>, Query, description = "a JSON array of conditions")),
    responses((status = 200, body = DashboardView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn dashboard(State(state): Shared, Path((app_id, page_name)): Path<(String, String)>, Query(query): Query<DashboardQuery>) -> Result<Json<DashboardView>, ApiError> {
    let page = DashboardPage::from_name(&page_name).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no dashboard page `{page_name}`: use one of {}", DashboardPage::ALL.map(DashboardPage::name).join(", "))))?;
    let scope = app_scope(&state, &app_id).await?;
    let request = dashboard_request(&scope, &query)?;
    let (catalog, metadata) = app_catalog(&state, &app_id).await?;
    check_dashboard(&request, &catalog)?;
    let dialect = dialect_of(&state, &app_id);
    let panel_queries = build_dashboard(page, &request, &scope, dialect);
    // Each distinct statement runs once (the parts of a shared one have the same).
    let mut statements: Vec<Statement> = Vec::new();
    let statement_of_panel: Vec<Option<usize>> = panel_queries
        .iter()
        .map(|panel| {
            let statement = panel.source.statement()?;
            Some(statements.iter().position(|known| known == statement).unwrap_or_else(|| {
                statements.push(statement.clone());
                statements.len() - 1
            }))
        })
        .collect();
    let answers = run_statements(&state, &app_id, dialect, statements).await?;
    let panels = panel_queries
        .into_iter()
        .zip(statement_of_panel)
        .map(|(panel, statement)| {
            let table = match statement {
                Some(index) => panel.source.panel_table(answers[index].clone()),
                None => scanned_panel(&panel.source, &metadata),
            };
            PanelView { id: panel.id, title: panel.title, chart: panel.chart, table }
        })
        .collect();
    Ok(Json(DashboardView { page, from: request.range.from, to: request.range.to, timezone: scope.zone.name().to_string(), panels }))
}
