//! HTTP routes of the collector: `POST <path>` (CAoA wire protocol), `GET /ping`, `GET /health`.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, OriginalUri, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{SecondsFormat, Utc};
use clickstream_core::{Config, config::SinkKind, raw_record::RawRecord, wire};
use object_store::ObjectStore;

use crate::{
    apps::AppRegistry,
    cors,
    sink::{Sinks, kafka::KafkaSink, kinesis::KinesisSink, node_id, object_store::ObjectStoreSink, run_shipper},
    spool::{Spool, SpoolError, SpoolSettings},
};

/// The running collector: its router state, the spool writer and the shipper to await on
/// shutdown (dropping the router lets the writer seal the last segment and the shipper end).
pub struct IngestService {
    pub state: Arc<IngestState>,
    pub spool_writer: std::thread::JoinHandle<()>,
    pub shipper: tokio::task::JoinHandle<()>,
}

pub struct IngestState {
    config: Arc<Config>,
    pub apps: Arc<AppRegistry>,
    spool: Spool,
    /// Present when `ingest.oidc.enabled`.
    token_validator: Option<clickstream_auth::TokenValidator>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestStartError {
    #[error("cannot open the spool {path}: {source}")]
    Spool { path: String, source: std::io::Error },
    #[error(transparent)]
    Kafka(#[from] crate::sink::kafka::KafkaSetupError),
    #[error(transparent)]
    Kinesis(#[from] crate::sink::kinesis::KinesisSetupError),
}

impl IngestService {
    /// Opens the spool (recovering what a previous run left, which is shipped first), sets up
    /// the sinks the projects use (creating their Kafka topics), and starts shipping.
    pub async fn start(config: Arc<Config>, store: Arc<dyn ObjectStore>) -> Result<IngestService, IngestStartError> {
        let ingest = &config.ingest;
        let spool_error = |source| IngestStartError::Spool { path: ingest.spool_dir.display().to_string(), source };
        let kafka_topics: Vec<String> =
            config.projects.iter().filter(|project| project.sink == SinkKind::Kafka).map(|project| project.kafka_topic().to_string()).collect();
        let kafka = if kafka_topics.is_empty() {
            None
        } else {
            let brokers = crate::sink::kafka::bootstrap_brokers(&config.kafka).await?;
            KafkaSink::ensure_topics(&brokers, &kafka_topics, &crate::sink::kafka::NewTopicSettings::of(&config.kafka)).await?;
            Some(KafkaSink::new(&brokers)?)
        };
        let kinesis_streams: Vec<String> =
            config.projects.iter().filter(|project| project.sink == SinkKind::Kinesis).map(|project| project.kinesis_stream().to_string()).collect();
        let kinesis = if kinesis_streams.is_empty() {
            None
        } else {
            let client = crate::sink::kinesis::client(&config.kinesis).await;
            KinesisSink::ensure_streams(&client, &kinesis_streams, config.kinesis.shard_count).await?;
            Some(KinesisSink::new(client))
        };
        let (spool, sealed, spool_writer) = Spool::open(SpoolSettings {
            directory: ingest.spool_dir.clone(),
            max_bytes: ingest.spool_max_bytes,
            segment_max_bytes: ingest.sink_batch_max_bytes,
            segment_max_age: Duration::from_millis(ingest.sink_batch_max_age_ms),
        })
        .map_err(spool_error)?;
        let object_store = ObjectStoreSink { store, node_id: node_id(&ingest.spool_dir).map_err(spool_error)? };
        let sinks = Sinks { config: config.clone(), object_store, kafka, kinesis };
        let shipper = tokio::spawn(run_shipper(sinks, spool.stats.clone(), sealed));
        let oidc = &config.ingest.oidc;
        let token_validator = oidc.enabled.then(|| {
            clickstream_auth::TokenValidator::new(clickstream_auth::OidcSettings {
                issuer: oidc.issuer.clone(),
                discovery_url: oidc.discovery_url.clone(),
                audience: oidc.audience.clone(),
                cache_ttl: Duration::from_secs(oidc.jwks_cache_seconds),
                min_refetch_interval: clickstream_auth::MIN_REFETCH_INTERVAL,
            })
        });
        let apps = Arc::new(AppRegistry::new(config.clone()));
        Ok(IngestService { state: Arc::new(IngestState { config, apps, spool, token_validator }), spool_writer, shipper })
    }
}

pub fn router(state: Arc<IngestState>) -> Router {
    let max_body_bytes = state.config.ingest.max_body_bytes;
    let allowed_origins = Arc::new(cors::AllowedOrigins::new(&state.config.ingest.cors_allowed_origins));
    let timeout = Duration::from_millis(state.config.ingest.request_timeout_ms);
    Router::new()
        .route(&state.config.ingest.path, post(collect))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/ping", get(ping))
        .route("/health", get(health))
        .fallback(unknown_path)
        .layer(axum::middleware::from_fn_with_state(allowed_origins, cors::cors))
        .layer(axum::middleware::from_fn(reject_oversized_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
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
        let mut response = (self.status, Json(serde_json::json!({ "error": self.reason, "message": self.message }))).into_response();
        // The body was refused before its end, so the connection cannot carry another request:
        // the answer says it closes, or a keep-alive client sends its next request on it.
        if self.reason == "body_too_large" {
            response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
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
    authenticate(&state, &headers).await?;
    let Query(query) = query.map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "bad_query", error.body_text()))?;
    let body = body.map_err(|error| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("body exceeds {} bytes", state.config.ingest.max_body_bytes))
        } else {
            Rejection::new(error.status(), "unreadable_body", error.body_text())
        }
    })?;
    let app_id = query.app_id.as_deref().filter(|app_id| !app_id.is_empty()).ok_or_else(|| Rejection::new(StatusCode::BAD_REQUEST, "missing_app_id", "query parameter appId is required"))?;
    let project_id = state
        .apps
        .project_of(app_id)
        .ok_or_else(|| Rejection::new(StatusCode::FORBIDDEN, "unknown_app_id", format!("appId `{app_id}` is not registered")))?;

    // A binary gzip body (Content-Encoding: gzip) is stored decompressed: the raw record's
    // `data` is text, plain JSON or the SDK's base64 of gzip.
    let max_decompressed = state.config.ingest.max_body_bytes * 50;
    let body = if content_encoding_is_gzip(&headers) {
        Bytes::from(wire::gunzip(&body, max_decompressed).map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "undecodable_body", error.to_string()))?)
    } else {
        body
    };
    // Decode now so that a malformed body gets its 400 here rather than a quarantine later.
    let compressed = query.compression.as_deref() == Some("gzip");
    let json = wire::decode_body(&body, compressed, max_decompressed)
        .map_err(|error| Rejection::new(StatusCode::BAD_REQUEST, "undecodable_body", error.to_string()))?;
    let event_count = match wire::count_valid_events(&json) {
        Ok(count) => count,
        // A project with a transformer plugin takes bodies in a format of its own: the plugin
        // turns them into SDK events in the ETL (and quarantines what it cannot read).
        Err(_) if state.apps.has_transformer(&project_id) => 0,
        Err(error) => return Err(Rejection::new(StatusCode::BAD_REQUEST, "invalid_events", error.to_string())),
    };
    drop(json); // releases its borrow of the body
    let body_length = body.len();
    // Bytes → Vec reuses the buffer when the body is its only owner (no copy on the hot path).
    let data = String::from_utf8(Vec::from(body)).map_err(|_| Rejection::new(StatusCode::BAD_REQUEST, "undecodable_body", "body is not UTF-8 text"))?;

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

    state.spool.append(&project_id, ndjson_line).await.map_err(|error| {
        let reason = match error {
            SpoolError::Full { .. } => "spool_full",
            SpoolError::Disk(_) => "spool_disk_error",
            SpoolError::ShuttingDown => "shutting_down",
        };
        Rejection::new(StatusCode::SERVICE_UNAVAILABLE, reason, error.to_string())
    })?;

    metrics::counter!("clickstream_ingest_requests_total", "status" => "200", "reason" => "accepted").increment(1);
    metrics::counter!("clickstream_ingest_events_total").increment(event_count as u64);
    metrics::counter!("clickstream_ingest_bytes_total").increment(body_length as u64);
    Ok(StatusCode::OK)
}

