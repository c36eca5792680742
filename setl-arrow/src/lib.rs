//! setl-rs on Apache Arrow: datasets of `RecordBatch`es, typed schemas, file connectors and the
//! cache of intermediates.
//!
//! # Crate layout
//!
//! - [`dataset`]: `Dataset<S>`, a schema plus shared `RecordBatch`es, typed by `S`.
//! - [`lazy`]: `LazyDataset<S>`, a dataset given as a recipe run on demand.
//! - [`cache`]: datasets in the pipeline's cache (`Storable`: weighed by Arrow, spilled as IPC).

pub mod cache;
pub mod dataset;
pub mod lazy;

pub use arrow;
pub use dataset::{AnySchema, Dataset, Schema};
pub use lazy::{BatchIter, LazyDataset};
