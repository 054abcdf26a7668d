//! The local warehouse: DuckDB, one schema per app holding CAoA's `event_v2`, `item_v2`,
//! `user_v2` and `session`, each merged with its own rule ([`MergeRule`]) so that loading a
//! file twice changes nothing.
//!
//! DuckDB allows one writing process per database file, so exactly one process opens it:
//! the one serving the warehouse task queue (the console, or `clickstream dev`). Queries of the
//! console go through the same [`DuckDbWarehouse`].

use std::{path::{Path, PathBuf}, sync::Mutex};

use clickstream_workflows::types::{CatalogSummary, ExpiredRows};

use crate::metadata::{EventCountRow, ValueCountRow};
use clickstream_reporting::Dialect;
use duckdb::{Connection, params};

/// The table the console's event queries read.
const EVENT_TABLE_NAME: &str = clickstream_etl::tables::event_v2::TABLE_NAME;

/// Errors of the warehouse are DuckDB's own; they are retryable (a lock, the disk).
pub type WarehouseError = duckdb::Error;

/// Rebuilds one app's reporting aggregates in one transaction (readers see the old rows or
/// the new); returns the rows of the activity aggregates (the last two statements).
fn refresh_app_aggregates(connection: &mut Connection, app_id: &str) -> Result<u64, duckdb::Error> {
    let transaction = connection.transaction()?;
    let statements = clickstream_reporting::aggregates::refresh_statements(app_id, Dialect::DuckDb);
    let (setup, filling) = statements.split_at(statements.len() - 2);
    transaction.execute_batch(&(setup.join(";\n") + ";"))?;
    let mut rows = 0;
    for insert in filling {
        rows += transaction.execute(insert, [])? as u64;
    }
    transaction.commit()?;
    Ok(rows)
}

pub struct DuckDbWarehouse {
    connection: Mutex<Connection>,
    path: PathBuf,
}

/// How the rows of a table merge with what the warehouse already has.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeRule {
    /// Rows are facts: a row whose key is already stored is skipped (events, items); of
    /// incoming duplicates, the first by `first_by` is kept.
    InsertNew { key: &'static [&'static str], first_by: &'static str },
    /// Rows are states: per key, the preferred row is kept, by the given order (users keep
    /// their newest state; sessions their earliest non-Direct row). `{row}` in an expression
    /// names the row it is evaluated on; expressions are plain SQL that DuckDB and Redshift
    /// both run (no boolean comparisons, which Redshift lacks).
    KeepPreferred { key: &'static [&'static str], preference: Vec<(&'static str, &'static str)> },
}

impl MergeRule {
    pub fn of_table(table: &str) -> MergeRule {
        match table {
            "item_v2" => MergeRule::InsertNew { key: &["event_id", "item_id"], first_by: "event_timestamp" },
            "user_v2" => MergeRule::KeepPreferred { key: &["user_pseudo_id"], preference: vec![("{row}.event_timestamp", "DESC"), ("{row}.created_time", "DESC")] },
            "session" => MergeRule::KeepPreferred {
                key: &["user_pseudo_id", "session_id"],
                preference: vec![("CASE WHEN {row}.session_source IS NULL OR {row}.session_source = 'Direct' THEN 1 ELSE 0 END", "ASC"), ("{row}.event_timestamp", "ASC")],
            },
            _ => MergeRule::InsertNew { key: &["event_id"], first_by: "ingest_time_msec" },
        }
    }
}

/// SQL that holds when the `incoming` row is preferred to, or ranks equal with, `existing`.
fn preferred_or_equal(preference: &[(&str, &str)]) -> String {
    let mut clauses = Vec::new();
    for (index, (expression, direction)) in preference.iter().enumerate() {
        let incoming = expression.replace("{row}", "incoming");
        let existing = expression.replace("{row}", "existing");
        let better = if *direction == "DESC" { ">" } else { "<" };
        let ties: Vec<String> = preference[..index].iter().map(|(earlier, _)| format!("{} IS NOT DISTINCT FROM {}", earlier.replace("{row}", "incoming"), earlier.replace("{row}", "existing"))).collect();
        let mut clause = ties;
        clause.push(format!("{incoming} {better} {existing}"));
        clauses.push(format!("({})", clause.join(" AND ")));
    }
    let all_equal: Vec<String> = preference.iter().map(|(expression, _)| format!("{} IS NOT DISTINCT FROM {}", expression.replace("{row}", "incoming"), expression.replace("{row}", "existing"))).collect();
    clauses.push(format!("({})", all_equal.join(" AND ")));
    clauses.join(" OR ")
}

