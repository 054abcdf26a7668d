//! The dataset of the reporting tests, worked out by hand in the tests (see explorations.rs),
//! and the helpers that run a query on DuckDB and compare its Redshift SQL to a golden file.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::NaiveDate;
use clickstream_reporting::{AppScope, Catalog, Dialect, Exploration, ResultTable, build_exploration, check_exploration, query::DateRange, run_on_duckdb};
use serde_json::{Value, json};

pub const APP: &str = "shop-web";
pub const DAY_ZERO_MILLIS: i64 = 1_793_577_600_000; // 2026-11-02T00:00:00Z

pub struct Event {
    pub id: &'static str,
    pub name: &'static str,
    user: &'static str,
    session: &'static str,
    day: i64,
    hour: i64,
    minute: i64,
    value: Option<f64>,
    path: Option<&'static str>,
    price: Option<&'static str>,
}

pub const fn event(id: &'static str, name: &'static str, user: &'static str, session: &'static str, (day, hour, minute): (i64, i64, i64)) -> Event {
    Event { id, name, user, session, day, hour, minute, value: None, path: None, price: None }
}

pub fn dataset() -> Vec<Event> {
    let pv = |id, user, session, at, path| Event { path: Some(path), ..event(id, "_page_view", user, session, at) };
    let cart = |id, user, session, at, price| Event { price: Some(price), ..event(id, "add_to_cart", user, session, at) };
    let purchase = |id, user, session, at, value| Event { value: Some(value), ..event(id, "purchase", user, session, at) };
    vec![
        event("e00", "_first_open", "u1", "s1", (0, 9, 59)),
        pv("e01", "u1", "s1", (0, 10, 0), "/home"),
        pv("e02", "u1", "s1", (0, 10, 1), "/product"),
        cart("e03", "u1", "s1", (0, 10, 2), "10"),
        purchase("e04", "u1", "s1", (0, 10, 5), 100.0),
        pv("e05", "u1", "s2", (1, 9, 0), "/home"),
        pv("e06", "u2", "s3", (0, 11, 0), "/home"),
        pv("e07", "u2", "s3", (0, 11, 10), "/product"),
        cart("e08", "u2", "s3", (0, 11, 20), "25"),
        pv("e09", "u2", "s8", (0, 20, 0), "/product"),
        purchase("e10", "u2", "s6", (2, 12, 0), 50.0),
        event("e16", "_first_open", "u3", "s4", (1, 7, 59)),
        pv("e11", "u3", "s4", (1, 8, 0), "/home"),
        pv("e12", "u3", "s4", (1, 8, 30), "/about"),
        pv("e13", "u3", "s5", (8, 8, 0), "/home"),
        cart("e14", "u4", "s7", (0, 12, 0), "5"),
        purchase("e15", "u4", "s7", (0, 12, 30), 30.0),
    ]
}

pub fn country_of(user: &str) -> &'static str {
    match user {
        "u1" | "u3" => "US",
        "u2" => "DE",
        _ => "FR",
    }
}

pub fn sql_text(text: Option<&str>) -> String {
    text.map_or("NULL".into(), |text| format!("'{}'", text.replace('\'', "''")))
}

/// An empty table in `"shop-web"` with one of the ETL's schemas: an empty Parquet file of
/// that schema, loaded the way the warehouse loads the ETL's files, so the columns have the
/// types the builders meet in the real warehouse.
fn create_table(connection: &duckdb::Connection, name: &str, schema: arrow::datatypes::SchemaRef) {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join(format!("{name}.parquet"));
    parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&file).unwrap(), schema, None).unwrap().close().unwrap();
    connection.execute_batch(&format!("CREATE TABLE \"shop-web\".{name} AS SELECT * FROM read_parquet('{}');", file.display())).unwrap();
}

