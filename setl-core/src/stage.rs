//! `Stage`: a group of factories with shared settings.

use crate::factory::boxed::InstanceSignature;
use crate::factory::shelf::Shelves;
use crate::factory::{BoxedFactory, Factory};

/// A group of factories sharing settings.
///
/// Stages group factories for benchmarking, writing and concurrency; they do not order them.
/// Factories start as soon as their inputs exist, wherever their producers are declared (use
/// `ExecutionMode::StageBarrier` for SETL's stage-by-stage order). A stage also runs on its
/// own, as SETL's `Stage.run()` does: [`Stage::run`].
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
    /// The factories' descriptions, in the order they were added.
    pub(crate) factories: Vec<StagedFactory>,
    /// The factories themselves, each owned by its index in `factories`.
    pub(crate) shelves: Shelves,
    pub(crate) benchmark: Option<bool>,
    pub(crate) parallel: bool,
    pub(crate) writable: bool,
}

impl Stage {
    /// An empty stage: parallel, writable, benchmarked as the pipeline says.
    pub fn new() -> Self {
        Stage { factories: Vec::new(), shelves: Shelves::default(), benchmark: None, parallel: true, writable: true }
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

    /// Adds a factory built by the caller, e.g. with constructor arguments, an instance with its
    /// own ids (`ReadTable::new(path).with_id("lineitem")`, see [`BoxedFactory`]), or one of a
    /// type known only at run time (from the registry).
    pub fn add_factory(mut self, factory: impl Into<BoxedFactory>) -> Self {
        let BoxedFactory { factory, signature, unknown_inputs } = factory.into();
        factory.shelve(&mut self.shelves, self.factories.len());
        self.factories.push(StagedFactory { signature, unknown_inputs });
        self
    }

    /// Adds `F::default()`.
    pub fn add_factory_from_type<F: Factory + Default>(self) -> Self {
        self.add_factory(F::default())
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

/// A factory of a stage, as validation sees it; the factory itself is on the stage's shelves.
#[derive(Debug)]
pub(crate) struct StagedFactory {
    pub(crate) signature: InstanceSignature,
    /// Fields named by `with_input_id` that the factory does not have.
    pub(crate) unknown_inputs: Vec<(&'static str, Box<str>)>,
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}
