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

use std::{collections::HashMap, sync::Arc, time::{Duration, Instant}};

use chrono::{TimeZone, Utc};
use clickstream_core::{Config, config::SinkKind, layout, wire::gzip};
use object_store::{ObjectStore, PutPayload, path::Path};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
};


#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("no project uses the Kafka or Kinesis sink: nothing to bridge")]
    NothingToBridge,
    /// Kinesis refused or did not answer at start: check `kinesis.endpoint` and credentials.
    #[error("cannot list the shards of Kinesis stream `{stream}`: {reason}")]
    KinesisShards { stream: String, reason: String },
    #[error("cannot create the Kafka consumer for {brokers}: {reason}")]
    Consumer { brokers: String, reason: String },
}

struct PartitionBatch {
    project_id: String,
    first_offset: i64,
    last_offset: i64,
    first_timestamp_ms: i64,
    started: Instant,
    ndjson: Vec<u8>,
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

/// Runs until `shutdown` resolves, then writes what it holds and commits.
pub async fn run_kafka_bridge(config: Arc<Config>, store: Arc<dyn ObjectStore>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), BridgeError> {
    let projects_by_topic: HashMap<String, String> = config
        .projects
        .iter()
        .filter(|project| project.sink == SinkKind::Kafka)
        .map(|project| (project.kafka_topic().to_string(), project.id.clone()))
        .collect();
    let brokers = config.kafka.brokers.clone();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &config.kafka.bridge_group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|error| BridgeError::Consumer { brokers: brokers.clone(), reason: error.to_string() })?;
    let topics: Vec<&str> = projects_by_topic.keys().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|error| BridgeError::Consumer { brokers: brokers.clone(), reason: error.to_string() })?;
    tracing::info!(?topics, group = %config.kafka.bridge_group_id, "bridging Kafka to the object store");

    let max_bytes = config.ingest.sink_batch_max_bytes as usize;
    let max_age = Duration::from_millis(config.ingest.sink_batch_max_age_ms);
    let mut batches: HashMap<(String, i32), PartitionBatch> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                let due: Vec<(String, i32)> = batches.iter().filter(|(_, batch)| batch.started.elapsed() >= max_age).map(|(key, _)| key.clone()).collect();
                for key in due {
                    let batch = batches.remove(&key).expect("listed just now");
                    write_and_commit(&consumer, store.as_ref(), &key, batch).await;
                }
            }
            received = consumer.recv() => {
                let message = match received {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "Kafka receive failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let Some(project_id) = projects_by_topic.get(message.topic()) else { continue };
                let key = (message.topic().to_string(), message.partition());
                let timestamp_ms = message.timestamp().to_millis().unwrap_or_else(|| Utc::now().timestamp_millis());
                let batch = batches.entry(key.clone()).or_insert_with(|| PartitionBatch {
                    project_id: project_id.clone(),
                    first_offset: message.offset(),
                    last_offset: message.offset(),
                    first_timestamp_ms: timestamp_ms,
                    started: Instant::now(),
                    ndjson: Vec::new(),
                });
                batch.last_offset = message.offset();
                batch.ndjson.extend_from_slice(message.payload().unwrap_or_default());
                batch.ndjson.push(b'\n');
                if batch.ndjson.len() >= max_bytes {
                    let batch = batches.remove(&key).expect("inserted just now");
                    write_and_commit(&consumer, store.as_ref(), &key, batch).await;
                }
            }
        }
    }
    for (key, batch) in batches.drain() {
        write_and_commit(&consumer, store.as_ref(), &key, batch).await;
    }
    Ok(())
}

/// Writes a raw object, retrying until the store takes it (the source keeps the records).
async fn write_raw_object(store: &dyn ObjectStore, project_id: &str, first_record_ms: i64, unique: &str, ndjson: &[u8]) -> String {
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

/// Writes a batch, then commits the partition's offset.
async fn write_and_commit(consumer: &StreamConsumer, store: &dyn ObjectStore, (topic, partition): &(String, i32), batch: PartitionBatch) {
    let unique = format!("kafka-{topic}-{partition}-{:020}", batch.first_offset);
    let object_key = write_raw_object(store, &batch.project_id, batch.first_timestamp_ms, &unique, &batch.ndjson).await;
    metrics::counter!("clickstream_bridge_records_total", "source" => "kafka").increment(batch.ndjson.iter().filter(|byte| **byte == b'\n').count() as u64);
    let mut offsets = TopicPartitionList::new();
    if let Err(error) = offsets.add_partition_offset(topic, *partition, Offset::Offset(batch.last_offset + 1)) {
        tracing::error!(%error, "cannot build the offset to commit");
        return;
    }
    // A failed commit only means the batch may be re-read and rewritten: no loss.
    if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
        tracing::warn!(%error, topic, partition, "offset commit failed; the batch may be bridged again");
    }
    tracing::debug!(key = object_key, topic, partition, last_offset = batch.last_offset, "bridged batch");
}

/// Where a shard's reading stands, kept in the object store.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KinesisCheckpoint {
    /// Everything up to and including this sequence number is in the raw layer.
    sequence_number: String,
}

