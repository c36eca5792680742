//! The scheduler: which factory runs next, on which worker, and what happens when it finishes.

use std::sync::Arc;

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

/// Runs `first`, then keeps taking ready factories, one at a time, until none is left.
///
/// One factory per lock: taking several per lock after a run of quick ones measured 537 against
/// 596 ns per factory on the overhead bench's fan-out of 10,000 (2026-12-07), both well inside
/// its 1 µs target, so the plainer loop stays.
fn worker<'scope, 'a: 'scope>(scope: &rayon::Scope<'scope>, shared: &'scope Shared<'a>, first: Job<'a>) {
    let mut next = Some(first);
    while let Some(job) = next {
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
        let mut state = shared.lock();
        // An output nobody takes is released at once, and dropped outside the lock.
        let released = complete(shared, &mut state, index, result);
        next = next_job(shared, &mut state);
        if next.is_none() {
            state.active_workers -= 1;
        } else {
            spawn_helpers(scope, shared, &mut state);
        }
        // After the take: a value its next consumer just took for the last time never spills.
        let spills = state.store.plan_spills();
        drop(state);
        // Dropping a released output may free a large buffer or delete a file: outside the lock.
        if let Some(produced) = released {
            if let Err(error) = guard::drop_guarded(produced, shared.spec.slots[index].name, Operation::DropOutput) {
                record_error(shared, error);
            }
        }
        run_spills(shared, spills);
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
