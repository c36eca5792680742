//! setl-rs: ETL as factories on a validated dataflow graph.
//!
//! A factory `read`s, `process`es, `write`s and hands its output on with `get`. It declares its
//! inputs as `Delivery<T>` fields with `#[delivery(producer = X)]`; `#[factory]` turns those
//! declarations into static wiring. A [`Pipeline`] of [`Stage`]s resolves who feeds whom before
//! anything runs, reporting every problem at once, then runs each factory exactly once, as soon
//! as its inputs exist, on a bounded Rayon pool, and benchmarks every phase.
//!
//! ```
//! use setl_core::prelude::*;
//!
//! #[factory]
//! #[derive(Default)]
//! struct Numbers { out: Vec<i64> }
//!
//! impl Factory for Numbers {
//!     type Output = Vec<i64>;
//!     fn read(&mut self) -> Result<()> { self.out = (1..=10).collect(); Ok(()) }
//!     fn get(&self) -> Vec<i64> { self.out.clone() }
//! }
//!
//! #[factory]
//! #[derive(Default)]
//! struct Sum {
//!     #[delivery(producer = Numbers)]
//!     numbers: Delivery<Vec<i64>>,
//!     total: i64,
//! }
//!
//! impl Factory for Sum {
//!     type Output = i64;
//!     fn process(&mut self) -> Result<()> {
//!         self.total = self.numbers.get().iter().sum();
//!         Ok(())
//!     }
//!     fn get(&self) -> i64 { self.total }
//! }
//!
//! let setl = Setl::builder().threads(2).build()?;
//! let mut pipeline = setl.new_pipeline();
//! pipeline.benchmark(true);
//! pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<Sum>();
//! pipeline.run()?;
//! assert_eq!(*pipeline.output::<Sum>()?, 55);
//! assert_eq!(pipeline.benchmarks().len(), 2);
//! # Ok::<(), setl_core::Error>(())
//! ```
//!
//! # Crate layout
//!
//! Modules form layers, each using only those below it:
//!
//! 1. Vocabulary: `name` (the text of factory names and delivery ids), `error` (the one error
//!    type, phases, and the validation errors), `guard` (user code run so that a panic becomes
//!    an error naming the factory), [`fs`] (the one atomic write every crate uses).
//! 2. Values: `delivery` (the `Delivery<T>` input slot), `delivery_key` (each declared payload
//!    type and delivery id as a small number, freed with the last signature declaring it),
//!    `cache` (what a value implements to be weighed and spilled, storage levels, statistics).
//! 3. Factories: `factory` (the traits, the static `Signature`, `BoxedFactory`, the type-erased
//!    face the scheduler runs and the shelves factories wait on), `registry`.
//! 4. The plan: `plan` matches every input slot to one deliverable and orders the factories.
//! 5. The run: `executed` (work an engine ran for a factory, such as a lazy plan executed
//!    later), `observe` (the event stream), `running` (the phase running on a thread, and
//!    where work attributed to a factory goes), `runtime` (the dataflow executor over Rayon
//!    and the value store between factories), `benchmark`.
//! 6. The builders: `stage`, `pipeline` (which runs stages), `setl` (the context that creates
//!    pipelines, the one mutual dependency kept: a pipeline holds its context), `graph` and
//!    `diagram` (the resolved graph as data and as text).
//!
//! Every public item is reachable at the crate root, and only there ([`fs`] keeps its own
//! namespace); `prelude` holds what a factory module needs. The hidden `__private` module
//! re-exports, under absolute paths, what the code `#[factory]` generates names: it is not API.

// Library code needs no `unsafe`; tests that must (a counting allocator) say why with `expect`.
#![forbid(unsafe_code)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod benchmark;
mod cache;
mod delivery;
mod delivery_key;
mod diagram;
mod error;
mod executed;
mod factory;
pub mod fs;
mod graph;
mod guard;
mod name;
mod observe;
mod pipeline;
mod plan;
mod registry;
mod running;
mod runtime;
mod setl;
mod stage;
mod type_name;

pub use benchmark::{BenchmarkResult, ExecutedPlace, HasBenchmark};
pub use cache::{CacheStats, LazyCounter, Storable, StorageLevel, StoreOps};
pub use delivery::{Delivery, Payload};
pub use error::{BoxError, Error, ErrorKind, Operation, Phase, Result, ValidationError};
pub use executed::{Attribution, ExecutedWork, FactoryPhase, OperatorMetrics};
pub use factory::{BoxedFactory, Factory, FactoryExt, FactoryRef, FactoryWiring, InputDecl, Signature, TypeInfo};
pub use graph::{GraphExternal, GraphFactory, GraphInput, GraphSource, PipelineGraph};
pub use name::Name;
pub use observe::{Event, EventKind, FactoryId, Observer, OutputRef};
pub use pipeline::{ExecutionMode, InputBuilder, Pipeline, StageRun, StageView};
pub use registry::Registration;
pub use running::{attribute, attribution_wanted, running, Running};
pub use setl::{Setl, SetlBuilder};
pub use setl_macros::{delivery, factory};
pub use stage::Stage;

/// Re-exported so factories can log with `setl_core::tracing::info!(..)` inside the phase spans
/// without adding the dependency.
pub use tracing;

/// What a factory module needs: `use setl_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        delivery, factory, BenchmarkResult, BoxedFactory, Delivery, Error, ExecutionMode, Factory, FactoryExt,
        HasBenchmark, Pipeline, Result, Setl, Stage, StorageLevel,
    };
}

/// The README's Rust blocks run as doctests, so the user guide cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The guide's page "Writing factories": its Rust blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide/factories.md")]
pub struct GuideFactories;
