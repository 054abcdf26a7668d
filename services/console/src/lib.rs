//! The console: REST API and web pages over the warehouse.
//!
//! The console process owns the DuckDB warehouse file (DuckDB allows one writer), so its
//! queries and the warehouse loads of the worker go through the same [`DuckDbWarehouse`].

pub mod api;
pub mod pages;

use std::sync::Arc;

use axum::{Router, routing::get};
use clickstream_activities::DuckDbWarehouse;
use clickstream_core::Config;

pub struct ConsoleState {
    pub config: Arc<Config>,
    pub warehouse: Arc<DuckDbWarehouse>,
    /// Where the metadata scan keeps event names, parameters and user attributes.
    pub metadata: Arc<dyn clickstream_activities::metadata::MetadataStore>,
}

pub fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/apps/{app_id}", get(pages::app_page))
        .route("/health", get(api::health))
        .route("/api/v1/apps/{app_id}/events/count", get(api::count_events))
        .route("/api/v1/apps/{app_id}/events/daily", get(api::daily_events))
        .route("/api/v1/apps/{app_id}/loads", get(api::loads))
        .route("/api/v1/apps/{app_id}/reports/daily-events", get(api::daily_event_report))
        .route("/api/v1/apps/{app_id}/metadata", get(api::app_metadata))
        .route("/api/v1/apps/{app_id}/metadata/events", get(api::metadata_events))
        .route("/api/v1/apps/{app_id}/metadata/parameters", get(api::metadata_parameters))
        .route("/api/v1/apps/{app_id}/metadata/user-attributes", get(api::metadata_user_attributes))
        .with_state(state)
}
