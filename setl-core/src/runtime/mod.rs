//! The dataflow executor.
//!
//! Each factory keeps a count of producers that have not finished; finishing a factory
//! decrements its dependents and makes those reaching zero ready. Ready factories wait in a
//! priority queue (longest remaining path first). Workers are Rayon tasks: a worker that
//! finishes a factory takes the next ready one itself, without a round trip through a
//! coordinator, and spawns helpers while there is more ready work than busy workers, up to the
//! pool's size. So a chain of trivial factories costs one lock per factory, and independent
//! factories spread over every thread.
//!
//! - [`scheduler`]: the workers' loop, readiness, stage rules and completion, under the lock.
//! - [`phases`]: one factory's run, outside the lock.
//! - [`store`]: the values between factories, their weight, spills and release.

use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

mod phases;
mod scheduler;
pub(crate) mod store;

use crate::delivery::Payload;
use crate::error::{Error, ErrorKind};
use crate::factory::shelf::ErasedFactory;
use crate::factory::Signature;
use crate::observe::{FactoryId, Observers};
use crate::plan::{Plan, Source};
use crate::running::WorkSink;
use scheduler::{advance_barrier, make_ready, spawn_helpers};
use store::{Counters, Kept, Produced, SlotSpec, Store, StoreSettings, Taken};

/// What a run needs, beyond the plan.
pub(crate) struct RunSpec<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) signatures: Vec<&'a Signature>,
    pub(crate) stage_of: Vec<usize>,
    pub(crate) stage_parallel: Vec<bool>,
    pub(crate) stage_writable: Vec<bool>,
    /// Per factory: keep the output after the run, its storable operations and storage level;
    /// shared with the store.
    pub(crate) slots: Arc<[SlotSpec<'a>]>,
    /// The memory budget for storable values, if any.
    pub(crate) budget: Option<u64>,
    /// Where spill files go (this pipeline's own directory), if spilling is possible.
    pub(crate) spill_dir: Option<PathBuf>,
    /// The cache counters, read by the pipeline after the run.
    pub(crate) counters: Arc<Counters>,
    /// SETL's mode: a stage starts only when the previous one finished.
    pub(crate) barrier: bool,
    /// Per factory: whether to time its phases for the benchmark report.
    pub(crate) benchmarked: Vec<bool>,
    /// Whether any factory is timed (benchmarked, or observers attached).
    pub(crate) timed: bool,
    pub(crate) observers: &'a Observers,
    /// Where engines record work they executed for a factory; `Some` when the run is timed.
    pub(crate) sink: Option<Arc<WorkSink>>,
}

/// What a run leaves behind.
pub(crate) struct RunOutcome {
    /// Per factory: the output, if kept (in memory or in a spill file).
    pub(crate) outputs: Vec<Option<Kept>>,
    /// Per factory: whether it finished.
    pub(crate) finished: Vec<bool>,
    /// Per factory: its timings, when it finished and was benchmarked or observed. Empty when
    /// no factory was timed.
    pub(crate) timings: Vec<Option<FactoryTiming>>,
    /// The first failure, if any.
    pub(crate) error: Option<Error>,
}

/// What one factory's run took. The worker records it and hands it over with the output, so
/// benchmarks cost a few clock reads per factory and no lock of their own. The thread is a
/// `u32` so that a finished factory's record stays within 128 bytes (see [`Job`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FactoryTiming {
    pub(crate) started: Instant,
    pub(crate) thread: Option<u32>,
    pub(crate) read: Duration,
    pub(crate) process: Duration,
    pub(crate) write: Duration,
    pub(crate) total: Duration,
}

/// A factory's run, as its worker hands it over.
struct Finished {
    produced: Produced,
    timing: Option<FactoryTiming>,
}

/// A ready factory in the queue: higher priority first, then declaration order. Packed in one
/// word (priority above, the index's complement below) so that the heap of a large pipeline is
/// small and compares single integers.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready(u64);

impl Ready {
    fn new(priority: u32, index: usize) -> Self {
        // A pipeline of more than 4 billion factories would not fit in memory.
        let index = u32::try_from(index).expect("fewer than 2^32 factories");
        Ready((u64::from(priority) << 32) | u64::from(u32::MAX - index))
    }

    fn index(&self) -> usize {
        (u32::MAX - self.0 as u32) as usize
    }
}

/// A factory taken by a worker, with its inputs. Inline room for a few inputs, so a job
/// allocates nothing in the common case, and at most 128 bytes, so that moving it in and out
/// of a worker's batch is a few register moves rather than a call to `memcpy`.
struct Job<'a> {
    /// The factory's index in the pipeline.
    index: usize,
    /// Borrowed from its shelf for the run.
    factory: &'a mut dyn ErasedFactory,
    /// The values of its input slots that have a source.
    inputs: SmallVec<[JobInput; 3]>,
}

// Moved by value several times per factory: keep the job and a finished factory's record
// within what the compiler moves without calling `memcpy`.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Job<'static>>() <= 128 && size_of::<(usize, Result<Finished, Error>)>() <= 128);

/// One input slot's value, as a job carries it.
struct JobInput {
    /// The bytes of the last share of the producer's output, when this job took it (so the
    /// store let go of it): held by the job alone until its factory lets go of it.
    owned: u64,
    /// The input slot, among the factory's `Delivery` fields.
    slot: u32,
    /// Whether this job took the store's last share.
    released: bool,
    /// The value, or where to read it back from.
    taken: Taken,
}

