//! The Kinesis → S3 bridge: one reader per shard of every Kinesis-sink project's stream, with
//! a checkpoint per shard kept in the object store beside the data.
//!
//! **Resharding.** A split, a merge or `UpdateShardCount` closes shards and opens children.
//! Each stream has a supervisor that lists its shards at start and every
//! `kinesis.shard_discovery_interval_ms`. A reader reads its shard until Kinesis says the
//! shard is closed and read to its end (no next iterator), then marks its checkpoint as ended.
//! A child shard gets a reader only once all of its parents have ended (or are past the
//! stream's retention and no longer listed), so the records of one partition key reach the raw
//! layer in the order Kinesis took them, as the Kinesis Client Library does it. After a
//! restart, ended checkpoints tell the supervisor which shards are done.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use aws_sdk_kinesis::{error::DisplayErrorContext, types::ShardIteratorType};
use chrono::Utc;
use clickstream_core::{Config, config::SinkKind, layout};
use object_store::{ObjectStore, PutPayload, path::Path};
use tokio::sync::{mpsc, watch};

use super::{BridgeError, write_raw_object};

/// Where a shard's reading stands, kept in the object store.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct KinesisCheckpoint {
    /// Everything up to and including this sequence number is in the raw layer; `None` when
    /// the shard ended before anything was read from it.
    sequence_number: Option<String>,
    /// The shard is closed and was read to its end: its children may be read.
    #[serde(default)]
    shard_ended: bool,
}

/// Runs the bridge of every Kinesis-sink project's stream until `shutdown`.
pub async fn run_kinesis_bridge(config: Arc<Config>, store: Arc<dyn ObjectStore>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), BridgeError> {
    let client = crate::sink::kinesis::client(&config.kinesis).await;
    let (stop, _) = watch::channel(false);
    let mut streams = tokio::task::JoinSet::new();
    for project in config.projects.iter().filter(|project| project.sink == SinkKind::Kinesis) {
        let stream = Arc::new(StreamBridge {
            client: client.clone(),
            store: store.clone(),
            project_id: project.id.clone(),
            stream: project.kinesis_stream().to_string(),
            max_bytes: config.ingest.sink_batch_max_bytes as usize,
            max_age: Duration::from_millis(config.ingest.sink_batch_max_age_ms),
        });
        // Listed once here so that a wrong endpoint or a missing stream fails the start.
        let shards = stream.list_shards().await.map_err(|reason| BridgeError::KinesisShards { stream: stream.stream.clone(), reason })?;
        let discovery_interval = Duration::from_millis(config.kinesis.shard_discovery_interval_ms.max(100));
        streams.spawn(stream.supervise(shards, discovery_interval, stop.subscribe()));
    }
    tracing::info!(streams = streams.len(), "bridging Kinesis to the object store");
    shutdown.await;
    let _ = stop.send(true);
    while streams.join_next().await.is_some() {}
    Ok(())
}

/// A shard as the listing gives it.
#[derive(Debug, Clone)]
struct ListedShard {
    shard_id: String,
    /// The shards it was split or merged from.
    parents: Vec<String>,
}

/// One project's stream: its shard readers and the supervisor that starts them.
struct StreamBridge {
    client: aws_sdk_kinesis::Client,
    store: Arc<dyn ObjectStore>,
    project_id: String,
    stream: String,
    max_bytes: usize,
    max_age: Duration,
}

