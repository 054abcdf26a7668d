//! Small helpers over the object store shared by the activities: JSON documents, gzip text,
//! stable ids derived from keys.

use bytes::Bytes;
use object_store::{ObjectStore, PutPayload, path::Path};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::errors::ActivityFailure;

/// A stable id for a set of strings (order-independent): the first 20 hex digits of SHA-256.
pub fn stable_id<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut parts: Vec<&str> = parts.into_iter().collect();
    parts.sort_unstable();
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..10])
}

pub async fn get_bytes(store: &dyn ObjectStore, key: &str) -> Result<Bytes, ActivityFailure> {
    let result = store.get(&Path::from(key)).await.map_err(ActivityFailure::object_store("get", key))?;
    result.bytes().await.map_err(ActivityFailure::object_store("read", key))
}

pub async fn put_bytes(store: &dyn ObjectStore, key: &str, bytes: Vec<u8>) -> Result<(), ActivityFailure> {
    store.put(&Path::from(key), PutPayload::from(bytes)).await.map_err(ActivityFailure::object_store("put", key))?;
    Ok(())
}

/// Reads a JSON document we wrote; `None` if it does not exist.
pub async fn get_json<T: DeserializeOwned>(store: &dyn ObjectStore, key: &str, what: &'static str) -> Result<Option<T>, ActivityFailure> {
    let bytes = match get_bytes(store, key).await {
        Ok(bytes) => bytes,
        Err(ActivityFailure::ObjectStore { source: object_store::Error::NotFound { .. }, .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| ActivityFailure::CorruptDocument { key: key.into(), what, reason: error.to_string() })
}

pub async fn put_json<T: Serialize>(store: &dyn ObjectStore, key: &str, document: &T) -> Result<(), ActivityFailure> {
    let bytes = serde_json::to_vec(document).expect("documents of ours always serialize");
    put_bytes(store, key, bytes).await
}

/// Deletes a key; a key already gone counts as deleted (retries must be harmless).
/// Every object under a prefix.
pub async fn list_objects(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, ActivityFailure> {
    futures::TryStreamExt::try_collect(store.list(Some(&object_store::path::Path::from(prefix)))).await.map_err(ActivityFailure::object_store("list", prefix.to_string()))
}

pub async fn delete_if_present(store: &dyn ObjectStore, key: &str) -> Result<(), ActivityFailure> {
    match store.delete(&Path::from(key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(ActivityFailure::ObjectStore { operation: "delete", key: key.into(), source }),
    }
}

pub fn gunzip_text(key: &str, bytes: &[u8]) -> Result<String, ActivityFailure> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).map_err(|error| ActivityFailure::CorruptDocument {
        key: key.into(),
        what: "gzip text object",
        reason: error.to_string(),
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_ignore_order() {
        assert_eq!(stable_id(["a", "b"]), stable_id(["b", "a"]));
        assert_ne!(stable_id(["a", "b"]), stable_id(["ab"]));
        assert_eq!(stable_id(["x"]).len(), 20);
    }
}
