//! `Stage`: a group of factories with shared settings.

use std::sync::Arc;

use crate::benchmark::{BenchmarkResult, HasBenchmark};
use crate::error::{ErrorKind, Result};
use crate::factory::boxed::InstanceSignature;
use crate::factory::shelf::Shelves;
use crate::factory::{BoxedFactory, Factory};
use crate::pipeline::Pipeline;
use crate::setl::Setl;

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
    /// The factories' descriptions, in the order they were added.
    pub(crate) factories: Vec<StagedFactory>,
    /// The factories themselves, each owned by its index in `factories`.
    pub(crate) shelves: Shelves,
    pub(crate) benchmark: Option<bool>,
    pub(crate) parallel: bool,
    pub(crate) writable: bool,
    /// The one-stage pipeline [`run`](Self::run) made, with its outputs and benchmarks.
    ran: Option<Box<Pipeline>>,
}

impl Stage {
    /// An empty stage: parallel, writable, benchmarked as the pipeline says.
    pub fn new() -> Self {
        Stage {
            factories: Vec::new(),
            shelves: Shelves::default(),
            benchmark: None,
            parallel: true,
            writable: true,
            ran: None,
        }
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
        let BoxedFactory { factory, signature, unknown_inputs } = factory.into();
        factory.shelve(&mut self.shelves, self.factories.len());
        self.factories.push(StagedFactory { signature, unknown_inputs });
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

    /// Runs this stage's factories on their own, as SETL's `Stage.run()` does: a pipeline of
    /// this one stage on `setl`'s threads, benchmarked when [`benchmark`](Self::benchmark) says
    /// so. Afterwards [`benchmarks`](HasBenchmark::benchmarks) and [`output`](Self::output)
    /// report on it; the factories are spent, so the stage cannot be added to a pipeline too.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::run`]: every input must come from a factory of the stage.
    ///
    /// # Examples
    ///
    /// ```
    /// use setl_core::prelude::*;
    /// # #[factory] #[derive(Default)] struct Audit;
    /// # impl Factory for Audit { type Output = u32; fn get(&self) -> u32 { 7 } }
    /// let setl = Setl::builder().threads(1).build()?;
    /// let mut stage = Stage::new().benchmark(true).add_factory_from_type::<Audit>();
    /// stage.run(&setl)?;
    /// assert_eq!(*stage.output::<Audit>()?, 7);
    /// assert_eq!(stage.benchmarks()[0].factory, "Audit");
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn run(&mut self, setl: &Setl) -> Result<&mut Self> {
        if self.ran.is_some() {
            return Err(ErrorKind::AlreadyRan.into());
        }
        let mut pipeline = setl.new_pipeline().benchmark(self.benchmark.unwrap_or(false)).keep_all_outputs(true);
        pipeline.add_stage(Stage {
            factories: std::mem::take(&mut self.factories),
            shelves: std::mem::take(&mut self.shelves),
            benchmark: self.benchmark,
            parallel: self.parallel,
            writable: self.writable,
            ran: None,
        });
        let ran = self.ran.insert(Box::new(pipeline));
        ran.run()?;
        Ok(self)
    }

    /// The output of factory `F` after [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// `NotRun` before a successful run; otherwise as [`Pipeline::output`].
    pub fn output<F: Factory>(&self) -> Result<Arc<F::Output>> {
        match &self.ran {
            Some(pipeline) => pipeline.output::<F>(),
            None => Err(ErrorKind::NotRun { factory: F::NAME.to_owned() }.into()),
        }
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

/// The benchmarks of the stage's own [`run`](Stage::run); empty before it (a stage added to a
/// pipeline reports through [`Pipeline::stage`] instead).
impl HasBenchmark for Stage {
    fn benchmarks(&self) -> Vec<BenchmarkResult> {
        self.ran.as_ref().map(|pipeline| pipeline.benchmarks()).unwrap_or_default()
    }
}
