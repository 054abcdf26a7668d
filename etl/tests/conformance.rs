//! Conformance with CAoA: every raw fixture from CAoA's test resources processes without a
//! crash (the broken ones quarantined with a reason), and the rows CAoA's transformer produced
//! for them (`shared/fixtures/caoa/expected/`) come out equal, column by column, except the
//! run-specific ones. The run goes through the same code as `clickstream etl run`: Parquet is
//! written, published to a store, and read back here.

use std::{
    collections::HashSet,
    io::{BufRead, Read},
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow::array::RecordBatch;
use clickstream_etl::{
    enrich::{EnricherKind, EnrichmentResources, TrafficRuleBook},
    job::JobSettings,
    runner::{CompleteRun, OutputLayout, RunReport},
    transform::{QualityRules, Quarantined},
};
use object_store::local::LocalFileSystem;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

const PROJECT: &str = "test_project_id_01";

fn fixtures() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("../../shared/fixtures/caoa")
}

/// CAoA's TransformerV3 without its UA and IP enrichers: what the expected rows show.
const TRANSFORMER_V3_CHAIN: [EnricherKind; 2] = [EnricherKind::PageUrl, EnricherKind::TrafficSource];

async fn run_fixture(name: &str, apps: &[&str], output: &Path) -> RunReport {
    let input = Arc::new(LocalFileSystem::new_with_prefix(fixtures().join("raw")).unwrap());
    let output_store = Arc::new(LocalFileSystem::new_with_prefix(output).unwrap());
    let settings = JobSettings {
        rules: QualityRules {
            project_id: PROJECT.into(),
            apps: apps.iter().map(|app| app.to_string()).collect(),
            freshness_msec: 72 * 3_600_000,
            correct_clock_skew: true,
        },
        enrichers: TRANSFORMER_V3_CHAIN.to_vec(),
        plugins: Vec::new(),
        transformer: None,
        filter_bots: true,
        job_id: "conformance".into(),
    };
    CompleteRun {
        resources: Arc::new(EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only())),
        settings,
        input,
        keys: vec![name.to_string()],
        output: output_store,
        layout: OutputLayout::for_directory(),
        user_keep_days: 180 * 365,
        now: chrono::Utc::now(),
    }
    .run(Box::new(|_, _| {}))
    .await
    .unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Every row of a table in the output directory, as JSON objects.
fn rows_of(output: &Path, table: &str) -> Vec<Map<String, Value>> {
    let mut rows = Vec::new();
    let mut stack = vec![output.join(table)];
    let mut files = Vec::new();
    while let Some(directory) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|extension| extension == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        let mut writer = arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow::json::writer::JsonArray>(Vec::new());
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        let json: Vec<Map<String, Value>> = serde_json::from_slice(&writer.into_inner()).unwrap();
        rows.extend(json);
    }
    rows
}

fn expected(name: &str) -> Map<String, Value> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap()).unwrap()
}

/// Keys of `process_info` that name the run (job, time, input file) rather than the data.
const RUN_SPECIFIC_PROCESS_INFO: [&str; 3] = ["input_file_name", "process_job_id", "process_time"];

/// Compares a produced row with CAoA's, column by column. `created_time` is the run's time;
/// `event_timestamp` is printed by Spark to the second.
fn assert_row_matches(produced: &Map<String, Value>, expected: &Map<String, Value>, what: &str) {
    let produced_columns: HashSet<&String> = produced.keys().collect();
    let expected_columns: HashSet<&String> = expected.keys().collect();
    assert_eq!(produced_columns, expected_columns, "{what}: columns differ");
    let mut differences = Vec::new();
    for (column, expected_value) in expected {
        let produced_value = &produced[column];
        match column.as_str() {
            "created_time" => {}
            "event_timestamp" => {
                let produced_text = produced_value.as_str().unwrap_or_default();
                let as_spark_prints = produced_text.replace('T', " ").chars().take(19).collect::<String>();
                if Value::String(as_spark_prints.clone()) != *expected_value {
                    differences.push(format!("{column}: produced {produced_text} ({as_spark_prints}), CAoA {expected_value}"));
                }
            }
            "process_info" => {
                let produced_map = produced_value.as_object().cloned().unwrap_or_default();
                for (key, value) in expected_value.as_object().unwrap() {
                    if RUN_SPECIFIC_PROCESS_INFO.contains(&key.as_str()) {
                        assert!(produced_map.contains_key(key), "{what}: process_info lacks {key}");
                        continue;
                    }
                    if produced_map.get(key).unwrap_or(&Value::Null) != value {
                        differences.push(format!("process_info.{key}: produced {:?}, CAoA {value}", produced_map.get(key)));
                    }
                }
            }
            _ if produced_value != expected_value => differences.push(format!("{column}: produced {produced_value}, CAoA {expected_value}")),
            _ => {}
        }
    }
    assert!(differences.is_empty(), "{what} differs from CAoA:\n  {}", differences.join("\n  "));
}

