//! The collector: accepts CAoA SDK requests on `POST /collect` and writes one raw record per
//! request to the object store.
//!
//! A 200 means the record is durable: the handler waits until the batch holding its record
//! has been written (group commit, see [`batcher`]). If the store cannot take it, the SDK gets
//! 503 and retries, so an acknowledged event is never lost.

pub mod batcher;
pub mod collect;

pub use collect::{IngestService, router};
