//! The dataflow executor.
//!
//! Each factory keeps a count of producers that have not finished; finishing a factory
//! decrements its dependents and makes those reaching zero ready. Ready factories wait in a
//! priority queue (longest remaining path first). Workers are Rayon tasks: a worker that
//! finishes a factory takes the next ready one itself, without a round trip through a
//! coordinator, and spawns helpers while there is more ready work than busy workers, up to the
//! pool's size. So a chain of trivial factories costs one lock per factory, and independent
//! factories spread over every thread.

use std::collections::{BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

pub(crate) mod store;

use crate::cache::{StorageLevel, StoreOps};
use crate::delivery::Payload;
use crate::error::{Error, ErrorKind, Operation, Phase};
use crate::factory::shelf::ErasedFactory;
use crate::factory::Signature;
use crate::guard;
use crate::observe::{EventKind, FactoryId, Observers, OutputRef};
use crate::plan::{Plan, Source};
use crate::running::RunningGuard;
use store::{Counters, Kept, Produced, Reload, SlotSpec, SpillFile, SpillJob, Store, Taken};

/// What a run needs, beyond the plan.
pub(crate) struct RunSpec<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) signatures: Vec<&'a Signature>,
    pub(crate) stage_of: Vec<usize>,
    pub(crate) stage_parallel: Vec<bool>,
    pub(crate) stage_writable: Vec<bool>,
    /// Per factory: keep the output after the run, its storable operations and storage level.
    pub(crate) slots: Vec<SlotSpec<'a>>,
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
    index: usize,
    /// Borrowed from its shelf for the run.
    factory: &'a mut dyn ErasedFactory,
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
    slot: u32,
    /// Whether this job took the store's last share.
    released: bool,
    taken: Taken,
}

struct State<'a> {
    factories: Vec<Option<&'a mut dyn ErasedFactory>>,
    /// Per factory: producers not finished yet.
    waiting: Vec<usize>,
    ready: BinaryHeap<Ready>,
    /// Every output while some consumer has not taken it (or while kept), and pipeline inputs.
    store: Store,
    /// Per stage: factories running now (for stages that run one at a time).
    stage_running: Vec<usize>,
    /// Per stage: ready factories held back because their serial stage is busy.
    stage_held: Vec<Vec<usize>>,
    /// Barrier mode: the stage now running, and per stage the factories not finished yet.
    current_stage: usize,
    stage_left: Vec<usize>,
    barrier_held: Vec<Vec<usize>>,
    /// Factories a worker took with their inputs but handed back unstarted.
    handed_back: VecDeque<Job<'a>>,
    active_workers: usize,
    finished: Vec<bool>,
    /// Allocated only when some factory is timed.
    timings: Vec<Option<FactoryTiming>>,
    error: Option<Error>,
}

struct Shared<'a> {
    spec: RunSpec<'a>,
    /// Per factory: its position in the plan's order, for "needed furthest in the future".
    position: Vec<usize>,
    state: Mutex<State<'a>>,
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
    let store = Store::new(
        &spec.plan.output_takers,
        // Only spilling asks which value is needed furthest in the future.
        spec.budget.is_some().then(|| pending_takers(spec.plan)),
        externals,
        spec.plan.external_takers.clone(),
        spec.budget,
        spec.spill_dir.clone(),
        spec.counters.clone(),
    );
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
        handed_back: VecDeque::new(),
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
    // Jobs taken but never started (the run failed meanwhile) hold shares of their inputs, which
    // may be the last ones: dropped here, where a panic in an output's `Drop` is caught.
    let unstarted = std::mem::take(&mut state.handed_back);
    drop(state);
    for job in unstarted {
        if let Err(error) = drop_inputs(shared, job) {
            record_error(shared, error);
        }
    }
    let mut state = shared.lock();
    let mut outcome = RunOutcome {
        outputs: state.store.finish(&shared.spec.slots),
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

/// Starts workers while there is ready work and a free thread.
fn spawn_helpers<'scope, 'a: 'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'a>, state: &mut State<'a>) {
    while state.active_workers < shared.threads {
        let Some(job) = next_job(shared, state) else { break };
        state.active_workers += 1;
        scope.spawn(move |scope| worker(scope, shared, job));
    }
}