fn find<'a>(rows: &'a [Map<String, Value>], column: &str, value: &str) -> &'a Map<String, Value> {
    rows.iter().find(|row| row[column] == value).unwrap_or_else(|| panic!("no row with {column} = {value} in {rows:?}"))
}

#[tokio::test]
async fn event_and_item_rows_equal_caoas() {
    let output = tempfile::tempdir().unwrap();
    let report = run_fixture("original_data_with_items.json", &["uba-app"], output.path()).await;
    assert_eq!(report.counters.events_out, 1);
    let events = rows_of(output.path(), "event_v2");
    assert_row_matches(&events[0], &expected("transform_v3_event.json"), "event_v2 of original_data_with_items.json");
    let items = rows_of(output.path(), "item_v2");
    assert_eq!(items.len(), 3);
    assert_row_matches(find(&items, "item_id", "item_id034394ldmf3"), &expected("transform_v3_item.json"), "item_v2 item_id034394ldmf3");
}

#[tokio::test]
async fn gzip_records_give_caoas_event_row() {
    let output = tempfile::tempdir().unwrap();
    run_fixture("original_data.json", &["uba-app"], output.path()).await;
    let events = rows_of(output.path(), "event_v2");
    let expected_row = expected("transform_v3_gzip_event.json");
    let produced = find(&events, "event_name", "Click3");
    assert_row_matches(produced, &expected_row, "event_v2 of original_data.json");
}

#[tokio::test]
async fn the_user_row_equals_caoas() {
    let output = tempfile::tempdir().unwrap();
    run_fixture("original_data_with_user_profile_set.json", &["uba-app"], output.path()).await;
    let users = rows_of(output.path(), "user_v2");
    let user_rows: Vec<_> = users.iter().filter(|row| row["user_pseudo_id"] == "uuid1-231jdf").collect();
    assert_eq!(user_rows.len(), 1, "one row for the user");
    assert_row_matches(user_rows[0], &expected("transform_v3_user.json"), "user_v2 uuid1-231jdf");
}

fn quarantined(output: &Path, report: &RunReport) -> Vec<Quarantined> {
    let Some(key) = &report.quarantine_key else {
        return Vec::new();
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(output.join(key)).unwrap()).read_to_string(&mut text).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn every_caoa_fixture_processes_and_broken_ones_are_quarantined_with_a_reason() {
    // What each file holds, as CAoA's tests describe it.
    let outcomes: [(&str, u64, u64); 15] = [
        // (file, events written, records or events quarantined)
        ("original_data.json", 2, 0),
        ("original_data_nozip.json", 1, 0),
        ("original_data_nozip_client_time.json", 3, 0),
        ("original_data_null.json", 0, 2),
        ("original_data_raw_json_error.json", 0, 1),
        ("original_data_raw_text_error.json", 0, 1),
        ("original_data_with_error.json", 0, 1),
        ("original_data_with_empty_item.json", 0, 1),
        ("original_data_single.json", 1, 0),
        ("original_data_with_future_time.json", 0, 0),
        ("original_data_with_app_start.json", 0, 0),
        ("original_data_with_empty_user.json", 1, 0),
        ("original_data_with_first_open.json", 3, 0),
        ("original_data_with_items.json", 1, 0),
        ("original_data_with_user_profile_set.json", 2, 0),
    ];
    let on_disk: HashSet<String> = std::fs::read_dir(fixtures().join("raw")).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().to_string()).collect();
    let listed: HashSet<String> = outcomes.iter().map(|(name, _, _)| name.to_string()).chain(["original_data_without_seq_id.json".to_string()]).collect();
    assert_eq!(on_disk, listed, "every raw fixture is covered");

    for (name, events_out, quarantined_count) in outcomes {
        let output = tempfile::tempdir().unwrap();
        let report = run_fixture(name, &["uba-app"], output.path()).await;
        let lines = std::io::BufReader::new(std::fs::File::open(fixtures().join("raw").join(name)).unwrap()).lines().filter(|line| !line.as_ref().unwrap().trim().is_empty()).count();
        assert_eq!(report.counters.raw_records, lines as u64, "{name}: every record is read");
        assert_eq!(report.counters.events_out, events_out, "{name}: events written ({:?})", report.counters);
        assert_eq!(report.counters.quarantined_records + report.counters.quarantined_events, quarantined_count, "{name}: quarantined ({:?})", report.counters);
        let records = quarantined(output.path(), &report);
        assert_eq!(records.len() as u64, quarantined_count, "{name}: one quarantine record each");
        for record in records {
            assert!(!record.reason.is_empty() && !record.original.is_empty() && record.input == name, "{name}: {record:?}");
        }
    }
}