/// Adds the columns the incoming files have and the table lacks.
fn add_missing_columns(transaction: &duckdb::Transaction<'_>, app_id: &str, table: &str, target: &str, incoming: &str) -> Result<(), duckdb::Error> {
    let mut existing_statement = transaction.prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?")?;
    let existing: std::collections::HashSet<String> = existing_statement.query_map(params![app_id, table], |row| row.get(0))?.collect::<Result<_, _>>()?;
    let mut incoming_statement = transaction.prepare(&format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {incoming})"))?;
    let columns: Vec<(String, String)> = incoming_statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
    for (name, column_type) in columns {
        if !existing.contains(&name) {
            transaction.execute_batch(&format!("ALTER TABLE {target} ADD COLUMN {} {column_type};", quote_identifier(&name)))?;
        }
    }
    Ok(())
}

/// Events of one day, for the console's chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DailyEventCount {
    pub day: String,
    pub events: u64,
}

fn value_count_row(row: &duckdb::Row<'_>) -> Result<ValueCountRow, duckdb::Error> {
    Ok(ValueCountRow { event_name: row.get(0)?, name: row.get(1)?, value_type: row.get::<_, Option<String>>(2)?.unwrap_or_default(), value: row.get(3)?, count: row.get::<_, i64>(4)? as u64 })
}

