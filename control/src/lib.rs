//! The control plane's rules and store.
//!
//! - [`store`]: one [`store::RecordStore`] trait over versioned JSON records, implemented by
//!   [`sqlite::SqliteStore`] (embedded: the dev stack, survives restarts, several processes
//!   may open it) and [`dynamodb::DynamoDbStore`] (production); [`store::ControlStore`] adds
//!   the typed, versioned operations on top.
//! - [`validation`]: per-field checks of what users send.
//! - [`service`]: the operations of the REST API (create, update, delete with their rules:
//!   one pipeline per project, app ids unique across projects, no project deleted under a
//!   pipeline).
//! - [`live`]: turns the store's pipelines into the project list every process serves.

pub mod dynamodb;
pub mod live;
pub mod service;
pub mod sqlite;
pub mod store;
pub mod validation;

pub use service::{ControlError, ControlPlane};
pub use store::{ControlStore, StoreError};

/// Opens the configured store: the SQLite file, or the DynamoDB table (created when missing).
pub async fn open_store(whole: &clickstream_core::Config) -> Result<ControlStore, StoreError> {
    let config = &whole.control;
    let raw: std::sync::Arc<dyn store::RecordStore> = match config.store {
        clickstream_core::config::ControlStoreKind::Embedded => std::sync::Arc::new(sqlite::SqliteStore::open(&whole.control_store_path())?),
        clickstream_core::config::ControlStoreKind::Dynamodb => {
            let store = dynamodb::DynamoDbStore::connect(&config.dynamodb_region, &config.dynamodb_endpoint, &config.dynamodb_table).await;
            store.ensure_table().await?;
            std::sync::Arc::new(store)
        }
    };
    Ok(ControlStore::new(raw))
}
