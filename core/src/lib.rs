//! Shared domain of clickstream.
//!
//! Everything more than one service needs lives here: the configuration (figment: one TOML
//! file plus `CLICKSTREAM_*` environment overrides), the CAoA wire protocol and raw record,
//! the object-store key layouts, and the object store itself.

pub mod config;
pub mod control_model;
pub mod layout;
pub mod raw_record;
pub mod storage;
pub mod wire;

pub use config::{Config, ConfigError, ProjectConfig};