/// Quotes an identifier (one definition, shared with the reporting queries).
pub use clickstream_reporting::sql::quote_identifier;

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl DuckDbWarehouse {
    pub fn open(path: &Path) -> Result<DuckDbWarehouse, duckdb::Error> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS main.clickstream_loaded_files (
                url VARCHAR NOT NULL,
                app_id VARCHAR NOT NULL,
                loaded_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
                rows_inserted BIGINT NOT NULL
            );",
        )?;
        let warehouse = DuckDbWarehouse { connection: Mutex::new(connection), path: path.to_path_buf() };
        // Not a reason to refuse the file: the next load's refresh builds them again.
        if let Err(error) = warehouse.build_missing_sequence_aggregates() {
            tracing::warn!(%error, "the reporting aggregates this warehouse file lacks could not be built; the next load's refresh builds them");
        }
        Ok(warehouse)
    }

    /// A warehouse file from before the sequence aggregates (`report_user_events`, which the
    /// explorations read) gets them now rather than at its apps' next load.
    fn build_missing_sequence_aggregates(&self) -> Result<(), duckdb::Error> {
        let mut connection = self.lock();
        let apps: Vec<String> = {
            let mut statement = connection.prepare(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = ? \
                 EXCEPT SELECT table_schema FROM information_schema.tables WHERE table_name = ? ORDER BY 1",
            )?;
            statement.query_map(params![EVENT_TABLE_NAME, clickstream_reporting::aggregates::USER_EVENTS_TABLE], |row| row.get(0))?.collect::<Result<_, _>>()?
        };
        for app_id in apps {
            tracing::info!(%app_id, "building the reporting aggregates this warehouse file lacks");
            refresh_app_aggregates(&mut connection, &app_id)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves DuckDB consistent (statements are atomic).
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Merges local Parquet files of one app's table, with the table's merge rule (see
    /// [`MergeRule`]). Returns the rows inserted (or replaced). Columns the files have and the
    /// table lacks (a table created by an older version) are added first.
    pub fn merge_table_files(&self, app_id: &str, table: &str, files: &[(PathBuf, String)]) -> Result<u64, duckdb::Error> {
        if files.is_empty() {
            return Ok(0);
        }
        let rule = MergeRule::of_table(table);
        let schema = quote_identifier(app_id);
        let target = format!("{schema}.{}", quote_identifier(table));
        let file_list = files.iter().map(|(path, _)| quote_literal(&path.to_string_lossy())).collect::<Vec<_>>().join(", ");
        let incoming = format!("read_parquet([{file_list}])");
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM {incoming} LIMIT 0;"
        ))?;
        // The reporting aggregates exist whenever the events do (empty until the refresh that
        // follows the load), so the dashboards never read a missing table.
        if table == EVENT_TABLE_NAME {
            transaction.execute_batch(&(clickstream_reporting::aggregates::create_statements(app_id, Dialect::DuckDb).join(";\n") + ";"))?;
        }
        add_missing_columns(&transaction, app_id, table, &target, &incoming)?;
        let merged = match rule {
            MergeRule::InsertNew { key, first_by } => {
                let key_list = key.join(", ");
                let matches = key.iter().map(|column| format!("existing.{column} = incoming.{column}")).collect::<Vec<_>>().join(" AND ");
                transaction.execute(
                    &format!(
                        "INSERT INTO {target} BY NAME
                         SELECT * FROM {incoming} AS incoming
                         WHERE NOT EXISTS (SELECT 1 FROM {target} AS existing WHERE {matches})
                         QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY incoming.{first_by} NULLS LAST) = 1"
                    ),
                    [],
                )? as u64
            }
            MergeRule::KeepPreferred { key, preference } => {
                let key_list = key.join(", ");
                let same_key = key.iter().map(|column| format!("existing.{column} IS NOT DISTINCT FROM incoming.{column}")).collect::<Vec<_>>().join(" AND ");
                let order = preference.iter().map(|(expression, direction)| format!("{} {direction}", expression.replace("{row}", "incoming"))).collect::<Vec<_>>().join(", ");
                transaction.execute_batch(&format!(
                    "CREATE OR REPLACE TEMP TABLE clickstream_incoming AS
                     SELECT * FROM {incoming} AS incoming
                     QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY {order}) = 1;"
                ))?;
                // A stored row gives way to an incoming one that is preferred, or equal (a
                // reload of the same file changes nothing).
                let incoming_wins = preferred_or_equal(&preference);
                transaction.execute(&format!("DELETE FROM {target} AS existing USING clickstream_incoming AS incoming WHERE {same_key} AND ({incoming_wins})"), [])?;
                let inserted = transaction.execute(
                    &format!("INSERT INTO {target} BY NAME SELECT * FROM clickstream_incoming AS incoming WHERE NOT EXISTS (SELECT 1 FROM {target} AS existing WHERE {same_key})"),
                    [],
                )? as u64;
                transaction.execute_batch("DROP TABLE clickstream_incoming;")?;
                inserted
            }
        };
        for (index, (_, url)) in files.iter().enumerate() {
            // The row count is recorded once per statement, on its first file.
            let rows = if index == 0 { merged as i64 } else { 0 };
            transaction.execute("INSERT INTO main.clickstream_loaded_files (url, app_id, rows_inserted) VALUES (?, ?, ?)", params![url, app_id, rows])?;
        }
        transaction.commit()?;
        Ok(merged)
    }

    /// Whether an app's schema has the table (a transaction derefs to its connection).
    fn table_exists(connection: &Connection, app_id: &str, table: &str) -> Result<bool, duckdb::Error> {
        let count: i64 = connection.query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            params![app_id, table],
            |row| row.get(0),
        )?;
        Ok(count > 0)
    }

    /// Distinct events of an app with `from_ms <= event time < to_ms`.
    pub fn count_distinct_events(&self, app_id: &str, from_ms: i64, to_ms: i64) -> Result<u64, duckdb::Error> {
        let connection = self.lock();
        if !Self::table_exists(&connection, app_id, EVENT_TABLE_NAME)? {
            return Ok(0);
        }
        let table = format!("{}.{EVENT_TABLE_NAME}", quote_identifier(app_id));
        let count: i64 = connection.query_row(
            &format!("SELECT count(DISTINCT event_id) FROM {table} WHERE event_time_msec >= ? AND event_time_msec < ?"),
            params![from_ms, to_ms],
            |row| row.get(0),
        )?;
        Ok(count as u64)
    }

    /// Distinct events per UTC day, oldest first.
    pub fn events_per_day(&self, app_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<DailyEventCount>, duckdb::Error> {
        let connection = self.lock();
        if !Self::table_exists(&connection, app_id, EVENT_TABLE_NAME)? {
            return Ok(Vec::new());
        }
        let table = format!("{}.{EVENT_TABLE_NAME}", quote_identifier(app_id));
        let mut statement = connection.prepare(&format!(
            "SELECT strftime(epoch_ms(event_time_msec), '%Y-%m-%d') AS day, count(DISTINCT event_id)
             FROM {table} WHERE event_time_msec >= ? AND event_time_msec < ? GROUP BY day ORDER BY day"
        ))?;
        let rows = statement.query_map(params![from_ms, to_ms], |row| {
            Ok(DailyEventCount { day: row.get(0)?, events: row.get::<_, i64>(1)? as u64 })
        })?;
        rows.collect()
    }

    /// Deletes an app's rows whose `event_timestamp` is before `cutoff_ms`: events, items and
    /// sessions that old, and users whose latest activity is that old. One transaction, so a
    /// failure deletes nothing; running it again deletes nothing more.
    pub fn delete_rows_before(&self, app_id: &str, cutoff_ms: i64) -> Result<ExpiredRows, duckdb::Error> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let mut deleted = ExpiredRows::default();
        for (table, counter) in [("event_v2", &mut deleted.events), ("item_v2", &mut deleted.items), ("session", &mut deleted.sessions), ("user_v2", &mut deleted.users)] {
            if !Self::table_exists(&transaction, app_id, table)? {
                continue;
            }
            let target = format!("{}.{}", quote_identifier(app_id), quote_identifier(table));
            *counter = transaction.execute(&format!("DELETE FROM {target} WHERE epoch_ms(event_timestamp) < ?"), params![cutoff_ms])? as u64;
        }
        transaction.commit()?;
        Ok(deleted)
    }

    /// Creates or replaces the views `"<project>_lake".<table>` over the project's Parquet files
    /// under `processed_root` (hive partitioning: the partition columns are the path's), for
    /// each table that has files. New partitions show in the views without a refresh.
    pub fn create_lake_views(&self, project_id: &str, processed_root: &Path) -> Result<CatalogSummary, duckdb::Error> {
        let schema = quote_identifier(&format!("{project_id}_lake"));
        let connection = self.lock();
        connection.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema};"))?;
        let mut summary = CatalogSummary::default();
        for table in crate::catalog::PROCESSED_TABLES {
            let directory = processed_root.join(table);
            if !directory.is_dir() {
                continue;
            }
            let pattern = directory.join("*/*/*/*/*.parquet");
            connection.execute_batch(&format!(
                "CREATE OR REPLACE VIEW {schema}.{} AS SELECT * FROM read_parquet({}, hive_partitioning = true, union_by_name = true);",
                quote_identifier(table),
                quote_literal(&pattern.to_string_lossy())
            ))?;
            summary.tables += 1;
        }
        Ok(summary)
    }

    /// Rebuilds every app's reporting aggregates (`clickstream_reporting::aggregates`) from its
    /// `event_v2`, in one transaction per app, so that the console's dashboards read small
    /// tables. Returns the aggregate rows written.
    pub fn refresh_reporting_aggregates(&self) -> Result<u64, duckdb::Error> {
        let mut connection = self.lock();
        let apps: Vec<String> = {
            let mut statement = connection.prepare("SELECT table_schema FROM information_schema.tables WHERE table_name = ? ORDER BY 1")?;
            statement.query_map(params![EVENT_TABLE_NAME], |row| row.get(0))?.collect::<Result<_, _>>()?
        };
        let mut rows = 0;
        for app_id in apps {
            rows += refresh_app_aggregates(&mut connection, &app_id)?;
        }
        Ok(rows)
    }

    /// The metadata scan's three queries over an app's tables: events per name, day, platform
    /// and SDK; the top values of each event parameter; the top values of each user
    /// attribute. Tables not loaded yet give no rows.
    pub fn metadata_scan_rows(&self, app_id: &str) -> Result<(Vec<EventCountRow>, Vec<ValueCountRow>, Vec<ValueCountRow>), duckdb::Error> {
        let connection = self.lock();
        let schema = quote_identifier(app_id);
        let (mut events, mut parameters, mut attributes) = (Vec::new(), Vec::new(), Vec::new());
        let top = crate::metadata::TOP_VALUES;
        if Self::table_exists(&connection, app_id, EVENT_TABLE_NAME)? {
            let mut statement = connection.prepare(&format!(
                "SELECT event_name, strftime(event_timestamp, '%Y-%m-%d') AS day, platform, sdk_name, count(*)
                 FROM {schema}.{EVENT_TABLE_NAME} WHERE event_name IS NOT NULL GROUP BY ALL"
            ))?;
            events = statement
                .query_map([], |row| Ok(EventCountRow { event_name: row.get(0)?, day: row.get(1)?, platform: row.get(2)?, sdk_name: row.get(3)?, count: row.get::<_, i64>(4)? as u64 }))?
                .collect::<Result<_, _>>()?;
            let mut statement = connection.prepare(&format!(
                "SELECT event_name, name, value_type, value, count(*) AS occurrences FROM (
                     SELECT event_name, entry.key AS name, entry.value.type AS value_type, entry.value.value AS value
                     FROM (SELECT event_name, unnest(map_entries(custom_parameters)) AS entry FROM {schema}.{EVENT_TABLE_NAME} WHERE event_name IS NOT NULL))
                 GROUP BY event_name, name, value_type, value
                 QUALIFY row_number() OVER (PARTITION BY event_name, name, value_type ORDER BY occurrences DESC, value) <= {top}"
            ))?;
            parameters = statement.query_map([], value_count_row)?.collect::<Result<_, _>>()?;
        }
        if Self::table_exists(&connection, app_id, "user_v2")? {
            let mut statement = connection.prepare(&format!(
                "SELECT '' AS event_name, name, value_type, value, count(*) AS occurrences FROM (
                     SELECT entry.key AS name, entry.value.type AS value_type, entry.value.value AS value
                     FROM (SELECT unnest(map_entries(user_properties)) AS entry FROM {schema}.user_v2))
                 GROUP BY name, value_type, value
                 QUALIFY row_number() OVER (PARTITION BY name, value_type ORDER BY occurrences DESC, value) <= {top}"
            ))?;
            attributes = statement.query_map([], value_count_row)?.collect::<Result<_, _>>()?;
        }
        Ok((events, parameters, attributes))
    }

    /// Runs a reporting statement (an exploration or a dashboard panel) of one app. Before the
    /// app's first load there is nothing to read: the answer is an empty table.
    pub fn run_report(&self, app_id: &str, statement: &clickstream_reporting::Statement) -> Result<clickstream_reporting::ResultTable, duckdb::Error> {
        let connection = self.lock();
        if !Self::table_exists(&connection, app_id, EVENT_TABLE_NAME)? {
            return Ok(clickstream_reporting::ResultTable::default());
        }
        clickstream_reporting::run_on_duckdb(&connection, statement)
    }

    /// The names an app's queries may use, read from its tables: event names, and with
    /// `with_parameters` the event parameter and user attribute names too (a full scan of the
    /// maps, for apps the metadata scan has not reached yet).
    pub fn analysis_catalog(&self, app_id: &str, with_parameters: bool) -> Result<clickstream_reporting::Catalog, duckdb::Error> {
        let connection = self.lock();
        let mut catalog = clickstream_reporting::Catalog::default();
        let schema = quote_identifier(app_id);
        let names = |sql: String| -> Result<Vec<String>, duckdb::Error> {
            let mut statement = connection.prepare(&sql)?;
            statement.query_map([], |row| row.get::<_, String>(0))?.collect()
        };
        if Self::table_exists(&connection, app_id, EVENT_TABLE_NAME)? {
            catalog.events = names(format!("SELECT DISTINCT event_name FROM {schema}.{EVENT_TABLE_NAME} WHERE event_name IS NOT NULL"))?.into_iter().collect();
            if with_parameters {
                catalog.event_parameters = names(format!("SELECT DISTINCT unnest(map_keys(custom_parameters)) FROM {schema}.{EVENT_TABLE_NAME}"))?.into_iter().collect();
            }
        }
        if with_parameters && Self::table_exists(&connection, app_id, "user_v2")? {
            catalog.user_attributes = names(format!("SELECT DISTINCT unnest(map_keys(user_properties)) FROM {schema}.user_v2"))?.into_iter().collect();
        }
        Ok(catalog)
    }

    /// How many files have been loaded for an app (for operators and tests).
    pub fn loaded_file_count(&self, app_id: &str) -> Result<u64, duckdb::Error> {
        let connection = self.lock();
        let count: i64 = connection.query_row("SELECT count(*) FROM main.clickstream_loaded_files WHERE app_id = ?", params![app_id], |row| row.get(0))?;
        Ok(count as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clickstream_etl::{
        enrich::{EnricherKind, EnrichmentResources, TrafficRuleBook},
        job::{EtlJob, JobSettings},
        transform::QualityRules,
    };
    use serde_json::json;

    use super::*;

    const DAY_MS: i64 = 86_400_000;

    /// Processed files of the given events (one request), by table, as the ETL writes them.
    fn processed_files(directory: &Path, name: &str, events: serde_json::Value, ingest_time: i64) -> HashMap<String, Vec<(PathBuf, String)>> {
        let resources = EnrichmentResources::from_parts(None, None, TrafficRuleBook::defaults_only());
        let settings = JobSettings {
            rules: QualityRules { project_id: "p".into(), apps: ["app-1".to_string()].into(), freshness_msec: i64::MAX / 2, correct_clock_skew: false },
            enrichers: vec![EnricherKind::PageUrl, EnricherKind::TrafficSource],
            plugins: Vec::new(),
            transformer: None,
            filter_bots: false,
            job_id: name.into(),
        };
        let staging = directory.join(name);
        std::fs::create_dir_all(&staging).unwrap();
        let mut job = EtlJob::new(settings, &resources, &staging, chrono::Utc::now());
        let line = json!({"data": events.to_string(), "ingest_time": ingest_time}).to_string();
        job.process_batch(&[line], "input").unwrap();
        let output = job.finish().unwrap();
        let mut by_table: HashMap<String, Vec<(PathBuf, String)>> = HashMap::new();
        for file in output.files {
            by_table.entry(file.table.clone()).or_default().push((staging.join(&file.relative_path), format!("file:///{name}/{}", file.relative_path)));
        }
        by_table
    }

    fn event(event_id: &str, time_ms: i64) -> serde_json::Value {
        json!({"event_type": "_page_view", "event_id": event_id, "app_id": "app-1", "timestamp": time_ms, "unique_id": "u1",
               "attributes": {"_session_id": "s1"}, "items": [{"id": "i1"}, {"id": "i2"}]})
    }

    fn query_text(warehouse: &DuckDbWarehouse, sql: &str) -> Vec<String> {
        let connection = warehouse.lock();
        let mut statement = connection.prepare(sql).unwrap();
        statement.query_map([], |row| row.get::<_, String>(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn events_and_items_are_deduplicated_within_and_across_loads() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        let first = processed_files(directory.path(), "a", json!([event("e1", DAY_MS), event("e2", DAY_MS), event("e2", DAY_MS)]), DAY_MS);
        assert_eq!(warehouse.merge_table_files("app-1", "event_v2", &first["event_v2"]).unwrap(), 2);
        assert_eq!(warehouse.merge_table_files("app-1", "item_v2", &first["item_v2"]).unwrap(), 4);
        // The same files again, and files overlapping them: only e3 and its items are new.
        let second = processed_files(directory.path(), "b", json!([event("e1", DAY_MS), event("e3", 2 * DAY_MS)]), 2 * DAY_MS);
        let events: Vec<_> = first["event_v2"].iter().chain(&second["event_v2"]).cloned().collect();
        assert_eq!(warehouse.merge_table_files("app-1", "event_v2", &events).unwrap(), 1);
        let items: Vec<_> = first["item_v2"].iter().chain(&second["item_v2"]).cloned().collect();
        assert_eq!(warehouse.merge_table_files("app-1", "item_v2", &items).unwrap(), 2);

        assert_eq!(warehouse.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 3);
        assert_eq!(warehouse.count_distinct_events("app-1", 2 * DAY_MS, i64::MAX).unwrap(), 1);
        assert_eq!(warehouse.count_distinct_events("no-such-app", 0, i64::MAX).unwrap(), 0);
        let days = warehouse.events_per_day("app-1", 0, i64::MAX).unwrap();
        assert_eq!(days, vec![DailyEventCount { day: "1970-01-02".into(), events: 2 }, DailyEventCount { day: "1970-01-03".into(), events: 1 }]);
        assert_eq!(query_text(&warehouse, "SELECT count(*)::VARCHAR FROM \"app-1\".item_v2"), ["6"]);
    }

    #[test]
    fn sessions_keep_their_earliest_non_direct_row_across_loads() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        let session_event = |event_id: &str, time_ms: i64, referrer: Option<&str>| {
            let mut attributes = json!({"_session_id": "s1", "_page_url": "https://shop.example.com/"});
            if let Some(referrer) = referrer {
                attributes["_page_referrer"] = referrer.into();
            }
            json!([{"event_type": "_page_view", "event_id": event_id, "app_id": "app-1", "timestamp": time_ms, "unique_id": "u1", "attributes": attributes}])
        };
        let direct_first = processed_files(directory.path(), "a", session_event("e1", DAY_MS, None), DAY_MS);
        warehouse.merge_table_files("app-1", "session", &direct_first["session"]).unwrap();
        assert_eq!(query_text(&warehouse, "SELECT session_source FROM \"app-1\".session"), ["Direct"]);
        // A later event of the same session came from a search engine: the session is theirs.
        let from_search = processed_files(directory.path(), "b", session_event("e2", DAY_MS + 5, Some("https://www.bing.com/search?q=shoes")), DAY_MS);
        warehouse.merge_table_files("app-1", "session", &from_search["session"]).unwrap();
        // An even later referral does not take it over, nor does loading the first file again.
        let from_blog = processed_files(directory.path(), "c", session_event("e3", DAY_MS + 9, Some("https://blog.example.org/")), DAY_MS);
        warehouse.merge_table_files("app-1", "session", &from_blog["session"]).unwrap();
        warehouse.merge_table_files("app-1", "session", &direct_first["session"]).unwrap();
        assert_eq!(query_text(&warehouse, "SELECT session_source || ' ' || session_channel_group FROM \"app-1\".session"), ["Bing Organic Search"]);
    }

    #[test]
    fn users_keep_their_newest_state() {
        use clickstream_etl::users::UserState;
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        let user_file = |name: &str, user_id: &str, last_event: i64| {
            let state = UserState { app_id: "app-1".into(), user_pseudo_id: "u1".into(), user_id: Some(user_id.into()), last_event_time_msec: last_event, profile: None, first_touch: None };
            let context = clickstream_etl::tables::BatchContext { process_job_id: name.into(), process_time: "t".into(), created_time_micros: 0 };
            let files = clickstream_etl::user_state::write_user_rows(vec![state], &context, &directory.path().join(name)).unwrap();
            vec![(directory.path().join(name).join(&files[0].relative_path), format!("file:///{name}"))]
        };
        warehouse.merge_table_files("app-1", "user_v2", &user_file("a", "old", DAY_MS)).unwrap();
        warehouse.merge_table_files("app-1", "user_v2", &user_file("b", "new", 3 * DAY_MS)).unwrap();
        warehouse.merge_table_files("app-1", "user_v2", &user_file("c", "stale", 2 * DAY_MS)).unwrap();
        assert_eq!(query_text(&warehouse, "SELECT user_id FROM \"app-1\".user_v2"), ["new"]);
    }

    #[test]
    fn a_table_from_an_older_version_gains_the_new_columns() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        warehouse.lock().execute_batch("CREATE SCHEMA \"app-1\"; CREATE TABLE \"app-1\".event_v2 (event_id VARCHAR, event_time_msec BIGINT);").unwrap();
        let files = processed_files(directory.path(), "a", json!([event("e1", DAY_MS)]), DAY_MS);
        assert_eq!(warehouse.merge_table_files("app-1", "event_v2", &files["event_v2"]).unwrap(), 1);
        assert_eq!(query_text(&warehouse, "SELECT session_id FROM \"app-1\".event_v2"), ["s1"]);
    }

    #[test]
    fn rows_older_than_the_cutoff_are_deleted_from_every_table() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        let old = processed_files(directory.path(), "a", json!([event("old", DAY_MS)]), DAY_MS);
        let recent = processed_files(directory.path(), "b", json!([event("recent", 10 * DAY_MS)]), 10 * DAY_MS);
        for table in ["event_v2", "item_v2", "session"] {
            let files: Vec<_> = old[table].iter().chain(&recent[table]).cloned().collect();
            warehouse.merge_table_files("app-1", table, &files).unwrap();
        }
        assert_eq!(query_text(&warehouse, "SELECT count(*)::VARCHAR FROM \"app-1\".session"), ["1"], "one session: s1, first seen on day 1");

        let deleted = warehouse.delete_rows_before("app-1", 5 * DAY_MS).unwrap();
        assert_eq!(deleted, ExpiredRows { events: 1, items: 2, sessions: 1, users: 0 });
        assert_eq!(query_text(&warehouse, "SELECT event_id FROM \"app-1\".event_v2"), ["recent"]);
        assert_eq!(query_text(&warehouse, "SELECT DISTINCT event_id FROM \"app-1\".item_v2"), ["recent"]);
        assert_eq!(warehouse.delete_rows_before("app-1", 5 * DAY_MS).unwrap(), ExpiredRows::default(), "nothing more the second time");
        assert_eq!(warehouse.delete_rows_before("no-such-app", 5 * DAY_MS).unwrap(), ExpiredRows::default());
    }

    #[test]
    fn lake_views_read_the_parquet_files_with_their_partitions() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        processed_files(directory.path(), "lake", json!([event("e1", DAY_MS), event("e2", 2 * DAY_MS)]), 2 * DAY_MS);
        let summary = warehouse.create_lake_views("p", &directory.path().join("lake")).unwrap();
        assert_eq!(summary.tables, 3, "event_v2, item_v2 and session have files (users come from the user merge)");
        assert_eq!(query_text(&warehouse, "SELECT count(*)::VARCHAR FROM p_lake.event_v2"), ["2"]);
        assert_eq!(query_text(&warehouse, "SELECT DISTINCT partition_day::VARCHAR FROM p_lake.item_v2 ORDER BY 1"), ["02", "03"]);
        assert_eq!(warehouse.create_lake_views("p", &directory.path().join("lake")).unwrap(), summary, "replacing them again is fine");
    }

    #[test]
    fn loads_create_the_reporting_aggregates_and_the_refresh_fills_them() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        assert_eq!(warehouse.refresh_reporting_aggregates().unwrap(), 0, "nothing loaded yet");
        let files = processed_files(directory.path(), "a", json!([event("e1", DAY_MS), event("e2", DAY_MS), event("e3", 2 * DAY_MS)]), 2 * DAY_MS);
        warehouse.merge_table_files("app-1", "event_v2", &files["event_v2"]).unwrap();
        assert_eq!(query_text(&warehouse, "SELECT count(*)::VARCHAR FROM \"app-1\".report_session_activity"), ["0"], "created empty by the load");
        // Two quarter hours of one user's session, and one event name in each.
        assert_eq!(warehouse.refresh_reporting_aggregates().unwrap(), 4);
        assert_eq!(
            query_text(&warehouse, "SELECT event_time_msec || ' ' || events || ' ' || page_views FROM \"app-1\".report_session_activity ORDER BY event_time_msec"),
            [format!("{DAY_MS} 2 2"), format!("{} 1 1", 2 * DAY_MS)]
        );
        assert_eq!(warehouse.refresh_reporting_aggregates().unwrap(), 4, "a rebuild replaces the rows");
        assert_eq!(query_text(&warehouse, "SELECT user_pseudo_id || ' ' || len(event_names) FROM \"app-1\".report_user_events"), ["u1 1"], "the sequences too");

        // A file from before the sequence aggregates gets them when it is opened.
        warehouse.lock().execute_batch("DROP TABLE \"app-1\".report_user_events; DROP TABLE \"app-1\".report_session_pages;").unwrap();
        drop(warehouse);
        let reopened = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        assert_eq!(query_text(&reopened, "SELECT user_pseudo_id || ' ' || len(event_names) FROM \"app-1\".report_user_events"), ["u1 1"]);
        assert_eq!(query_text(&reopened, "SELECT count(*)::VARCHAR FROM \"app-1\".report_session_pages"), ["0"], "there, empty: these page views have no URL");
    }

    #[test]
    fn the_metadata_scan_counts_events_and_parameter_values() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        assert_eq!(warehouse.metadata_scan_rows("app-1").unwrap(), (Vec::new(), Vec::new(), Vec::new()), "nothing loaded yet");
        let with_color = |event_id: &str, color: &str| {
            let mut event = event(event_id, DAY_MS);
            event["attributes"]["color"] = json!(color);
            event
        };
        let files = processed_files(directory.path(), "a", json!([with_color("e1", "red"), with_color("e2", "red"), with_color("e3", "blue")]), DAY_MS);
        warehouse.merge_table_files("app-1", "event_v2", &files["event_v2"]).unwrap();
        let (events, parameters, attributes) = warehouse.metadata_scan_rows("app-1").unwrap();
        assert_eq!(events.iter().map(|row| (row.event_name.as_str(), row.day.as_str(), row.count)).collect::<Vec<_>>(), [("_page_view", "1970-01-02", 3)]);
        let mut colors: Vec<(Option<&str>, u64, &str)> = parameters.iter().filter(|row| row.name == "color").map(|row| (row.value.as_deref(), row.count, row.value_type.as_str())).collect();
        colors.sort();
        assert_eq!(colors, [(Some("blue"), 1, "string"), (Some("red"), 2, "string")]);
        assert!(attributes.is_empty(), "no users loaded");
    }

    #[test]
    fn the_warehouse_survives_a_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("w.duckdb");
        {
            let warehouse = DuckDbWarehouse::open(&path).unwrap();
            let files = processed_files(directory.path(), "a", json!([event("e1", DAY_MS)]), DAY_MS);
            warehouse.merge_table_files("app-1", "event_v2", &files["event_v2"]).unwrap();
        }
        let reopened = DuckDbWarehouse::open(&path).unwrap();
        assert_eq!(reopened.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 1);
        assert_eq!(reopened.loaded_file_count("app-1").unwrap(), 1);
    }
}