/// A factory that runs in less than this is quick: a worker that just ran only quick ones takes
/// several ready factories per lock, so that thousands of trivial factories do not queue on it.
const QUICK: Duration = Duration::from_micros(20);

/// The most factories a worker takes per lock.
const MAX_BATCH: usize = 32;

/// Runs `first`, then keeps taking ready factories until none is left.
///
/// Each round runs a batch outside the lock, then, under it, records the results and takes the
/// next batch: one factory, or, after a round of quick factories and with plenty ready, a share
/// of the ready ones (not under a memory budget). A factory that turns out slow (or fails) hands the rest of its batch back
/// for any worker to take.
fn worker<'scope, 'a: 'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'a>, first: Job<'a>) {
    let mut batch: VecDeque<Job<'a>> = VecDeque::from([first]);
    let mut done: Vec<(usize, Result<Finished, Error>)> = Vec::new();
    // Outputs released at once (nobody takes them), with their producers, to drop outside the lock.
    let mut released: Vec<(usize, Produced)> = Vec::new();
    // One clock reading per factory: each ends the previous factory's time and starts the
    // next one's (the lock in between counts too, which only makes batching more careful).
    let mut clock = Instant::now();
    loop {
        let mut quick = true;
        while let Some(job) = batch.pop_front() {
            let index = job.index;
            // Every call into user code inside is guarded; this only catches a bug of the runtime,
            // so that it stops the run instead of unwinding through the pool.
            let result = guard::catch(|| run_factory(shared, job)).unwrap_or_else(|message| {
                Err(ErrorKind::Internal(format!(
                    "a panic escaped while running `{}`: {message}",
                    shared.spec.signatures[index].name
                ))
                .into())
            });
            let failed = result.is_err();
            done.push((index, result));
            let now = Instant::now();
            quick = now.saturating_duration_since(clock) < QUICK;
            clock = now;
            if failed || !quick {
                break;
            }
        }
        let mut state = shared.lock();
        // Taken but not started: any worker may start them, unless the run failed.
        if !batch.is_empty() {
            state.handed_back.extend(batch.drain(..));
        }
        for (index, result) in done.drain(..) {
            if let Some(produced) = complete(shared, &mut state, index, result) {
                released.push((index, produced));
            }
        }
        // Under a memory budget, one at a time: a batch would hold its inputs in memory early.
        let share = state.ready.len() / shared.threads;
        let wanted = if quick && share > 1 && shared.spec.budget.is_none() { share.min(MAX_BATCH) } else { 1 };
        while batch.len() < wanted {
            match next_job(shared, &mut state) {
                Some(job) => batch.push_back(job),
                None => break,
            }
        }
        if batch.is_empty() {
            state.active_workers -= 1;
        } else {
            spawn_helpers(scope, shared, &mut state);
        }
        // After the takes: a value its next consumer just took for the last time never spills.
        let spills = state.store.plan_spills(&shared.spec.slots);
        drop(state);
        // Dropping a released output may free a large buffer or delete a file: outside the lock.
        for (producer, produced) in released.drain(..) {
            if let Err(error) = guard::drop_guarded(produced, shared.spec.slots[producer].name, Operation::DropOutput) {
                record_error(shared, error);
            }
        }
        run_spills(shared, spills);
        if batch.is_empty() {
            return;
        }
    }
}

fn make_ready(spec: &RunSpec<'_>, state: &mut State<'_>, index: usize) {
    let stage = spec.stage_of[index];
    if spec.barrier && stage > state.current_stage {
        state.barrier_held[stage].push(index);
    } else {
        state.ready.push(Ready::new(spec.plan.priority[index], index));
    }
}

