//! Group commit of raw records into gzip NDJSON objects.
//!
//! Handlers hand their record to the batcher and wait. The batcher gathers records per
//! project until `batch_max_delay_ms` has passed since the first one or `batch_max_bytes` is
//! reached, writes one object under the raw key layout, then answers every waiting handler.
//! When all senders are gone (shutdown), it writes what it holds and stops.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use clickstream_core::layout;
use object_store::{ObjectStore, PutPayload, path::Path};
use tokio::sync::{mpsc, oneshot};

/// One record waiting to be written, with the channel that tells its handler the outcome.
pub struct PendingRecord {
    pub project_id: String,
    pub ndjson_line: Vec<u8>,
    pub acknowledge: oneshot::Sender<Result<(), SinkError>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The object store refused or did not answer after retries; the client should retry.
    #[error("the object store could not take the batch: {0}")]
    Unavailable(String),
    /// The batcher has stopped (the service is shutting down); the client should retry.
    #[error("the collector is shutting down")]
    ShuttingDown,
}

#[derive(Debug, Clone)]
pub struct BatcherSettings {
    pub max_delay: Duration,
    pub max_bytes: usize,
    /// Attempts per object before the batch's requests get 503.
    pub write_attempts: u32,
}

#[derive(Default)]
struct ProjectBatch {
    bytes: Vec<u8>,
    waiting: Vec<oneshot::Sender<Result<(), SinkError>>>,
}

/// Runs the batcher until every sender is dropped, then flushes and returns.
pub async fn run_batcher(store: Arc<dyn ObjectStore>, settings: BatcherSettings, mut records: mpsc::Receiver<PendingRecord>) {
    let mut batches: HashMap<String, ProjectBatch> = HashMap::new();
    loop {
        // Wait for the first record of a new round, or stop when all senders are gone.
        let Some(first) = records.recv().await else {
            break;
        };
        add_record(&mut batches, first);
        let deadline = tokio::time::Instant::now() + settings.max_delay;
        let mut closed = false;
        while batches.values().all(|batch| batch.bytes.len() < settings.max_bytes) {
            match tokio::time::timeout_at(deadline, records.recv()).await {
                Ok(Some(record)) => add_record(&mut batches, record),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_deadline_passed) => break,
            }
        }
        flush_all(store.as_ref(), &settings, &mut batches).await;
        if closed {
            break;
        }
    }
    flush_all(store.as_ref(), &settings, &mut batches).await;
}

fn add_record(batches: &mut HashMap<String, ProjectBatch>, record: PendingRecord) {
    let batch = batches.entry(record.project_id).or_default();
    batch.bytes.extend_from_slice(&record.ndjson_line);
    batch.bytes.push(b'\n');
    batch.waiting.push(record.acknowledge);
}

async fn flush_all(store: &dyn ObjectStore, settings: &BatcherSettings, batches: &mut HashMap<String, ProjectBatch>) {
    // Projects are written concurrently: one slow project must not delay another's acks.
    let writes = batches.drain().filter(|(_, batch)| !batch.waiting.is_empty()).map(|(project_id, batch)| async move {
        let outcome = write_batch(store, settings, &project_id, &batch.bytes).await;
        for waiting in batch.waiting {
            // A handler that gave up (client gone) no longer listens; nothing to do then.
            let _ = waiting.send(outcome.clone());
        }
    });
    futures::future::join_all(writes).await;
}

async fn write_batch(store: &dyn ObjectStore, settings: &BatcherSettings, project_id: &str, ndjson: &[u8]) -> Result<(), SinkError> {
    let started = std::time::Instant::now();
    let compressed = gzip(ndjson);
    let key = layout::raw_object_key(project_id, Utc::now(), &uuid::Uuid::now_v7().simple().to_string());
    let mut last_error = String::new();
    for attempt in 1..=settings.write_attempts {
        match store.put(&Path::from(key.as_str()), PutPayload::from(compressed.clone())).await {
            Ok(_) => {
                metrics::histogram!("clickstream_ingest_sink_write_seconds").record(started.elapsed().as_secs_f64());
                metrics::counter!("clickstream_ingest_sink_bytes_total").increment(compressed.len() as u64);
                tracing::debug!(key, bytes = compressed.len(), "wrote raw batch");
                return Ok(());
            }
            Err(error) => {
                metrics::counter!("clickstream_ingest_sink_retries_total").increment(1);
                tracing::warn!(key, attempt, %error, "raw batch write failed");
                last_error = error.to_string();
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    metrics::counter!("clickstream_ingest_sink_failures_total").increment(1);
    Err(SinkError::Unavailable(last_error))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn records_still_waiting_at_shutdown_are_written_and_acknowledged() {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(directory.path()).unwrap());
        // A long delay: only the shutdown can make the batcher write.
        let settings = BatcherSettings { max_delay: Duration::from_secs(3600), max_bytes: usize::MAX, write_attempts: 1 };
        let (sender, receiver) = mpsc::channel(10);
        let batcher = tokio::spawn(run_batcher(store.clone(), settings, receiver));
        let mut acknowledgements = Vec::new();
        for project_id in ["a", "a", "b"] {
            let (acknowledge, outcome) = oneshot::channel();
            sender.send(PendingRecord { project_id: project_id.into(), ndjson_line: b"{}".to_vec(), acknowledge }).await.unwrap();
            acknowledgements.push(outcome);
        }
        drop(sender);
        batcher.await.unwrap();
        for outcome in acknowledgements {
            outcome.await.unwrap().unwrap();
        }
        let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(objects.len(), 2, "one object per project");
    }
}
