//! `Pipeline`: stages, external inputs, validation, the run, and what a run leaves behind.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::benchmark::{self, BenchmarkResult, HasBenchmark};
use crate::cache::{CacheStats, Storable, StorageLevel};
use crate::delivery::Payload;
use crate::error::{ErrorKind, Result};
use crate::executed::ExecutedWork;
use crate::factory::shelf::Shelves;
use crate::factory::{BoxedFactory, Factory, FactoryRef, FactoryWiring, Signature, TypeInfo};
use crate::observe::{EventKind, Observer, Observers};
use crate::plan::{self, ExternalDecl, FactoryDecl, Plan};
use crate::registry::Registration;
use crate::running::WorkSink;
use crate::runtime::store::{Counters, Kept, SlotSpec};
use crate::runtime::{self, FactoryTiming, RunSpec};
use crate::setl::Setl;
use crate::stage::{Stage, StagedFactory};

/// How a pipeline orders its factories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExecutionMode {
    /// A factory starts as soon as all its inputs exist, wherever it is declared.
    #[default]
    Dataflow,
    /// SETL's order: stage by stage, with a barrier after each; a producer must sit in an
    /// earlier stage than its consumers. Kept to compare against, not for speed.
    StageBarrier,
}

/// A value given to the pipeline from outside, delivered like any factory's output.
struct ExternalInput {
    payload_type: TypeInfo,
    value: Payload,
    id: String,
    consumers: Vec<FactoryRef>,
}

/// A factory of the pipeline, as validation and reports see it; the factory itself is on the
/// pipeline's shelves.
struct Entry {
    /// As its stage held it.
    factory: StagedFactory,
    stage: usize,
}

/// A stage's settings, kept after its factories moved into the pipeline.
#[derive(Debug, Clone, Copy)]
struct StageSettings {
    benchmark: Option<bool>,
    parallel: bool,
    writable: bool,
}

/// What a finished run leaves behind.
struct Outcome {
    outputs: Vec<Option<Kept>>,
    finished: Vec<bool>,
    kept: Vec<bool>,
    succeeded: bool,
    /// Per factory, when timed; the benchmark results are made from them when asked for, so
    /// that `run()` with benchmarks on does not build a report nobody reads.
    timings: Vec<Option<FactoryTiming>>,
    /// When the run started, if anything was timed.
    started: Option<std::time::Instant>,
    /// Work engines executed for its factories during the run (see [`crate::attribute`]).
    executed: Vec<ExecutedWork>,
    /// Per factory: whether it was benchmarked (empty when none was).
    benchmarked: Vec<bool>,
    cache: CacheStats,
    /// The run's spill directory, deleted (with every file left in it) when the pipeline goes.
    /// Declared after `outputs`, so kept spill files go first.
    spill_dir: Option<tempfile::TempDir>,
}

/// An ordered list of stages, their external inputs, and the run that connects them.
///
/// # Examples
///
/// ```
/// use setl_core::prelude::*;
///
/// #[factory]
/// #[derive(Default)]
/// struct Greeting { text: String }
///
/// impl Factory for Greeting {
///     type Output = String;
///     fn process(&mut self) -> Result<()> { self.text = "hello".into(); Ok(()) }
///     fn get(&self) -> String { self.text.clone() }
/// }
///
/// let setl = Setl::builder().threads(1).build()?;
/// let mut pipeline = setl.new_pipeline();
/// pipeline.add_stage_from_type::<Greeting>();
/// pipeline.run()?;
/// assert_eq!(*pipeline.output::<Greeting>()?, "hello");
/// # Ok::<(), setl_core::Error>(())
/// ```
#[must_use]
pub struct Pipeline {
    setl: Setl,
    benchmark: bool,
    mode: ExecutionMode,
    keep_all: bool,
    keep: HashSet<TypeId>,
    /// Storage levels set with `persist` (`Some`) or cleared with `unpersist` (`None`), over
    /// what `#[factory(storage = ..)]` declared.
    levels: HashMap<TypeId, Option<StorageLevel>>,
    memory_budget: Option<u64>,
    stages: Vec<StageSettings>,
    entries: Vec<Entry>,
    /// The factories, each owned by its index in `entries`; a run borrows them.
    shelves: Shelves,
    inputs: Vec<ExternalInput>,
    observers: Vec<Arc<dyn Observer>>,
    outcome: Option<Outcome>,
}

