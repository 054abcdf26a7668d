//! The local warehouse: DuckDB, one schema per app, `event_v2` merged on `event_id`.
//!
//! DuckDB allows one writing process per database file, so exactly one process opens it:
//! the one serving the warehouse task queue (the console, or `clickstream dev`). Queries of the
//! console go through the same [`DuckDbWarehouse`].

use std::{path::{Path, PathBuf}, sync::Mutex};

use duckdb::{Connection, params};

use crate::event_table::EVENT_TABLE_NAME;

/// Errors of the warehouse are DuckDB's own; they are retryable (a lock, the disk).
pub type WarehouseError = duckdb::Error;

pub struct DuckDbWarehouse {
    connection: Mutex<Connection>,
    path: PathBuf,
}

/// Events of one day, for the console's chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DailyEventCount {
    pub day: String,
    pub events: u64,
}

/// SQL identifier quoting; app ids are validated at configuration time, and quoting keeps
/// ids with `-` valid and anything else harmless.
pub fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

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
        Ok(DuckDbWarehouse { connection: Mutex::new(connection), path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves DuckDB consistent (statements are atomic).
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Merges local Parquet files of one app into its `event_v2`, skipping events whose
    /// `event_id` is already stored (and duplicates inside the files). Returns rows inserted.
    pub fn merge_event_files(&self, app_id: &str, files: &[(PathBuf, String)]) -> Result<u64, duckdb::Error> {
        if files.is_empty() {
            return Ok(0);
        }
        let schema = quote_identifier(app_id);
        let table = format!("{schema}.{EVENT_TABLE_NAME}");
        let file_list = files.iter().map(|(path, _)| quote_literal(&path.to_string_lossy())).collect::<Vec<_>>().join(", ");
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        transaction.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM read_parquet([{file_list}]) LIMIT 0;"
        ))?;
        let inserted = transaction.execute(
            &format!(
                "INSERT INTO {table} BY NAME
                 SELECT * FROM read_parquet([{file_list}]) AS incoming
                 WHERE NOT EXISTS (SELECT 1 FROM {table} AS existing WHERE existing.event_id = incoming.event_id)
                 QUALIFY row_number() OVER (PARTITION BY incoming.event_id ORDER BY incoming.ingest_time_msec NULLS LAST) = 1"
            ),
            [],
        )? as u64;
        for (index, (_, url)) in files.iter().enumerate() {
            // The row count is recorded once per statement, on its first file.
            let rows = if index == 0 { inserted as i64 } else { 0 };
            transaction.execute("INSERT INTO main.clickstream_loaded_files (url, app_id, rows_inserted) VALUES (?, ?, ?)", params![url, app_id, rows])?;
        }
        transaction.commit()?;
        Ok(inserted)
    }

    fn app_table_exists(connection: &Connection, app_id: &str) -> Result<bool, duckdb::Error> {
        let count: i64 = connection.query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            params![app_id, EVENT_TABLE_NAME],
            |row| row.get(0),
        )?;
        Ok(count > 0)
    }

    /// Distinct events of an app with `from_ms <= event time < to_ms`.
    pub fn count_distinct_events(&self, app_id: &str, from_ms: i64, to_ms: i64) -> Result<u64, duckdb::Error> {
        let connection = self.lock();
        if !Self::app_table_exists(&connection, app_id)? {
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
        if !Self::app_table_exists(&connection, app_id)? {
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

    /// How many files have been loaded for an app (for operators and tests).
    pub fn loaded_file_count(&self, app_id: &str) -> Result<u64, duckdb::Error> {
        let connection = self.lock();
        let count: i64 = connection.query_row("SELECT count(*) FROM main.clickstream_loaded_files WHERE app_id = ?", params![app_id], |row| row.get(0))?;
        Ok(count as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event_table::encode_parquet, transform::EventRow};

    fn row(event_id: &str, time_ms: i64) -> EventRow {
        EventRow::for_tests(event_id, time_ms)
    }

    fn parquet_file(directory: &Path, name: &str, rows: &[EventRow]) -> (PathBuf, String) {
        let path = directory.join(name);
        let references: Vec<&EventRow> = rows.iter().collect();
        std::fs::write(&path, encode_parquet(&references, 0).unwrap()).unwrap();
        (path, format!("file:///{name}"))
    }

    #[test]
    fn merging_deduplicates_on_event_id_within_and_across_loads() {
        let directory = tempfile::tempdir().unwrap();
        let warehouse = DuckDbWarehouse::open(&directory.path().join("w.duckdb")).unwrap();
        let day_ms = 86_400_000;
        let first = parquet_file(directory.path(), "a.parquet", &[row("e1", day_ms), row("e2", day_ms), row("e2", day_ms)]);
        assert_eq!(warehouse.merge_event_files("app-1", &[first.clone()]).unwrap(), 2);
        // The same file again, and a file overlapping it: only e3 is new.
        let second = parquet_file(directory.path(), "b.parquet", &[row("e1", day_ms), row("e3", 2 * day_ms)]);
        assert_eq!(warehouse.merge_event_files("app-1", &[first, second]).unwrap(), 1);

        assert_eq!(warehouse.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 3);
        assert_eq!(warehouse.count_distinct_events("app-1", 2 * day_ms, i64::MAX).unwrap(), 1);
        assert_eq!(warehouse.count_distinct_events("no-such-app", 0, i64::MAX).unwrap(), 0);
        let days = warehouse.events_per_day("app-1", 0, i64::MAX).unwrap();
        assert_eq!(days, vec![DailyEventCount { day: "1970-01-02".into(), events: 2 }, DailyEventCount { day: "1970-01-03".into(), events: 1 }]);
        assert_eq!(warehouse.loaded_file_count("app-1").unwrap(), 3);
    }

    #[test]
    fn the_warehouse_survives_a_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("w.duckdb");
        {
            let warehouse = DuckDbWarehouse::open(&path).unwrap();
            let file = parquet_file(directory.path(), "a.parquet", &[row("e1", 1)]);
            warehouse.merge_event_files("app-1", &[file]).unwrap();
        }
        let reopened = DuckDbWarehouse::open(&path).unwrap();
        assert_eq!(reopened.count_distinct_events("app-1", 0, i64::MAX).unwrap(), 1);
    }
}
