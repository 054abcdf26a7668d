//! `clickstream etl generate` and `clickstream etl run` as a user runs them: generated raw data
//! in, the four tables and a quarantine file out, a JSON report on stdout, exit status 2 for a
//! wrong request and 1 for a failed run; and the same run from and to S3 (moto).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use clickstream_e2e::{MotoServer, clickstream_binary};
use object_store::ObjectStore;
use serde_json::Value;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("stdout is not the JSON report ({error}): {}\n{}", self.stdout, self.stderr))
    }
}

fn clickstream(arguments: &[&str], config: Option<&Path>) -> Outcome {
    let mut command = Command::new(clickstream_binary());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = command
        .args(arguments)
        .env_remove("CLICKSTREAM_CONFIG")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("the binary runs");
    Outcome { code: output.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&output.stdout).into(), stderr: String::from_utf8_lossy(&output.stderr).into() }
}

fn generate(directory: &Path, events: u64, apps: &str) {
    let outcome = clickstream(&["etl", "generate", "--output", directory.to_str().unwrap(), "--events", &events.to_string(), "--apps", apps], None);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
}

/// Relative paths of the files under `directory`, sorted.
fn files_under(directory: &Path) -> Vec<String> {
    fn walk(root: &Path, directory: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(directory).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut found = Vec::new();
    walk(directory, directory, &mut found);
    found.sort();
    found
}

fn counter(report: &Value, name: &str) -> u64 {
    report["counters"][name].as_u64().unwrap_or_else(|| panic!("the report has counters.{name}: {report}"))
}

/// Every event in is accounted for: written, filtered by a named rule, or quarantined.
fn assert_every_event_accounted_for(report: &Value) {
    let accounted = ["events_out", "filtered_unknown_app", "filtered_stale", "filtered_future", "filtered_bot", "quarantined_events"]
        .iter()
        .map(|name| counter(report, name))
        .sum::<u64>();
    assert_eq!(counter(report, "events_in"), accounted, "{report}");
}

#[test]
fn etl_run_writes_the_four_tables_quarantines_corrupt_records_and_keeps_users_across_runs() {
    let directory = tempfile::tempdir().unwrap();
    let raw = directory.path().join("raw");
    let output = directory.path().join("out");
    generate(&raw, 2_000, "shop-web,shop-app");
    // A record that is not JSON and one whose data is not base64-gzip: quarantined, not lost.
    std::fs::write(raw.join("broken.ndjson"), "this is not json\n{\"appId\":\"shop-web\",\"compression\":\"gzip\",\"data\":\"%%%\",\"ingest_time\":1}\n").unwrap();

    let arguments = ["etl", "run", "--input", raw.to_str().unwrap(), "--output", output.to_str().unwrap(), "--project", "shop", "--apps", "shop-web,shop-app"];
    let first = clickstream(&arguments, None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report = first.report();
    assert_eq!(counter(&report, "events_in"), 2_000, "{report}");
    assert_eq!(counter(&report, "quarantined_records"), 2, "{report}");
    assert_eq!(counter(&report, "filtered_unknown_app"), 0, "{report}");
    assert!(counter(&report, "events_out") > 1_900, "{report}");
    assert_every_event_accounted_for(&report);
    assert!(first.stderr.contains("events in 2000"), "the summary is for people: {}", first.stderr);

    let files = files_under(&output);
    for table in ["event_v2", "item_v2", "user_v2", "session"] {
        let parquet: Vec<&String> = files.iter().filter(|path| path.starts_with(&format!("{table}/partition_app=")) && path.ends_with(".parquet")).collect();
        assert!(!parquet.is_empty(), "no {table} Parquet files in {files:?}");
        assert!(parquet.iter().all(|path| path.contains("/partition_year=") && path.contains("/partition_month=") && path.contains("/partition_day=")), "{parquet:?}");
    }
    let quarantine_key = report["quarantine_key"].as_str().expect("a quarantine file is reported");
    assert!(output.join(quarantine_key).is_file(), "{quarantine_key} is not in {files:?}");
    let published: u64 = report["files"].as_array().unwrap().iter().filter(|file| file["table"] == "event_v2").map(|file| file["rows"].as_u64().unwrap()).sum();
    assert_eq!(published, counter(&report, "events_out"), "event_v2 files hold every event written");

    // The second run over the same output finds every user in the state the first one left.
    let second = clickstream(&arguments, None);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let merge = &second.report()["user_merge"];
    assert!(merge["users"].as_u64().unwrap() > 0, "{merge}");
    assert_eq!(merge["returning_users"], merge["users"], "{merge}");
    assert_eq!(report["user_merge"]["returning_users"], 0, "{}", report["user_merge"]);

    // Events of apps outside --apps are filtered and counted.
    let only_web = clickstream(&["etl", "run", "--input", raw.to_str().unwrap(), "--output", directory.path().join("web").to_str().unwrap(), "--project", "shop", "--apps", "shop-web"], None);
    assert_eq!(only_web.code, 0, "{}", only_web.stderr);
    let report = only_web.report();
    assert!(counter(&report, "filtered_unknown_app") > 0, "{report}");
    assert_every_event_accounted_for(&report);
}

#[test]
fn etl_run_refuses_a_wrong_request_with_status_2_and_the_reason() {
    let directory = tempfile::tempdir().unwrap();
    let output = directory.path().join("out");
    let missing = directory.path().join("no-such-input");
    let outcome = clickstream(&["etl", "run", "--input", missing.to_str().unwrap(), "--output", output.to_str().unwrap(), "--project", "shop", "--apps", "a"], None);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("no such file or directory"), "{}", outcome.stderr);

    let raw = directory.path().join("raw");
    generate(&raw, 20, "a");
    let outcome = clickstream(&["etl", "run", "--input", raw.to_str().unwrap(), "--output", output.to_str().unwrap(), "--project", "shop", "--apps", "a", "--enrichers", "page_url,astrology"], None);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("unknown enricher `astrology`"), "{}", outcome.stderr);

    let outcome = clickstream(&["etl", "run", "--input", raw.to_str().unwrap(), "--output", output.to_str().unwrap(), "--project", "not-configured"], None);
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("--apps is required"), "{}", outcome.stderr);
}

