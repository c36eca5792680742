//! The scheduler: which factory runs next, on which worker, and what happens when it finishes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::error::{Error, ErrorKind, Operation};
use crate::guard;
use crate::observe::EventKind;
use crate::plan::Source;

use super::phases::run_factory;
use super::store::{Produced, SpillFile, SpillJob, Taken};
use super::{Finished, Job, JobInput, Ready, RunSpec, Shared, State};

/// Starts workers while there is ready work and a free thread.
pub(super) fn spawn_helpers<'scope, 'a: 'scope>(
    scope: &rayon::Scope<'scope>,
    shared: &'scope Shared<'a>,
    state: &mut State<'a>,
) {
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
/// Each round runs a batch outside the lock ([`run_batch`]), then, under it, records the results
/// ([`settle`]) and takes the next batch ([`take_batch`]). A factory that turns out slow (or
/// fails) hands the rest of its batch back for any worker to take.
fn worker<'scope, 'a: 'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'a>, first: Job<'a>) {
    let mut batch: VecDeque<Job<'a>> = VecDeque::from([first]);
    let mut done: Vec<(usize, Result<Finished, Error>)> = Vec::new();
    // Outputs released at once (nobody takes them), with their producers, to drop outside the lock.
    let mut released: Vec<(usize, Produced)> = Vec::new();
    // One clock reading per factory: each ends the previous factory's time and starts the
    // next one's (the lock in between counts too, which only makes batching more careful).
    let mut clock = Instant::now();
    loop {
        let quick = run_batch(shared, &mut batch, &mut done, &mut clock);
        let mut state = shared.lock();
        settle(shared, &mut state, &mut batch, &mut done, &mut released);
        take_batch(shared, &mut state, quick, &mut batch);
        if batch.is_empty() {
            state.active_workers -= 1;
        } else {
            spawn_helpers(scope, shared, &mut state);
        }
        // After the takes: a value its next consumer just took for the last time never spills.
        let spills = state.store.plan_spills();
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

/// Runs the factories of `batch` in order into `done`, until one fails or is not quick (the
/// rest stay in `batch`); whether the last one that ran was quick.
fn run_batch<'a>(
    shared: &Shared<'a>,
    batch: &mut VecDeque<Job<'a>>,
    done: &mut Vec<(usize, Result<Finished, Error>)>,
    clock: &mut Instant,
) -> bool {
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
        quick = now.saturating_duration_since(*clock) < QUICK;
        *clock = now;
        if failed || !quick {
            break;
        }
    }
    quick
}

/// Under the lock: hands back what `batch` still holds (taken but not started: any worker may
/// start them, unless the run failed), then records what `done` holds (collecting the outputs
/// nobody takes into `released`).
fn settle<'a>(
    shared: &Shared<'a>,
    state: &mut State<'a>,
    batch: &mut VecDeque<Job<'a>>,
    done: &mut Vec<(usize, Result<Finished, Error>)>,
    released: &mut Vec<(usize, Produced)>,
) {
    state.handed_back.extend(batch.drain(..));
    for (index, result) in done.drain(..) {
        if let Some(produced) = complete(shared, state, index, result) {
            released.push((index, produced));
        }
    }
}

/// Under the lock: fills the (empty) `batch` with the next factories to run: one, or after a
/// round of quick factories a share of the ready ones.
fn take_batch<'a>(shared: &Shared<'a>, state: &mut State<'a>, quick: bool, batch: &mut VecDeque<Job<'a>>) {
    // Under a memory budget, one at a time: a batch would hold its inputs in memory early.
    let share = state.ready.len() / shared.threads;
    let wanted = if quick && share > 1 && shared.spec.budget.is_none() { share.min(MAX_BATCH) } else { 1 };
    while batch.len() < wanted {
        match next_job(shared, state) {
            Some(job) => batch.push_back(job),
            None => break,
        }
    }
}

pub(super) fn make_ready(spec: &RunSpec<'_>, state: &mut State<'_>, index: usize) {
    let stage = spec.stage_of[index];
    if spec.barrier && stage > state.current_stage {
        state.barrier_held[stage].push(index);
    } else {
        state.ready.push(Ready::new(spec.plan.priority[index], index));
    }
}

/// Barrier mode: moves on past finished stages, releasing the next stage's ready factories.
pub(super) fn advance_barrier(spec: &RunSpec<'_>, state: &mut State<'_>) {
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
            Some(Source::Factory(producer)) => state.store.take(producer, shared.position[index]),
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
    let released = state.store.put(index, output);
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
pub(super) fn record_error(shared: &Shared<'_>, error: Error) {
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
pub(super) fn drop_inputs(shared: &Shared<'_>, job: Job<'_>) -> Result<(), Error> {
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
