//! Activity implementations of clickstream.
//!
//! - [`etl_activities`]: planning ETL windows, transforming their chunks with the ETL engine
//!   (`clickstream-etl`), merging their users, committing them, and load bookkeeping;
//! - [`warehouse`] and [`warehouse_activities`]: the DuckDB warehouse and its loader.
//!
//! Every activity is idempotent: it writes to keys derived from its input, so a retry
//! overwrites rather than adds.

pub mod catalog;
pub mod errors;
pub mod etl_activities;
pub mod heartbeat;
pub mod manifest;
pub mod metrics;
pub mod object_io;
pub mod warehouse;
pub mod warehouse_activities;

pub use etl_activities::EtlActivityImplementations;
pub use warehouse::DuckDbWarehouse;
pub use warehouse_activities::WarehouseActivityImplementations;
