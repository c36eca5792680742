//! The dataflow executor.
//!
//! Each factory keeps a count of producers that have not finished; finishing a factory
//! decrements its dependents and makes those reaching zero ready. Ready factories wait in a
//! priority queue (longest remaining path first). Workers are Rayon tasks: a worker that
//! finishes a factory takes the next ready one itself, without a round trip through a
//! coordinator, and spawns helpers while there is more ready work than busy workers, up to the
//! pool's size. So a chain of trivial factories costs one lock per factory, and independent
//! factories spread over every thread.

use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::delivery::Payload;
use crate::error::{Error, ErrorKind, Phase};
use crate::factory::{BoxedFactory, Signature};
use crate::observe::{EventKind, FactoryId, Observers};
use crate::validate::{Plan, Source};

/// What a run needs, beyond the plan.
pub(crate) struct RunSpec<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) signatures: Vec<&'static Signature>,
    pub(crate) stage_of: Vec<usize>,
    pub(crate) stage_parallel: Vec<bool>,
    pub(crate) stage_writable: Vec<bool>,
    /// Per factory: keep the output after the run even when every consumer took it.
    pub(crate) keep: Vec<bool>,
    /// SETL's mode: a stage starts only when the previous one finished.
    pub(crate) barrier: bool,
    pub(crate) observers: &'a Observers,
}

/// What a run leaves behind.
pub(crate) struct RunOutcome {
    /// Per factory: the output, if kept.
    pub(crate) outputs: Vec<Option<Payload>>,
    /// Per factory: whether it finished.
    pub(crate) finished: Vec<bool>,
    /// The first failure, if any.
    pub(crate) error: Option<Error>,
}

/// A ready factory in the queue: higher priority first, then declaration order.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: u32,
    earlier: std::cmp::Reverse<usize>,
}

/// A factory taken by a worker, with its inputs.
struct Job {
    index: usize,
    factory: BoxedFactory,
    inputs: Vec<(usize, Payload)>,
    /// Producers whose output the store let go of when this job took the last share.
    released: Vec<usize>,
}

struct State {
    factories: Vec<Option<BoxedFactory>>,
    /// Per factory: producers not finished yet.
    waiting: Vec<usize>,
    ready: BinaryHeap<Ready>,
    /// Per factory: its output while some consumer has not taken it (or while kept).
    outputs: Vec<Option<Payload>>,
    /// Per factory: input slots still to take its output.
    takers_left: Vec<usize>,
    externals: Vec<Option<Payload>>,
    external_takers_left: Vec<usize>,
    /// Per stage: factories running now (for stages that run one at a time).
    stage_running: Vec<usize>,
    /// Per stage: ready factories held back because their serial stage is busy.
    stage_held: Vec<Vec<usize>>,
    /// Barrier mode: the stage now running, and per stage the factories not finished yet.
    current_stage: usize,
    stage_left: Vec<usize>,
    barrier_held: Vec<Vec<usize>>,
    active_workers: usize,
    finished: Vec<bool>,
    error: Option<Error>,
}

struct Shared<'a> {
    spec: RunSpec<'a>,
    state: Mutex<State>,
    threads: usize,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock (user code runs outside it); recover anyway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn id(&self, index: usize) -> FactoryId {
        FactoryId { index, name: self.spec.signatures[index].name }
    }
}

/// Runs every factory once, in dataflow order, on `pool`.
pub(crate) fn execute(
    spec: RunSpec<'_>,
    factories: Vec<BoxedFactory>,
    externals: Vec<Payload>,
    pool: &rayon::ThreadPool,
) -> RunOutcome {
    let count = factories.len();
    let stages = spec.stage_parallel.len();
    let mut stage_left = vec![0; stages];
    for &stage in &spec.stage_of {
        stage_left[stage] += 1;
    }
    let state = State {
        factories: factories.into_iter().map(Some).collect(),
        waiting: spec.plan.producer_count.clone(),
        ready: BinaryHeap::with_capacity(count),
        outputs: vec![None; count],
        takers_left: spec.plan.output_takers.clone(),
        externals: externals.into_iter().map(Some).collect(),
        external_takers_left: spec.plan.external_takers.clone(),
        stage_running: vec![0; stages],
        stage_held: vec![Vec::new(); stages],
        current_stage: 0,
        stage_left,
        barrier_held: vec![Vec::new(); stages],
        active_workers: 0,
        finished: vec![false; count],
        error: None,
    };
    let mut shared = Shared { threads: pool.current_num_threads().max(1), state: Mutex::new(state), spec };
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
        outputs: std::mem::take(&mut state.outputs),
        finished: std::mem::take(&mut state.finished),
        error: state.error.take(),
    };
    if outcome.error.is_none() && outcome.finished.iter().any(|finished| !finished) {
        outcome.error = Some(ErrorKind::Internal("the scheduler stopped with factories left to run".into()).into());
    }
    outcome
}