/// A DuckDB with the dataset in `"shop-web".event_v2` / `user_v2`.
pub fn warehouse() -> duckdb::Connection {
    let connection = duckdb::Connection::open_in_memory().unwrap();
    connection.execute_batch("CREATE SCHEMA \"shop-web\";").unwrap();
    create_table(&connection, "event_v2", clickstream_etl::tables::event_v2::schema());
    create_table(&connection, "user_v2", clickstream_etl::tables::user_v2::schema());
    connection
        .execute_batch(
            "INSERT INTO \"shop-web\".user_v2 (user_pseudo_id, user_properties) VALUES
                 ('u1', MAP {'plan': {'value': 'pro', 'type': 'string', 'set_time_msec': 0}}),
                 ('u2', MAP {'plan': {'value': 'free', 'type': 'string', 'set_time_msec': 0}});",
        )
        .unwrap();
    for event in dataset() {
        let millis = DAY_ZERO_MILLIS + ((event.day * 24 + event.hour) * 60 + event.minute) * 60_000;
        let parameters = match event.price {
            Some(price) => format!("MAP {{'price': {{'value': '{price}', 'type': 'string'}}, 'it''s': {{'value': 'quoted', 'type': 'string'}}}}"),
            None => "MAP {}".into(),
        };
        connection
            .execute_batch(&format!(
                "INSERT INTO \"shop-web\".event_v2 (event_id, event_name, user_pseudo_id, session_id, event_time_msec, event_value, geo_country, platform,
                     page_view_page_url_path, device_screen_width, device_screen_height, custom_parameters)
                 VALUES ('{}', '{}', '{}', '{}', {millis}, {}, '{}', 'Web', {}, 1280, 800, {parameters});",
                event.id,
                event.name,
                event.user,
                event.session,
                event.value.map_or("NULL".into(), |value| value.to_string()),
                country_of(event.user),
                sql_text(event.path),
            ))
            .unwrap();
    }
    for statement in clickstream_reporting::aggregates::refresh_statements(APP, Dialect::DuckDb) {
        connection.execute_batch(&statement).unwrap_or_else(|error| panic!("{error}\n{statement}"));
    }
    connection
}

pub fn catalog() -> Catalog {
    Catalog {
        events: ["_page_view", "add_to_cart", "purchase"].map(String::from).into(),
        event_parameters: ["price", "it's"].map(String::from).into(),
        user_attributes: ["plan"].map(String::from).into(),
    }
}

pub fn day(offset: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).unwrap() + chrono::Duration::days(offset)
}

pub fn range(from: i64, to: i64) -> DateRange {
    DateRange { from: day(from), to: day(to) }
}

pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

/// Runs an exploration on DuckDB (UTC app unless `zone` says otherwise) after checking it,
/// and compares its Redshift SQL to `tests/golden/<golden>.redshift.sql`.
pub fn answer(golden: &str, exploration: Exploration) -> ResultTable {
    answer_in_zone(golden, exploration, "UTC")
}

pub fn answer_in_zone(golden: &str, exploration: Exploration, zone: &str) -> ResultTable {
    check_exploration(&exploration, &catalog()).unwrap_or_else(|error| panic!("{golden}: {error}"));
    let scope = AppScope::new(APP, zone).unwrap();
    let redshift = build_exploration(&exploration, &scope, Dialect::Redshift);
    compare_golden(golden, &format!("{}\n-- parameters: {}\n", redshift.sql, serde_json::to_string(&redshift.parameters).unwrap()));
    let statement = build_exploration(&exploration, &scope, Dialect::DuckDb);
    run_on_duckdb(&warehouse(), &statement).unwrap_or_else(|error| panic!("{golden}: {error}\n{}", statement.sql))
}

/// Constructs DuckDB accepts and Redshift does not: none may reach a Redshift statement.
const DUCKDB_ONLY: [&str; 7] = ["WINDOW ", "GROUP BY ALL", "min_by(", "max_by(", "$1", " AS VARCHAR)", "epoch_ms("];

pub fn compare_golden(name: &str, actual: &str) {
    for construct in DUCKDB_ONLY {
        assert!(!actual.contains(construct), "the Redshift SQL of {name} uses `{construct}`, which Redshift does not accept:\n{actual}");
    }
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.redshift.sql"));
    if std::env::var("CLICKSTREAM_BLESS").is_ok_and(|value| value == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing: run with CLICKSTREAM_BLESS=1 to write it", path.display()));
    assert_eq!(actual, expected, "the Redshift SQL of {name} changed; if on purpose, rerun with CLICKSTREAM_BLESS=1 and review the diff");
}

/// Rows as JSON arrays, floats rounded to 4 decimals so hand-computed fractions compare.
pub fn rows(table: &ResultTable) -> Vec<Value> {
    table
        .rows
        .iter()
        .map(|row| {
            Value::Array(
                row.iter()
                    .map(|value| match value {
                        Value::Number(number) if number.is_f64() => json!((number.as_f64().unwrap() * 10_000.0).round() / 10_000.0),
                        other => other.clone(),
                    })
                    .collect(),
            )
        })
        .collect()
}

