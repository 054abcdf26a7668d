//! A custom enricher plugin, end to end as a user follows docs/plugins.md: the example crate
//! built into a component, registered and uploaded through the API (a module that is not a
//! plugin refused), chosen by a pipeline, and its parameters read back from the `event_v2`
//! Parquet the ETL wrote. The plugin cannot be deleted while the pipeline uses it. Then a
//! transformer plugin: a project whose apps send bodies in a format of their own, accepted by
//! the collector only for that project and turned into events by the plugin.

use std::{path::Path, time::Duration};

use arrow::array::{Array, AsArray};
use clickstream_e2e::{DevPorts, DevStack, JsonApi, TemporalDevServer, eventually};
use clickstream_plugins::build::{build_plugin_crate, plugin_crate_dir};
use reqwest::Method;
use serde_json::{Value, json};

/// `(event_id, custom_parameters_json_str)` of every `event_v2` row of a project so far.
fn processed_events(data: &Path, project_id: &str) -> Vec<(String, Option<String>)> {
    let mut rows = Vec::new();
    let mut directories = vec![data.join(project_id).join("data/processed/event_v2")];
    while let Some(directory) = directories.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                directories.push(path);
                continue;
            }
            if path.extension().and_then(|extension| extension.to_str()) != Some("parquet") {
                continue;
            }
            let file = std::fs::File::open(&path).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch.column_by_name("event_id").unwrap().as_string::<i32>().clone();
                let parameters = batch.column_by_name("custom_parameters_json_str").unwrap().as_string::<i32>().clone();
                for row in 0..batch.num_rows() {
                    rows.push((ids.value(row).to_string(), (!parameters.is_null(row)).then(|| parameters.value(row).to_string())));
                }
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_builds_uploads_and_enables_an_enricher_plugin() {
    let component = build_plugin_crate(&plugin_crate_dir("examples/page-category")).unwrap_or_else(|error| panic!("{error}"));
    let module = std::fs::read(&component).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(directory.path());
    let stack = DevStack::start(directory.path(), &temporal, DevPorts::free(), "");
    let api = JsonApi::new(stack.console_url());

    assert_eq!(api.call(Method::POST, "/api/v1/projects", None, Some(json!({"id": "shop", "name": "Shop", "environment": "dev"}))).await.0, 201);
    assert_eq!(api.call(Method::POST, "/api/v1/projects/shop/apps", None, Some(json!({"id": "shop_web", "name": "Web", "platform": "web", "timezone": "UTC"}))).await.0, 201);

    // Register the plugin with its configuration; no module yet, so no pipeline may use it.
    let new_plugin = json!({"id": "page_category", "name": "Page category", "kind": "enrichment", "config": "/products=product\n/blog=content"});
    let (status, plugin) = api.call(Method::POST, "/api/v1/plugins", None, Some(new_plugin)).await;
    assert_eq!(status, 201, "{plugin}");
    let mut spec = api.call(Method::GET, "/api/v1/pipelines/default-spec", None, None).await.1;
    spec["processing"]["schedule"] = json!({"interval_seconds": 10});
    spec["processing"]["buffer_seconds"] = json!(1);
    spec["processing"]["plugins"] = json!(["page_category"]);
    let (status, refused) = api.call(Method::POST, "/api/v1/pipelines", None, Some(json!({"project_id": "shop", "spec": spec}))).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["fields"]["spec.processing.plugins"], "plugin `page_category` has no module yet; upload it first");

    // Upload: a module that is not a component is refused with the reason; the real one is
    // checked, stored under its SHA-256 and recorded.
    let upload = |body: Vec<u8>| api.http.put(format!("{}/api/v1/plugins/page_category/module", api.base)).header("content-type", "application/wasm").body(body).send();
    let refused = upload(b"\0asm\x01\0\0\0".to_vec()).await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let reason: Value = refused.json().await.unwrap();
    assert!(reason["error"].as_str().unwrap().contains("core WebAssembly module"), "{reason}");
    let empty = upload(Vec::new()).await.unwrap();
    assert_eq!(empty.status().as_u16(), 400, "an empty body");
    // The server answers 413 before reading the whole body, and says that it closes the
    // connection, so that the pooled client sends the next upload on a new one.
    let oversize = upload(vec![0u8; 33 * 1024 * 1024]).await.unwrap();
    assert_eq!(oversize.status().as_u16(), 413, "over the 32 MiB limit");
    assert_eq!(oversize.headers().get("connection").map(|value| value.as_bytes()), Some(&b"close"[..]));
    let uploaded = upload(module.clone()).await.unwrap();
    assert_eq!(uploaded.status().as_u16(), 200);
    let plugin: Value = uploaded.json().await.unwrap();
    let sha256 = clickstream_plugins::module_sha256(&module);
    assert_eq!(plugin["module_sha256"], sha256.as_str());
    assert_eq!(plugin["module_uri"], format!("_plugins/page_category/{sha256}.wasm"));
    assert!(directory.path().join("data").join(plugin["module_uri"].as_str().unwrap()).is_file(), "the module is in the object store");

    // A pipeline that runs it after the built-in enrichers.
    let (status, pipeline) = api.call(Method::POST, "/api/v1/pipelines", None, Some(json!({"project_id": "shop", "spec": spec}))).await;
    assert_eq!(status, 201, "{pipeline}");
    eventually("the pipeline becomes active", Duration::from_secs(60), Duration::from_millis(500), || async {
        let pipeline = api.call(Method::GET, "/api/v1/pipelines/pipeline-shop", None, None).await.1;
        (pipeline["status"]["phase"] == "active").then_some(())
    })
    .await;
    let (status, refused) = api.call(Method::DELETE, "/api/v1/plugins/page_category", None, None).await;
    assert_eq!(status, 409, "the pipeline uses it: {refused}");

    // Events with pages; the plugin's parameters land in event_v2.
    let timestamp = chrono::Utc::now().timestamp_millis() - 60_000;
    let page_view = |event_id: &str, page_url: &str, referrer: Option<&str>| {
        let mut attributes = json!({"_page_url": page_url, "_session_id": "s1", "plan": "pro"});
        if let Some(referrer) = referrer {
            attributes["_page_referrer"] = json!(referrer);
        }
        json!({"event_type": "_page_view", "event_id": event_id, "app_id": "shop_web", "timestamp": timestamp, "unique_id": "u1", "platform": "Web", "attributes": attributes})
    };
    let events = json!([
        page_view("shoes", "https://shop.example/products/shoes", Some("https://www.bing.com/search?q=shoes")),
        page_view("post", "https://shop.example/blog/2026/hello", None),
        page_view("home", "https://shop.example/", None),
    ]);
    let collect = format!("{}/collect?appId=shop_web", stack.ingest_url());
    eventually("the collector accepts the new app", Duration::from_secs(20), Duration::from_millis(300), || async {
        (api.http.post(&collect).json(&events).send().await.unwrap().status().as_u16() == 200).then_some(())
    })
    .await;
    let data = directory.path().join("data");
    let rows = eventually("the three events are processed", Duration::from_secs(120), Duration::from_secs(1), || async {
        let rows = processed_events(&data, "shop");
        (rows.len() >= 3).then_some(rows)
    })
    .await;
    let parameters_of = |event_id: &str| -> Value {
        let (_, text) = rows.iter().find(|(id, _)| id == event_id).unwrap_or_else(|| panic!("{event_id} is in event_v2: {rows:?}"));
        serde_json::from_str(text.as_deref().expect("the event has custom parameters")).unwrap()
    };
    let shoes = parameters_of("shoes");
    assert_eq!((&shoes["page_category"], &shoes["page_depth"], &shoes["referrer_host"]), (&json!("product"), &json!(2), &json!("www.bing.com")), "{shoes}");
    assert_eq!(shoes["plan"], "pro", "the SDK's own attributes stay: {shoes}");
    let post = parameters_of("post");
    assert_eq!((&post["page_category"], &post["page_depth"], post.get("referrer_host")), (&json!("content"), &json!(3), None), "{post}");
    assert_eq!(parameters_of("home")["page_category"], "other");

    // A transformer: bodies in the example's simple format are refused by the collector for
    // a project without one, and become events for a project with one.
    let simple_body = json!({"user": "u7", "events": [{"id": "feed-1", "name": "page_view", "time": timestamp, "url": "https://shop.example/products/x", "properties": {"source": "feed"}}]});
    assert_eq!(api.http.post(&collect).json(&simple_body).send().await.unwrap().status().as_u16(), 400, "the shop project takes only SDK events");
    let transformer = build_plugin_crate(&plugin_crate_dir("examples/simple-events")).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(api.call(Method::POST, "/api/v1/projects", None, Some(json!({"id": "feed", "name": "Feed", "environment": "dev"}))).await.0, 201);
    assert_eq!(api.call(Method::POST, "/api/v1/projects/feed/apps", None, Some(json!({"id": "feed_app", "name": "Feed", "platform": "web", "timezone": "UTC"}))).await.0, 201);
    let (status, plugin) = api.call(Method::POST, "/api/v1/plugins", None, Some(json!({"id": "simple_events", "name": "Simple events", "kind": "transformer"}))).await;
    assert_eq!(status, 201, "{plugin}");
    let uploaded = api.http.put(format!("{}/api/v1/plugins/simple_events/module", api.base)).body(std::fs::read(&transformer).unwrap()).send().await.unwrap();
    assert_eq!(uploaded.status().as_u16(), 200);
    let mut feed_spec = spec.clone();
    feed_spec["processing"]["plugins"] = json!([]);
    feed_spec["processing"]["transformer"] = json!("page_category");
    let (status, refused) = api.call(Method::POST, "/api/v1/pipelines", None, Some(json!({"project_id": "feed", "spec": feed_spec}))).await;
    assert_eq!((status, &refused["fields"]["spec.processing.transformer"]), (400, &json!("plugin `page_category` is an enrichment plugin, not a transformer")), "{refused}");
    feed_spec["processing"]["transformer"] = json!("simple_events");
    assert_eq!(api.call(Method::POST, "/api/v1/pipelines", None, Some(json!({"project_id": "feed", "spec": feed_spec}))).await.0, 201);
    let feed_collect = format!("{}/collect?appId=feed_app", stack.ingest_url());
    eventually("the collector accepts the feed's own format", Duration::from_secs(60), Duration::from_millis(300), || async {
        (api.http.post(&feed_collect).json(&simple_body).send().await.unwrap().status().as_u16() == 200).then_some(())
    })
    .await;
    let feed_rows = eventually("the feed's event is processed", Duration::from_secs(120), Duration::from_secs(1), || async {
        let rows = processed_events(&data, "feed");
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(feed_rows, [("feed-1".to_string(), Some(r#"{"source":"feed"}"#.to_string()))]);

    let mut dev = stack.process;
    assert!(dev.terminate(Duration::from_secs(30)).success(), "{}", dev.log());
}