/// Starts workers while there is ready work and a free thread.
fn spawn_helpers<'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'_>, state: &mut State) {
    while state.active_workers < shared.threads {
        let Some(job) = next_job(shared, state) else { break };
        state.active_workers += 1;
        scope.spawn(move |scope| worker(scope, shared, job));
    }
}

/// Runs `job`, then keeps taking ready factories until none is left.
fn worker<'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'_>, first: Job) {
    let mut job = first;
    loop {
        let index = job.index;
        let result = run_factory(shared, job);
        let mut state = shared.lock();
        let released = complete(shared, &mut state, index, result);
        let next = next_job(shared, &mut state);
        if next.is_some() {
            spawn_helpers(scope, shared, &mut state);
        } else {
            state.active_workers -= 1;
        }
        drop(state);
        // Dropping a released output may free a large buffer: do it outside the lock.
        drop(released);
        match next {
            Some(next) => job = next,
            None => return,
        }
    }
}

fn make_ready(spec: &RunSpec<'_>, state: &mut State, index: usize) {
    let stage = spec.stage_of[index];
    if spec.barrier && stage > state.current_stage {
        state.barrier_held[stage].push(index);
    } else {
        state.ready.push(Ready { priority: spec.plan.priority[index], earlier: std::cmp::Reverse(index) });
    }
}

/// Barrier mode: moves on past finished stages, releasing the next stage's ready factories.
fn advance_barrier(spec: &RunSpec<'_>, state: &mut State) {
    while state.current_stage < state.stage_left.len() && state.stage_left[state.current_stage] == 0 {
        state.current_stage += 1;
        if let Some(held) = state.barrier_held.get_mut(state.current_stage) {
            for index in std::mem::take(held) {
                state.ready.push(Ready { priority: spec.plan.priority[index], earlier: std::cmp::Reverse(index) });
            }
        }
    }
}

/// Pops the next runnable factory and takes its inputs from the store.
fn next_job(shared: &Shared<'_>, state: &mut State) -> Option<Job> {
    if state.error.is_some() {
        return None;
    }
    let spec = &shared.spec;
    let index = loop {
        let Ready { earlier: std::cmp::Reverse(index), .. } = state.ready.pop()?;
        let stage = spec.stage_of[index];
        if !spec.stage_parallel[stage] && state.stage_running[stage] > 0 {
            state.stage_held[stage].push(index);
            continue;
        }
        break index;
    };
    state.stage_running[spec.stage_of[index]] += 1;
    let factory = state.factories[index].take()?;
    let sources = &spec.plan.sources[index];
    let mut inputs = Vec::with_capacity(sources.len());
    let mut released = Vec::new();
    for (slot, source) in sources.iter().enumerate() {
        let payload = match *source {
            Some(Source::Factory(producer)) => {
                let payload = take(&mut state.outputs[producer], &mut state.takers_left[producer], spec.keep[producer]);
                if state.outputs[producer].is_none() {
                    released.push(producer);
                }
                payload
            }
            Some(Source::External(input)) => {
                take(&mut state.externals[input], &mut state.external_takers_left[input], false)
            }
            None => None,
        };
        if let Some(payload) = payload {
            inputs.push((slot, payload));
        }
    }
    Some(Job { index, factory, inputs, released })
}

/// Takes one share of a stored value; the store lets go of it after the last taker.
fn take(stored: &mut Option<Payload>, takers_left: &mut usize, keep: bool) -> Option<Payload> {
    debug_assert!(*takers_left > 0, "more takes than the plan counted");
    *takers_left = takers_left.saturating_sub(1);
    if *takers_left == 0 && !keep {
        stored.take()
    } else {
        stored.clone()
    }
}