/// Barrier mode: moves on past finished stages, releasing the next stage's ready factories.
fn advance_barrier(spec: &RunSpec<'_>, state: &mut State<'_>) {
    while state.current_stage < state.stage_left.len() && state.stage_left[state.current_stage] == 0 {
        state.current_stage += 1;
        if let Some(held) = state.barrier_held.get_mut(state.current_stage) {
            for index in std::mem::take(held) {
                state.ready.push(Ready::new(spec.plan.priority[index], index));
            }
        }
    }
}

/// Pops the next runnable factory and takes its inputs from the store.
fn next_job<'a>(shared: &Shared<'a>, state: &mut State<'a>) -> Option<Job<'a>> {
    if state.error.is_some() {
        return None;
    }
    if let Some(job) = state.handed_back.pop_front() {
        return Some(job);
    }
    let spec = &shared.spec;
    let index = loop {
        let index = state.ready.pop()?.index();
        let stage = spec.stage_of[index];
        if !spec.stage_parallel[stage] && state.stage_running[stage] > 0 {
            state.stage_held[stage].push(index);
            continue;
        }
        break index;
    };
    state.stage_running[spec.stage_of[index]] += 1;
    let factory = state.factories[index].take()?;
    let sources = spec.plan.sources.get(index);
    let mut inputs = SmallVec::new();
    for (slot, source) in sources.iter().enumerate() {
        let (taken, last) = match source.get() {
            Some(Source::Factory(producer)) => state.store.take(&spec.slots, producer, shared.position[index]),
            Some(Source::External(input)) => (state.store.take_external(input).map(Taken::Value), None),
            None => (None, None),
        };
        // A factory's input slots are its `Delivery` fields: far fewer than 2^32.
        let slot = u32::try_from(slot).expect("fewer than 2^32 inputs");
        // The store holds every output until its last taker, so a taken share is never empty.
        if let Some(taken) = taken {
            inputs.push(JobInput { slot, released: last.is_some(), owned: last.unwrap_or(0), taken });
        }
    }
    Some(Job { index, factory, inputs })
}

/// Records a finished factory. Returns an output to drop outside the lock, if released at once.
fn complete(
    shared: &Shared<'_>,
    state: &mut State<'_>,
    index: usize,
    result: Result<Finished, Error>,
) -> Option<Produced> {
    let spec = &shared.spec;
    let stage = spec.stage_of[index];
    state.stage_running[stage] -= 1;
    if !spec.stage_parallel[stage] {
        for held in std::mem::take(&mut state.stage_held[stage]) {
            make_ready(spec, state, held);
        }
    }
    let output = match result {
        Ok(Finished { produced, timing }) => {
            if let Some(timing) = timing {
                state.timings[index] = Some(timing);
            }
            produced
        }
        Err(error) => {
            if state.error.is_none() {
                state.error = Some(error);
            } else {
                tracing::error!(factory = spec.slots[index].name, "another factory failed too: {error}");
            }
            return None;
        }
    };
    state.finished[index] = true;
    state.stage_left[stage] -= 1;
    let released = state.store.put(&spec.slots, index, output);
    for &dependent in spec.plan.dependents.get(index) {
        debug_assert!(state.waiting[dependent] > 0, "a factory finished twice");
        state.waiting[dependent] -= 1;
        if state.waiting[dependent] == 0 {
            make_ready(spec, state, dependent);
        }
    }
    if spec.barrier {
        advance_barrier(spec, state);
    }
    released
}

