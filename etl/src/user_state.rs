//! The cross-run state of `user_v2`, kept in the object store beside the processed data.
//!
//! Users are spread over [`USER_STATE_SHARDS`] shards per app by a stable hash of their
//! pseudo id: `<state prefix>/app=<app>/shard=<nn>.ndjson.gz`, one [`UserState`] per line.
//! A merge reads the shards its incoming users fall into, merges them
//! ([`UserState::merge`] is idempotent, so a retried merge changes nothing), drops users not
//! seen for `keep_days`, writes the shards back, and emits one `user_v2` row per incoming user
//! with everything known of them. Only one merge of a project may run at a time (the
//! workflows serialise them); its memory is proportional to the distinct users it merges.

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead, Write},
    path::Path,
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::{ObjectStore, PutPayload, path::Path as ObjectPath};

use crate::{
    output::{OutputError, PartitionKey, PartitionedWriter, WrittenFile, utc_day_of as day_of},
    tables::{self, BatchContext},
    users::UserState,
};

/// Shards of one app's user state.
pub const USER_STATE_SHARDS: u32 = 64;

#[derive(Debug, thiserror::Error)]
pub enum UserStateError {
    #[error("object store operation `{operation}` on `{key}` failed: {source}")]
    Store { operation: &'static str, key: String, source: object_store::Error },
    #[error("user state `{key}` is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("cannot read user states from {path}: {reason}")]
    Incoming { path: String, reason: String },
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl UserStateError {
    /// The object store may come back; a corrupt state needs an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(self, UserStateError::Store { .. })
    }
}

/// FNV-1a: a hash that stays the same across processes and releases.
fn stable_hash(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |hash, byte| (hash ^ byte as u32).wrapping_mul(0x0100_0193))
}

pub fn shard_of(user_pseudo_id: &str) -> u32 {
    stable_hash(user_pseudo_id) % USER_STATE_SHARDS
}

pub fn shard_key(state_prefix: &str, app_id: &str, shard: u32) -> String {
    format!("{}/app={app_id}/shard={shard:02}.ndjson.gz", state_prefix.trim_end_matches('/'))
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserMergeCounts {
    /// Distinct users in this merge.
    pub users: u64,
    /// Of those, users already known from earlier runs.
    pub returning_users: u64,
    /// Users dropped from the state because they were not seen for `keep_days`.
    pub expired_users: u64,
    pub shards_written: u64,
}

pub struct UserMerge<'a> {
    pub store: &'a dyn ObjectStore,
    pub state_prefix: String,
    /// Users whose latest event is older than this are dropped from the state.
    pub keep_days: u32,
    pub now: DateTime<Utc>,
    pub context: BatchContext,
}

