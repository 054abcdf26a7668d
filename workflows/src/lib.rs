//! Temporal workflows of clickstream: orchestration only.
//!
//! Nothing here does I/O or reads a clock: every side effect is an activity, declared in
//! [`activities`] by name and input/output types and implemented in the `clickstream-activities`
//! crate. Big data never travels through workflow payloads: activities exchange object-store
//! keys (a plan of raw keys, a load manifest), never the records themselves.

pub mod activities;
pub mod backfill;
pub mod etl;
pub mod load;
pub mod lifecycle;
pub mod metadata;
pub mod partitions;
pub mod retention;
pub mod types;

pub use backfill::BackfillWorkflow;
pub use etl::EtlWorkflow;
pub use load::LoadDataWorkflow;
pub use lifecycle::PipelineLifecycleWorkflow;
pub use metadata::ScanMetadataWorkflow;
pub use partitions::AthenaPartitionWorkflow;
pub use retention::ClearExpiredEventsWorkflow;

/// Retry policy of every activity: back off up to a minute, forever; errors that a retry
/// cannot fix are raised as non-retryable by the activities themselves.
pub fn retry_policy() -> temporalio_common::RetryPolicy {
    temporalio_common::RetryPolicy::builder()
        .initial_interval(std::time::Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(std::time::Duration::from_secs(60))
        .build()
}

/// Options of the activities that only touch small documents (plans, markers, manifests).
pub fn short_activity_options() -> temporalio_sdk::ActivityOptions {
    temporalio_sdk::ActivityOptions::with_start_to_close_timeout(std::time::Duration::from_secs(120))
        .retry_policy(retry_policy())
        .build()
}

/// How long an activity that heartbeats may go silent before Temporal gives it to another
/// worker: the activities heartbeat every few seconds, so a worker that died is noticed fast.
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Options of the activities that may run long (transforms, merges, loads): they heartbeat,
/// so a dead worker costs [`HEARTBEAT_TIMEOUT`], not the whole `start_to_close` timeout.
/// `task_queue` names the queue of the process that must run it (the warehouse owner).
pub fn long_activity_options(start_to_close: std::time::Duration, task_queue: Option<&str>) -> temporalio_sdk::ActivityOptions {
    let mut options = temporalio_sdk::ActivityOptions::with_start_to_close_timeout(start_to_close).heartbeat_timeout(HEARTBEAT_TIMEOUT).retry_policy(retry_policy()).build();
    options.task_queue = task_queue.map(str::to_string);
    options
}