/// Writes values to spill files outside the lock, then records the results under it.
fn run_spills(shared: &Shared<'_>, jobs: Vec<SpillJob>) {
    if jobs.is_empty() {
        return;
    }
    let mut failed: Option<Error> = None;
    let written: Vec<bool> = jobs
        .iter()
        .map(|job| match guard::catch(|| job.ops.spill(&job.payload, &job.path)) {
            Ok(Ok(())) => true,
            // A panic is a bug of the `Storable`, unlike an I/O error: the run stops.
            Err(message) => {
                let _ = std::fs::remove_file(&job.path);
                let error = guard::panicked(shared.spec.slots[job.producer].name, Operation::Spill, message);
                failed.get_or_insert(error);
                false
            }
            Ok(Err(error)) => {
                let _ = std::fs::remove_file(&job.path);
                tracing::warn!(
                    factory = shared.spec.slots[job.producer].name,
                    path = %job.path.display(),
                    "could not spill an output, it stays in memory: {error}"
                );
                false
            }
        })
        .collect();
    let mut state = shared.lock();
    let results: Vec<(Option<Arc<SpillFile>>, bool)> =
        jobs.iter().zip(&written).map(|(job, &written)| state.store.finish_spill(job, written)).collect();
    if let Some(error) = failed {
        record_error_locked(&mut state, error);
    }
    drop(state);
    let observers = shared.spec.observers;
    for (job, (unused_file, spilled)) in jobs.iter().zip(results) {
        // A file whose value was released while being written is deleted here.
        drop(unused_file);
        if spilled {
            tracing::debug!(factory = shared.spec.slots[job.producer].name, bytes = job.bytes, "spilled");
            observers.emit(|| EventKind::OutputSpilled { factory: shared.id(job.producer), bytes: job.bytes });
        }
    }
    // The jobs' shares of the values go last, outside the lock; one may be the last share.
    for job in jobs {
        let producer = job.producer;
        if let Err(error) = guard::drop_guarded(job.payload, shared.spec.slots[producer].name, Operation::DropOutput) {
            record_error(shared, error);
        }
    }
}

/// Records an error found outside the lock (a panic while dropping or spilling an output): the
/// run stops as after a failed factory.
fn record_error(shared: &Shared<'_>, error: Error) {
    let mut state = shared.lock();
    record_error_locked(&mut state, error);
}

fn record_error_locked(state: &mut State<'_>, error: Error) {
    if state.error.is_none() {
        state.error = Some(error);
    } else {
        tracing::error!("another failure: {error}");
    }
}

/// Drops the inputs of a job that never started, each share of an output guarded and named
/// after its producer. Returns the first panic.
fn drop_inputs(shared: &Shared<'_>, job: Job<'_>) -> Result<(), Error> {
    let mut first = Ok(());
    let sources = shared.spec.plan.sources.get(job.index);
    for input in job.inputs {
        let name = match sources[input.slot as usize].get() {
            Some(Source::Factory(producer)) => shared.spec.slots[producer].name,
            _ => shared.spec.slots[job.index].name,
        };
        if let Err(error) = guard::drop_guarded(input.taken, name, Operation::DropOutput) {
            if first.is_ok() {
                first = Err(error);
            }
        }
    }
    first
}

/// Releases, when dropped, the bytes a job held alone (outputs whose last share it took, values
/// it read back): after the factory, which holds them, is gone.
struct HeldGuard<'a> {
    counters: &'a Counters,
    bytes: u64,
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.counters.sub_held(self.bytes);
    }
}

/// Runs one factory's phases, outside the lock. Panics are caught and become errors.
fn run_factory(shared: &Shared<'_>, job: Job<'_>) -> Result<Finished, Error> {
    // Declared first, so dropped last: after the factory and its inputs.
    let owned = job.inputs.iter().map(|input| input.owned).sum();
    let mut held = HeldGuard { counters: &shared.spec.counters, bytes: owned };
    let Job { index, factory, inputs } = job;
    let result = run_phases(shared, index, &mut *factory, inputs, &mut held);
    if result.is_err() {
        // A factory that failed goes as one that finished (which `run_phases` disposed of): its
        // inputs are released now. A panic in its `Drop` adds nothing to the error.
        let _ = guard::catch(|| factory.dispose());
    }
    result
}