#[tokio::test]
async fn filtered_events_are_counted_by_rule() {
    let output = tempfile::tempdir().unwrap();
    // Another app's events: filtered and counted, not quarantined.
    let report = run_fixture("original_data_with_app_start.json", &["uba-app"], output.path()).await;
    assert_eq!(report.counters.filtered_unknown_app, report.counters.events_in);
    assert!(report.counters.events_in > 0);
    // The future Click3 is filtered; the `_profile_set` beside it is exempt and kept.
    let report = run_fixture("original_data_with_future_time.json", &["test-clean-future"], output.path()).await;
    assert_eq!(report.counters.filtered_future, 1);
    assert_eq!(report.counters.events_out, 1);
    let events = rows_of(output.path(), "event_v2");
    assert_eq!(events[0]["event_name"], "_profile_set");
}

#[tokio::test]
async fn bundle_sequence_ids_come_from_the_request_uri() {
    let output = tempfile::tempdir().unwrap();
    let report = run_fixture("original_data_without_seq_id.json", &["uba-app"], output.path()).await;
    assert_eq!(report.counters.events_out, 3, "{:?}", report.counters);
    let mut ids: Vec<Value> = rows_of(output.path(), "event_v2").iter().map(|row| row["event_bundle_sequence_id"].clone()).collect();
    ids.sort_by_key(|value| value.as_i64());
    assert_eq!(ids, vec![Value::Null, Value::Null, Value::from(123456)]);
}

/// The Spark type CAoA declares for an Arrow type we write.
fn spark_type(data_type: &arrow::datatypes::DataType) -> Value {
    use arrow::datatypes::DataType;
    match data_type {
        DataType::Utf8 => "string".into(),
        DataType::Int64 => "long".into(),
        DataType::Int32 => "integer".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Map(entries, _) => {
            let DataType::Struct(fields) = entries.data_type() else { panic!("map entries are a struct") };
            serde_json::json!({"type": "map", "keyType": spark_type(fields[0].data_type()), "valueType": spark_type(fields[1].data_type()), "valueContainsNull": true})
        }
        DataType::Struct(fields) => serde_json::json!({
            "type": "struct",
            "fields": fields.iter().map(|field| serde_json::json!({"name": field.name(), "type": spark_type(field.data_type()), "nullable": true, "metadata": {}})).collect::<Vec<_>>()
        }),
        other => panic!("no Spark type for {other}"),
    }
}

#[test]
fn the_four_tables_have_caoas_schemas() {
    use clickstream_etl::tables;
    for (table, schema) in [
        ("event_v2", tables::event_v2::schema()),
        ("item_v2", tables::item_v2::schema()),
        ("user_v2", tables::user_v2::schema()),
        ("session", tables::session::schema()),
    ] {
        let caoa: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("schema").join(format!("{table}.json"))).unwrap()).unwrap();
        let caoa_fields = caoa["fields"].as_array().unwrap();
        let caoa_columns: Vec<(&str, &Value)> = caoa_fields.iter().map(|field| (field["name"].as_str().unwrap(), &field["type"])).collect();
        let our_columns: Vec<(String, Value)> = schema.fields().iter().map(|field| (field.name().clone(), spark_type(field.data_type()))).collect();
        assert_eq!(our_columns.len(), caoa_columns.len(), "{table}: column count");
        for ((ours, our_type), (theirs, their_type)) in our_columns.iter().zip(&caoa_columns) {
            assert_eq!(ours, theirs, "{table}: column order");
            assert_eq!(our_type, *their_type, "{table}.{ours}: type");
        }
        assert!(schema.fields().iter().all(|field| field.is_nullable()), "{table}: every column is nullable, as in CAoA");
    }
}
