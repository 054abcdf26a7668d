//! Versioned JSON records: the one storage contract of the control plane.
//!
//! A record is addressed by its kind (`project`, `app`, …) and key, and carries a version.
//! Creating fails when the key exists; replacing names the version it read and fails when the
//! stored one differs (optimistic concurrency: two users editing one pipeline cannot
//! overwrite each other silently). Both backends do these checks atomically.

use std::sync::Arc;

use chrono::Utc;
use clickstream_core::control_model::{App, DisplayName, Pipeline, PipelineStatus, Plugin, Project, SavedExploration, Stamp};
use serde::{Serialize, de::DeserializeOwned};

/// What went wrong in the store.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// A record with this key exists already: not retryable, choose another key.
    #[error("{kind} `{key}` already exists")]
    AlreadyExists { kind: String, key: String },
    /// The record changed since it was read (or is gone): read it again, then retry.
    #[error("{kind} `{key}` was changed by someone else (you sent version {expected}); read it again")]
    VersionConflict { kind: String, key: String, expected: u64 },
    /// The backend cannot be reached or refused the call; retrying later can help.
    #[error("the control store is unavailable: {0}")]
    Unavailable(String),
    /// A stored document does not parse: a bug or a hand edit; retrying does not help.
    #[error("stored {kind} `{key}` is unreadable: {reason}")]
    Corrupt { kind: String, key: String, reason: String },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// One stored record as the backends see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub key: String,
    pub version: u64,
    pub body: String,
}

#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    /// Stores a new record; [`StoreError::AlreadyExists`] when the key is taken.
    async fn insert(&self, kind: &str, record: RawRecord) -> Result<(), StoreError>;
    /// Replaces the record whose stored version is `expected_version`;
    /// [`StoreError::VersionConflict`] when it is another one or the record is gone.
    async fn replace(&self, kind: &str, record: RawRecord, expected_version: u64) -> Result<(), StoreError>;
    async fn get(&self, kind: &str, key: &str) -> Result<Option<RawRecord>, StoreError>;
    /// Every record of a kind, by key.
    async fn list(&self, kind: &str) -> Result<Vec<RawRecord>, StoreError>;
    /// Removes a record; whether it existed.
    async fn delete(&self, kind: &str, key: &str) -> Result<bool, StoreError>;
}

/// A type kept in the store.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const KIND: &'static str;
    fn key(&self) -> String;
    /// The record's version and times; `None` for records that are overwritten whole without
    /// a version check (statuses, display names).
    fn stamp_mut(&mut self) -> Option<&mut Stamp>;
}

impl Record for Project {
    const KIND: &'static str = "project";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        Some(&mut self.stamp)
    }
}

impl Record for App {
    const KIND: &'static str = "app";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        Some(&mut self.stamp)
    }
}

impl Record for Pipeline {
    const KIND: &'static str = "pipeline";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        Some(&mut self.stamp)
    }
}

impl Record for Plugin {
    const KIND: &'static str = "plugin";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        Some(&mut self.stamp)
    }
}

/// The last status the lifecycle workflow recorded for a pipeline; kept apart from the
/// pipeline so that status changes never bump the version a user's edit names.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredPipelineStatus {
    pub pipeline_id: String,
    pub status: PipelineStatus,
}

impl Record for StoredPipelineStatus {
    const KIND: &'static str = "pipeline_status";
    fn key(&self) -> String {
        self.pipeline_id.clone()
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        None
    }
}

/// A display name of one app's event, parameter or user attribute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredDisplayName {
    pub app_id: String,
    #[serde(flatten)]
    pub display_name: DisplayName,
}

impl Record for StoredDisplayName {
    const KIND: &'static str = "display_name";
    fn key(&self) -> String {
        format!("{}/{}/{}", self.app_id, self.display_name.kind.name(), self.display_name.name)
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        None
    }
}

impl Record for SavedExploration {
    const KIND: &'static str = "exploration";
    fn key(&self) -> String {
        format!("{}/{}", self.app_id, self.id)
    }
    fn stamp_mut(&mut self) -> Option<&mut Stamp> {
        Some(&mut self.stamp)
    }
}

/// Typed access to a [`RecordStore`].
#[derive(Clone)]
pub struct ControlStore {
    raw: Arc<dyn RecordStore>,
}

fn decode<R: Record>(raw: &RawRecord) -> Result<R, StoreError> {
    serde_json::from_str(&raw.body).map_err(|error| StoreError::Corrupt { kind: R::KIND.into(), key: raw.key.clone(), reason: error.to_string() })
}

fn encode<R: Record>(record: &R) -> String {
    serde_json::to_string(record).expect("control records serialize")
}

impl ControlStore {
    pub fn new(raw: Arc<dyn RecordStore>) -> ControlStore {
        ControlStore { raw }
    }

    /// Stores a new record at version 1, stamping its times.
    pub async fn create<R: Record>(&self, mut record: R) -> Result<R, StoreError> {
        let now = Utc::now();
        let version = match record.stamp_mut() {
            Some(stamp) => {
                *stamp = Stamp { version: 1, created_at: now, updated_at: now };
                1
            }
            None => 1,
        };
        self.raw.insert(R::KIND, RawRecord { key: record.key(), version, body: encode(&record) }).await?;
        Ok(record)
    }

    /// Replaces a record whose stamp carries the version the caller read; returns it with
    /// the next version.
    pub async fn update<R: Record>(&self, mut record: R) -> Result<R, StoreError> {
        let stamp = record.stamp_mut().expect("update is for versioned records; use put for the others");
        let expected = stamp.version;
        stamp.version += 1;
        stamp.updated_at = Utc::now();
        let version = stamp.version;
        self.raw.replace(R::KIND, RawRecord { key: record.key(), version, body: encode(&record) }, expected).await?;
        Ok(record)
    }

    /// Writes an unversioned record (status, display name) whatever is stored.
    pub async fn put<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        let key = record.key();
        let body = encode(record);
        loop {
            match self.raw.get(R::KIND, &key).await? {
                None => match self.raw.insert(R::KIND, RawRecord { key: key.clone(), version: 1, body: body.clone() }).await {
                    Err(StoreError::AlreadyExists { .. }) => continue, // written meanwhile: replace it
                    other => return other,
                },
                Some(stored) => match self.raw.replace(R::KIND, RawRecord { key: key.clone(), version: stored.version + 1, body: body.clone() }, stored.version).await {
                    Err(StoreError::VersionConflict { .. }) => continue,
                    other => return other,
                },
            }
        }
    }

    pub async fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        match self.raw.get(R::KIND, key).await? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    pub async fn list<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        self.raw.list(R::KIND).await?.iter().map(decode).collect()
    }

    pub async fn delete<R: Record>(&self, key: &str) -> Result<bool, StoreError> {
        self.raw.delete(R::KIND, key).await
    }
}