/// Reads a spilled input back for its consumer and weighs it.
fn reload_input(shared: &Shared<'_>, reload: &Reload) -> Result<(Payload, u64), Error> {
    let name = shared.spec.slots[reload.producer].name;
    let payload = match guard::catch(|| reload.ops.reload(reload.file.path())) {
        Ok(Ok(payload)) => payload,
        Ok(Err(source)) => {
            return Err(ErrorKind::Spill {
                factory: name.to_owned(),
                action: "read back",
                path: reload.file.path().to_owned(),
                source,
            }
            .into())
        }
        Err(message) => return Err(guard::panicked(name, Operation::Reload, message)),
    };
    match guard::catch(|| reload.ops.byte_size(&payload)) {
        Ok(bytes) => Ok((payload, bytes)),
        Err(message) => Err(discard(guard::panicked(name, Operation::Weigh, message), payload, name)),
    }
}

/// Drops `payload` (an output of `name`) after `error`, a panic in its drop logged, and returns
/// `error`.
fn discard(error: Error, payload: Payload, name: &str) -> Error {
    if let Err(again) = guard::drop_guarded(payload, name, Operation::DropOutput) {
        tracing::error!("another failure: {again}");
    }
    error
}

/// Injects a factory's inputs, runs its phases, takes its output and disposes of it.
fn run_phases(
    shared: &Shared<'_>,
    index: usize,
    factory: &mut dyn ErasedFactory,
    inputs: SmallVec<[JobInput; 3]>,
    held: &mut HeldGuard<'_>,
) -> Result<Finished, Error> {
    let spec = &shared.spec;
    let name = spec.slots[index].name;
    let id = || shared.id(index);
    let observers = spec.observers;
    let observed = observers.active();
    let timed = observed || spec.benchmarked[index];
    let started = timed.then(Instant::now);
    let (mut read, mut process, mut write) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let span = tracing::info_span!(parent: &shared.parent, "factory", factory = name);
    let _entered = span.enter();
    if let Some(at) = started {
        observers.emit_at(|| EventKind::FactoryStarted(id()), at);
    }
    let fail = |phase: Phase, error: Error| {
        observers.emit(|| EventKind::FactoryFailed { factory: id(), phase, message: error.to_string() });
        error
    };

    let mut reloaded = false;
    let mut released: SmallVec<[usize; 3]> = SmallVec::new();
    // Shares of outputs this factory may hold last (the store let go of them, or they were read
    // back for it alone), kept until the factory lets go of them so that the drop of such an
    // output happens here, guarded and named after its producer, rather than inside the
    // factory's drop.
    let mut last_shares: SmallVec<[LastShare; 2]> = SmallVec::new();
    for JobInput { slot, released: last_share, owned, taken } in inputs {
        let slot = slot as usize;
        let producer = match spec.plan.sources.get(index)[slot].get() {
            Some(Source::Factory(producer)) => Some(producer),
            _ => None,
        };
        let payload = match taken {
            Taken::Value(payload) => {
                if let (Some(producer), true) = (producer, last_share) {
                    last_shares.push(LastShare { slot, producer, payload: payload.clone(), bytes: owned });
                }
                payload
            }
            Taken::Reload(reload) => match reload_input(shared, &reload) {
                Ok((payload, bytes)) => {
                    let Reload { producer, file, ops: _ } = *reload;
                    reloaded = true;
                    spec.counters.reloaded(bytes);
                    spec.counters.add_held(bytes);
                    held.bytes += bytes;
                    observers.emit(|| EventKind::OutputReloaded {
                        factory: shared.id(producer),
                        consumer: id(),
                        bytes,
                    });
                    // When this was the file's last handle, dropping it deletes the file.
                    drop(file);
                    last_shares.push(LastShare { slot, producer, payload: payload.clone(), bytes: owned + bytes });
                    payload
                }
                Err(error) => return Err(fail(Phase::Read, error)),
            },
        };
        if let Err(error) = factory.inject(slot, payload) {
            return Err(ErrorKind::Internal(format!(
                "`{}.{}` received a value of another type than its `Delivery`",
                name, error.field
            ))
            .into());
        }
        if let Some(at) = started {
            if let (Some(producer), true) = (producer, last_share) {
                released.push(producer);
            }
            let field = spec.signatures[index].inputs[slot].field;
            let producer = || producer.map(|producer| shared.id(producer));
            observers.emit_at(|| EventKind::DeliveryTaken { producer: producer(), consumer: id(), field }, at);
        }
    }
    if let Some(at) = started {
        for producer in released {
            observers.emit_at(|| EventKind::OutputReleased(shared.id(producer)), at);
        }
    }

    let writable = spec.stage_writable[spec.stage_of[index]]
        && match guard::catch(|| factory.writable()) {
            Ok(writable) => writable,
            Err(message) => return Err(fail(Phase::Write, guard::panicked(name, Operation::Writable, message))),
        };
    // Each phase boundary reads the clock once: a phase ends when the next one starts. Handing
    // over inputs takes no time worth a clock reading, unless one was read back from disk or
    // observers were told about each one.
    let mut boundary = if reloaded || observed { timed.then(Instant::now) } else { started };
    for phase in Phase::TIMED {
        if phase == Phase::Write && !writable {
            observers.emit(|| EventKind::PhaseSkipped { factory: id(), phase });
            if let Err(error) = release_inputs(shared, index, factory, phase, &mut last_shares, held) {
                return Err(fail(phase, error));
            }
            continue;
        }
        let phase_span = tracing::info_span!("phase", factory = name, phase = phase.as_str());
        let _phase_entered = phase_span.enter();
        if let Some(at) = boundary {
            observers.emit_at(|| EventKind::PhaseStarted { factory: id(), phase }, at);
        }
        let result = {
            let _running = RunningGuard::enter(shared.spec.signatures[index].name.clone(), phase);
            guard::catch(|| factory.run_phase(phase))
        };
        if let Some(phase_started) = boundary {
            let now = Instant::now();
            let ok = matches!(result, Ok(Ok(())));
            let elapsed = now.saturating_duration_since(phase_started);
            match phase {
                Phase::Read => read = elapsed,
                Phase::Process => process = elapsed,
                Phase::Write => write = elapsed,
                Phase::Get => {}
            }
            observers.emit_at(|| EventKind::PhaseFinished { factory: id(), phase, elapsed, ok }, now);
            boundary = Some(now);
        }
        let error = match result {
            Ok(Ok(())) => match release_inputs(shared, index, factory, phase, &mut last_shares, held) {
                Ok(()) => continue,
                Err(error) => error,
            },
            Ok(Err(error)) => phase_failed(name, phase, error),
            Err(message) => panicked(name, phase, message),
        };
        return Err(fail(phase, error));
    }

    let output = {
        let _running = RunningGuard::enter(shared.spec.signatures[index].name.clone(), Phase::Get);
        guard::catch(|| factory.output()).map_err(|message| panicked(name, Phase::Get, message))
    };
    // Weighed while the factory and its inputs still exist, so the peak counts both.
    let provisional = match (&output, spec.slots[index].ops) {
        (Ok(output), Some(ops)) => {
            guard::catch(|| ops.byte_size(output)).map_err(|message| guard::panicked(name, Operation::Weigh, message))
        }
        _ => Ok(0),
    };
    let provisional_bytes = provisional.as_ref().copied().unwrap_or(0);
    spec.counters.add_held(provisional_bytes);
    // Dropping the factory drops its shares of its inputs, so they can be released.
    let dropped =
        guard::catch(move || factory.dispose()).map_err(|message| guard::panicked(name, Operation::Drop, message));
    let mut inputs_dropped = Ok(());
    for LastShare { producer, payload, .. } in last_shares {
        let dropped = guard::drop_guarded(payload, spec.slots[producer].name, Operation::DropOutput);
        if inputs_dropped.is_ok() {
            inputs_dropped = dropped;
        }
    }
    let output = match (output, provisional, dropped, inputs_dropped) {
        (Ok(output), Ok(_), Ok(()), Ok(())) => output,
        (output, provisional, dropped, inputs_dropped) => {
            spec.counters.sub_held(provisional_bytes);
            let error = [provisional.err(), dropped.err(), inputs_dropped.err()].into_iter().flatten().next();
            let error = match (output, error) {
                (Err(error), _) => error,
                (Ok(output), Some(error)) => discard(error, output, name),
                (Ok(_), None) => ErrorKind::Internal("a factory failed without an error".into()).into(),
            };
            return Err(fail(Phase::Get, error));
        }
    };
    if observed {
        observers.emit(|| EventKind::OutputProduced { factory: id(), output: OutputRef(output.clone()) });
    }
    // Persisting (materializing once, writing a disk-only copy) is part of the factory's time,
    // as the seed's `persist` + `count()` inside `process` is.
    let produced = match prepare(shared, index, output, provisional_bytes) {
        Ok(produced) => produced,
        Err(error) => return Err(fail(Phase::Get, error)),
    };
    let timing = started.map(|started| {
        let now = Instant::now();
        let total = now - started;
        observers.emit_at(|| EventKind::FactoryFinished { factory: id(), elapsed: total }, now);
        // A pool has far fewer than 2^32 threads.
        let thread = rayon::current_thread_index().and_then(|thread| u32::try_from(thread).ok());
        FactoryTiming { started, thread, read, process, write, total }
    });
    tracing::debug!(factory = name, "finished");
    Ok(Finished { produced, timing })
}

