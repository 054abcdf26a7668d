//! The Kafka sink: one message per raw record, `acks=all` with the idempotent producer, keys
//! spread evenly over partitions. A segment counts as shipped only when the broker has
//! acknowledged every one of its records.
//!
//! Messages never time out in the producer (`message.timeout.ms = 0`): during a broker outage
//! librdkafka keeps retrying them, the shipper waits, and the spool takes the load. A message
//! that timed out would leave a gap in the idempotent producer's sequence, which makes the
//! producer unusable (fatal "fenced" errors); should the producer still reach a fatal state, it
//! is replaced and the segment is sent again (the warehouse deduplicates).

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
    producer::{FutureProducer, FutureRecord},
};

use super::ShipError;

pub struct KafkaSink {
    brokers: String,
    producer: std::sync::Mutex<FutureProducer>,
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("cannot create the Kafka client for {brokers}: {reason}")]
    Client { brokers: String, reason: String },
    /// The broker refused or did not answer: start it, or fix `kafka.brokers`.
    #[error("cannot create Kafka topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
}

impl KafkaSink {
    pub fn new(brokers: &str) -> Result<KafkaSink, KafkaSetupError> {
        Ok(KafkaSink { brokers: brokers.into(), producer: std::sync::Mutex::new(Self::producer(brokers)?) })
    }

    fn producer(brokers: &str) -> Result<FutureProducer, KafkaSetupError> {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .create()
            .map_err(|error| KafkaSetupError::Client { brokers: brokers.into(), reason: error.to_string() })
    }

    fn current_producer(&self) -> FutureProducer {
        self.producer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces a producer that reached a fatal state; the next attempt uses the new one.
    fn replace_if_fatal(&self, producer: &FutureProducer) {
        use rdkafka::producer::Producer;
        let Some((code, reason)) = producer.client().fatal_error() else { return };
        tracing::warn!(?code, reason, "the Kafka producer reached a fatal state; replacing it");
        match Self::producer(&self.brokers) {
            Ok(fresh) => *self.producer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh,
            Err(error) => tracing::error!(%error, "cannot create a new Kafka producer"),
        }
    }

    /// Creates the topics that do not exist yet (a topic that exists is left as it is).
    pub async fn ensure_topics(brokers: &str, topics: &[String], partitions: i32) -> Result<(), KafkaSetupError> {
        if topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .map_err(|error| KafkaSetupError::Client { brokers: brokers.into(), reason: error.to_string() })?;
        let new_topics: Vec<NewTopic> = topics.iter().map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(1))).collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(new_topics.iter(), &options)
            .await
            .map_err(|error| KafkaSetupError::CreateTopic { topic: topics.join(","), reason: error.to_string() })?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, partitions, "created Kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(KafkaSetupError::CreateTopic { topic, reason: code.to_string() }),
            }
        }
        Ok(())
    }

    /// Produces every line and waits for the broker's acknowledgement of all of them.
    pub async fn ship(&self, topic: &str, node_id: &str, segment_sequence: u64, lines: Vec<Vec<u8>>) -> Result<(), ShipError> {
        let started = std::time::Instant::now();
        let bytes: usize = lines.iter().map(Vec::len).sum();
        // Distinct keys per record spread the records evenly over the partitions.
        let keys: Vec<String> = (0..lines.len()).map(|index| format!("{node_id}-{segment_sequence}-{index}")).collect();
        let producer = self.current_producer();
        let deliveries = lines.iter().zip(&keys).map(|(line, key)| {
            producer.send(FutureRecord::to(topic).payload(line.as_slice()).key(key.as_str()), Duration::from_secs(30))
        });
        for delivery in futures::future::join_all(deliveries).await {
            if let Err((error, _)) = delivery {
                self.replace_if_fatal(&producer);
                return Err(ShipError::Kafka { topic: topic.into(), reason: error.to_string() });
            }
        }
        metrics::histogram!("clickstream_ingest_sink_write_seconds", "sink" => "kafka").record(started.elapsed().as_secs_f64());
        metrics::counter!("clickstream_ingest_sink_bytes_total", "sink" => "kafka").increment(bytes as u64);
        Ok(())
    }
}