/// Runs one reader per shard of every Kinesis-sink project's stream until `shutdown`.
pub async fn run_kinesis_bridge(config: Arc<Config>, store: Arc<dyn ObjectStore>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), BridgeError> {
    let client = crate::sink::kinesis::client(&config.kinesis).await;
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut readers = tokio::task::JoinSet::new();
    for project in config.projects.iter().filter(|project| project.sink == SinkKind::Kinesis) {
        let stream = project.kinesis_stream().to_string();
        let shards = client
            .list_shards()
            .stream_name(&stream)
            .send()
            .await
            .map_err(|error| BridgeError::KinesisShards { stream: stream.clone(), reason: aws_sdk_kinesis::error::DisplayErrorContext(error).to_string() })?;
        for shard in shards.shards() {
            let reader = ShardReader {
                client: client.clone(),
                store: store.clone(),
                project_id: project.id.clone(),
                stream: stream.clone(),
                shard_id: shard.shard_id().to_string(),
                max_bytes: config.ingest.sink_batch_max_bytes as usize,
                max_age: Duration::from_millis(config.ingest.sink_batch_max_age_ms),
            };
            readers.spawn(reader.run(stop.subscribe()));
        }
    }
    tracing::info!(shards = readers.len(), "bridging Kinesis to the object store");
    shutdown.await;
    let _ = stop.send(true);
    while readers.join_next().await.is_some() {}
    Ok(())
}

struct ShardReader {
    client: aws_sdk_kinesis::Client,
    store: Arc<dyn ObjectStore>,
    project_id: String,
    stream: String,
    shard_id: String,
    max_bytes: usize,
    max_age: Duration,
}

impl ShardReader {
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        use aws_sdk_kinesis::types::ShardIteratorType;
        let checkpoint_key = layout::kinesis_checkpoint_key(&self.project_id, &self.stream, &self.shard_id);
        let mut iterator: Option<String> = None;
        let mut batch = Vec::new();
        let mut batch_first: Option<(String, i64, Instant)> = None; // first sequence number, arrival ms, since
        let mut batch_last_sequence = String::new();
        loop {
            if *stop.borrow() {
                break;
            }
            if iterator.is_none() {
                let checkpoint = self.read_checkpoint(&checkpoint_key).await;
                let request = self.client.get_shard_iterator().stream_name(&self.stream).shard_id(&self.shard_id);
                let request = match checkpoint {
                    Some(sequence) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(sequence),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                match request.send().await {
                    Ok(response) => iterator = response.shard_iterator,
                    Err(error) => {
                        tracing::warn!(error = %aws_sdk_kinesis::error::DisplayErrorContext(error), shard = self.shard_id, "cannot get a shard iterator; retrying");
                        self.pause(&mut stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let Some(current) = iterator.clone() else { break }; // the shard was closed and read to its end
            match self.client.get_records().shard_iterator(current).limit(10_000).send().await {
                Ok(response) => {
                    let received_nothing = response.records().is_empty();
                    for record in response.records() {
                        if batch_first.is_none() {
                            let arrival_ms = record.approximate_arrival_timestamp().map(|time| time.to_millis().unwrap_or(0)).unwrap_or_else(|| Utc::now().timestamp_millis());
                            batch_first = Some((record.sequence_number().to_string(), arrival_ms, Instant::now()));
                        }
                        batch.extend_from_slice(record.data().as_ref());
                        batch.push(b'\n');
                        batch_last_sequence = record.sequence_number().to_string();
                    }
                    iterator = response.next_shard_iterator;
                    let due = batch_first.as_ref().is_some_and(|(_, _, since)| batch.len() >= self.max_bytes || since.elapsed() >= self.max_age);
                    if due {
                        let (first_sequence, arrival_ms, _) = batch_first.take().expect("due implies a batch");
                        self.write_and_checkpoint(&checkpoint_key, &first_sequence, arrival_ms, &batch, &batch_last_sequence).await;
                        batch.clear();
                    }
                    if received_nothing {
                        // GetRecords allows five calls a second per shard.
                        self.pause(&mut stop, Duration::from_millis(250)).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_kinesis::error::DisplayErrorContext(error), shard = self.shard_id, "GetRecords failed; resuming from the checkpoint");
                    // Drop the unwritten batch: it is read again from the checkpoint.
                    batch.clear();
                    batch_first = None;
                    iterator = None;
                    self.pause(&mut stop, Duration::from_secs(1)).await;
                }
            }
        }
        if let Some((first_sequence, arrival_ms, _)) = batch_first.take() {
            self.write_and_checkpoint(&checkpoint_key, &first_sequence, arrival_ms, &batch, &batch_last_sequence).await;
        }
    }

    async fn pause(&self, stop: &mut tokio::sync::watch::Receiver<bool>, duration: Duration) {
        let _ = tokio::time::timeout(duration, stop.wait_for(|stopped| *stopped)).await;
    }

    async fn read_checkpoint(&self, key: &str) -> Option<String> {
        let bytes = self.store.get(&Path::from(key)).await.ok()?.bytes().await.ok()?;
        serde_json::from_slice::<KinesisCheckpoint>(&bytes).ok().map(|checkpoint| checkpoint.sequence_number)
    }

    async fn write_and_checkpoint(&self, checkpoint_key: &str, first_sequence: &str, arrival_ms: i64, ndjson: &[u8], last_sequence: &str) {
        let unique = format!("kinesis-{}-{first_sequence}", self.shard_id);
        write_raw_object(self.store.as_ref(), &self.project_id, arrival_ms, &unique, ndjson).await;
        metrics::counter!("clickstream_bridge_records_total", "source" => "kinesis").increment(ndjson.iter().filter(|byte| **byte == b'\n').count() as u64);
        let checkpoint = serde_json::to_vec(&KinesisCheckpoint { sequence_number: last_sequence.to_string() }).expect("checkpoints serialize");
        // A lost checkpoint only means the batch may be read and rewritten again: no loss.
        if let Err(error) = self.store.put(&Path::from(checkpoint_key), PutPayload::from(checkpoint)).await {
            tracing::warn!(%error, checkpoint_key, "cannot write the Kinesis checkpoint; the batch may be bridged again");
        }
    }
}