/// A share of a producer's output that a running factory may hold last.
struct LastShare {
    /// The consumer's input slot it was delivered to.
    slot: usize,
    producer: usize,
    payload: Payload,
    /// What it adds to the bytes held: the store's share handed over, plus the bytes read back.
    bytes: u64,
}

/// Empties the input slots declared `release = phase` now that `phase` has returned, and drops
/// the last shares among them (guarded, named after their producer), so they stop counting as
/// held.
fn release_inputs(
    shared: &Shared<'_>,
    index: usize,
    factory: &mut dyn ErasedFactory,
    phase: Phase,
    last_shares: &mut SmallVec<[LastShare; 2]>,
    held: &mut HeldGuard<'_>,
) -> Result<(), Error> {
    let spec = &shared.spec;
    let mut result = Ok(());
    for (slot, input) in spec.signatures[index].inputs.iter().enumerate() {
        if input.release != Some(phase) {
            continue;
        }
        let name = spec.slots[index].name;
        guard::catch(|| factory.release(slot, phase))
            .map_err(|message| guard::panicked(name, Operation::Drop, message))?;
        while let Some(at) = last_shares.iter().position(|share| share.slot == slot) {
            let LastShare { producer, payload, bytes, .. } = last_shares.swap_remove(at);
            let dropped = guard::drop_guarded(payload, spec.slots[producer].name, Operation::DropOutput);
            spec.counters.sub_held(bytes);
            held.bytes -= bytes;
            if result.is_ok() {
                result = dropped;
            }
        }
    }
    result
}

