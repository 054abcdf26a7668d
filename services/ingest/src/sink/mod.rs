//! Sinks: where the shipper sends sealed spool segments, chosen per project.
//!
//! - [`object_store`]: S3 (or a local directory), one gzip NDJSON raw object per project;
//! - [`kafka`]: one Kafka message per raw record (`acks=all`, idempotent producer), drained to
//!   S3 by the [`crate::bridge`], so S3 always holds the raw layer.
//!
//! A segment is deleted only after every project's records are in their sink. While a sink is
//! unreachable the shipper retries with backoff and the spool keeps accepting requests until
//! it is full. A retried segment may reach Kafka twice (the warehouse deduplicates); S3 objects
//! are overwritten, not duplicated.

pub mod kafka;
pub mod kinesis;
pub mod object_store;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use clickstream_core::{Config, config::SinkKind, wire::gzip_encoder};
use tokio::sync::mpsc;

use crate::spool::{SealedSegment, SpoolStats, for_each_record, release_segment};

/// The AWS SDK settings of a sink's service client (Kinesis, MSK): its region, and an endpoint
/// override (moto) unless empty; credentials from the usual chain.
pub(crate) async fn aws_sdk_config(region: &str, endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string()));
    if !endpoint.is_empty() {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The store refused or did not answer: retried until it comes back.
    #[error("object store write of `{key}` failed: {source}")]
    Store { key: String, source: ::object_store::Error },
    /// The segment file cannot be read: a local disk problem, retried.
    #[error("cannot read spool segment {path}: {source}")]
    Segment { path: String, source: std::io::Error },
    /// The broker did not acknowledge every record: retried.
    #[error("Kafka did not take the records of topic `{topic}`: {reason}")]
    Kafka { topic: String, reason: String },
    /// Kinesis failed the call or kept failing records: retried.
    #[error("Kinesis did not take the records of stream `{stream}`: {reason}")]
    Kinesis { stream: String, reason: String },
    /// A project uses a sink that was not set up at start (the configuration changed).
    #[error("project `{project_id}` sends to {sink}, which this collector did not set up at start")]
    SinkNotSetUp { project_id: String, sink: &'static str },
}

/// Every sink of this collector; each project's records go to its configured one.
pub struct Sinks {
    pub config: Arc<Config>,
    pub object_store: object_store::ObjectStoreSink,
    pub kafka: Option<kafka::KafkaSink>,
    pub kinesis: Option<kinesis::KinesisSink>,
}

impl Sinks {
    /// Ships every project's records of a segment to that project's sink.
    pub async fn ship_segment(&self, segment: &SealedSegment) -> Result<(), ShipError> {
        let path = segment.path.clone();
        let config = self.config.clone();
        let parts = tokio::task::spawn_blocking(move || SegmentParts::read(&path, &config))
            .await
            .expect("segment reader does not panic")
            .map_err(|source| ShipError::Segment { path: segment.path.display().to_string(), source })?;
        for (project_id, gzip_ndjson) in parts.gzip_ndjson_by_project {
            self.object_store.ship(&project_id, segment, gzip_ndjson).await?;
        }
        for (project_id, (sink, lines)) in parts.lines_by_project {
            match sink {
                MessageSink::Kafka { topic } => {
                    let kafka = self.kafka.as_ref().ok_or_else(|| ShipError::SinkNotSetUp { project_id: project_id.clone(), sink: "Kafka" })?;
                    kafka.ship(&topic, &self.object_store.node_id, segment.sequence, lines).await?;
                }
                MessageSink::Kinesis { stream } => {
                    let kinesis = self.kinesis.as_ref().ok_or_else(|| ShipError::SinkNotSetUp { project_id: project_id.clone(), sink: "Kinesis" })?;
                    kinesis.ship(&stream, &self.object_store.node_id, segment.sequence, lines).await?;
                }
            }
        }
        Ok(())
    }
}

/// A segment's records sorted by the sink of their project.
struct SegmentParts {
    /// Projects with the S3 sink: their lines as one gzip NDJSON object each, compressed as
    /// the segment is read, so that neither the segment nor its NDJSON is held in memory whole
    /// (holding them took four buffers of the segment's size, 10 MB by default, per shipment).
    /// Each project in the segment has its encoder open until the end (about 300 KB of
    /// compression state), which is small for the handful of projects a collector serves.
    gzip_ndjson_by_project: BTreeMap<String, Vec<u8>>,
    /// Projects with a Kafka or Kinesis sink: their lines, one message each.
    lines_by_project: BTreeMap<String, (MessageSink, Vec<Vec<u8>>)>,
}

/// The sinks that take one message per record, with where the project's records go (decided
/// with the sink, from one look-up of the project).
enum MessageSink {
    Kafka { topic: String },
    Kinesis { stream: String },
}

impl SegmentParts {
    fn read(path: &std::path::Path, config: &Config) -> std::io::Result<SegmentParts> {
        let mut encoders: BTreeMap<String, flate2::write::GzEncoder<Vec<u8>>> = BTreeMap::new();
        let mut lines_by_project: BTreeMap<String, (MessageSink, Vec<Vec<u8>>)> = BTreeMap::new();
        for_each_record(path, |project_id, line| {
            if let Some(encoder) = encoders.get_mut(project_id) {
                return write_ndjson_line(encoder, line);
            }
            if let Some((_, lines)) = lines_by_project.get_mut(project_id) {
                lines.push(line.to_vec());
                return Ok(());
            }
            // A project's first record in this segment: look its sink up once. A project
            // removed from the configuration since: its records still go to S3.
            let project = config.project(project_id);
            let sink = match project.as_ref().map(|project| project.sink).unwrap_or_default() {
                SinkKind::S3 => return write_ndjson_line(encoders.entry(project_id.to_string()).or_insert_with(gzip_encoder), line),
                SinkKind::Kafka => MessageSink::Kafka { topic: project.as_ref().map_or(project_id, |project| project.kafka_topic()).to_string() },
                SinkKind::Kinesis => MessageSink::Kinesis { stream: project.as_ref().map_or(project_id, |project| project.kinesis_stream()).to_string() },
            };
            lines_by_project.insert(project_id.to_string(), (sink, vec![line.to_vec()]));
            Ok(())
        })?;
        let mut gzip_ndjson_by_project = BTreeMap::new();
        for (project_id, encoder) in encoders {
            gzip_ndjson_by_project.insert(project_id, encoder.finish()?);
        }
        Ok(SegmentParts { gzip_ndjson_by_project, lines_by_project })
    }
}

fn write_ndjson_line(encoder: &mut impl std::io::Write, line: &[u8]) -> std::io::Result<()> {
    encoder.write_all(line)?;
    encoder.write_all(b"\n")
}

/// Ships sealed segments in order until the spool's writer has stopped and all are shipped.
pub async fn run_shipper(sinks: Sinks, stats: Arc<SpoolStats>, mut sealed: mpsc::UnboundedReceiver<SealedSegment>) {
    while let Some(segment) = sealed.recv().await {
        let mut backoff = Duration::from_millis(200);
        loop {
            match sinks.ship_segment(&segment).await {
                Ok(()) => {
                    stats.sink_failing.store(false, std::sync::atomic::Ordering::Relaxed);
                    if let Err(error) = release_segment(&stats, &segment) {
                        tracing::error!(%error, path = %segment.path.display(), "cannot delete a shipped segment; it will be shipped again");
                    }
                    break;
                }
                Err(error) => {
                    stats.sink_failing.store(true, std::sync::atomic::Ordering::Relaxed);
                    metrics::counter!("clickstream_ingest_sink_retries_total").increment(1);
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
