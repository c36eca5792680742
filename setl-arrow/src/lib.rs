//! setl-rs on Apache Arrow: datasets of `RecordBatch`es, typed schemas, file connectors and the
//! cache of intermediates.
//!
//! # Crate layout
//!
//! - [`dataset`]: `Dataset<S>`, a schema plus shared `RecordBatch`es, typed by `S`.

pub mod dataset;

pub use arrow;
pub use dataset::{AnySchema, Dataset, Schema};
