//! The collector's routes over a real local object store (a temporary directory).

use std::{io::{Read, Write}, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::connect_info::MockConnectInfo,
    http::{Request, StatusCode},
};
use clickstream_core::{Config, raw_record::RawRecord};
use clickstream_ingest::IngestService;
use object_store::{ObjectStore, local::LocalFileSystem};
use futures::StreamExt;
use tower::ServiceExt;

const EVENTS: &str = r#"[{"event_type":"_page_view","event_id":"e1","app_id":"app-1","timestamp":1700000000000},{"event_type":"_click","event_id":"e2","app_id":"app-1","timestamp":1700000000001}]"#;

fn config(spool_dir: &std::path::Path) -> Arc<Config> {
    let mut config = Config::default();
    config.ingest.spool_dir = spool_dir.to_path_buf();
    config.ingest.sink_batch_max_age_ms = 20;
    config.ingest.max_body_bytes = 4096;
    config.projects.push(clickstream_core::ProjectConfig { id: "proj".into(), apps: vec!["app-1".into()], etl_buffer_seconds: 1, ..Default::default() });
    Arc::new(config)
}

struct Collector {
    router: Router,
    store: Arc<dyn ObjectStore>,
    _directories: (tempfile::TempDir, tempfile::TempDir),
}

async fn collector() -> Collector {
    collector_with(|_| {}).await
}

/// A collector over fresh directories, its configuration adjusted by `adjust`.
async fn collector_with(adjust: impl FnOnce(&mut Config)) -> Collector {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(data.path()).unwrap());
    let mut adjusted = (*config(spool.path())).clone();
    adjust(&mut adjusted);
    let service = IngestService::start(Arc::new(adjusted), store.clone()).await.unwrap();
    Collector { router: with_peer(clickstream_ingest::router(service.state)), store, _directories: (data, spool) }
}

fn with_peer(router: Router) -> Router {
    router.layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 9], 5555))))
}

async fn post(router: &Router, uri: &str, body: impl Into<Body>) -> (StatusCode, String) {
    let request = Request::post(uri)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "test-agent/1.0")
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
        .body(body.into())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn raw_records_now(store: &dyn ObjectStore) -> Vec<RawRecord> {
    use futures::TryStreamExt;
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut records = Vec::new();
    for object in objects {
        assert!(object.location.as_ref().starts_with("proj/data/buffer/year="), "{}", object.location);
        let bytes = store.get(&object.location).await.unwrap().bytes().await.unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_ref()).read_to_string(&mut text).unwrap();
        records.extend(text.lines().map(|line| serde_json::from_str::<RawRecord>(line).unwrap()));
    }
    records
}