/// Configures the pipeline input just added by [`Pipeline::set_input`].
pub struct InputBuilder<'a> {
    input: &'a mut ExternalInput,
}

impl InputBuilder<'_> {
    /// The delivery id consumers ask for with `#[delivery(id = "..")]`.
    pub fn with_id(self, id: impl Into<String>) -> Self {
        self.input.id = id.into();
        self
    }

    /// Restricts the input to consumer `F` (call again to allow several).
    pub fn for_consumer<F: FactoryWiring + 'static>(self) -> Self {
        self.input.consumers.push(FactoryRef::of::<F>());
        self
    }
}

impl Pipeline {
    pub(crate) fn new(setl: Setl) -> Self {
        let memory_budget = setl.memory_budget();
        Pipeline {
            setl,
            benchmark: false,
            mode: ExecutionMode::Dataflow,
            keep_all: false,
            keep: HashSet::new(),
            levels: HashMap::new(),
            memory_budget,
            stages: Vec::new(),
            entries: Vec::new(),
            shelves: Shelves::default(),
            inputs: Vec::new(),
            observers: Vec::new(),
            outcome: None,
        }
    }

    /// Benchmarks every factory (a stage's own `benchmark` setting wins over this one).
    pub fn benchmark(&mut self, benchmark: bool) -> &mut Self {
        self.benchmark = benchmark;
        self
    }

