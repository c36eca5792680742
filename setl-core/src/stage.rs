//! `Stage`: a group of factories with shared settings.

use crate::factory::{BoxedFactory, Factory};

/// A group of factories sharing settings.
///
/// Stages group factories for benchmarking, writing and concurrency; they do not order them.
/// Factories start as soon as their inputs exist, wherever their producers are declared (use
/// `ExecutionMode::StageBarrier` for SETL's stage-by-stage order).
///
/// # Examples
///
/// ```
/// use setl_core::prelude::*;
/// # #[factory] #[derive(Default)] struct Audit;
/// # impl Factory for Audit { type Output = (); fn get(&self) {} }
/// let stage = Stage::new().benchmark(false).writable(false).add_factory_from_type::<Audit>();
/// ```
#[derive(Debug)]
#[must_use]
pub struct Stage {
    pub(crate) factories: Vec<BoxedFactory>,
    pub(crate) benchmark: Option<bool>,
    pub(crate) parallel: bool,
    pub(crate) writable: bool,
}

impl Stage {
    /// An empty stage: parallel, writable, benchmarked as the pipeline says.
    pub fn new() -> Self {
        Stage { factories: Vec::new(), benchmark: None, parallel: true, writable: true }
    }

    /// Benchmarks this stage's factories (or not), whatever the pipeline's setting.
    pub fn benchmark(mut self, benchmark: bool) -> Self {
        self.benchmark = Some(benchmark);
        self
    }

    /// With `false`, this stage's factories run one at a time (other stages still run beside it).
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// With `false`, `write` is skipped for every factory of the stage.
    pub fn writable(mut self, writable: bool) -> Self {
        self.writable = writable;
        self
    }

    /// Adds a factory built by the caller, e.g. with constructor arguments, or an instance
    /// with its own ids (`ReadTable::new(path).with_id("lineitem")`, see [`BoxedFactory`]).
    pub fn add_factory(mut self, factory: impl Into<BoxedFactory>) -> Self {
        self.factories.push(factory.into());
        self
    }

    /// Adds `F::default()`.
    pub fn add_factory_from_type<F: Factory + Default>(self) -> Self {
        self.add_factory(F::default())
    }

    /// Adds a factory of a type known only at run time, e.g. from the registry.
    pub fn add_boxed(self, factory: BoxedFactory) -> Self {
        self.add_factory(factory)
    }

    /// The number of factories.
    pub fn len(&self) -> usize {
        self.factories.len()
    }

    /// Whether the stage has no factory.
    pub fn is_empty(&self) -> bool {
        self.factories.is_empty()
    }
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}
