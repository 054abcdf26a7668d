//! The clickstream ETL engine.
pub mod custom_parameters;
pub mod java_hash_order;
pub mod json_text;
pub mod raw_record;
pub mod rows;
pub mod sdk_event;
pub mod sessions;
pub mod tables;
pub mod transform;
pub mod url_parts;
pub mod users;
pub mod enrich;
pub mod job;
pub mod output;
pub mod runner;
pub mod user_state;
