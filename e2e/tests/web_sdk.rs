//! The real CAoA web SDK (npm `@aws/clickstream-web`) in headless Chromium, on a page served
//! from another origin than the collector: CORS with credentials must let it send when the
//! origin is allowed, and block it when it is not. Driven by e2e/browser/run.mjs.

use std::{path::Path, process::Command, time::Duration};

use clickstream_e2e::{ServerProcess, free_port, start_clickstream};

fn start_collector(directory: &Path, allowed_origins: &str) -> (ServerProcess, u16) {
    let port = free_port();
    let config = directory.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nlisten = \"127.0.0.1:{port}\"\nspool_dir = \"{spool}\"\nsink_batch_max_age_ms = 100\ncors_allowed_origins = {allowed_origins}\n[storage]\nurl = \"file://{data}\"\n[[projects]]\nid = \"p\"\napps = [\"web-app\"]\n",
            spool = directory.join("spool").display(),
            data = directory.join("data").display()
        ),
    )
    .unwrap();
    let collector = start_clickstream(&config, "ingest", port, directory);
    (collector, port)
}

fn run_page(port: u16, expect_blocked: bool) -> String {
    let script = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("browser/run.mjs");
    assert!(Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("browser/node_modules").is_dir(), "run the tests through local/test, which installs e2e/browser's npm packages");
    let output = Command::new("node")
        .arg(script)
        .env("COLLECTOR_URL", format!("http://127.0.0.1:{port}/collect"))
        .env("APP_ID", "web-app")
        .env("EXPECT_BLOCKED", if expect_blocked { "1" } else { "0" })
        .output()
        .expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser run failed:\n{text}");
    text
}

/// Event names in the raw objects the collector wrote under `data`.
fn stored_event_names(data: &Path) -> Vec<String> {
    use std::io::Read;
    let mut names = Vec::new();
    let mut pending = vec![data.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                let events: Vec<serde_json::Value> = serde_json::from_str(record["data"].as_str().unwrap()).unwrap();
                names.extend(events.iter().map(|event| event["event_type"].as_str().unwrap().to_string()));
            }
        }
    }
    names
}

#[test]
fn the_web_sdk_sends_from_an_allowed_origin() {
    let directory = tempfile::tempdir().unwrap();
    let (mut collector, port) = start_collector(directory.path(), r#"["http://127.0.0.1:*"]"#);
    run_page(port, false);
    assert!(collector.terminate(Duration::from_secs(30)).success(), "{}", collector.log());
    let names = stored_event_names(&directory.path().join("data"));
    assert!(names.iter().any(|name| name == "browser_test_click"), "{names:?}");
    assert!(names.iter().any(|name| name == "_page_view"), "the SDK's automatic page view: {names:?}");
}

#[test]
fn the_web_sdk_is_blocked_from_an_origin_not_allowed() {
    let directory = tempfile::tempdir().unwrap();
    let (mut collector, port) = start_collector(directory.path(), r#"["https://shop.example.com"]"#);
    run_page(port, true);
    assert!(collector.terminate(Duration::from_secs(30)).success(), "{}", collector.log());
    assert!(stored_event_names(&directory.path().join("data")).is_empty());
}