/// Gets a finished factory's output ready for the store, outside the lock: weighs it,
/// materializes it once when persisted, and writes it to its spill file when disk-only.
/// `provisional` bytes were counted as held when the output was made; the bytes held afterwards
/// are the value's in memory (none when it went to disk).
fn prepare(shared: &Shared<'_>, index: usize, output: Payload, provisional: u64) -> Result<Produced, Error> {
    let spec = &shared.spec;
    let slot = &spec.slots[index];
    let Some(ops) = slot.ops else { return Ok(Produced { payload: Some(output), file: None, bytes: 0 }) };
    let counters = &spec.counters;
    match guard::catch(|| ops.lazy_counter(&output)) {
        Ok(Some(counter)) => counters.track_lazy(counter),
        Ok(None) => {}
        Err(message) => {
            counters.sub_held(provisional);
            return Err(discard(guard::panicked(slot.name, Operation::LazyCounter, message), output, slot.name));
        }
    }
    if slot.level.is_none() {
        return store_prepared(shared, index, ops, output, provisional);
    }
    let failed: Error = match guard::catch(|| ops.materialize(&output)) {
        Ok(Ok(Some(materialized))) => {
            counters.materialized();
            // The recipe goes: its drop is user code too.
            if let Err(error) = guard::drop_guarded(output, slot.name, Operation::DropOutput) {
                counters.sub_held(provisional);
                return Err(discard(error, materialized, slot.name));
            }
            let bytes = match guard::catch(|| ops.byte_size(&materialized)) {
                Ok(bytes) => bytes,
                Err(message) => {
                    counters.sub_held(provisional);
                    return Err(discard(
                        guard::panicked(slot.name, Operation::Weigh, message),
                        materialized,
                        slot.name,
                    ));
                }
            };
            spec.observers.emit(|| EventKind::OutputMaterialized { factory: shared.id(index), bytes });
            return store_prepared(shared, index, ops, materialized, provisional);
        }
        Ok(Ok(None)) => return store_prepared(shared, index, ops, output, provisional),
        Ok(Err(source)) => ErrorKind::FactoryFailed { factory: slot.name.to_owned(), phase: Phase::Get, source }.into(),
        Err(message) => guard::panicked(slot.name, Operation::Materialize, message),
    };
    counters.sub_held(provisional);
    Err(discard(failed, output, slot.name))
}

