//! Reporting end to end: SDK-shaped events through the collector, the scheduled ETL and the
//! warehouse load, then the console's explorations, saved explorations, CSV export and
//! dashboards over HTTP, and the web console's dashboards and Explore page in headless
//! Chromium (e2e/browser/reporting.mjs).
//!
//! The dataset is the one the `reporting` crate's tests work out by hand
//! (reporting/tests/explorations.rs), moved to the Monday two weeks before this one so that it
//! lies in the past and in the freshness window:
//!
//! | user | events (day, time UTC, session) |
//! | --- | --- |
//! | u1 | d0 09:59 _first_open, 10:00 pv /home, 10:01 pv /product, 10:02 add_to_cart, 10:05 purchase 100 (s1); d1 09:00 pv /home (s2) |
//! | u2 | d0 11:00 pv /home, 11:10 pv /product, 11:20 add_to_cart (s3), 20:00 pv /product (s8); d2 12:00 purchase 50 (s6) |
//! | u3 | d1 07:59 _first_open, 08:00 pv /home, 08:30 pv /about (s4); d8 08:00 pv /home (s5) |
//! | u4 | d0 12:00 add_to_cart, 12:30 purchase 30 (s7) |

use std::{path::PathBuf, process::Command, time::Duration};

use chrono::{Datelike, NaiveDate};
use clickstream_e2e::{DevPorts, DevStack, JsonApi, TemporalDevServer, assert_web_console_built, eventually};
use serde_json::{Value, json};

const APP: &str = "shop-web";

/// `(user, session, day, hour, minute, event, page path, event value)`.
type Row = (&'static str, &'static str, i64, i64, i64, &'static str, Option<&'static str>, Option<f64>);

const DATASET: [Row; 17] = [
    ("u1", "s1", 0, 9, 59, "_first_open", None, None),
    ("u1", "s1", 0, 10, 0, "_page_view", Some("/home"), None),
    ("u1", "s1", 0, 10, 1, "_page_view", Some("/product"), None),
    ("u1", "s1", 0, 10, 2, "add_to_cart", None, None),
    ("u1", "s1", 0, 10, 5, "purchase", None, Some(100.0)),
    ("u1", "s2", 1, 9, 0, "_page_view", Some("/home"), None),
    ("u2", "s3", 0, 11, 0, "_page_view", Some("/home"), None),
    ("u2", "s3", 0, 11, 10, "_page_view", Some("/product"), None),
    ("u2", "s3", 0, 11, 20, "add_to_cart", None, None),
    ("u2", "s8", 0, 20, 0, "_page_view", Some("/product"), None),
    ("u2", "s6", 2, 12, 0, "purchase", None, Some(50.0)),
    ("u3", "s4", 1, 7, 59, "_first_open", None, None),
    ("u3", "s4", 1, 8, 0, "_page_view", Some("/home"), None),
    ("u3", "s4", 1, 8, 30, "_page_view", Some("/about"), None),
    ("u3", "s5", 8, 8, 0, "_page_view", Some("/home"), None),
    ("u4", "s7", 0, 12, 0, "add_to_cart", None, None),
    ("u4", "s7", 0, 12, 30, "purchase", None, Some(30.0)),
];

/// The Monday two weeks before this week's.
fn day_zero() -> NaiveDate {
    let today = chrono::Utc::now().date_naive();
    today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()) + 14)
}

fn day_text(offset: i64) -> String {
    (day_zero() + chrono::Duration::days(offset)).format("%Y-%m-%d").to_string()
}