    /// Chooses dataflow order (the default) or SETL's stage barriers.
    pub fn mode(&mut self, mode: ExecutionMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Keeps every output after the run instead of releasing intermediates after their last
    /// consumer (handy in tests).
    pub fn keep_all_outputs(&mut self, keep: bool) -> &mut Self {
        self.keep_all = keep;
        self
    }

    /// Keeps `F`'s output (every instance's) available to [`output`](Self::output) after the
    /// run, even when consumers took it.
    pub fn keep_output<F: Factory>(&mut self) -> &mut Self {
        self.keep.insert(TypeId::of::<F>());
        self
    }

    /// The most bytes of cacheable outputs this pipeline holds in memory (overrides the
    /// context's [`memory_budget`](crate::SetlBuilder::memory_budget)); over it, outputs needed
    /// furthest in the future spill to disk.
    pub fn memory_budget(&mut self, bytes: u64) -> &mut Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Persists `F`'s output at `level`: the seed's `persist`. The output is materialized once
    /// right after `F` runs (a lazy dataset's recipe then runs once for all consumers instead of
    /// once per consumer) and held as `level` says. Overrides `#[factory(storage = ..)]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use setl_core::prelude::*;
    /// # use std::path::Path;
    /// # struct Blob(Vec<u8>);
    /// # impl setl_core::Storable for Blob {
    /// #     fn byte_size(&self) -> usize { self.0.len() }
    /// #     fn spill(&self, path: &Path) -> Result<(), setl_core::BoxError> { Ok(std::fs::write(path, &self.0)?) }
    /// #     fn reload(path: &Path) -> Result<Self, setl_core::BoxError> { Ok(Blob(std::fs::read(path)?)) }
    /// # }
    /// #[factory]
    /// #[derive(Default)]
    /// struct Load;
    /// impl Factory for Load {
    ///     type Output = Blob;
    ///     fn get(&self) -> Blob { Blob(vec![1, 2, 3]) }
    /// }
    ///
    /// let setl = Setl::builder().threads(1).build()?;
    /// let mut pipeline = setl.new_pipeline();
    /// pipeline.add_stage_from_type::<Load>().persist::<Load>(StorageLevel::DiskOnly);
    /// pipeline.run()?;
    /// assert_eq!(pipeline.output::<Load>()?.0, [1, 2, 3]); // read back from its spill file
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn persist<F: Factory>(&mut self, level: StorageLevel) -> &mut Self
    where
        F::Output: Storable,
    {
        self.levels.insert(TypeId::of::<F>(), Some(level));
        self
    }

    /// Undoes [`persist`](Self::persist), or a `#[factory(storage = ..)]` declaration: `F`'s
    /// output is handed on as produced (a lazy one then runs once per consumer).
    pub fn unpersist<F: Factory>(&mut self) -> &mut Self {
        self.levels.insert(TypeId::of::<F>(), None);
        self
    }

    /// What the cache did in the last run: bytes held and at peak, spills, reloads, releases,
    /// lazy recomputations. `None` before `run()`.
    pub fn cache_stats(&self) -> Option<&CacheStats> {
        self.outcome.as_ref().map(|outcome| &outcome.cache)
    }

    /// The directory holding this pipeline's spill files, when the run made one. It is deleted
    /// with the pipeline.
    pub fn spill_dir(&self) -> Option<&Path> {
        self.outcome.as_ref()?.spill_dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Attaches an observer of the run's events.
    pub fn observe(&mut self, observer: Arc<dyn Observer>) -> &mut Self {
        self.observers.push(observer);
        self
    }

    /// Adds a pipeline input, matched to `#[delivery]` fields by type (and id, see
    /// [`InputBuilder::with_id`]).
    pub fn set_input<T: Send + Sync + 'static>(&mut self, value: T) -> InputBuilder<'_> {
        self.inputs.push(ExternalInput {
            payload_type: TypeInfo::of::<T>(),
            value: Arc::new(value),
            id: String::new(),
            consumers: Vec::new(),
        });
        let input = self.inputs.last_mut().expect("an input was just pushed");
        InputBuilder { input }
    }

    /// Adds a stage after the others.
    pub fn add_stage(&mut self, stage: Stage) -> &mut Self {
        let index = self.stages.len();
        self.stages.push(StageSettings {
            benchmark: stage.benchmark,
            parallel: stage.parallel,
            writable: stage.writable,
        });
        self.shelves.append(stage.shelves, self.entries.len());
        self.entries.extend(stage.factories.into_iter().map(|factory| Entry { factory, stage: index }));
        self
    }

    /// Adds a stage holding `F::default()`.
    pub fn add_stage_from_type<F: Factory + Default>(&mut self) -> &mut Self {
        self.add_stage(Stage::new().add_factory(F::default()))
    }

    /// Adds a stage holding `factory`, built by the caller (e.g. with constructor arguments),
    /// or an instance with its own ids (see [`BoxedFactory`]).
    pub fn add_factory(&mut self, factory: impl Into<BoxedFactory>) -> &mut Self {
        self.add_stage(Stage::new().add_factory(factory))
    }

    /// Adds one stage holding a default instance of every registered factory that `filter`
    /// accepts and that implements `Default`, ordered by module and name.
    pub fn add_stage_from_registry(&mut self, filter: impl Fn(&Registration) -> bool) -> &mut Self {
        let mut stage = Stage::new();
        for registration in Registration::all() {
            if filter(registration) {
                if let Some(factory) = registration.instantiate() {
                    stage = stage.add_factory(factory);
                }
            }
        }
        self.add_stage(stage)
    }

    /// The signatures of the pipeline's factories, in declaration order.
    pub fn factories(&self) -> impl Iterator<Item = &Signature> + '_ {
        self.entries.iter().map(|entry| &*entry.factory.signature)
    }

    /// Resolves every delivery without running anything. A pipeline of thousands of factories
    /// is resolved in parts on the context's threads, so this waits for a free one.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Validation` listing every problem found.
    pub fn validate(&self) -> Result<()> {
        self.resolve().map(drop)
    }

    pub(crate) fn resolve(&self) -> Result<Plan> {
        let factories: Vec<FactoryDecl<'_>> = self
            .entries
            .iter()
            .map(|entry| FactoryDecl {
                signature: &entry.factory.signature,
                stage: entry.stage,
                unknown_inputs: &entry.factory.unknown_inputs,
            })
            .collect();
        let externals: Vec<ExternalDecl<'_>> = self
            .inputs
            .iter()
            .map(|input| ExternalDecl { payload: input.payload_type, id: &input.id, consumers: &input.consumers })
            .collect();
        plan::resolve(&factories, &externals, self.mode == ExecutionMode::StageBarrier)
            .map_err(|errors| ErrorKind::Validation(errors).into())
    }

    /// Validates, then runs every factory once, in dataflow order, on the context's threads.
    ///
    /// # Errors
    ///
    /// `Validation` before anything runs; `FactoryFailed` or `FactoryPanicked` naming the first
    /// factory and phase that failed (no new factory starts after a failure, running ones
    /// finish); `Panicked` naming the factory and the [`Operation`](crate::Operation) when user
    /// code outside the phases panicked (its output's `Storable` operations, `writable`, the
    /// drop of the factory or of its output); `AlreadyRan` on a second call. No panic of user
    /// code unwinds out of `run()`.
    pub fn run(&mut self) -> Result<&mut Self> {
        if self.outcome.is_some() {
            return Err(ErrorKind::AlreadyRan.into());
        }
        if self.entries.is_empty() {
            return Err(ErrorKind::EmptyPipeline.into());
        }
        let plan = self.resolve()?;
        let count = self.entries.len();
        // One pass over the factories builds every per-factory table of the run.
        // Kept after the run: results (outputs nobody consumes), the last factory's (for
        // `last_output`) and those asked for. An intermediate goes after its last consumer,
        // whatever its stage, so a pipeline of one big stage still frees as it goes.
        let last = count - 1;
        let mut kept = Vec::with_capacity(count);
        let mut slots = Vec::with_capacity(count);
        let mut benchmarked = Vec::with_capacity(count);
        let mut signatures = Vec::with_capacity(count);
        let mut stage_of = Vec::with_capacity(count);
        for (index, entry) in self.entries.iter().enumerate() {
            let signature = &*entry.factory.signature;
            let type_id = || signature.factory.id();
            let keep = self.keep_all
                || plan.output_takers[index] == 0
                || index == last
                || (!self.keep.is_empty() && self.keep.contains(&type_id()));
            let level = match self.levels.is_empty() {
                true => signature.storage,
                false => self.levels.get(&type_id()).copied().unwrap_or(signature.storage),
            };
            kept.push(keep);
            slots.push(SlotSpec {
                name: &signature.name,
                keep,
                ops: signature.store_ops.as_ref(),
                level: level.filter(|_| signature.store_ops.is_some()),
            });
            benchmarked.push(self.stages[entry.stage].benchmark.unwrap_or(self.benchmark));
            signatures.push(signature);
            stage_of.push(entry.stage);
        }
        let may_spill = slots.iter().any(|slot| {
            slot.ops.is_some() && (self.memory_budget.is_some() || slot.level == Some(StorageLevel::DiskOnly))
        });
        let spill_dir = if may_spill { Some(self.make_spill_dir()?) } else { None };
        let counters = Arc::new(Counters::default());
        let any_benchmarked = benchmarked.contains(&true);
        let benchmarked_copy = if any_benchmarked { benchmarked.clone() } else { Vec::new() };
        let observers = Observers::new(self.observers.iter().cloned());
        let timed = any_benchmarked || observers.active();
        let started = timed.then(std::time::Instant::now);
        let sink = started.map(|started| WorkSink::new(started, observers.clone()));

        let spec = RunSpec {
            plan: &plan,
            signatures,
            stage_of,
            stage_parallel: self.stages.iter().map(|stage| stage.parallel).collect(),
            stage_writable: self.stages.iter().map(|stage| stage.writable).collect(),
            slots: slots.into(),
            budget: self.memory_budget,
            spill_dir: spill_dir.as_ref().map(|dir| dir.path().to_owned()),
            counters: counters.clone(),
            barrier: self.mode == ExecutionMode::StageBarrier,
            observers: &observers,
            benchmarked,
            timed,
            sink: sink.clone(),
        };
        let span = tracing::info_span!("pipeline", factories = count);
        let _entered = span.enter();
        if let Some(started) = started {
            observers.emit_at(|| EventKind::PipelineStarted { factories: count }, started);
        }
        debug_assert_eq!(self.shelves.len(), count, "one factory per entry");
        let factories = self.shelves.lend(count);
        let externals = self.inputs.iter().map(|input| input.value.clone()).collect();
        let outcome = runtime::execute(spec, factories, externals, self.setl.pool());
        let succeeded = outcome.error.is_none();
        let cache = counters.snapshot(self.memory_budget);
        observers.emit(|| EventKind::CacheSummary(cache.clone()));
        if let Some(started) = started {
            observers.emit(|| EventKind::PipelineFinished { elapsed: started.elapsed(), ok: succeeded });
        }
        self.outcome = Some(Outcome {
            outputs: outcome.outputs,
            finished: outcome.finished,
            kept,
            succeeded,
            timings: outcome.timings,
            started,
            executed: sink.map(|sink| sink.take()).unwrap_or_default(),
            benchmarked: benchmarked_copy,
            cache,
            spill_dir,
        });
        match outcome.error {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    /// The output of factory `F` after a successful run. An output the cache left on disk
    /// (spilled over the memory budget, or persisted `DiskOnly`) is read back from its spill
    /// file on each call.
    ///
    /// # Errors
    ///
    /// `UnknownFactory` when `F` is not in the pipeline, `AmbiguousFactory` when it is there
    /// several times with different ids (use [`output_with_id`](Self::output_with_id)),
    /// `NotRun` before a successful run, `OutputReleased` when consumers took it and it was not
    /// kept (see [`keep_output`](Self::keep_output)), `Spill` when its spill file cannot be read
    /// back.
    pub fn output<F: Factory>(&self) -> Result<Arc<F::Output>> {
        let mut instances = self.instances_of::<F>();
        let index = instances.next().ok_or_else(|| ErrorKind::UnknownFactory { factory: F::NAME.to_owned() })?;
        if instances.next().is_some() {
            let ids = self
                .instances_of::<F>()
                .map(|index| self.entries[index].factory.signature.output_id.to_string())
                .collect();
            return Err(ErrorKind::AmbiguousFactory { factory: F::NAME.to_owned(), ids }.into());
        }
        let payload = self.output_at(index)?;
        downcast::<F::Output>(payload, &self.entries[index].factory.signature)
    }

    /// The output of the instance of `F` that delivers under `id` (see [`BoxedFactory::with_id`]).
    ///
    /// # Errors
    ///
    /// As [`output`](Self::output); `UnknownFactory` when no instance of `F` has that id.
    pub fn output_with_id<F: Factory>(&self, id: &str) -> Result<Arc<F::Output>> {
        let index = self
            .instances_of::<F>()
            .find(|&index| self.entries[index].factory.signature.output_id == id)
            .ok_or_else(|| ErrorKind::UnknownFactory { factory: format!("{}[{id}]", F::NAME) })?;
        let payload = self.output_at(index)?;
        downcast::<F::Output>(payload, &self.entries[index].factory.signature)
    }

    /// The positions of `F`'s instances, in declaration order.
    fn instances_of<F: Factory>(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.entries.len()).filter(|&index| self.entries[index].factory.signature.factory.id() == TypeId::of::<F>())
    }

    /// The output of the last factory of the last stage, as a `T`.
    ///
    /// # Errors
    ///
    /// As [`output`](Self::output), plus `OutputType` when that output is not a `T`, and
    /// `EmptyPipeline` when there is no factory.
    pub fn last_output<T: Send + Sync + 'static>(&self) -> Result<Arc<T>> {
        let index = self.entries.len().checked_sub(1).ok_or(ErrorKind::EmptyPipeline)?;
        let payload = self.output_at(index)?;
        downcast::<T>(payload, &self.entries[index].factory.signature)
    }

    fn output_at(&self, index: usize) -> Result<Payload> {
        let name = &*self.entries[index].factory.signature.name;
        let outcome = match &self.outcome {
            Some(outcome) if outcome.succeeded || outcome.finished[index] => outcome,
            _ => return Err(ErrorKind::NotRun { factory: name.to_owned() }.into()),
        };
        let signature = &self.entries[index].factory.signature;
        match (&outcome.outputs[index], &signature.store_ops) {
            (Some(Kept::Memory(payload)), _) => Ok(payload.clone()),
            (Some(Kept::Disk(file)), Some(ops)) => match crate::guard::catch(|| ops.reload(file.path())) {
                Ok(reloaded) => reloaded.map_err(|source| {
                    ErrorKind::Spill {
                        factory: name.to_owned(),
                        action: "read back",
                        path: file.path().to_owned(),
                        source,
                    }
                    .into()
                }),
                Err(message) => Err(crate::guard::panicked(name, crate::error::Operation::Reload, message)),
            },
            // Only the outputs of storable types reach the disk.
            (Some(Kept::Disk(_)), None) => {
                Err(ErrorKind::Internal(format!("the output of `{name}` was spilled without storable operations"))
                    .into())
            }
            (None, _) if !outcome.kept[index] => Err(ErrorKind::OutputReleased { factory: name.to_owned() }.into()),
            (None, _) => Err(ErrorKind::NotRun { factory: name.to_owned() }.into()),
        }
    }

    /// Makes this run's spill directory `setl-spill-<pid>-<random>` inside the context's (or the
    /// system's temporary one), after removing there the spill directories of processes that
    /// are gone (an aborted run cannot remove its own; see [`crate::fs::sweep_dead_spill_dirs`]).
    fn make_spill_dir(&self) -> Result<tempfile::TempDir> {
        let base = self.setl.spill_dir().map_or_else(std::env::temp_dir, Path::to_path_buf);
        // A leftover that cannot be removed must not stop this run: it only costs disk space.
        if let Err(error) = crate::fs::sweep_dead_spill_dirs(&base) {
            tracing::warn!(%error, "could not remove the spill directories of dead runs");
        }
        let prefix = format!("{}{}-", crate::fs::SPILL_PREFIX, std::process::id());
        let made =
            std::fs::create_dir_all(&base).and_then(|()| tempfile::Builder::new().prefix(&prefix).tempdir_in(&base));
        made.map_err(|error| {
            ErrorKind::InvalidSetting {
                setting: "spill_dir",
                reason: format!("could not make a spill directory in `{}`: {error}", base.display()),
            }
            .into()
        })
    }

    /// The benchmarks of one stage (index in declaration order).
    pub fn stage(&self, index: usize) -> Option<StageView<'_>> {
        (index < self.stages.len()).then_some(StageView { pipeline: self, index })
    }

