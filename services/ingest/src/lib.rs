//! The collector: accepts CAoA SDK requests on `POST /collect` and gets one raw record per
//! request to the object store.
//!
//! A 200 means the record is durable: it is in the local write-ahead [`spool`] (fsynced)
//! before the handler answers. The [`sink`] ships sealed spool segments to the object store
//! and deletes them only once written. If the spool is full (the store has been unreachable
//! for long), requests get 503 and the SDKs retry, so an acknowledged event is never lost.

pub mod apps;
pub mod bridge;
pub mod collect;
pub mod cors;
pub mod sink;
pub mod spool;

pub use collect::{IngestService, router};
