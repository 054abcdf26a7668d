//! The CAoA load manifest: `{"entries":[{"url":…,"meta":{"content_length":…}}]}`, the format
//! Redshift `COPY … MANIFEST` reads, so the same manifest serves both warehouses.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadManifest {
    pub entries: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub url: String,
    pub meta: ManifestEntryMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntryMeta {
    pub content_length: u64,
}

/// What the ETL leaves under `load-workflow/pending/` for each file it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLoad {
    /// Key of the Parquet file, relative to the storage root.
    pub key: String,
    pub content_length: u64,
}