/// Weighs a (materialized) output and, when disk-only, writes it to its spill file.
fn store_prepared(
    shared: &Shared<'_>,
    index: usize,
    ops: &StoreOps,
    payload: Payload,
    provisional: u64,
) -> Result<Produced, Error> {
    let spec = &shared.spec;
    let slot = &spec.slots[index];
    let counters = &spec.counters;
    let bytes = match guard::catch(|| ops.byte_size(&payload)) {
        Ok(bytes) => bytes,
        Err(message) => {
            counters.sub_held(provisional);
            return Err(discard(guard::panicked(slot.name, Operation::Weigh, message), payload, slot.name));
        }
    };
    // The value as it is now replaces its provisional weight (they differ when materialized).
    if bytes >= provisional {
        counters.add_held(bytes - provisional);
    } else {
        counters.sub_held(provisional - bytes);
    }
    if slot.level != Some(StorageLevel::DiskOnly) {
        return Ok(Produced { payload: Some(payload), file: None, bytes });
    }
    let written: Result<std::path::PathBuf, Error> = match &spec.spill_dir {
        Some(dir) => {
            let path = dir.join(store::spill_file_name(index, slot.name, ops.extension()));
            match guard::catch(|| ops.spill(&payload, &path)) {
                Ok(Ok(())) => Ok(path),
                Ok(Err(source)) => {
                    let _ = std::fs::remove_file(&path);
                    Err(ErrorKind::Spill { factory: slot.name.to_owned(), action: "write", path, source }.into())
                }
                Err(message) => {
                    let _ = std::fs::remove_file(&path);
                    Err(guard::panicked(slot.name, Operation::Spill, message))
                }
            }
        }
        None => {
            Err(ErrorKind::Internal(format!("`{}` is disk-only but the run has no spill directory", slot.name)).into())
        }
    };
    let dropped = guard::drop_guarded(payload, slot.name, Operation::DropOutput);
    counters.sub_held(bytes);
    let path = written?;
    dropped?;
    counters.spilled(bytes);
    spec.observers.emit(|| EventKind::OutputSpilled { factory: shared.id(index), bytes });
    Ok(Produced { payload: None, file: Some(Arc::new(SpillFile::new(path, counters.clone()))), bytes })
}

/// A phase's error, naming factory and phase, with the phase's own error as its source.
fn phase_failed(factory: &str, phase: Phase, error: crate::error::Error) -> Error {
    ErrorKind::FactoryFailed { factory: factory.to_owned(), phase, source: error.into_source() }.into()
}

/// A panic in a phase, as the run's error naming factory, phase and the panic's message.
fn panicked(factory: &str, phase: Phase, message: String) -> Error {
    ErrorKind::FactoryPanicked { factory: factory.to_owned(), phase, message }.into()
}