/// What the workers share under the lock.
struct State<'a> {
    /// Per factory: the factory until a worker takes it.
    factories: Vec<Option<&'a mut dyn ErasedFactory>>,
    /// Per factory: producers not finished yet.
    waiting: Vec<usize>,
    /// Factories whose producers have all finished, highest priority first.
    ready: BinaryHeap<Ready>,
    /// Every output while some consumer has not taken it (or while kept), and pipeline inputs.
    store: Store<'a>,
    /// Per stage: factories running now (for stages that run one at a time).
    stage_running: Vec<usize>,
    /// Per stage: ready factories held back because their serial stage is busy.
    stage_held: Vec<Vec<usize>>,
    /// Barrier mode: the stage now running.
    current_stage: usize,
    /// Per stage: its factories not finished yet (barrier mode moves on when it reaches 0).
    stage_left: Vec<usize>,
    /// Barrier mode, per stage: ready factories waiting for their stage's turn.
    barrier_held: Vec<Vec<usize>>,
    /// Workers running now (at most the pool's threads).
    active_workers: usize,
    /// Per factory: whether it finished.
    finished: Vec<bool>,
    /// Per factory: its timings; allocated only when some factory is timed.
    timings: Vec<Option<FactoryTiming>>,
    /// The run's first failure; no factory starts after it.
    error: Option<Error>,
}

/// What every worker reads: the run's settings, and the state under its lock.
struct Shared<'a> {
    spec: RunSpec<'a>,
    /// Per factory: its position in the plan's order, for "needed furthest in the future".
    position: Vec<usize>,
    state: Mutex<State<'a>>,
    /// The pool's threads: the most workers at once.
    threads: usize,
    /// The caller's span (the pipeline's), parent of every factory span on the workers, so a
    /// trace exporter sees one tree per run.
    parent: tracing::Span,
}

impl<'a> Shared<'a> {
    fn lock(&self) -> MutexGuard<'_, State<'a>> {
        // Nothing panics while holding the lock (user code runs outside it); recover anyway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Factory `index` as events name it; only built for observers.
    fn id(&self, index: usize) -> FactoryId {
        FactoryId { index, name: self.spec.signatures[index].name.clone() }
    }
}

/// Runs every factory once, in dataflow order, on `pool`.
pub(crate) fn execute<'a>(
    spec: RunSpec<'a>,
    factories: Vec<Option<&'a mut dyn ErasedFactory>>,
    externals: Vec<Payload>,
    pool: &rayon::ThreadPool,
) -> RunOutcome {
    let count = factories.len();
    let stages = spec.stage_parallel.len();
    let mut stage_left = vec![0; stages];
    for &stage in &spec.stage_of {
        stage_left[stage] += 1;
    }
    let store = Store::new(StoreSettings {
        specs: spec.slots.clone(),
        takers: &spec.plan.output_takers,
        // Only spilling asks which value is needed furthest in the future.
        pending: spec.budget.is_some().then(|| pending_takers(spec.plan)),
        externals,
        external_takers: spec.plan.external_takers.clone(),
        budget: spec.budget,
        spill_dir: spec.spill_dir.clone(),
        counters: spec.counters.clone(),
    });
    let state = State {
        factories,
        waiting: spec.plan.producer_count.clone(),
        ready: BinaryHeap::with_capacity(count),
        store,
        stage_running: vec![0; stages],
        stage_held: vec![Vec::new(); stages],
        current_stage: 0,
        stage_left,
        barrier_held: vec![Vec::new(); stages],
        active_workers: 0,
        finished: vec![false; count],
        timings: if spec.timed { vec![None; count] } else { Vec::new() },
        error: None,
    };
    let mut position = vec![0; count];
    for (at, &index) in spec.plan.topological_order.iter().enumerate() {
        position[index] = at;
    }
    let mut shared = Shared {
        threads: pool.current_num_threads().max(1),
        state: Mutex::new(state),
        spec,
        position,
        parent: tracing::Span::current(),
    };
    {
        let state = shared.state.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if shared.spec.barrier {
            advance_barrier(&shared.spec, state);
        }
        for index in 0..count {
            if state.waiting[index] == 0 {
                make_ready(&shared.spec, state, index);
            }
        }
    }

    let shared = &shared;
    pool.in_place_scope(|scope| {
        let mut state = shared.lock();
        spawn_helpers(scope, shared, &mut state);
    });

    let mut state = shared.lock();
    let mut outcome = RunOutcome {
        outputs: state.store.finish(),
        finished: std::mem::take(&mut state.finished),
        timings: std::mem::take(&mut state.timings),
        error: state.error.take(),
    };
    if outcome.error.is_none() && outcome.finished.iter().any(|finished| !finished) {
        outcome.error = Some(ErrorKind::Internal("the scheduler stopped with factories left to run".into()).into());
    }
    outcome
}

/// Per output: the plan positions of the consumers taking it, one entry per input slot, in
/// ascending order.
fn pending_takers(plan: &Plan) -> Vec<Vec<usize>> {
    let mut pending = vec![Vec::new(); plan.producer_count.len()];
    for (position, &consumer) in plan.topological_order.iter().enumerate() {
        for source in plan.sources.get(consumer) {
            if let Some(Source::Factory(producer)) = source.get() {
                pending[producer].push(position);
            }
        }
    }
    debug_assert!(
        pending.iter().zip(&plan.output_takers).all(|(pending, &takers)| pending.len() == takers),
        "the plan's takers and sources disagree"
    );
    pending
}
