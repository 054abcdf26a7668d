//! Activity implementations of clickstream.
//!
//! - [`transform`]: raw records → `event_v2` rows, pure and unit-tested on the CAoA fixtures;
//! - [`event_table`]: the `event_v2` Arrow schema and its Parquet encoding;
//! - [`etl_activities`]: planning, transforming and committing ETL windows, load bookkeeping;
//! - [`warehouse`] and [`warehouse_activities`]: the DuckDB warehouse and its loader.
//!
//! Every activity is idempotent: it writes to keys derived from its input, so a retry
//! overwrites rather than adds.

pub mod errors;
pub mod etl_activities;
pub mod event_table;
pub mod manifest;
pub mod object_io;
pub mod transform;
pub mod warehouse;
pub mod warehouse_activities;

pub use etl_activities::EtlActivityImplementations;
pub use warehouse::DuckDbWarehouse;
pub use warehouse_activities::WarehouseActivityImplementations;