#[tokio::test]
async fn etl_run_reads_from_and_writes_to_s3() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    moto.create_bucket("raw").await;
    moto.create_bucket("lake").await;
    let raw = directory.path().join("raw");
    generate(&raw, 200, "shop-web");
    for file in files_under(&raw) {
        moto.bucket("raw").put(&object_store::path::Path::from(format!("incoming/{file}")), std::fs::read(raw.join(&file)).unwrap().into()).await.unwrap();
    }
    let config = directory.path().join("clickstream.toml");
    std::fs::write(&config, format!("[storage]\nurl = \"s3://lake\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n", moto.endpoint())).unwrap();

    let outcome = tokio::task::spawn_blocking(move || {
        clickstream(&["etl", "run", "--input", "s3://raw/incoming", "--output", "s3://lake/tables", "--project", "shop", "--apps", "shop-web"], Some(&config))
    })
    .await
    .unwrap();
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let report = outcome.report();
    assert_eq!(counter(&report, "events_in"), 200, "{report}");
    let keys = moto.list_keys("lake", "tables").await;
    for table in ["event_v2", "item_v2", "user_v2", "session"] {
        assert!(keys.iter().any(|key| key.starts_with(&format!("tables/{table}/partition_app=shop-web/")) && key.ends_with(".parquet")), "no {table} in {keys:?}");
    }

    // A failed run (the output bucket does not exist) exits 1 and says what failed.
    let config = directory.path().join("clickstream.toml");
    let outcome = tokio::task::spawn_blocking(move || {
        clickstream(&["etl", "run", "--input", "s3://raw/incoming", "--output", "s3://no-such-bucket/tables", "--project", "shop", "--apps", "shop-web"], Some(&config))
    })
    .await
    .unwrap();
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("clickstream etl run:"), "{}", outcome.stderr);
}