/// The dataset as the web SDK sends it, one request per user.
fn requests() -> Vec<(String, Value)> {
    let midnight = day_zero().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let mut by_user: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    for (index, (user, session, day, hour, minute, name, path, value)) in DATASET.into_iter().enumerate() {
        let timestamp = midnight + ((day * 24 + hour) * 60 + minute) * 60_000;
        let mut attributes = json!({ "_session_id": session, "_session_start_timestamp": timestamp, "_session_number": 1 });
        if let Some(path) = path {
            attributes["_page_url"] = json!(format!("https://shop.example.com{path}"));
            attributes["_page_title"] = json!(path);
        }
        let mut event = json!({
            "event_type": name, "event_id": format!("e{index:02}"), "app_id": APP, "timestamp": timestamp,
            "unique_id": user, "device_id": format!("device-{user}"), "platform": "Web",
            "sdk_name": "aws-solution-clickstream-sdk", "sdk_version": "0.12.6", "attributes": attributes,
        });
        if let Some(value) = value {
            event["event_value"] = json!(value);
        }
        by_user.entry(user).or_default().push(event);
    }
    by_user.into_iter().map(|(user, events)| (user.to_string(), Value::Array(events))).collect()
}

/// The console's API of the app.
struct Console {
    api: JsonApi,
}

impl Console {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api.call(method, path, None, body).await
    }

    async fn run(&self, exploration: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, "/explorations/run", Some(exploration.clone())).await;
        assert_eq!(status, 200, "{exploration} → {answer}");
        answer
    }
}

fn range() -> Value {
    json!({"from": day_text(0), "to": day_text(13)})
}

