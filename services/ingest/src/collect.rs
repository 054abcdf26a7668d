//! HTTP routes of the collector: `POST <path>` (CAoA wire protocol), `GET /ping`, `GET /health`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, OriginalUri, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{SecondsFormat, Utc};
use clickstream_core::{Config, raw_record::RawRecord, wire};
use object_store::ObjectStore;
use tokio::sync::{mpsc, oneshot};

use crate::batcher::{BatcherSettings, PendingRecord, SinkError, run_batcher};

/// The running collector: its router state and the batcher task to await on shutdown.
pub struct IngestService {
    pub state: Arc<IngestState>,
    pub batcher: tokio::task::JoinHandle<()>,
}

pub struct IngestState {
    config: Arc<Config>,
    records: mpsc::Sender<PendingRecord>,
}

impl IngestService {
    /// Starts the batcher over `store`. Dropping every clone of the state (the router) stops it
    /// after a final flush; await `batcher` to know the flush is done.
    pub fn start(config: Arc<Config>, store: Arc<dyn ObjectStore>) -> IngestService {
        let settings = BatcherSettings {
            max_delay: Duration::from_millis(config.ingest.batch_max_delay_ms),
            max_bytes: config.ingest.batch_max_bytes,
            write_attempts: 3,
        };
        let (records, receiver) = mpsc::channel(10_000);
        let batcher = tokio::spawn(run_batcher(store, settings, receiver));
        IngestService { state: Arc::new(IngestState { config, records }), batcher }
    }
}

pub fn router(state: Arc<IngestState>) -> Router {
    let max_body_bytes = state.config.ingest.max_body_bytes;
    Router::new()
        .route(&state.config.ingest.path, post(collect))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/ping", get(ping))
        .route("/health", get(health))
        .fallback(unknown_path)
        .with_state(state)
}

/// A rejected request: status, a machine-readable reason (also the metric label) and a message.
#[derive(Debug)]
pub struct Rejection {
    status: StatusCode,
    reason: &'static str,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { status, reason, message: message.into() }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        metrics::counter!("clickstream_ingest_requests_total", "status" => self.status.as_u16().to_string(), "reason" => self.reason).increment(1);
        tracing::debug!(status = self.status.as_u16(), reason = self.reason, message = %self.message, "rejected request");
        (self.status, Json(serde_json::json!({ "error": self.reason, "message": self.message }))).into_response()
    }
}

async fn collect(
    State(state): State<Arc<IngestState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<wire::CollectQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, Rejection> {
    let Query(query) = query.map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "bad_query", error.body_text()))?;
    let body = body.map_err(|error| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("body exceeds {} bytes", state.config.ingest.max_body_bytes))
        } else {
            Rejection::new(error.status(), "unreadable_body", error.body_text())
        }
    })?;
    let app_id = query.app_id.as_deref().filter(|app_id| !app_id.is_empty()).ok_or_else(|| Rejection::new(StatusCode::BAD_REQUEST, "missing_app_id", "query parameter appId is required"))?;
    let project = state
        .config
        .project_of_app(app_id)
        .ok_or_else(|| Rejection::new(StatusCode::FORBIDDEN, "unknown_app_id", format!("appId `{app_id}` is not registered")))?;

    // Decode now so that a malformed body gets its 400 here rather than a quarantine later.
    let compressed = query.compression.as_deref() == Some("gzip");
    let json = wire::decode_body(&body, compressed, state.config.ingest.max_body_bytes * 50)
        .map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "undecodable_body", error.to_string()))?;
    let events = wire::parse_events(&json).map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "invalid_events", error.to_string()))?;
    let data = String::from_utf8(body.to_vec()).map_err(|_| Rejection::new(StatusCode::BAD_REQUEST, "undecodable_body", "body is not UTF-8 text"))?;

    let now = Utc::now();
    let now_text = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let record = RawRecord {
        date: Some(now_text.clone()),
        uri: Some(uri.to_string()),
        ua: headers.get(axum::http::header::USER_AGENT).and_then(|value| value.to_str().ok()).map(str::to_string),
        ip: Some(client_ip(&headers, peer)),
        client_timestamp: query.upload_timestamp.as_deref().and_then(|value| value.parse().ok()),
        rid: Some(uuid::Uuid::new_v4().simple().to_string()),
        method: Some("POST".into()),
        data: Some(data),
        ingest_time: Some(now.timestamp_millis()),
        server_ingest_time: Some(now.timestamp_millis()),
        app_id: Some(app_id.to_string()),
        platform: query.platform.clone(),
        compression: query.compression.clone(),
        path: Some(uri.path().to_string()),
        source_type: Some("http".into()),
        timestamp: Some(now_text),
    };
    let ndjson_line = serde_json::to_vec(&record).expect("raw records always serialize");

    let (acknowledge, outcome) = oneshot::channel();
    let pending = PendingRecord { project_id: project.id.clone(), ndjson_line, acknowledge };
    let unavailable = |error: SinkError| Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "sink_unavailable", error.to_string());
    state.records.send(pending).await.map_err(|_| unavailable(SinkError::ShuttingDown))?;
    outcome.await.map_err(|_| unavailable(SinkError::ShuttingDown))?.map_err(unavailable)?;

    metrics::counter!("clickstream_ingest_requests_total", "status" => "200", "reason" => "accepted").increment(1);
    metrics::counter!("clickstream_ingest_events_total").increment(events.len() as u64);
    metrics::counter!("clickstream_ingest_bytes_total").increment(body.len() as u64);
    Ok(StatusCode::OK)
}

/// The first element of `X-Forwarded-For` (set by the load balancer), else the socket peer.
fn client_ip(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|first| !first.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| peer.ip().to_string())
}

async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "timestamp": Utc::now().timestamp_millis() }))
}

async fn health(State(state): State<Arc<IngestState>>) -> Response {
    if state.records.is_closed() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "batcher stopped" }))).into_response();
    }
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn unknown_path(OriginalUri(uri): OriginalUri) -> Rejection {
    Rejection::new(StatusCode::FORBIDDEN, "unknown_path", format!("no route for {}", uri.path()))
}
