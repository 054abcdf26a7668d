//! The Kafka → S3 bridge: one consumer in the bridge's group reads every Kafka-sink project's
//! topic; records are gathered per partition and the offset is committed after the write.

use std::{collections::HashMap, sync::Arc, time::{Duration, Instant}};

use chrono::Utc;
use clickstream_core::{Config, config::SinkKind};
use object_store::ObjectStore;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
};

use super::{BridgeError, write_raw_object};

struct PartitionBatch {
    project_id: String,
    first_offset: i64,
    last_offset: i64,
    first_timestamp_ms: i64,
    started: Instant,
    ndjson: Vec<u8>,
}

/// Runs until `shutdown` resolves, then writes what it holds and commits.
pub async fn run_kafka_bridge(config: Arc<Config>, store: Arc<dyn ObjectStore>, shutdown: impl std::future::Future<Output = ()>) -> Result<(), BridgeError> {
    let projects_by_topic: HashMap<String, String> = config
        .projects
        .iter()
        .filter(|project| project.sink == SinkKind::Kafka)
        .map(|project| (project.kafka_topic().to_string(), project.id.clone()))
        .collect();
    let brokers = crate::sink::kafka::bootstrap_brokers(&config.kafka).await?;
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