/// Waits until the store holds `expected` records (the shipper works in the background).
async fn raw_records(store: &dyn ObjectStore, expected: usize) -> Vec<RawRecord> {
    for _ in 0..100 {
        let records = raw_records_now(store).await;
        if records.len() >= expected {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the store never held {expected} records: {:?}", raw_records_now(store).await.len());
}

fn gzip_base64(text: &str) -> String {
    clickstream_core::wire::encode_gzip_base64(text)
}

#[tokio::test]
async fn an_accepted_request_reaches_the_store_as_a_caoa_raw_record() {
    let collector = collector().await;
    let (status, body) = post(&collector.router, "/collect?appId=app-1&platform=Web&upload_timestamp=1700000000500&event_bundle_sequence_id=4", EVENTS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.is_empty());
    let records = raw_records(collector.store.as_ref(), 1).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.data.as_deref(), Some(EVENTS));
    assert_eq!(record.app_id.as_deref(), Some("app-1"));
    assert_eq!(record.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(record.ua.as_deref(), Some("test-agent/1.0"));
    assert_eq!(record.client_timestamp, Some(1700000000500));
    assert_eq!(record.uri.as_deref(), Some("/collect?appId=app-1&platform=Web&upload_timestamp=1700000000500&event_bundle_sequence_id=4"));
    assert_eq!(record.platform.as_deref(), Some("Web"));
}

#[tokio::test]
async fn gzip_base64_bodies_are_stored_verbatim() {
    let collector = collector().await;
    let body = gzip_base64(EVENTS);
    let (status, _) = post(&collector.router, "/collect?appId=app-1&compression=gzip", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let records = raw_records(collector.store.as_ref(), 1).await;
    assert_eq!(records[0].data.as_deref(), Some(body.as_str()));
    assert_eq!(records[0].compression.as_deref(), Some("gzip"));
}

#[tokio::test]
async fn bad_requests_get_a_clear_status_and_nothing_is_stored() {
    let collector = collector().await;
    let cases: Vec<(String, String, StatusCode, &str)> = vec![
        ("/collect?appId=stranger".into(), EVENTS.into(), StatusCode::FORBIDDEN, "unknown_app_id"),
        ("/collect".into(), EVENTS.into(), StatusCode::BAD_REQUEST, "missing_app_id"),
        ("/collect?appId=app-1&compression=gzip".into(), "%%%not base64".into(), StatusCode::BAD_REQUEST, "undecodable_body"),
        ("/collect?appId=app-1".into(), "{\"not\":\"an array\"}".into(), StatusCode::BAD_REQUEST, "invalid_events"),
        ("/collect?appId=app-1".into(), r#"[{"event_type":"x"}]"#.into(), StatusCode::BAD_REQUEST, "invalid_events"),
        ("/collect?appId=app-1".into(), "x".repeat(5000), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        ("/elsewhere?appId=app-1".into(), EVENTS.into(), StatusCode::FORBIDDEN, "unknown_path"),
    ];
    for (uri, body, expected_status, expected_reason) in cases {
        let (status, response) = post(&collector.router, &uri, body).await;
        assert_eq!(status, expected_status, "{uri}: {response}");
        assert!(response.contains(expected_reason), "{uri}: {response}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(raw_records_now(collector.store.as_ref()).await.is_empty());
}

/// The rest of a body over the limit is never read, so the connection closes after the 413.
#[tokio::test]
async fn a_body_over_the_limit_closes_its_connection() {
    let collector = collector().await;
    let request = Request::post("/collect?appId=app-1").body(Body::from("x".repeat(5000))).unwrap();
    let response = send(&collector.router, request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers().get(axum::http::header::CONNECTION).map(|value| value.as_bytes()), Some(&b"close"[..]));
    let request = Request::post("/collect?appId=stranger").body(Body::from(EVENTS)).unwrap();
    assert_eq!(send(&collector.router, request).await.headers().get(axum::http::header::CONNECTION), None, "other refusals keep the connection");
}

#[tokio::test]
async fn concurrent_requests_share_objects_and_all_are_kept() {
    let collector = collector().await;
    let requests = (0..50).map(|_| post(&collector.router, "/collect?appId=app-1", EVENTS));
    for (status, _) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(raw_records(collector.store.as_ref(), 50).await.len(), 50);
}

#[tokio::test]
async fn ping_and_health_answer() {
    let collector = collector().await;
    let response = collector.router.clone().oneshot(Request::get("/ping").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(ping["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    let response = collector.router.clone().oneshot(Request::get("/health").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn send(router: &Router, request: Request<Body>) -> axum::response::Response {
    router.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn a_binary_gzip_body_is_accepted_and_stored_as_json() {
    let collector = collector().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(EVENTS.as_bytes()).unwrap();
    let request = Request::post("/collect?appId=app-1").header("content-encoding", "gzip").body(Body::from(encoder.finish().unwrap())).unwrap();
    assert_eq!(send(&collector.router, request).await.status(), StatusCode::OK);
    let records = raw_records(collector.store.as_ref(), 1).await;
    assert_eq!(records[0].data.as_deref(), Some(EVENTS));
    let request = Request::post("/collect?appId=app-1").header("content-encoding", "gzip").body(Body::from("not gzip")).unwrap();
    assert_eq!(send(&collector.router, request).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn browsers_on_allowed_origins_get_cors_and_others_do_not() {
    let collector = collector().await;
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/collect?appId=app-1")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = send(&collector.router, preflight("http://localhost:5173")).await;
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    assert!(allowed.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert_eq!(send(&collector.router, preflight("https://evil.example")).await.status(), StatusCode::FORBIDDEN);

    let post_from = |origin: &str| Request::post("/collect?appId=app-1").header("origin", origin).body(Body::from(EVENTS)).unwrap();
    let response = send(&collector.router, post_from("http://127.0.0.1:8000")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://127.0.0.1:8000");
    let response = send(&collector.router, post_from("https://evil.example")).await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn records_spooled_before_a_restart_are_shipped_after_it() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(data.path()).unwrap());
    // First run: the sink would ship only after an hour, so the records stay in the spool.
    let mut slow = (*config(spool.path())).clone();
    slow.ingest.sink_batch_max_age_ms = 3_600_000;
    let service = IngestService::start(Arc::new(slow), store.clone()).await.unwrap();
    let router = with_peer(clickstream_ingest::router(service.state));
    for _ in 0..3 {
        assert_eq!(post(&router, "/collect?appId=app-1", EVENTS).await.0, StatusCode::OK);
    }
    service.shipper.abort(); // the process dies before shipping
    drop(router);
    service.spool_writer.join().unwrap();
    assert!(raw_records_now(store.as_ref()).await.is_empty());

    // Second run on the same spool ships what the first one accepted.
    let service = IngestService::start(config(spool.path()), store.clone()).await.unwrap();
    assert_eq!(raw_records(store.as_ref(), 3).await.len(), 3);
    drop(service);
}

#[tokio::test]
async fn a_full_spool_answers_503_and_health_says_why() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    // A store whose root is a file: every write fails, so nothing leaves the spool.
    let broken_root = data.path().join("not-a-directory");
    std::fs::write(&broken_root, b"").unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&broken_root).unwrap());
    let mut small = (*config(spool.path())).clone();
    small.ingest.spool_max_bytes = 2_000;
    let service = IngestService::start(Arc::new(small), store).await.unwrap();
    let router = with_peer(clickstream_ingest::router(service.state));
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(post(&router, "/collect?appId=app-1", EVENTS).await.0);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    // Only a 503 after the first one: once full, the spool stays full while the store is down.
    let first_refusal = statuses.iter().position(|status| *status == StatusCode::SERVICE_UNAVAILABLE).unwrap();
    assert!(statuses[first_refusal..].iter().all(|status| *status == StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    // The shipper soon finds the store failing; health then says both why and what.
    let mut body = serde_json::Value::Null;
    for _ in 0..50 {
        let health = send(&router, Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        body = serde_json::from_slice(&axum::body::to_bytes(health.into_body(), usize::MAX).await.unwrap()).unwrap();
        if body["sink_failing"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(body["sink_failing"], true, "{body}");
    assert!(body["status"].as_str().unwrap().contains("spool full"), "{body}");
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_does_not_block_others() {
    let collector = collector_with(|config| config.ingest.request_timeout_ms = 200).await;
    let router = collector.router;
    // A client that sends part of its body and then nothing.
    let stalled = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"[{\"event_type\"")) }).chain(futures::stream::pending());
    let request = Request::post("/collect?appId=app-1").body(Body::from_stream(stalled)).unwrap();
    let stalled_response = tokio::spawn(send_owned(router.clone(), request));
    assert_eq!(post(&router, "/collect?appId=app-1", EVENTS).await.0, StatusCode::OK);
    assert_eq!(stalled_response.await.unwrap().status(), StatusCode::REQUEST_TIMEOUT);
}

async fn send_owned(router: Router, request: Request<Body>) -> axum::response::Response {
    router.oneshot(request).await.unwrap()
}