impl StreamBridge {
    /// Every shard of the stream, open or closed (past retention ones are no longer listed).
    async fn list_shards(&self) -> Result<Vec<ListedShard>, String> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            // ListShards takes either the stream's name or a continuation token, not both.
            let request = match &next_token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(&self.stream),
            };
            let page = request.send().await.map_err(|error| DisplayErrorContext(error).to_string())?;
            for shard in page.shards() {
                let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()].into_iter().flatten().map(str::to_string).collect();
                shards.push(ListedShard { shard_id: shard.shard_id().to_string(), parents });
            }
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(shards);
            }
        }
    }

    /// Starts a reader for each shard whose parents have ended, learns of new shards by listing
    /// again every `discovery_interval`, and of ended shards from their readers.
    async fn supervise(self: Arc<Self>, mut shards: Vec<ListedShard>, discovery_interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut started: HashSet<String> = HashSet::new();
        let mut ended: HashSet<String> = HashSet::new();
        let (ended_sender, mut ended_receiver) = mpsc::unbounded_channel::<String>();
        let mut readers = tokio::task::JoinSet::new();
        let mut next_listing = tokio::time::Instant::now() + discovery_interval;
        loop {
            self.start_ready_readers(&shards, &mut started, &mut ended, &ended_sender, &stop, &mut readers).await;
            tokio::select! {
                () = stopped(&mut stop) => break,
                Some(shard_id) = ended_receiver.recv() => {
                    tracing::info!(stream = self.stream, shard = shard_id, "shard closed and read to its end");
                    ended.insert(shard_id);
                }
                () = tokio::time::sleep_until(next_listing) => {
                    next_listing = tokio::time::Instant::now() + discovery_interval;
                    match self.list_shards().await {
                        Ok(listed) => shards = listed,
                        Err(reason) => tracing::warn!(stream = self.stream, reason, "cannot list the stream's shards; keeping the last listing"),
                    }
                }
            }
        }
        while readers.join_next().await.is_some() {}
    }

    async fn start_ready_readers(
        self: &Arc<Self>,
        shards: &[ListedShard],
        started: &mut HashSet<String>,
        ended: &mut HashSet<String>,
        ended_sender: &mpsc::UnboundedSender<String>,
        stop: &watch::Receiver<bool>,
        readers: &mut tokio::task::JoinSet<()>,
    ) {
        let listed: HashSet<&str> = shards.iter().map(|shard| shard.shard_id.as_str()).collect();
        // Kinesis lists parents before their children, so a parent found ended by its
        // checkpoint here lets its children start in the same pass.
        for shard in shards {
            if started.contains(&shard.shard_id) || ended.contains(&shard.shard_id) {
                continue;
            }
            // A shard waiting on its parents costs no checkpoint read on every pass.
            let parent_unfinished = shard.parents.iter().any(|parent| listed.contains(parent.as_str()) && !ended.contains(parent));
            if parent_unfinished {
                continue;
            }
            if self.read_checkpoint(&shard.shard_id).await.is_some_and(|checkpoint| checkpoint.shard_ended) {
                ended.insert(shard.shard_id.clone());
                continue;
            }
            started.insert(shard.shard_id.clone());
            tracing::info!(stream = self.stream, shard = shard.shard_id, parents = ?shard.parents, "reading shard");
            readers.spawn(self.clone().read_shard(shard.shard_id.clone(), stop.clone(), ended_sender.clone()));
        }
    }

    /// Reads one shard into raw objects until it ends (then tells the supervisor) or `stop`.
    async fn read_shard(self: Arc<Self>, shard_id: String, mut stop: watch::Receiver<bool>, ended_sender: mpsc::UnboundedSender<String>) {
        let mut iterator: Option<String> = None;
        let mut checkpointed: Option<String> = None;
        let mut pending: Option<PendingBatch> = None;
        let mut shard_ended = false;
        while !*stop.borrow() && !shard_ended {
            let current = match iterator.take() {
                Some(current) => current,
                None => {
                    checkpointed = self.read_checkpoint(&shard_id).await.and_then(|checkpoint| checkpoint.sequence_number);
                    match self.shard_iterator(&shard_id, checkpointed.as_deref()).await {
                        Ok(Some(current)) => current,
                        // No iterator for a closed shard: nothing more to read.
                        Ok(None) => {
                            shard_ended = true;
                            continue;
                        }
                        Err(reason) => {
                            tracing::warn!(reason, shard = shard_id, "cannot get a shard iterator; retrying");
                            pause(&mut stop, Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                }
            };
            let response = match self.client.get_records().shard_iterator(current).limit(10_000).send().await {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(error = %DisplayErrorContext(error), shard = shard_id, "GetRecords failed; resuming from the checkpoint");
                    // Drop the unwritten batch: it is read again from the checkpoint.
                    pending = None;
                    pause(&mut stop, Duration::from_secs(1)).await;
                    continue;
                }
            };
            let received_nothing = response.records().is_empty();
            for record in response.records() {
                let batch = pending.get_or_insert_with(|| PendingBatch {
                    first_sequence: record.sequence_number().to_string(),
                    last_sequence: String::new(),
                    arrival_ms: record.approximate_arrival_timestamp().map(|time| time.to_millis().unwrap_or(0)).unwrap_or_else(|| Utc::now().timestamp_millis()),
                    since: Instant::now(),
                    ndjson: Vec::new(),
                });
                batch.ndjson.extend_from_slice(record.data().as_ref());
                batch.ndjson.push(b'\n');
                batch.last_sequence = record.sequence_number().to_string();
            }
            // Kinesis gives no next iterator once a closed shard is read to its end.
            match response.next_shard_iterator {
                Some(next) => iterator = Some(next),
                None => shard_ended = true,
            }
            let due = pending.as_ref().is_some_and(|batch| batch.ndjson.len() >= self.max_bytes || batch.since.elapsed() >= self.max_age);
            if due && !shard_ended {
                let batch = pending.take().expect("due implies a batch");
                checkpointed = Some(self.write_and_checkpoint(&shard_id, batch, false).await);
            }
            if received_nothing && !shard_ended {
                // GetRecords allows five calls a second per shard.
                pause(&mut stop, Duration::from_millis(250)).await;
            }
        }
        match pending.take() {
            Some(batch) => {
                self.write_and_checkpoint(&shard_id, batch, shard_ended).await;
            }
            None if shard_ended => self.write_checkpoint(&shard_id, KinesisCheckpoint { sequence_number: checkpointed, shard_ended }).await,
            None => {}
        }
        if shard_ended {
            let _ = ended_sender.send(shard_id);
        }
    }

    async fn shard_iterator(&self, shard_id: &str, after_sequence: Option<&str>) -> Result<Option<String>, String> {
        let request = self.client.get_shard_iterator().stream_name(&self.stream).shard_id(shard_id);
        let request = match after_sequence {
            Some(sequence) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let response = request.send().await.map_err(|error| DisplayErrorContext(error).to_string())?;
        Ok(response.shard_iterator)
    }

    async fn read_checkpoint(&self, shard_id: &str) -> Option<KinesisCheckpoint> {
        let key = layout::kinesis_checkpoint_key(&self.project_id, &self.stream, shard_id);
        let bytes = self.store.get(&Path::from(key)).await.ok()?.bytes().await.ok()?;
        serde_json::from_slice::<KinesisCheckpoint>(&bytes).ok()
    }

    /// Writes a batch as a raw object, then checkpoints after its last record (marking the
    /// shard ended when it is). Returns that last sequence number.
    async fn write_and_checkpoint(&self, shard_id: &str, batch: PendingBatch, shard_ended: bool) -> String {
        let unique = format!("kinesis-{shard_id}-{}", batch.first_sequence);
        write_raw_object(self.store.as_ref(), &self.project_id, batch.arrival_ms, &unique, &batch.ndjson).await;
        metrics::counter!("clickstream_bridge_records_total", "source" => "kinesis").increment(batch.ndjson.iter().filter(|byte| **byte == b'\n').count() as u64);
        self.write_checkpoint(shard_id, KinesisCheckpoint { sequence_number: Some(batch.last_sequence.clone()), shard_ended }).await;
        batch.last_sequence
    }

    async fn write_checkpoint(&self, shard_id: &str, checkpoint: KinesisCheckpoint) {
        let checkpoint_key = layout::kinesis_checkpoint_key(&self.project_id, &self.stream, shard_id);
        let bytes = serde_json::to_vec(&checkpoint).expect("checkpoints serialize");
        // A lost checkpoint only means the batch may be read and rewritten again: no loss.
        if let Err(error) = self.store.put(&Path::from(checkpoint_key.as_str()), PutPayload::from(bytes)).await {
            tracing::warn!(%error, checkpoint_key, "cannot write the Kinesis checkpoint; the batch may be bridged again");
        }
    }
}

/// Records read from a shard and not yet written.
struct PendingBatch {
    first_sequence: String,
    last_sequence: String,
    /// When Kinesis took the first record: the raw object's time.
    arrival_ms: i64,
    /// When the batch was started, for `sink_batch_max_age_ms`.
    since: Instant,
    ndjson: Vec<u8>,
}

/// Resolves once `stop` is set (the guard `wait_for` returns is dropped here, as it cannot be
/// held across an await of a spawned task).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    let _ = tokio::time::timeout(duration, stop.wait_for(|stopped| *stopped)).await;
}
