//! Heartbeats: every activity that may run long records one every [`HEARTBEAT_INTERVAL`], so
//! Temporal notices a dead worker within the workflows' heartbeat timeout and retries the
//! activity elsewhere. The transform's heartbeat also carries its progress, to resume from.

use std::{future::Future, time::Duration};

use clickstream_workflows::types::TransformCounters;
use serde::{Deserialize, Serialize};
use temporalio_sdk::activities::ActivityContext;

/// Well inside the workflows' heartbeat timeout: six chances before it runs out.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(clickstream_workflows::HEARTBEAT_TIMEOUT.as_secs() / 6);

/// What a transform's heartbeat carries: the parts of the chunk done and published, with their
/// counters, and the objects done in the part under way (progress only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkProgress {
    pub parts_done: usize,
    pub counters: TransformCounters,
    pub objects_done_in_part: u64,
}

/// Where a transform reports its progress: the activity's heartbeat, or nothing (tests).
pub trait Heartbeat: Sync {
    fn record(&self, progress: &ChunkProgress) -> impl std::future::Future<Output = ()> + Send;
}

impl Heartbeat for ActivityContext {
    async fn record(&self, progress: &ChunkProgress) {
        // Progress only: a heartbeat that cannot be sent must not fail the transform.
        if let Err(error) = self.record_heartbeat(progress.clone()).await {
            tracing::debug!(%error, "heartbeat not recorded");
        }
    }
}

/// No heartbeat (outside an activity).
pub struct NoHeartbeat;

impl Heartbeat for NoHeartbeat {
    async fn record(&self, _progress: &ChunkProgress) {}
}

/// Runs `work`, recording a heartbeat every [`HEARTBEAT_INTERVAL`] until it ends.
pub async fn heartbeat_while<F: Future>(ctx: &ActivityContext, work: F) -> F::Output {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => {
                if let Err(error) = ctx.record_heartbeat(String::from("working")).await {
                    tracing::debug!(%error, "heartbeat not recorded");
                }
            }
        }
    }
}
