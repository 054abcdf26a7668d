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

use clickstream_core::config::{KafkaConfig, region_of_msk_cluster_arn};

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
    /// MSK refused or did not answer (a retry helps while the cluster is being created), or
    /// the cluster offers no listener this build can use.
    #[error("cannot get the bootstrap brokers of MSK cluster {cluster_arn}: {reason}")]
    MskBrokers { cluster_arn: String, reason: String },
}

/// How the collector creates a project's topic.
#[derive(Debug, Clone, Copy)]
pub struct NewTopicSettings {
    pub partitions: i32,
    /// Replicas per partition; -1: the cluster's `default.replication.factor`.
    pub replication_factor: i32,
    /// `retention.ms` in hours; 0: the cluster's default.
    pub retention_hours: u32,
}

impl NewTopicSettings {
    pub fn of(config: &KafkaConfig) -> NewTopicSettings {
        NewTopicSettings { partitions: config.topic_partitions, replication_factor: config.topic_replication_factor, retention_hours: config.topic_retention_hours }
    }
}

/// Where the Kafka clients connect: the plaintext bootstrap brokers of the MSK cluster that
/// `kafka.msk_cluster_arn` names, asked of MSK (a cluster the ingestion stack creates has
/// broker addresses only once it exists, so they cannot be written into the configuration),
/// else `kafka.brokers`.
pub async fn bootstrap_brokers(config: &KafkaConfig) -> Result<String, KafkaSetupError> {
    let cluster_arn = &config.msk_cluster_arn;
    if cluster_arn.is_empty() {
        return Ok(config.brokers.clone());
    }
    let failed = |reason: String| KafkaSetupError::MskBrokers { cluster_arn: cluster_arn.clone(), reason };
    let region = region_of_msk_cluster_arn(cluster_arn).ok_or_else(|| failed("not an MSK cluster ARN".into()))?;
    let client = aws_sdk_kafka::Client::new(&super::aws_sdk_config(region, &config.msk_endpoint).await);
    let answer = client
        .get_bootstrap_brokers()
        .cluster_arn(cluster_arn)
        .send()
        .await
        .map_err(|error| failed(aws_sdk_kafka::error::DisplayErrorContext(error).to_string()))?;
    // Only the plaintext listener: librdkafka is built without TLS here, and IAM
    // authentication would need request signing in the client.
    match answer.bootstrap_broker_string().filter(|brokers| !brokers.is_empty()) {
        Some(brokers) => {
            tracing::info!(%cluster_arn, brokers, "using the MSK cluster's bootstrap brokers");
            Ok(brokers.to_string())
        }
        None => Err(failed("the cluster has no plaintext listener (its client-broker encryption must be TLS_PLAINTEXT or PLAINTEXT, as in the ingestion stack's cluster)".into())),
    }
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
    pub async fn ensure_topics(brokers: &str, topics: &[String], settings: &NewTopicSettings) -> Result<(), KafkaSetupError> {
        if topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .map_err(|error| KafkaSetupError::Client { brokers: brokers.into(), reason: error.to_string() })?;
        let NewTopicSettings { partitions, replication_factor, retention_hours } = *settings;
        let retention_ms = (u64::from(retention_hours) * 3_600_000).to_string();
        let new_topics: Vec<NewTopic> = topics
            .iter()
            .map(|topic| {
                let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor));
                if retention_hours == 0 { new_topic } else { new_topic.set("retention.ms", &retention_ms) }
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(new_topics.iter(), &options)
            .await
            .map_err(|error| KafkaSetupError::CreateTopic { topic: topics.join(","), reason: error.to_string() })?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, partitions, replication_factor, retention_hours, "created Kafka topic"),
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
