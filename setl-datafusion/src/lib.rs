//! setl-rs on Apache DataFusion: SQL and DataFrames inside factories, plan-backed lazy
//! datasets, and DataFusion's parallel file scans as connectors.
//!
//! A factory gets the context's [`Engine`] (`Engine::of(&setl)`), opens a [`Session`],
//! registers its delivered datasets or frames as tables (no copy), and runs SQL or DataFrame
//! operations; the result is a [`Frame`], lazy until a consumer or a write needs it. Handing a
//! lazy frame to the next factory fuses the two into one query; [`Frame::persist`] runs it once
//! for every consumer instead.
//!
//! ```
//! use setl_core::prelude::*;
//! use setl_datafusion::{Engine, Frame};
//!
//! #[factory]
//! struct Numbers { engine: Engine, out: Option<Frame> }
//!
//! impl Factory for Numbers {
//!     type Output = Frame;
//!     fn read(&mut self) -> Result<()> {
//!         let session = self.engine.session();
//!         // Lazy: runs inside the consumer's query.
//!         self.out = Some(session.sql("numbers", "SELECT * FROM (VALUES (1), (2), (3), (4)) AS t(x)")?);
//!         Ok(())
//!     }
//!     fn get(&self) -> Frame { self.out.clone().expect("set in read") }
//! }
//!
//! #[factory]
//! struct EvenSum {
//!     #[delivery(producer = Numbers)]
//!     numbers: Delivery<Frame>,
//!     engine: Engine,
//!     out: Option<Frame>,
//! }
//!
//! impl Factory for EvenSum {
//!     type Output = Frame;
//!     fn process(&mut self) -> Result<()> {
//!         let session = self.engine.session();
//!         session.register("numbers", self.numbers.get())?;
//!         let sum = session.sql("even sum", "SELECT sum(x) AS s FROM numbers WHERE x % 2 = 0")?;
//!         self.out = Some(sum.materialize()?);
//!         Ok(())
//!     }
//!     fn get(&self) -> Frame { self.out.clone().expect("set in process") }
//! }
//!
//! let setl = Setl::builder().threads(2).build()?;
//! let engine = Engine::of(&setl)?;
//! let mut pipeline = setl.new_pipeline();
//! pipeline
//!     .add_factory(Numbers { engine: engine.clone(), out: None })
//!     .add_factory(EvenSum { numbers: Delivery::new(), engine, out: None });
//! pipeline.run()?;
//! let sum = pipeline.output::<EvenSum>()?.collect()?;
//! assert_eq!(setl_datafusion::arrow::util::pretty::pretty_format_batches(sum.batches())?.to_string(),
//!            "+---+\n| s |\n+---+\n| 6 |\n+---+");
//! # Ok::<(), setl_core::Error>(())
//! ```
//!
//! # Threads
//!
//! One Tokio runtime per `Setl` context, with as many workers as the context's threads; the
//! Rayon worker of a factory parks while its query runs. See [`Engine`] for why the number of
//! busy threads stays within `Setl::builder().threads(n)`.
//!
//! # Errors
//!
//! DataFusion's errors become [`SqlError`]s that keep DataFusion's message and add what was
//! being done and on which files; the pipeline adds the factory and phase. A scan remembers the
//! factory phase that defined it: when a query fails on a malformed CSV value, the scan's files
//! are read again row by row to find it, and the error names that factory, the one file, the
//! 1-based line and the column (DataFusion's own count restarts in each byte range it splits a
//! file into). A scan whose path matches no file fails when it is defined.
//!
//! # Crate layout
//!
//! Modules form layers, each using only those below it: `error` (`SqlError`, `WriteError`)
//! and `origin` (which factory defined a scan); `attribution` (marks on the parts of a plan
//! other factories defined, and the charge of each part's metrics to its factory); `held` (bytes frames hold) and `engine`
//! (`Engine`, the runtime and settings shared through the `Setl` context); `shared` (shared
//! scans: one read of a plan streamed to every query that runs with it); `frame` (`Frame`, data
//! or a plan, with `persist`, `materialize`, `shared` and `collect_all`); `session` (`Session`,
//! the tables and queries of one factory); `sized` and `scan` (`ParquetScan`, `CsvScan`); and
//! `write` (atomic Parquet and CSV writers). Every public item is reachable at the crate root,
//! and only there.

// Library code needs no `unsafe`; tests that must (a counting allocator) say why with `expect`.
#![forbid(unsafe_code)]

mod attribution;
mod engine;
mod error;
mod frame;
mod held;
mod origin;
mod scan;
mod session;
mod shared;
mod sized;
mod write;

pub use datafusion;
pub use datafusion::arrow;
pub use engine::{Engine, EngineSettings};
pub use error::{SqlError, WriteError};
pub use frame::Frame;
pub use scan::{CsvScan, ParquetScan};
pub use session::Session;
pub use write::{write_atomic, write_csv, write_parquet};

/// The guide's page "DataFusion inside factories": its Rust blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide/datafusion.md")]
pub struct GuideDataFusion;
