//! Reporting query benchmark: event trend, funnel (4 steps, 1-day window), retention (8 weekly
//! cohorts) and path (top 20 next pages) over generated events, on DuckDB through the
//! `reporting` builders, and in the same run the same questions in chDB (embedded ClickHouse)
//! over the same Parquet file (bench/reporting/chdb_queries.py). Prints p50 / p95 per query
//! and engine, and whether each goal holds. Run it through `bench/reporting`, which installs
//! chDB and passes:
//!
//!   BENCH_REPORTING_EVENTS  events to generate (default 10,000,000)
//!   BENCH_REPORTING_DATA    directory of the generated Parquet (kept between runs)
//!   BENCH_REPORTING_RUNS    timed runs per query (default 10, after one warm-up)
//!   BENCH_CHDB_PYTHON       a python with chdb installed (the chDB half is skipped without it)
//!   BENCH_REPORTING_WAREHOUSE  also write the table into this DuckDB file (for the dashboards)

use std::{path::PathBuf, process::Command, time::Instant};

use chrono::NaiveDate;
use clickstream_reporting::{
    AppScope, Dialect, Exploration, build_exploration,
    query::{DateRange, EventAnalysis, FunnelAnalysis, Granularity, Measure, PathAnalysis, PathNode, PathSplit, RetentionAnalysis},
    run_on_duckdb,
};

