//! The object store: S3 in production and tests (moto), a local directory in the dev stack.
//!
//! Every key in clickstream is relative to the storage root given by `storage.url`, so the
//! same code writes `file:///var/lib/clickstream/data/<key>` and `s3://bucket/prefix/<key>`.

use std::sync::Arc;

use object_store::{ObjectStore, aws::AmazonS3Builder, local::LocalFileSystem, prefix::PrefixStore};

use crate::config::StorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage url `{url}` is not supported: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("cannot open the object store at `{url}`: {source}")]
    Open { url: String, source: object_store::Error },
    #[error("cannot create the local storage directory `{path}`: {source}")]
    CreateDirectory { path: String, source: std::io::Error },
}

/// Where the storage root is, parsed from `storage.url`.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageLocation {
    LocalDirectory { path: std::path::PathBuf },
    S3 { bucket: String, prefix: String },
}

impl StorageLocation {
    pub fn parse(url: &str) -> Result<StorageLocation, StorageError> {
        let unsupported = |reason: &str| StorageError::UnsupportedUrl { url: url.into(), reason: reason.into() };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(unsupported("a file:// url needs an absolute path, e.g. file:///srv/data"));
            }
            return Ok(StorageLocation::LocalDirectory { path: path.trim_end_matches('/').into() });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(unsupported("an s3:// url needs a bucket name"));
            }
            return Ok(StorageLocation::S3 { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() });
        }
        Err(unsupported("expected file:///absolute/dir or s3://bucket[/prefix]"))
    }

    /// The full URL of a key, as written into load manifests (CAoA writes `s3://` URLs).
    pub fn url_of_key(&self, key: &str) -> String {
        match self {
            StorageLocation::LocalDirectory { path } => format!("file://{}/{key}", path.display()),
            StorageLocation::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/{key}"),
            StorageLocation::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{key}"),
        }
    }

    /// The key of a URL produced by [`Self::url_of_key`], or `None` if it lies elsewhere.
    pub fn key_of_url<'a>(&self, url: &'a str) -> Option<&'a str> {
        let root = self.url_of_key("");
        url.strip_prefix(root.as_str())
    }
}

/// The opened object store together with where it is.
#[derive(Debug, Clone)]
pub struct Storage {
    pub location: StorageLocation,
    pub store: Arc<dyn ObjectStore>,
}

impl Storage {
    /// Opens the store. S3 credentials come from the usual `AWS_*` environment variables.
    pub fn open(config: &StorageConfig) -> Result<Storage, StorageError> {
        let location = StorageLocation::parse(&config.url)?;
        let store: Arc<dyn ObjectStore> = match &location {
            StorageLocation::LocalDirectory { path } => {
                std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDirectory {
                    path: path.display().to_string(),
                    source,
                })?;
                let local = LocalFileSystem::new_with_prefix(path)
                    .map_err(|source| StorageError::Open { url: config.url.clone(), source })?;
                Arc::new(local)
            }
            StorageLocation::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&config.region);
                if !config.endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(&config.endpoint)
                        .with_allow_http(config.endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let s3 = builder.build().map_err(|source| StorageError::Open { url: config.url.clone(), source })?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        Ok(Storage { location, store })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip_through_keys() {
        let s3 = StorageLocation::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!(s3, StorageLocation::S3 { bucket: "bucket".into(), prefix: "some/prefix".into() });
        let url = s3.url_of_key("p/data/x.parquet");
        assert_eq!(url, "s3://bucket/some/prefix/p/data/x.parquet");
        assert_eq!(s3.key_of_url(&url), Some("p/data/x.parquet"));
        assert_eq!(s3.key_of_url("s3://other/p"), None);

        let local = StorageLocation::parse("file:///srv/data").unwrap();
        assert_eq!(local.url_of_key("k"), "file:///srv/data/k");
        assert!(StorageLocation::parse("file://relative").is_err());
        assert!(StorageLocation::parse("s3://").is_err());
    }
}
