//! Activity implementations of clickstream.
//!
//! - [`etl_activities`]: planning ETL windows, transforming their chunks with the ETL engine
//!   (`clickstream-etl`), merging their users, committing them, and load bookkeeping;
//! - [`warehouses`]: the [`warehouses::Warehouse`] trait, over DuckDB ([`warehouse`]) and
//!   Redshift ([`redshift`], SQL in [`redshift_sql`]), used by [`warehouse_activities`];
//! - [`metadata`]: what the metadata scan finds, and its stores (object store, DynamoDB).
//!
//! Every activity is idempotent: it writes to keys derived from its input, so a retry
//! overwrites rather than adds.

pub mod aws;
pub mod catalog;
pub mod errors;
pub mod etl_activities;
pub mod heartbeat;
pub mod manifest;
pub mod metadata;
pub mod metadata_dynamodb;
pub mod metrics;
pub mod object_io;
pub mod redshift;
pub mod redshift_sql;
pub mod warehouse;
pub mod warehouse_activities;
pub mod warehouses;

pub use etl_activities::EtlActivityImplementations;
pub use warehouse::DuckDbWarehouse;
pub use warehouse_activities::WarehouseActivityImplementations;