const APP: &str = "bench";
/// The generated events span 8 weeks from this Monday.
const FIRST_DAY: (i32, u32, u32) = (2026, 9, 7);
const WEEKS: i64 = 8;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Sessions of 10 events (1M sessions for 10M events) of 300,000 users, spread over 8 weeks;
/// a session's events 30 s apart in order: a page view first, then page views, item views,
/// carts, checkouts and purchases with decreasing odds, so funnels, paths and cohorts have
/// realistic shapes. Pages follow a skewed (cubic) popularity over 500 paths.
fn generate(file: &PathBuf, events: u64) {
    let first_millis = NaiveDate::from_ymd_opt(FIRST_DAY.0, FIRST_DAY.1, FIRST_DAY.2).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let span_millis = WEEKS * 7 * 86_400_000 - 3_600_000;
    let connection = duckdb::Connection::open_in_memory().unwrap();
    let started = Instant::now();
    connection
        .execute_batch(&format!(
            "COPY (
               WITH numbered AS (SELECT range AS i, range // 10 AS session, range % 10 AS position, (hash(range) % 1000000) / 1000000.0 AS roll FROM range({events}))
               SELECT 'e' || i AS event_id,
                      CASE WHEN position = 0 OR roll < 0.55 THEN '_page_view' WHEN roll < 0.75 THEN 'view_item' WHEN roll < 0.87 THEN 'add_to_cart'
                           WHEN roll < 0.94 THEN 'begin_checkout' WHEN roll < 0.97 THEN 'purchase' ELSE 'click' END AS event_name,
                      'u' || ((session * 7919) % 300000) AS user_pseudo_id,
                      's' || session AS session_id,
                      {first_millis} + (hash(session) % {span_millis})::BIGINT + position * 30000 AS event_time_msec,
                      CASE WHEN position = 0 OR roll < 0.55 THEN '/page/' || floor(pow((hash(i * 31) % 1000) / 1000.0, 3) * 500)::INTEGER END AS page_view_page_url_path,
                      CASE WHEN roll >= 0.94 AND roll < 0.97 THEN 10 + (hash(i) % 90) END::DOUBLE AS event_value,
                      'Web' AS platform
               FROM numbered ORDER BY event_time_msec
             ) TO '{}' (FORMAT parquet, COMPRESSION snappy);",
            file.display()
        ))
        .unwrap();
    eprintln!("generated {events} events into {} in {:.1} s", file.display(), started.elapsed().as_secs_f64());
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let events = env_number("BENCH_REPORTING_EVENTS", 10_000_000);
    let runs = env_number("BENCH_REPORTING_RUNS", 10) as usize;
    let data = PathBuf::from(std::env::var("BENCH_REPORTING_DATA").unwrap_or_else(|_| std::env::temp_dir().join("clickstream-bench-reporting").display().to_string()));
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join(format!("events-{events}.parquet"));
    if !file.exists() {
        generate(&file, events);
    }

    // The warehouse as the loads leave it: the app's `event_v2` table with every column of the
    // ETL's schema (the generated ones filled, the others null), here from the Parquet.
    let connection = duckdb::Connection::open_in_memory().unwrap();
    let started = Instant::now();
    let schema_file = data.join("event_v2-schema.parquet");
    parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&schema_file).unwrap(), clickstream_etl::tables::event_v2::schema(), None).unwrap().close().unwrap();
    let generated_columns = "event_id, event_name, user_pseudo_id, session_id, event_time_msec, page_view_page_url_path, event_value, platform";
    connection
        .execute_batch(&format!(
            "CREATE SCHEMA {APP}; CREATE TABLE {APP}.event_v2 AS SELECT * FROM read_parquet('{}');
             INSERT INTO {APP}.event_v2 ({generated_columns}) SELECT {generated_columns} FROM read_parquet('{}');",
            schema_file.display(),
            file.display()
        ))
        .unwrap();
    eprintln!("DuckDB loaded the table in {:.1} s", started.elapsed().as_secs_f64());
    // The reporting aggregates, as the load workflow's last step rebuilds them: the funnel and
    // the path read the sequence tables among them.
    let started = Instant::now();
    for statement in clickstream_reporting::aggregates::refresh_statements(APP, Dialect::DuckDb) {
        connection.execute(&statement, []).unwrap();
    }
    eprintln!("refreshed the reporting aggregates, sequences included, in {:.1} s", started.elapsed().as_secs_f64());
    // The same table in a warehouse file, for the dashboards' render timing (bench/reporting/run
    // serves it with `clickstream console`).
    if let Ok(warehouse) = std::env::var("BENCH_REPORTING_WAREHOUSE") {
        let _ = std::fs::remove_file(&warehouse);
        connection.execute_batch(&format!("ATTACH '{warehouse}' AS warehouse; CREATE SCHEMA warehouse.{APP}; CREATE TABLE warehouse.{APP}.event_v2 AS SELECT * FROM {APP}.event_v2; DETACH warehouse;")).unwrap();
        eprintln!("wrote the warehouse file {warehouse}");
        // The reporting aggregates, as the load workflow's last step rebuilds them.
        let started = Instant::now();
        let warehouse = duckdb::Connection::open(&warehouse).unwrap();
        let mut aggregate_rows = 0;
        for statement in clickstream_reporting::aggregates::refresh_statements(APP, Dialect::DuckDb) {
            aggregate_rows += warehouse.execute(&statement, []).unwrap();
        }
        eprintln!("refreshed the reporting aggregates ({aggregate_rows} rows) in {:.1} s", started.elapsed().as_secs_f64());
    }

    let first = NaiveDate::from_ymd_opt(FIRST_DAY.0, FIRST_DAY.1, FIRST_DAY.2).unwrap();
    let range = DateRange { from: first, to: first + chrono::Duration::days(WEEKS * 7 - 1) };
    let queries: Vec<(&str, Exploration)> = vec![
        ("event trend", Exploration::Event(EventAnalysis { range, events: Vec::new(), measure: Measure::Count, granularity: Granularity::Day, group_by: None, filters: Vec::new() })),
        (
            "funnel (4 steps, 1 day)",
            Exploration::Funnel(FunnelAnalysis { range, steps: ["_page_view", "view_item", "add_to_cart", "purchase"].map(String::from).to_vec(), window_seconds: 86_400, group_by: None, filters: Vec::new() }),
        ),
        (
            "retention (8 weekly cohorts)",
            Exploration::Retention(RetentionAnalysis { range, start_event: "_page_view".into(), return_event: "_page_view".into(), granularity: Granularity::Week, periods: 7, filters: Vec::new() }),
        ),
        (
            "path (top 20 next pages)",
            Exploration::Path(PathAnalysis { range, node: PathNode::Page, split: PathSplit::Session, start: None, max_steps: 2, top_flows_per_step: 20, filters: Vec::new() }),
        ),
    ];
    let scope = AppScope::new(APP, "UTC").unwrap();
    let mut duckdb_figures = Vec::new();
    for (name, exploration) in &queries {
        let statement = build_exploration(exploration, &scope, Dialect::DuckDb);
        let rows = run_on_duckdb(&connection, &statement).unwrap().rows.len();
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                run_on_duckdb(&connection, &statement).unwrap();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        eprintln!("duckdb {name}: {rows} rows, p50 {:.0} ms", percentile(&times, 0.5));
        duckdb_figures.push((percentile(&times, 0.5), percentile(&times, 0.95), rows));
    }

    // chDB over the same file, same questions (its own SQL; see the script).
    let chdb: Option<serde_json::Value> = std::env::var("BENCH_CHDB_PYTHON").ok().map(|python| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/reporting/chdb_queries.py");
        let output = Command::new(python).arg(script).arg(&file).arg(range.from.to_string()).arg(range.to.to_string()).arg(runs.to_string()).output().expect("python runs");
        assert!(output.status.success(), "chDB run failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("the chDB script prints JSON")
    });

    println!("\n{events} events, {runs} runs per query after a warm-up, DuckDB {} threads (this machine's cores)\n", std::thread::available_parallelism().map_or(1, |cores| cores.get()));
    println!("| query | DuckDB p50 ms | DuckDB p95 ms | chDB p50 ms | chDB p95 ms | DuckDB / chDB (p95) | ≤ 1 s p95 | ≤ 1.5× chDB |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for ((name, _), (p50, p95, _rows)) in queries.iter().zip(&duckdb_figures) {
        let chdb_figures = chdb.as_ref().map(|answer| (answer[*name]["p50_ms"].as_f64().unwrap_or(f64::NAN), answer[*name]["p95_ms"].as_f64().unwrap_or(f64::NAN)));
        let (chdb_p50, chdb_p95) = chdb_figures.unwrap_or((f64::NAN, f64::NAN));
        let ratio = p95 / chdb_p95;
        println!(
            "| {name} | {p50:.0} | {p95:.0} | {chdb_p50:.0} | {chdb_p95:.0} | {ratio:.2} | {} | {} |",
            if *p95 <= 1000.0 { "met" } else { "NOT met" },
            if chdb_figures.is_none() { "not measured" } else if ratio <= 1.5 { "met" } else { "NOT met" }
        );
    }
}