/// With OIDC on, a request needs a valid token (bearer header or cookie).
async fn authenticate(state: &IngestState, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(validator) = &state.token_validator else { return Ok(()) };
    let token = clickstream_auth::token_from_headers(headers, &state.config.ingest.oidc.cookie_name)
        .ok_or_else(|| Rejection::new(StatusCode::UNAUTHORIZED, "missing_token", clickstream_auth::AuthError::MissingToken.to_string()))?;
    validator.validate(token).await.map(|_| ()).map_err(|error| {
        if error.is_retryable() {
            Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "issuer_unavailable", error.to_string())
        } else {
            Rejection::new(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string())
        }
    })
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

/// Healthy while the spool can take requests: the disk writes and it is not full.
async fn health(State(state): State<Arc<IngestState>>) -> Response {
    let stats = &state.spool.stats;
    let spool_bytes = stats.bytes.load(Ordering::Relaxed);
    let sealed_segments = stats.sealed_segments.load(Ordering::Relaxed);
    stats.publish();
    let sink_failing = stats.sink_failing.load(Ordering::Relaxed);
    // Unhealthy (503) only while requests cannot be taken; a failing sink with room left in
    // the spool is "degraded": requests are still accepted durably.
    let (code, status) = if stats.disk_failed.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "spool disk failing")
    } else if spool_bytes >= state.config.ingest.spool_max_bytes {
        (StatusCode::SERVICE_UNAVAILABLE, "spool full: the sink is unavailable")
    } else if sink_failing {
        (StatusCode::OK, "degraded: the sink is unavailable, requests are spooled")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = serde_json::json!({ "status": status, "spool_bytes": spool_bytes, "segments_waiting": sealed_segments, "sink_failing": sink_failing });
    (code, Json(body)).into_response()
}

/// Headers larger than any SDK sends (a browser's cookies included) are refused with 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

async fn reject_oversized_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let header_bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Rejection::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", format!("headers exceed {MAX_HEADER_BYTES} bytes"))
            .into_response();
    }
    next.run(request).await
}

fn content_encoding_is_gzip(headers: &HeaderMap) -> bool {
    headers.get(axum::http::header::CONTENT_ENCODING).and_then(|value| value.to_str().ok()).is_some_and(|value| value.trim().eq_ignore_ascii_case("gzip"))
}

async fn unknown_path(OriginalUri(uri): OriginalUri) -> Rejection {
    Rejection::new(StatusCode::FORBIDDEN, "unknown_path", format!("no route for {}", uri.path()))
}
