//! The Kinesis sink: raw records go to the project's stream with PutRecords (at most 500
//! records and 5 MB a call); records the service failed (throttling, internal errors) are
//! retried alone until every one is in. The segment counts as shipped only then.

use std::time::Duration;

use aws_sdk_kinesis::{Client, primitives::Blob, types::PutRecordsRequestEntry};
use clickstream_core::config::KinesisConfig;

use super::ShipError;

/// PutRecords limits.
const MAX_RECORDS_PER_CALL: usize = 500;
const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Attempts at one call's failed records before the segment is retried as a whole.
const ATTEMPTS_PER_CALL: u32 = 8;

pub struct KinesisSink {
    client: Client,
}

#[derive(Debug, thiserror::Error)]
pub enum KinesisSetupError {
    /// Kinesis refused or did not answer: check `kinesis.endpoint`, the region and credentials.
    #[error("cannot create Kinesis stream `{stream}`: {reason}")]
    CreateStream { stream: String, reason: String },
    #[error("Kinesis stream `{stream}` did not become active within {seconds} s")]
    NotActive { stream: String, seconds: u64 },
}

/// A Kinesis client for the configured endpoint and region.
pub async fn client(config: &KinesisConfig) -> Client {
    Client::new(&super::aws_sdk_config(&config.region, &config.endpoint).await)
}

impl KinesisSink {
    pub fn new(client: Client) -> KinesisSink {
        KinesisSink { client }
    }

    /// Creates the streams that do not exist yet and waits until they are active.
    pub async fn ensure_streams(client: &Client, streams: &[String], shard_count: i32) -> Result<(), KinesisSetupError> {
        for stream in streams {
            let setup_error = |reason: String| KinesisSetupError::CreateStream { stream: stream.clone(), reason };
            let exists = match client.describe_stream_summary().stream_name(stream).send().await {
                Ok(_) => true,
                Err(error) if error.as_service_error().is_some_and(|service| service.is_resource_not_found_exception()) => false,
                Err(error) => return Err(setup_error(aws_sdk_kinesis::error::DisplayErrorContext(error).to_string())),
            };
            if !exists {
                client
                    .create_stream()
                    .stream_name(stream)
                    .shard_count(shard_count)
                    .send()
                    .await
                    .map_err(|error| setup_error(aws_sdk_kinesis::error::DisplayErrorContext(error).to_string()))?;
                tracing::info!(stream, shard_count, "created Kinesis stream");
            }
            let patience = Duration::from_secs(120);
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                let summary = client.describe_stream_summary().stream_name(stream).send().await.ok();
                let active = summary
                    .and_then(|summary| summary.stream_description_summary)
                    .is_some_and(|description| description.stream_status == aws_sdk_kinesis::types::StreamStatus::Active);
                if active {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(KinesisSetupError::NotActive { stream: stream.clone(), seconds: patience.as_secs() });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// Puts every line into the stream, retrying the records Kinesis failed.
    pub async fn ship(&self, stream: &str, node_id: &str, segment_sequence: u64, lines: Vec<Vec<u8>>) -> Result<(), ShipError> {
        let started = std::time::Instant::now();
        let bytes: usize = lines.iter().map(Vec::len).sum();
        let entries: Vec<PutRecordsRequestEntry> = lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("{node_id}-{segment_sequence}-{index}"))
                    .data(Blob::new(line))
                    .build()
                    .expect("partition key and data are set")
            })
            .collect();
        let mut call: Vec<PutRecordsRequestEntry> = Vec::new();
        let mut call_bytes = 0;
        for entry in entries {
            let entry_bytes = entry.data().as_ref().len() + entry.partition_key().map_or(0, str::len);
            if !call.is_empty() && (call.len() == MAX_RECORDS_PER_CALL || call_bytes + entry_bytes > MAX_BYTES_PER_CALL) {
                self.put_all(stream, std::mem::take(&mut call)).await?;
                call_bytes = 0;
            }
            call_bytes += entry_bytes;
            call.push(entry);
        }
        if !call.is_empty() {
            self.put_all(stream, call).await?;
        }
        metrics::histogram!("clickstream_ingest_sink_write_seconds", "sink" => "kinesis").record(started.elapsed().as_secs_f64());
        metrics::counter!("clickstream_ingest_sink_bytes_total", "sink" => "kinesis").increment(bytes as u64);
        Ok(())
    }

    async fn put_all(&self, stream: &str, mut pending: Vec<PutRecordsRequestEntry>) -> Result<(), ShipError> {
        let kinesis_error = |reason: String| ShipError::Kinesis { stream: stream.into(), reason };
        let mut backoff = Duration::from_millis(100);
        for _ in 0..ATTEMPTS_PER_CALL {
            let response = self
                .client
                .put_records()
                .stream_name(stream)
                .set_records(Some(pending.clone()))
                .send()
                .await
                .map_err(|error| kinesis_error(aws_sdk_kinesis::error::DisplayErrorContext(error).to_string()))?;
            if response.failed_record_count().unwrap_or(0) == 0 {
                return Ok(());
            }
            // Results come in request order; keep the entries whose result has an error code.
            pending = pending.into_iter().zip(response.records()).filter(|(_, result)| result.error_code().is_some()).map(|(entry, _)| entry).collect();
            metrics::counter!("clickstream_ingest_sink_retries_total", "sink" => "kinesis").increment(1);
            tracing::debug!(stream, failed = pending.len(), "retrying records Kinesis failed");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        Err(kinesis_error(format!("{} records still failing after {ATTEMPTS_PER_CALL} attempts", pending.len())))
    }
}
