//! The bridges: drain the Kafka topics and Kinesis streams of the projects using those sinks
//! into the raw layer of the object store.
//!
//! Records are gathered per partition (Kafka) or shard (Kinesis) and written as one gzip NDJSON
//! raw object once they reach `ingest.sink_batch_max_bytes` or `sink_batch_max_age_ms`. The
//! Kafka offset is committed, and the Kinesis checkpoint (an object beside the data) written,
//! only after the raw object is written, so a bridge that dies re-reads what it had not written
//! (duplicates are possible; the warehouse deduplicates on `event_id`). Object keys carry the
//! partition or shard and the first offset or sequence number, so a re-read batch that starts
//! at the same place overwrites its earlier copy.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use clickstream_core::{Config, config::SinkKind, layout, wire::gzip};
use object_store::{ObjectStore, PutPayload, path::Path};

mod kafka;
mod kinesis;

pub use kafka::run_kafka_bridge;
pub use kinesis::run_kinesis_bridge;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("no project uses the Kafka or Kinesis sink: nothing to bridge")]
    NothingToBridge,
    /// Kinesis refused or did not answer at start: check `kinesis.endpoint` and credentials.
    #[error("cannot list the shards of Kinesis stream `{stream}`: {reason}")]
    KinesisShards { stream: String, reason: String },
    #[error("cannot create the Kafka consumer for {brokers}: {reason}")]
    Consumer { brokers: String, reason: String },
    #[error(transparent)]
    KafkaBrokers(#[from] crate::sink::kafka::KafkaSetupError),
}

/// Runs every bridge the configuration needs until `shutdown` resolves.
pub async fn run_bridges(config: Arc<Config>, store: Arc<dyn ObjectStore>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), BridgeError> {
    let uses = |kind: SinkKind| config.projects.iter().any(|project| project.sink == kind);
    if !uses(SinkKind::Kafka) && !uses(SinkKind::Kinesis) {
        return Err(BridgeError::NothingToBridge);
    }
    let (stop, _) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stopped| *stopped).await;
    };
    let kafka = async {
        if uses(SinkKind::Kafka) { run_kafka_bridge(config.clone(), store.clone(), stopped(stop.subscribe())).await } else { Ok(()) }
    };
    let kinesis = async {
        if uses(SinkKind::Kinesis) { run_kinesis_bridge(config.clone(), store.clone(), stopped(stop.subscribe())).await } else { Ok(()) }
    };
    let signal = async {
        shutdown.await;
        let _ = stop.send(true);
    };
    let (kafka, kinesis, ()) = tokio::join!(kafka, kinesis, signal);
    kafka.and(kinesis)
}

/// Writes a raw object, retrying until the store takes it (the source keeps the records).
pub(crate) async fn write_raw_object(store: &dyn ObjectStore, project_id: &str, first_record_ms: i64, unique: &str, ndjson: &[u8]) -> String {
    let created_at = Utc.timestamp_millis_opt(first_record_ms).single().unwrap_or_else(Utc::now);
    let object_key = layout::raw_object_key(project_id, created_at, unique);
    let compressed = gzip(ndjson);
    let mut backoff = Duration::from_millis(200);
    while let Err(error) = store.put(&Path::from(object_key.as_str()), PutPayload::from(compressed.clone())).await {
        tracing::warn!(%error, key = object_key, retry_in = ?backoff, "bridge cannot write to the object store; holding its position");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
    object_key
}