/// Records a finished factory; returns an output to drop outside the lock, if released at once.
fn complete(shared: &Shared<'_>, state: &mut State, index: usize, result: Result<Payload, Error>) -> Option<Payload> {
    let spec = &shared.spec;
    let stage = spec.stage_of[index];
    state.stage_running[stage] -= 1;
    if !spec.stage_parallel[stage] {
        for held in std::mem::take(&mut state.stage_held[stage]) {
            make_ready(spec, state, held);
        }
    }
    let output = match result {
        Ok(output) => output,
        Err(error) => {
            if state.error.is_none() {
                state.error = Some(error);
            } else {
                tracing::error!(factory = spec.signatures[index].name, "another factory failed too: {error}");
            }
            return None;
        }
    };
    state.finished[index] = true;
    state.stage_left[stage] -= 1;
    let mut released = None;
    if state.takers_left[index] > 0 || spec.keep[index] {
        state.outputs[index] = Some(output);
    } else {
        released = Some(output);
    }
    for &dependent in &spec.plan.dependents[index] {
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

/// Runs one factory's phases, outside the lock. Panics are caught and become errors.
fn run_factory(shared: &Shared<'_>, job: Job) -> Result<Payload, Error> {
    let spec = &shared.spec;
    let Job { index, mut factory, inputs, released } = job;
    let id = shared.id(index);
    let observers = spec.observers;
    let timed = observers.active();
    let started = timed.then(Instant::now);
    let span = tracing::info_span!("factory", factory = id.name);
    let _entered = span.enter();
    observers.emit(EventKind::FactoryStarted(id));

    let signature = spec.signatures[index];
    for (slot, payload) in inputs {
        if let Err(error) = factory.0.inject(slot, payload) {
            return Err(ErrorKind::Internal(format!(
                "`{}.{}` received a value of another type than its `Delivery`",
                id.name, error.field
            ))
            .into());
        }
        if timed {
            let producer = match spec.plan.sources[index][slot] {
                Some(Source::Factory(producer)) => Some(shared.id(producer)),
                _ => None,
            };
            observers.emit(EventKind::DeliveryTaken { producer, consumer: id, field: signature.inputs[slot].field });
        }
    }

    for producer in released {
        observers.emit(EventKind::OutputReleased(shared.id(producer)));
    }

    let writable = spec.stage_writable[spec.stage_of[index]] && factory.0.writable();
    for phase in Phase::TIMED {
        if phase == Phase::Write && !writable {
            continue;
        }
        let phase_span = tracing::info_span!("phase", factory = id.name, phase = phase.as_str());
        let _phase_entered = phase_span.enter();
        let phase_started = timed.then(|| {
            observers.emit(EventKind::PhaseStarted { factory: id, phase });
            Instant::now()
        });
        let result = catch_unwind(AssertUnwindSafe(|| factory.0.run_phase(phase)));
        if let Some(phase_started) = phase_started {
            observers.emit(EventKind::PhaseFinished {
                factory: id,
                phase,
                elapsed: phase_started.elapsed(),
                ok: matches!(result, Ok(Ok(()))),
            });
        }
        if let Err(error) = flatten(id.name, phase, result) {
            observers.emit(EventKind::FactoryFailed { factory: id, phase, message: error.to_string() });
            return Err(error);
        }
    }

    let output = catch_unwind(AssertUnwindSafe(|| factory.0.output()));
    // Dropping the factory drops its shares of its inputs, so they can be released.
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(factory)));
    let output = match (output, dropped) {
        (Ok(output), Ok(())) => output,
        (Err(panic), _) | (_, Err(panic)) => {
            let error = flatten(id.name, Phase::Get, Err(panic)).err();
            let error = error.unwrap_or_else(|| ErrorKind::Internal("lost panic".into()).into());
            observers.emit(EventKind::FactoryFailed { factory: id, phase: Phase::Get, message: error.to_string() });
            return Err(error);
        }
    };
    if let Some(started) = started {
        observers.emit(EventKind::FactoryFinished { factory: id, elapsed: started.elapsed() });
    }
    tracing::debug!(factory = id.name, "finished");
    Ok(output)
}

/// Turns a phase's result, or its panic, into the run's error naming factory and phase.
fn flatten(factory: &str, phase: Phase, result: std::thread::Result<crate::error::Result<()>>) -> Result<(), Error> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            Err(ErrorKind::FactoryFailed { factory: factory.to_owned(), phase, source: error.into_source() }.into())
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
            Err(ErrorKind::FactoryPanicked { factory: factory.to_owned(), phase, message }.into())
        }
    }
}