    /// The number of stages.
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// The number of worker threads the pipeline runs on (its context's pool).
    pub fn threads(&self) -> usize {
        self.setl.threads()
    }

    /// The execution mode chosen with [`mode`](Self::mode).
    pub fn execution_mode(&self) -> ExecutionMode {
        self.mode
    }

    /// Where each input comes from, for `describe` and diagrams: per factory, per slot, the
    /// producer's name (`None` for a pipeline input, or when unresolved).
    pub(crate) fn flows(&self) -> Vec<Vec<Option<FlowSource>>> {
        let Ok(plan) = self.resolve() else {
            return self.entries.iter().map(|entry| vec![None; entry.factory.signature.inputs.len()]).collect();
        };
        plan.sources
            .iter()
            .map(|slots| {
                slots
                    .iter()
                    .map(|source| {
                        source.get().map(|source| match source {
                            plan::Source::Factory(index) => FlowSource::Factory(index),
                            plan::Source::External(index) => FlowSource::External(index),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    pub(crate) fn entry_stage(&self, index: usize) -> usize {
        self.entries[index].stage
    }

    pub(crate) fn input_description(&self, index: usize) -> (String, &str) {
        let input = &self.inputs[index];
        (input.payload_type.name(), &input.id)
    }

    pub(crate) fn input_count(&self) -> usize {
        self.inputs.len()
    }
}

/// Where a flow into a slot comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FlowSource {
    Factory(usize),
    External(usize),
}

fn downcast<T: Send + Sync + 'static>(payload: Payload, signature: &Signature) -> Result<Arc<T>> {
    payload.downcast::<T>().map_err(|_| {
        ErrorKind::OutputType {
            factory: signature.name.to_string(),
            actual: signature.output.name(),
            requested: TypeInfo::of::<T>().name(),
        }
        .into()
    })
}

impl HasBenchmark for Pipeline {
    fn benchmarks(&self) -> Vec<BenchmarkResult> {
        let Some(outcome) = &self.outcome else { return Vec::new() };
        let factories = self
            .entries
            .iter()
            .zip(&outcome.benchmarked)
            .map(|(entry, &benchmarked)| (&*entry.factory.signature.name, entry.stage, benchmarked));
        benchmark::results(factories, &outcome.timings, outcome.started, &outcome.executed)
    }
}

/// One stage of a pipeline that ran, for its benchmarks.
#[derive(Clone, Copy)]
pub struct StageView<'a> {
    pipeline: &'a Pipeline,
    index: usize,
}

impl StageView<'_> {
    /// The stage's index in declaration order.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl HasBenchmark for StageView<'_> {
    fn benchmarks(&self) -> Vec<BenchmarkResult> {
        self.pipeline.benchmarks().into_iter().filter(|result| result.stage == self.index).collect()
    }
}

/// Running a stage on its own is running a pipeline of that one stage, so it lives here, where
/// pipelines are: the stage module stays below the pipeline's.
impl Stage {
    /// Runs this stage's factories on their own, as SETL's `Stage.run()` does: a pipeline of
    /// this one stage on `setl`'s threads, benchmarked when [`benchmark`](Self::benchmark) says
    /// so. The stage is spent; what the run gave is in the returned [`StageRun`].
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
    /// let ran = Stage::new().benchmark(true).add_factory_from_type::<Audit>().run(&setl)?;
    /// assert_eq!(*ran.output::<Audit>()?, 7);
    /// assert_eq!(ran.benchmarks()[0].factory, "Audit");
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn run(self, setl: &Setl) -> Result<StageRun> {
        let benchmark = self.benchmark.unwrap_or(false);
        let mut pipeline = setl.new_pipeline();
        pipeline.benchmark(benchmark).keep_all_outputs(true).add_stage(self);
        pipeline.run()?;
        Ok(StageRun { pipeline })
    }
}

/// What a stage's own [`run`](Stage::run) gave: its factories' outputs and benchmarks.
#[derive(Debug)]
pub struct StageRun {
    /// The one-stage pipeline that ran, which holds them.
    pipeline: Pipeline,
}

impl StageRun {
    /// The output of factory `F`.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::output`].
    pub fn output<F: Factory>(&self) -> Result<Arc<F::Output>> {
        self.pipeline.output::<F>()
    }
}

impl HasBenchmark for StageRun {
    fn benchmarks(&self) -> Vec<BenchmarkResult> {
        self.pipeline.benchmarks()
    }
}

/// Drops what the pipeline still holds (kept outputs, factories that never ran) with each drop
/// guarded: a panic in user code's `Drop` is logged, never unwound out of the pipeline's drop.
impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(mut outcome) = self.outcome.take() {
            for (index, output) in outcome.outputs.drain(..).enumerate() {
                if let Err(message) = crate::guard::catch(move || drop(output)) {
                    let name = self.entries.get(index).map_or("?", |entry| &*entry.factory.signature.name);
                    tracing::error!("factory `{name}` panicked while dropping its output: {message}");
                }
            }
            drop(outcome);
        }
        let shelves = std::mem::take(&mut self.shelves);
        if let Err(message) = crate::guard::catch(move || drop(shelves)) {
            tracing::error!("a factory that did not run panicked while being dropped: {message}");
        }
        let inputs = std::mem::take(&mut self.inputs);
        if let Err(message) = crate::guard::catch(move || drop(inputs)) {
            tracing::error!("a pipeline input panicked while being dropped: {message}");
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("factories", &self.entries.iter().map(|entry| &*entry.factory.signature.name).collect::<Vec<_>>())
            .field("stages", &self.stages.len())
            .field("benchmark", &self.benchmark)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}
