//! The object-store (S3) sink: a project's records of a segment become one gzip NDJSON raw
//! object, keyed by the collector's node id and the segment sequence under the hour of the
//! segment's creation, so shipping a segment again after a crash overwrites the same object
//! instead of adding a copy.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use clickstream_core::layout;
use object_store::{ObjectStore, PutPayload, path::Path};

use super::ShipError;
use crate::spool::SealedSegment;

pub struct ObjectStoreSink {
    pub store: Arc<dyn ObjectStore>,
    /// Distinguishes this collector's objects from other collectors' (kept in the spool).
    pub node_id: String,
}

impl ObjectStoreSink {
    /// Writes one project's lines of a segment, already gzip NDJSON, as a raw object.
    pub async fn ship(&self, project_id: &str, segment: &SealedSegment, gzip_ndjson: Vec<u8>) -> Result<(), ShipError> {
        let created_at = Utc.timestamp_millis_opt(segment.created_ms).single().unwrap_or_else(Utc::now);
        let key = layout::raw_object_key(project_id, created_at, &format!("{}-{:020}", self.node_id, segment.sequence));
        let started = std::time::Instant::now();
        let size = gzip_ndjson.len() as u64;
        self.store
            .put(&Path::from(key.as_str()), PutPayload::from(gzip_ndjson))
            .await
            .map_err(|source| ShipError::Store { key: key.clone(), source })?;
        metrics::histogram!("clickstream_ingest_sink_write_seconds", "sink" => "s3").record(started.elapsed().as_secs_f64());
        metrics::counter!("clickstream_ingest_sink_bytes_total", "sink" => "s3").increment(size);
        tracing::debug!(key, size, "shipped raw object");
        Ok(())
    }
}
