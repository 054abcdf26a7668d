//! The object-store sink: ships sealed spool segments as gzip NDJSON raw objects.
//!
//! A segment becomes one object per project, keyed by the collector's node id and the segment
//! sequence under the hour of the segment's creation, so shipping a segment again after a crash
//! overwrites the same objects instead of adding copies. The segment is deleted only after
//! every object is written; while the store is unreachable the shipper retries with backoff and
//! the spool keeps accepting requests until it is full.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use clickstream_core::layout;
use object_store::{ObjectStore, PutPayload, path::Path};
use tokio::sync::mpsc;

use crate::spool::{SealedSegment, SpoolStats, read_segment, release_segment};

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The store refused or did not answer: retried until it comes back.
    #[error("object store write of `{key}` failed: {source}")]
    Store { key: String, source: object_store::Error },
    /// The segment file cannot be read: a local disk problem, retried.
    #[error("cannot read spool segment {path}: {source}")]
    Segment { path: String, source: std::io::Error },
}

pub struct ObjectStoreSink {
    pub store: Arc<dyn ObjectStore>,
    /// Distinguishes this collector's objects from other collectors' (kept in the spool).
    pub node_id: String,
}

impl ObjectStoreSink {
    pub async fn ship(&self, segment: &SealedSegment) -> Result<(), ShipError> {
        let path = segment.path.clone();
        let (records, _) = tokio::task::spawn_blocking(move || read_segment(&path))
            .await
            .expect("segment reader does not panic")
            .map_err(|source| ShipError::Segment { path: segment.path.display().to_string(), source })?;
        let mut lines_by_project: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for record in records {
            let lines = lines_by_project.entry(record.project_id).or_default();
            lines.extend_from_slice(&record.line);
            lines.push(b'\n');
        }
        let created_at = Utc.timestamp_millis_opt(segment.created_ms).single().unwrap_or_else(Utc::now);
        for (project_id, ndjson) in lines_by_project {
            let key = layout::raw_object_key(&project_id, created_at, &format!("{}-{:020}", self.node_id, segment.sequence));
            let started = std::time::Instant::now();
            let compressed = tokio::task::spawn_blocking(move || gzip(&ndjson)).await.expect("gzip does not panic");
            let size = compressed.len() as u64;
            self.store
                .put(&Path::from(key.as_str()), PutPayload::from(compressed))
                .await
                .map_err(|source| ShipError::Store { key: key.clone(), source })?;
            metrics::histogram!("clickstream_ingest_sink_write_seconds", "sink" => "s3").record(started.elapsed().as_secs_f64());
            metrics::counter!("clickstream_ingest_sink_bytes_total", "sink" => "s3").increment(size);
            tracing::debug!(key, size, "shipped raw object");
        }
        Ok(())
    }
}

/// Ships sealed segments in order until the spool's writer has stopped and all are shipped.
pub async fn run_shipper(sink: ObjectStoreSink, stats: Arc<SpoolStats>, mut sealed: mpsc::UnboundedReceiver<SealedSegment>) {
    while let Some(segment) = sealed.recv().await {
        let mut backoff = Duration::from_millis(200);
        loop {
            match sink.ship(&segment).await {
                Ok(()) => {
                    if let Err(error) = release_segment(&stats, &segment) {
                        tracing::error!(%error, path = %segment.path.display(), "cannot delete a shipped segment; it will be shipped again");
                    }
                    break;
                }
                Err(error) => {
                    metrics::counter!("clickstream_ingest_sink_retries_total", "sink" => "s3").increment(1);
                    tracing::warn!(%error, retry_in = ?backoff, "sink unavailable; the spool keeps the records");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// The collector's node id, created once and kept in the spool directory.
pub fn node_id(spool_directory: &std::path::Path) -> std::io::Result<String> {
    let path = spool_directory.join("node-id");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok(existing.trim().to_string());
        }
    }
    std::fs::create_dir_all(spool_directory)?;
    let id = uuid::Uuid::now_v7().simple().to_string()[..16].to_string();
    std::fs::write(&path, &id)?;
    Ok(id)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}