impl UserMerge<'_> {
    /// Merges the user-state files of jobs (local gzip NDJSON) into the stored state and writes
    /// `user_v2` files for the incoming users into `staging`.
    pub async fn run(&self, incoming_files: &[impl AsRef<Path>], staging: &Path) -> Result<(Vec<WrittenFile>, UserMergeCounts), UserStateError> {
        let mut incoming: BTreeMap<(String, u32), HashMap<String, UserState>> = BTreeMap::new();
        for path in incoming_files {
            read_states(path.as_ref(), |state| {
                let key = (state.app_id.clone(), shard_of(&state.user_pseudo_id));
                let users = incoming.entry(key).or_default();
                match users.get_mut(&state.user_pseudo_id) {
                    Some(current) => current.merge(state),
                    None => {
                        users.insert(state.user_pseudo_id.clone(), state);
                    }
                }
            })?;
        }
        let expiry_msec = (self.now - chrono::Duration::days(self.keep_days as i64)).timestamp_millis();
        let mut counts = UserMergeCounts::default();
        let mut merged_users: Vec<UserState> = Vec::new();
        for ((app_id, shard), users) in incoming {
            let key = shard_key(&self.state_prefix, &app_id, shard);
            let mut state = self.read_shard(&key).await?;
            for (user_pseudo_id, user) in users {
                counts.users += 1;
                let merged = match state.get_mut(&user_pseudo_id) {
                    Some(known) => {
                        counts.returning_users += 1;
                        known.merge(user);
                        known.clone()
                    }
                    None => {
                        state.insert(user_pseudo_id, user.clone());
                        user
                    }
                };
                merged_users.push(merged);
            }
            let before = state.len();
            state.retain(|_, user| user.last_event_time_msec >= expiry_msec);
            counts.expired_users += (before - state.len()) as u64;
            self.write_shard(&key, state).await?;
            counts.shards_written += 1;
        }
        let files = write_user_rows(merged_users, &self.context, staging)?;
        Ok((files, counts))
    }

    async fn read_shard(&self, key: &str) -> Result<HashMap<String, UserState>, UserStateError> {
        let bytes = match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => result.bytes().await.map_err(|source| UserStateError::Store { operation: "read", key: key.into(), source })?,
            Err(object_store::Error::NotFound { .. }) => return Ok(HashMap::new()),
            Err(source) => return Err(UserStateError::Store { operation: "get", key: key.into(), source }),
        };
        let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes.as_ref()));
        let mut users = HashMap::new();
        for line in reader.lines() {
            let line = line.map_err(|error| UserStateError::Corrupt { key: key.into(), reason: error.to_string() })?;
            let user: UserState = serde_json::from_str(&line).map_err(|error| UserStateError::Corrupt { key: key.into(), reason: error.to_string() })?;
            users.insert(user.user_pseudo_id.clone(), user);
        }
        Ok(users)
    }

    async fn write_shard(&self, key: &str, state: HashMap<String, UserState>) -> Result<(), UserStateError> {
        let mut users: Vec<UserState> = state.into_values().collect();
        users.sort_by(|left, right| left.user_pseudo_id.cmp(&right.user_pseudo_id));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for user in &users {
            serde_json::to_writer(&mut encoder, user).expect("user states serialize");
            encoder.write_all(b"\n").expect("writing to memory cannot fail");
        }
        let bytes = encoder.finish().expect("writing to memory cannot fail");
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|source| UserStateError::Store { operation: "put", key: key.into(), source })?;
        Ok(())
    }
}

fn read_states(path: &Path, mut each: impl FnMut(UserState)) -> Result<(), UserStateError> {
    let failure = |reason: String| UserStateError::Incoming { path: path.display().to_string(), reason };
    let file = std::fs::File::open(path).map_err(|error| failure(error.to_string()))?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    for line in reader.lines() {
        let line = line.map_err(|error| failure(error.to_string()))?;
        each(serde_json::from_str(&line).map_err(|error| failure(error.to_string()))?);
    }
    Ok(())
}

/// `user_v2` files, partitioned by the day of each user's latest event.
pub fn write_user_rows(mut users: Vec<UserState>, context: &BatchContext, staging: &Path) -> Result<Vec<WrittenFile>, UserStateError> {
    let partition_of = |user: &UserState| (user.app_id.clone(), day_of(user.last_event_time_msec));
    users.sort_by(|left, right| (partition_of(left), &left.user_pseudo_id).cmp(&(partition_of(right), &right.user_pseudo_id)));
    let mut writer = PartitionedWriter::new(staging, &context.process_job_id);
    for group in users.chunk_by(|left, right| partition_of(left) == partition_of(right)) {
        let (app_id, day) = partition_of(&group[0]);
        let references: Vec<&UserState> = group.iter().collect();
        let batch = tables::user_v2::record_batch(&references, context);
        writer.write(&PartitionKey { table: tables::user_v2::TABLE_NAME, app_id, day }, &batch.schema(), &batch)?;
    }
    Ok(writer.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("user-1"), shard_of("user-1"));
        let shards: std::collections::HashSet<u32> = (0..1000).map(|index| shard_of(&format!("user-{index}"))).collect();
        assert!(shards.len() > USER_STATE_SHARDS as usize / 2);
        assert_eq!(shard_key("p/etl/user-state/", "app", 3), "p/etl/user-state/app=app/shard=03.ndjson.gz");
    }
}
