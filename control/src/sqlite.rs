//! The embedded store: one SQLite file. SQLite's own locking lets the console, the worker and
//! the collector open the same file (the dev stack runs them as one or several processes);
//! WAL mode keeps readers from blocking the writer.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{RawRecord, RecordStore, StoreError};

pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl SqliteStore {
    /// Opens (creating when missing) the store file and its table.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(directory) = path.parent()
            && !directory.as_os_str().is_empty()
        {
            std::fs::create_dir_all(directory).map_err(|error| StoreError::Unavailable(format!("cannot create {}: {error}", directory.display())))?;
        }
        let connection = Connection::open(path).map_err(|error| StoreError::Unavailable(format!("cannot open {}: {error}", path.display())))?;
        // Another process may hold the write lock for a moment: wait rather than fail.
        connection.busy_timeout(Duration::from_secs(10)).map_err(unavailable)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS records (
                    kind TEXT NOT NULL,
                    key TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (kind, key)
                )",
            )
            .map_err(unavailable)?;
        Ok(SqliteStore { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs a statement off the async threads (SQLite calls block).
    async fn with_connection<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&connection)
        })
        .await
        .map_err(unavailable)?
    }
}

#[async_trait::async_trait]
impl RecordStore for SqliteStore {
    async fn insert(&self, kind: &str, record: RawRecord) -> Result<(), StoreError> {
        let kind = kind.to_string();
        self.with_connection(move |connection| {
            let inserted = connection
                .execute("INSERT INTO records (kind, key, version, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING", params![kind, record.key, record.version as i64, record.body])
                .map_err(unavailable)?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists { kind, key: record.key });
            }
            Ok(())
        })
        .await
    }

    async fn replace(&self, kind: &str, record: RawRecord, expected_version: u64) -> Result<(), StoreError> {
        let kind = kind.to_string();
        self.with_connection(move |connection| {
            let replaced = connection
                .execute(
                    "UPDATE records SET version = ?3, body = ?4 WHERE kind = ?1 AND key = ?2 AND version = ?5",
                    params![kind, record.key, record.version as i64, record.body, expected_version as i64],
                )
                .map_err(unavailable)?;
            if replaced == 0 {
                return Err(StoreError::VersionConflict { kind, key: record.key, expected: expected_version });
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, kind: &str, key: &str) -> Result<Option<RawRecord>, StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.with_connection(move |connection| {
            connection
                .query_row("SELECT version, body FROM records WHERE kind = ?1 AND key = ?2", params![kind, key], |row| {
                    Ok(RawRecord { key: key.clone(), version: row.get::<_, i64>(0)? as u64, body: row.get(1)? })
                })
                .optional()
                .map_err(unavailable)
        })
        .await
    }

    async fn list(&self, kind: &str) -> Result<Vec<RawRecord>, StoreError> {
        let kind = kind.to_string();
        self.with_connection(move |connection| {
            let mut statement = connection.prepare("SELECT key, version, body FROM records WHERE kind = ?1 ORDER BY key").map_err(unavailable)?;
            let rows = statement
                .query_map(params![kind], |row| Ok(RawRecord { key: row.get(0)?, version: row.get::<_, i64>(1)? as u64, body: row.get(2)? }))
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn delete(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.with_connection(move |connection| {
            let deleted = connection.execute("DELETE FROM records WHERE kind = ?1 AND key = ?2", params![kind, key]).map_err(unavailable)?;
            Ok(deleted > 0)
        })
        .await
    }
}
