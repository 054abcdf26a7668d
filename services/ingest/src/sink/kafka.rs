//! The Kafka sink: one message per raw record, `acks=all` with the idempotent producer, keys
//! spread evenly over partitions. A segment counts as shipped only when the broker has
//! acknowledged every one of its records.

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
    producer: FutureProducer,
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
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5")
            .create()
            .map_err(|error| KafkaSetupError::Client { brokers: brokers.into(), reason: error.to_string() })?;
        Ok(KafkaSink { producer })
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
        let deliveries = lines.iter().zip(&keys).map(|(line, key)| {
            self.producer.send(FutureRecord::to(topic).payload(line.as_slice()).key(key.as_str()), Duration::from_secs(30))
        });
        for delivery in futures::future::join_all(deliveries).await {
            if let Err((error, _)) = delivery {
                return Err(ShipError::Kafka { topic: topic.into(), reason: error.to_string() });
            }
        }
        metrics::histogram!("clickstream_ingest_sink_write_seconds", "sink" => "kafka").record(started.elapsed().as_secs_f64());
        metrics::counter!("clickstream_ingest_sink_bytes_total", "sink" => "kafka").increment(bytes as u64);
        Ok(())
    }
}
