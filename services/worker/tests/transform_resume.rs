//! A retried transform resumes from its last heartbeat: the parts of the chunk the heartbeat
//! reported done are not read again, and the counters come out as those of a full run.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use clickstream_activities::{
    etl_activities::{EtlActivityImplementations, EtlPlanDocument, OBJECTS_PER_PART},
    heartbeat::{ChunkProgress, Heartbeat, NoHeartbeat},
    object_io::get_json,
};
use clickstream_core::{layout, storage::Storage};
use clickstream_workflows::types::{EtlInput, TransformChunkInput};
use object_store::{ObjectStore, PutPayload, path::Path};

/// Keeps every heartbeat.
#[derive(Default)]
struct RecordedHeartbeats(Mutex<Vec<ChunkProgress>>);

impl Heartbeat for RecordedHeartbeats {
    async fn record(&self, progress: &ChunkProgress) {
        self.0.lock().unwrap().push(progress.clone());
    }
}

fn raw_object(object_index: usize) -> Vec<u8> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events: Vec<serde_json::Value> = (0..3)
        .map(|event| serde_json::json!({"event_type": "_page_view", "event_id": format!("e{object_index}-{event}"), "app_id": "app-1", "timestamp": now_ms, "unique_id": format!("user-{object_index}"), "attributes": {"_session_id": "s1"}}))
        .collect();
    let record = serde_json::json!({"appId": "app-1", "data": serde_json::Value::Array(events).to_string(), "uri": "/collect?appId=app-1&event_bundle_sequence_id=1", "ingest_time": now_ms});
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(encoder, "{record}").unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_transform_resumes_after_the_parts_its_heartbeat_reported() {
    let directory = tempfile::tempdir().unwrap();
    let config = Arc::new(common::test_config(directory.path()));
    let storage = Storage::open(&config.storage).unwrap();
    let object_count = OBJECTS_PER_PART + 3;
    let written_at = chrono::Utc::now() - chrono::Duration::seconds(5);
    for index in 0..object_count {
        let key = layout::raw_object_key("proj", written_at, &format!("object-{index:02}"));
        storage.store.put(&Path::from(key), PutPayload::from(raw_object(index))).await.unwrap();
    }
    let activities = EtlActivityImplementations { storage: storage.clone(), engine: Arc::new(clickstream_worker::EtlEngine::load(config.clone()).unwrap()) };

    let plan = activities.plan(&EtlInput { project_id: "proj".into(), buffer_seconds: 0, max_files_per_load: 50, warehouse_task_queue: "unused".into(), metadata_scan: None }, chrono::Utc::now()).await.unwrap();
    assert_eq!(plan.chunk_count, 1);
    let chunk = TransformChunkInput { project_id: "proj".into(), plan_key: plan.plan_key.clone(), chunk_index: 0 };

    let heartbeats = RecordedHeartbeats::default();
    let full_run = activities.transform(&chunk, None, &heartbeats).await.unwrap();
    assert_eq!(full_run.events, 3 * object_count as u64);
    let after_first_part = heartbeats.0.lock().unwrap().iter().find(|progress| progress.parts_done == 1).cloned().expect("a heartbeat after the first part");
    assert_eq!(after_first_part.counters.events, 3 * OBJECTS_PER_PART as u64);

    // The first part's raw objects are gone: an attempt that read them again would fail.
    let plan_document: EtlPlanDocument = get_json(storage.store.as_ref(), &plan.plan_key, "plan").await.unwrap().unwrap();
    for object in &plan_document.chunks[0][..OBJECTS_PER_PART] {
        storage.store.delete(&Path::from(object.key.as_str())).await.unwrap();
    }
    assert!(activities.transform(&chunk, None, &NoHeartbeat).await.is_err(), "a fresh attempt reads the deleted objects and fails");

    let resumed = activities.transform(&chunk, Some(after_first_part), &NoHeartbeat).await.expect("the resumed attempt skips the first part");
    assert_eq!(resumed, full_run);
}
