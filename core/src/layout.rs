//! Object-store key layouts, in one place so that writer and reader never disagree.
//!
//! ```text
//! <project>/data/buffer/year=YYYY/month=MM/day=DD/hour=HH/<unique>.gz        raw (CAoA layout)
//! <project>/data/processed/<table>/partition_app=A/partition_year=YYYY/
//!          partition_month=MM/partition_day=DD/<chunk>.parquet                  processed
//! <project>/data/quarantine/year=YYYY/month=MM/day=DD/<chunk>.gz              corrupt records
//! <project>/etl/state.json                                                      ETL watermark
//! <project>/etl/user-state/app=A/shard=NN.ndjson.gz                            user_v2 state
//! <project>/etl/plans/<window>.json                                             raw keys of one run
//! <project>/etl/pending-users/<window>/<chunk>.ndjson.gz                        users to merge
//! <project>/bridge/kinesis/<stream>/<shard>.json                             bridge checkpoints
//! <project>/load-workflow/pending/<file id>.json                                files to load
//! <project>/load-workflow/manifests/<batch id>.json                             CAoA load manifest
//! _plugins/<plugin id>/<sha256>.wasm                                            custom plugins
//! ```

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Where an uploaded plugin component is kept: its id and the SHA-256 of its bytes, so a new
/// upload never overwrites the module a running ETL job is reading.
pub fn plugin_module_key(plugin_id: &str, sha256: &str) -> String {
    format!("{}{sha256}.wasm", plugin_module_prefix(plugin_id))
}

/// Every uploaded version of a plugin's component (deleted with the plugin).
pub fn plugin_module_prefix(plugin_id: &str) -> String {
    format!("{PLUGIN_MODULES_ROOT}/{plugin_id}/")
}

/// Where every plugin's components are kept.
pub const PLUGIN_MODULES_ROOT: &str = "_plugins";

pub fn raw_prefix(project_id: &str) -> String {
    format!("{project_id}/data/buffer/")
}

/// Key of a new raw batch written at `written_at`; `unique` must be unique per writer.
pub fn raw_object_key(project_id: &str, written_at: DateTime<Utc>, unique: &str) -> String {
    format!(
        "{}year={:04}/month={:02}/day={:02}/hour={:02}/{unique}.gz",
        raw_prefix(project_id),
        written_at.year(),
        written_at.month(),
        written_at.day(),
        written_at.hour()
    )
}

/// Root of a project's processed tables (`<table>/partition_app=…/…` below it).
pub fn processed_prefix(project_id: &str) -> String {
    format!("{project_id}/data/processed")
}

/// Root of a project's quarantined records.
pub fn quarantine_prefix(project_id: &str) -> String {
    format!("{project_id}/data/quarantine")
}

/// Root of the cross-run `user_v2` state.
pub fn user_state_prefix(project_id: &str) -> String {
    format!("{project_id}/etl/user-state")
}

/// The app a processed key belongs to, read back from its `partition_app=` segment.
pub fn app_of_processed_key(key: &str) -> Option<&str> {
    key.split('/').find_map(|segment| segment.strip_prefix("partition_app="))
}

pub fn etl_state_key(project_id: &str) -> String {
    format!("{project_id}/etl/state.json")
}

/// User states the transforms saw, waiting for the next user merge (which takes all of them,
/// whichever run or backfill wrote them).
pub fn pending_users_root(project_id: &str) -> String {
    format!("{project_id}/etl/pending-users/")
}

/// The pending user states of one ETL window or backfill slice.
pub fn pending_users_prefix(project_id: &str, window_start_ms: i64, window_end_ms: i64) -> String {
    format!("{}{window_start_ms}-{window_end_ms}/", pending_users_root(project_id))
}

pub fn pending_users_key(project_id: &str, window_start_ms: i64, window_end_ms: i64, chunk_id: &str) -> String {
    format!("{}{chunk_id}.ndjson.gz", pending_users_prefix(project_id, window_start_ms, window_end_ms))
}

/// The table a processed key belongs to: the segment after `processed/`.
pub fn table_of_processed_key(key: &str) -> Option<&str> {
    let (_, after) = key.split_once("/data/processed/")?;
    after.split('/').next().filter(|table| !table.is_empty())
}

pub fn etl_plan_key(project_id: &str, window_start_ms: i64, window_end_ms: i64) -> String {
    format!("{project_id}/etl/plans/{window_start_ms}-{window_end_ms}.json")
}

/// The plan of one slice of a backfill (raw objects by the hour they arrived in).
pub fn backfill_plan_key(project_id: &str, slice_start_ms: i64, slice_end_ms: i64) -> String {
    format!("{project_id}/etl/plans/backfill-{slice_start_ms}-{slice_end_ms}.json")
}

pub fn kinesis_checkpoint_key(project_id: &str, stream: &str, shard_id: &str) -> String {
    format!("{project_id}/bridge/kinesis/{stream}/{shard_id}.json")
}

pub fn pending_loads_prefix(project_id: &str) -> String {
    format!("{project_id}/load-workflow/pending/")
}

pub fn pending_load_key(project_id: &str, file_id: &str) -> String {
    format!("{}{file_id}.json", pending_loads_prefix(project_id))
}

pub fn load_manifest_key(project_id: &str, batch_id: &str) -> String {
    format!("{project_id}/load-workflow/manifests/{batch_id}.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn raw_keys_follow_the_caoa_layout() {
        let at = Utc.with_ymd_and_hms(2026, 3, 7, 9, 5, 0).unwrap();
        assert_eq!(raw_object_key("demo", at, "u1"), "demo/data/buffer/year=2026/month=03/day=07/hour=09/u1.gz");
    }

    #[test]
    fn processed_keys_carry_their_app() {
        let key = format!("{}/event_v2/partition_app=app-1/partition_year=2026/partition_month=01/partition_day=02/c1.parquet", processed_prefix("demo"));
        assert_eq!(app_of_processed_key(&key), Some("app-1"));
        assert_eq!(table_of_processed_key(&key), Some("event_v2"));
    }
}