#[tokio::test(flavor = "multi_thread")]
async fn explorations_and_dashboards_answer_over_the_loaded_events_in_the_api_and_the_browser() {
    assert_web_console_built();
    let directory = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(directory.path());
    let stack = DevStack::start(
        directory.path(),
        &temporal,
        DevPorts::free(),
        &format!(
            r#"
[[projects]]
id = "shop"
apps = ["{APP}"]
etl_interval_seconds = 3
etl_buffer_seconds = 1
# The dataset starts up to three weeks ago.
freshness_hours = 720
"#
        ),
    );
    let console = Console { api: JsonApi::new(format!("{}/api/v1/apps/{APP}", stack.console_url())) };
    let http = reqwest::Client::new();
    use reqwest::Method;

    // Before any load: the catalog is empty and an exploration naming an event is refused.
    let (status, catalog) = console.call(Method::GET, "/catalog", None).await;
    assert_eq!((status, catalog["events"].clone()), (200, json!([])), "{catalog}");

    let upload = chrono::Utc::now().timestamp_millis();
    for (user, body) in requests() {
        let response = http
            .post(format!("{}/collect?appId={APP}&platform=Web&event_bundle_sequence_id=1&upload_timestamp={upload}", stack.ingest_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "events of {user}");
    }
    let count_url = format!("{}/events/count", console.api.base);
    eventually("the 17 events in the warehouse", Duration::from_secs(180), Duration::from_millis(500), || {
        let (http, url) = (http.clone(), count_url.clone());
        async move {
            let answer: Value = http.get(&url).send().await.ok()?.json().await.ok()?;
            (answer["count"] == json!(17)).then_some(())
        }
    })
    .await;

    // The catalog now has the events (read from the tables before any metadata scan).
    let (_, catalog) = console.call(Method::GET, "/catalog", None).await;
    assert_eq!(catalog["events"], json!(["_first_open", "_page_view", "add_to_cart", "purchase"]), "{catalog}");

    // Each exploration, with the figures worked out by hand in the reporting crate's tests.
    // The funnel reads the users' event sequences, which the load workflow rebuilds just after
    // the load: the events may be counted a moment before.
    let expected_funnel = json!([[null, 1, "_page_view", 3], [null, 2, "add_to_cart", 2], [null, 3, "purchase", 1]]);
    let funnel_query = json!({"type": "funnel", "range": range(), "steps": ["_page_view", "add_to_cart", "purchase"], "window_seconds": 86400});
    let funnel = eventually("the funnel over the refreshed aggregates", Duration::from_secs(60), Duration::from_millis(500), || async {
        let funnel = console.run(funnel_query.clone()).await;
        (funnel["rows"] == expected_funnel).then_some(funnel)
    })
    .await;
    assert_eq!(funnel["rows"], expected_funnel, "{funnel}");
    let retention = console.run(json!({"type": "retention", "range": range(), "start_event": "_page_view", "return_event": "_page_view", "granularity": "week", "periods": 2})).await;
    assert_eq!(retention["rows"], json!([[day_text(0), 3, 0, 3], [day_text(0), 3, 1, 1]]), "{retention}");
    let path = console.run(json!({"type": "path", "range": range(), "node": "page", "split": "session", "max_steps": 5})).await;
    assert_eq!(path["rows"], json!([[1, "/home", "/product", 2], [1, "/home", "/about", 1]]), "{path}");
    let attribution = console.run(json!({"type": "attribution", "range": range(), "conversion_event": "purchase", "touchpoints": ["_page_view", "add_to_cart"], "model": "first_touch", "window_seconds": 86400})).await;
    assert_eq!(attribution["rows"], json!([["_page_view", 2, 1.0, 100.0, 3], ["add_to_cart", 2, 1.0, 30.0, 3]]), "{attribution}");
    let revenue = console.run(json!({"type": "event", "range": range(), "events": ["purchase"], "measure": {"sum": {"event_parameter": null}}, "granularity": "week"})).await;
    assert_eq!(revenue["rows"], json!([[day_text(0), "purchase", null, 180.0]]), "{revenue}");

    // Refusals: unknown names (an injection attempt among them) name their fields.
    let (status, refused) = console.call(Method::POST, "/explorations/run", Some(json!({"type": "funnel", "range": range(), "steps": ["_page_view", "x'); DROP TABLE event_v2; --"], "window_seconds": 60}))).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["fields"]["steps[1]"].is_string(), "{refused}");
    let (status, refused) = console.call(Method::POST, "/explorations/run", Some(json!({"type": "event", "range": {"from": day_text(5), "to": day_text(1)}, "group_by": {"user_attribute": "nope"}}))).await;
    assert_eq!(status, 400);
    assert!(refused["fields"]["range"].is_string() && refused["fields"]["group_by"].is_string(), "{refused}");
    assert_eq!(console.call(Method::POST, "/explorations/run", Some(json!({"type": "sideways"}))).await.0, 400, "not an exploration");

    // CSV export of a run.
    let csv = http.post(format!("{}/explorations/run?format=csv", console.api.base)).json(&json!({"type": "funnel", "range": range(), "steps": ["_page_view", "add_to_cart"], "window_seconds": 86400})).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.text().await.unwrap(), "group_value,step,event_name,users\n,1,_page_view,3\n,2,add_to_cart,2\n");

    // Saved explorations: create, list, update (stale version refused), export, delete.
    let query = json!({"type": "funnel", "range": range(), "steps": ["_page_view", "purchase"], "window_seconds": 86400});
    let (status, saved) = console.call(Method::POST, "/explorations", Some(json!({"name": "View to purchase", "query": query}))).await;
    assert_eq!((status, saved["created_by"].as_str(), saved["version"].as_u64()), (201, Some("anonymous"), Some(1)), "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let (status, refused) = console.call(Method::POST, "/explorations", Some(json!({"name": "", "query": {"type": "funnel", "range": range(), "steps": ["nope"], "window_seconds": 1}}))).await;
    assert_eq!(status, 400);
    assert!(refused["fields"]["query.steps[0]"].is_string(), "{refused}");
    assert_eq!(console.call(Method::GET, "/explorations", None).await.1.as_array().map(Vec::len), Some(1));
    let renamed = json!({"name": "Views to purchases", "query": query, "version": 1});
    assert_eq!(console.call(Method::PUT, &format!("/explorations/{id}"), Some(renamed.clone())).await.0, 200);
    assert_eq!(console.call(Method::PUT, &format!("/explorations/{id}"), Some(renamed)).await.0, 409, "stale version");
    let exported = http.get(format!("{}/explorations/{id}/csv", console.api.base)).send().await.unwrap();
    assert!(exported.headers()["content-disposition"].to_str().unwrap().contains("Views_to_purchases.csv"));
    // u1 buys within a day of the first view; u2 two days after (outside the window).
    assert_eq!(exported.text().await.unwrap(), "group_value,step,event_name,users\n,1,_page_view,3\n,2,purchase,1\n");

    // Dashboards: the overview's figures, a filtered page, a bad page name.
    let dashboard = |query: String| {
        let console = &console;
        async move { console.call(Method::GET, &format!("/dashboards/{query}"), None).await }
    };
    // The overview reads the reporting aggregates, which the load workflow rebuilds just after
    // the load the count above saw.
    let overview_kpis = || async {
        let (status, overview) = dashboard(format!("overview?from={}&to={}", day_text(0), day_text(13))).await;
        assert_eq!(status, 200, "{overview}");
        overview["panels"].as_array().unwrap().iter().find(|panel| panel["id"] == "kpis").unwrap()["table"]["rows"].clone()
    };
    let kpis = eventually("the overview over the refreshed aggregates", Duration::from_secs(60), Duration::from_millis(500), || async {
        Some(overview_kpis().await).filter(|rows| rows[0][3] == json!(17))
    })
    .await;
    assert_eq!(kpis, json!([[4, 2, 8, 17, 9]]));
    let filter = urlencode(&json!([{"field": {"column": "event_name"}, "operator": "equals", "values": ["purchase"]}]).to_string());
    let (_, purchases) = dashboard(format!("overview?from={}&to={}&filters={filter}", day_text(0), day_text(13))).await;
    assert_eq!(purchases["panels"][0]["table"]["rows"], json!([[3, 0, 3, 3, 0]]), "{purchases}");
    for page in ["acquisition", "engagement", "retention", "device", "details", "realtime"] {
        let (status, answer) = dashboard(format!("{page}?from={}&to={}", day_text(0), day_text(13))).await;
        assert_eq!(status, 200, "{page}: {answer}");
    }
    assert_eq!(dashboard("nowhere".into()).await.0, 404);
    assert_eq!(dashboard("overview?from=yesterday".into()).await.0, 400);

    // The same in the web console, in headless Chromium.
    let expect = json!({
        "kpis": {"active_users": 4, "new_users": 2, "sessions": 8, "events": 17, "page_views": 9},
        "funnel": {"steps": ["_page_view", "add_to_cart", "purchase"], "window_seconds": 86400, "users": [3, 2, 1]},
        "retention": {"start_event": "_page_view", "return_event": "_page_view", "granularity": "week", "periods": 2, "rows": [[day_text(0), 3, 0, 3], [day_text(0), 3, 1, 1]]},
        "path": {"node": "page", "flows": [[1, "/home", "/product", 2], [1, "/home", "/about", 1]]},
        "attribution": {"conversion_event": "purchase", "touchpoints": ["_page_view", "add_to_cart"], "model": "first_touch", "window_seconds": 86400, "credited": {"_page_view": 1, "add_to_cart": 1}},
        "event": {"events": ["_page_view"], "measure": "count", "granularity": "day", "total": 9},
    });
    let artifacts = std::env::var("CLICKSTREAM_TEST_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|_| directory.path().join("artifacts"));
    let script = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("browser/reporting.mjs");
    let output = Command::new("node")
        .arg(script)
        .env("CONSOLE_URL", stack.console_url())
        .env("APP_ID", APP)
        .env("FROM", day_text(0))
        .env("TO", day_text(13))
        .env("EXPECT", expect.to_string())
        .env("TIMEOUT_SECONDS", "180")
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .expect("node runs the browser test");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && String::from_utf8_lossy(&output.stdout).contains("REPORTING E2E OK"), "the browser run failed:\n{text}\n--- clickstream log:\n{}", stack.process.log());
    eprintln!("{text}");
    let mut dev = stack.process;
    assert!(dev.terminate(Duration::from_secs(30)).success(), "{}", dev.log());
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
