//! One factory's run, on its worker and outside the scheduler's lock: its inputs handed over,
//! its phases timed, its output taken and made ready for the store. Every call into user code
//! is guarded, so a panic becomes an error naming the factory and what it was doing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::cache::{StorageLevel, StoreOps};
use crate::delivery::Payload;
use crate::error::{Error, ErrorKind, Operation, Phase};
use crate::factory::shelf::ErasedFactory;
use crate::guard;
use crate::observe::{EventKind, OutputRef};
use crate::plan::Source;
use crate::running::RunningGuard;

use super::store::{self, Counters, Produced, Reload, SpillFile, Taken};
use super::{FactoryTiming, Finished, Job, JobInput, Shared};

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

/// A share of a producer's output that a running factory may hold last: the store let go of
/// it, or it was read back for this factory alone. It is dropped here, guarded and named after
/// its producer, rather than inside the factory's drop.
struct LastShare {
    /// The consumer's input slot it was delivered to.
    slot: usize,
    producer: usize,
    payload: Payload,
    /// What it adds to the bytes held: the store's share handed over, plus the bytes read back.
    bytes: u64,
}

/// Runs one factory's phases. Panics are caught and become errors.
pub(super) fn run_factory(shared: &Shared<'_>, job: Job<'_>) -> Result<Finished, Error> {
    let owned = job.inputs.iter().map(|input| input.owned).sum();
    let Job { index, factory, inputs } = job;
    let mut run = FactoryRun::new(shared, index, owned);
    let result = run.run(&mut *factory, inputs);
    if result.is_err() {
        // A factory that failed goes as one that finished (which `run` disposed of): its
        // inputs are released now, the run's shares first, so that the last drop happens in
        // the factory's guarded drop. A panic there adds nothing to the error.
        for LastShare { producer, payload, .. } in run.last_shares.drain(..) {
            let _ = guard::drop_guarded(payload, shared.spec.slots[producer].name, Operation::DropOutput);
        }
        let _ = guard::catch(|| factory.dispose());
    }
    // The bytes it held alone stop counting only now, after the factory and its inputs.
    drop(run);
    result
}

/// One factory's run: what its steps read and update.
struct FactoryRun<'r, 'a> {
    shared: &'r Shared<'a>,
    index: usize,
    name: &'a str,
    /// Whether observers are attached: every step is then an event.
    observed: bool,
    /// When the factory started, when it is timed (benchmarked or observed).
    started: Option<Instant>,
    /// Shares of outputs this factory may hold last, until it lets go of them.
    last_shares: SmallVec<[LastShare; 2]>,
    /// The bytes this job holds alone.
    held: HeldGuard<'r>,
}

impl<'r, 'a> FactoryRun<'r, 'a> {
    fn new(shared: &'r Shared<'a>, index: usize, owned: u64) -> Self {
        let spec = &shared.spec;
        let held = HeldGuard { counters: &spec.counters, bytes: owned };
        let observed = spec.observers.active();
        let started = (observed || spec.benchmarked[index]).then(Instant::now);
        FactoryRun {
            shared,
            index,
            name: spec.slots[index].name,
            observed,
            started,
            last_shares: SmallVec::new(),
            held,
        }
    }

    /// Hands over the inputs, runs the phases, takes the output and disposes of the factory.
    fn run(&mut self, factory: &mut dyn ErasedFactory, inputs: SmallVec<[JobInput; 3]>) -> Result<Finished, Error> {
        let span = tracing::info_span!(parent: &self.shared.parent, "factory", factory = self.name);
        let _entered = span.enter();
        let observers = self.shared.spec.observers;
        if let Some(at) = self.started {
            observers.emit_at(|| EventKind::FactoryStarted(self.shared.id(self.index)), at);
        }
        let reloaded = self.take_inputs(factory, inputs).map_err(|error| self.fail(Phase::Read, error))?;
        let [read, process, write] = self.run_timed_phases(factory, reloaded)?;
        let (output, provisional) = self.take_output(factory).map_err(|error| self.fail(Phase::Get, error))?;
        if self.observed {
            observers.emit(|| EventKind::OutputProduced {
                factory: self.shared.id(self.index),
                output: OutputRef(output.clone()),
            });
        }
        // Persisting (materializing once, writing a disk-only copy) is part of the factory's
        // time, as the seed's `persist` + `count()` inside `process` is.
        let produced =
            prepare(self.shared, self.index, output, provisional).map_err(|error| self.fail(Phase::Get, error))?;
        let timing = self.started.map(|started| {
            let now = Instant::now();
            let total = now - started;
            observers
                .emit_at(|| EventKind::FactoryFinished { factory: self.shared.id(self.index), elapsed: total }, now);
            // A pool has far fewer than 2^32 threads.
            let thread = rayon::current_thread_index().and_then(|thread| u32::try_from(thread).ok());
            FactoryTiming { started, thread, read, process, write, total }
        });
        tracing::debug!(factory = self.name, "finished");
        Ok(Finished { produced, timing })
    }

    /// Tells observers that the factory failed in `phase`, and returns the error.
    fn fail(&self, phase: Phase, error: Error) -> Error {
        let factory = || self.shared.id(self.index);
        self.shared.spec.observers.emit(|| EventKind::FactoryFailed {
            factory: factory(),
            phase,
            message: error.to_string(),
        });
        error
    }

    /// Fills the factory's input slots, reading spilled values back. Returns whether one was
    /// read back (which takes time worth a clock reading).
    fn take_inputs(&mut self, factory: &mut dyn ErasedFactory, inputs: SmallVec<[JobInput; 3]>) -> Result<bool, Error> {
        let (shared, index) = (self.shared, self.index);
        let spec = &shared.spec;
        let observers = spec.observers;
        let mut reloaded = false;
        let mut released: SmallVec<[usize; 3]> = SmallVec::new();
        for JobInput { slot, released: last_share, owned, taken } in inputs {
            let slot = slot as usize;
            let producer = match spec.plan.sources.get(index)[slot].get() {
                Some(Source::Factory(producer)) => Some(producer),
                _ => None,
            };
            let payload = match taken {
                Taken::Value(payload) => {
                    if let (Some(producer), true) = (producer, last_share) {
                        self.last_shares.push(LastShare { slot, producer, payload: payload.clone(), bytes: owned });
                    }
                    payload
                }
                Taken::Reload(reload) => {
                    let (payload, bytes) = reload_input(shared, &reload)?;
                    let Reload { producer, file, ops: _ } = *reload;
                    reloaded = true;
                    spec.counters.reloaded(bytes);
                    spec.counters.add_held(bytes);
                    self.held.bytes += bytes;
                    observers.emit(|| EventKind::OutputReloaded {
                        factory: shared.id(producer),
                        consumer: shared.id(index),
                        bytes,
                    });
                    // When this was the file's last handle, dropping it deletes the file.
                    drop(file);
                    self.last_shares.push(LastShare { slot, producer, payload: payload.clone(), bytes: owned + bytes });
                    payload
                }
            };
            if let Err(error) = factory.inject(slot, payload) {
                return Err(ErrorKind::Internal(format!(
                    "`{}.{}` received a value of another type than its `Delivery`",
                    self.name, error.field
                ))
                .into());
            }
            if let Some(at) = self.started {
                if let (Some(producer), true) = (producer, last_share) {
                    released.push(producer);
                }
                let field = spec.signatures[index].inputs[slot].field;
                let producer = || producer.map(|producer| shared.id(producer));
                observers.emit_at(
                    || EventKind::DeliveryTaken { producer: producer(), consumer: shared.id(index), field },
                    at,
                );
            }
        }
        if let Some(at) = self.started {
            for producer in released {
                observers.emit_at(|| EventKind::OutputReleased(shared.id(producer)), at);
            }
        }
        Ok(reloaded)
    }

    /// Runs `read`, `process` and `write` (unless the factory or its stage is not writable),
    /// releasing the inputs declared `release = ..` after their phase. Returns the three
    /// phases' times (zero when the factory is not timed).
    fn run_timed_phases(&mut self, factory: &mut dyn ErasedFactory, reloaded: bool) -> Result<[Duration; 3], Error> {
        let (shared, index, name) = (self.shared, self.index, self.name);
        let spec = &shared.spec;
        let observers = spec.observers;
        let id = || shared.id(index);
        let writable = spec.stage_writable[spec.stage_of[index]]
            && match guard::catch(|| factory.writable()) {
                Ok(writable) => writable,
                Err(message) => {
                    return Err(self.fail(Phase::Write, guard::panicked(name, Operation::Writable, message)));
                }
            };
        let mut times = [Duration::ZERO; 3];
        // Each phase boundary reads the clock once: a phase ends when the next one starts.
        // Handing over inputs takes no time worth a clock reading, unless one was read back
        // from disk or observers were told about each one.
        let mut boundary = if reloaded || self.observed { self.started.map(|_| Instant::now()) } else { self.started };
        for (at, phase) in Phase::TIMED.into_iter().enumerate() {
            if phase == Phase::Write && !writable {
                observers.emit(|| EventKind::PhaseSkipped { factory: id(), phase });
                self.release_inputs(factory, phase).map_err(|error| self.fail(phase, error))?;
                continue;
            }
            let phase_span = tracing::info_span!("phase", factory = name, phase = phase.as_str());
            let _phase_entered = phase_span.enter();
            if let Some(started) = boundary {
                observers.emit_at(|| EventKind::PhaseStarted { factory: id(), phase }, started);
            }
            let result = {
                let _running = RunningGuard::enter(spec.signatures[index].name.clone(), phase, spec.sink.as_ref());
                guard::catch(|| factory.run_phase(phase))
            };
            if let Some(started) = boundary {
                let now = Instant::now();
                let ok = matches!(result, Ok(Ok(())));
                let elapsed = now.saturating_duration_since(started);
                times[at] = elapsed;
                observers.emit_at(|| EventKind::PhaseFinished { factory: id(), phase, elapsed, ok }, now);
                boundary = Some(now);
            }
            let error = match result {
                Ok(Ok(())) => match self.release_inputs(factory, phase) {
                    Ok(()) => continue,
                    Err(error) => error,
                },
                Ok(Err(error)) => phase_failed(name, phase, error),
                Err(message) => panicked(name, phase, message),
            };
            return Err(self.fail(phase, error));
        }
        Ok(times)
    }

    /// Empties the input slots declared `release = phase` now that `phase` has returned, and
    /// drops the last shares among them, so they stop counting as held.
    fn release_inputs(&mut self, factory: &mut dyn ErasedFactory, phase: Phase) -> Result<(), Error> {
        let spec = &self.shared.spec;
        let mut result = Ok(());
        for (slot, input) in spec.signatures[self.index].inputs.iter().enumerate() {
            if input.release != Some(phase) {
                continue;
            }
            guard::catch(|| factory.release(slot, phase))
                .map_err(|message| guard::panicked(self.name, Operation::Drop, message))?;
            while let Some(at) = self.last_shares.iter().position(|share| share.slot == slot) {
                let LastShare { producer, payload, bytes, .. } = self.last_shares.swap_remove(at);
                let dropped = guard::drop_guarded(payload, spec.slots[producer].name, Operation::DropOutput);
                spec.counters.sub_held(bytes);
                self.held.bytes -= bytes;
                if result.is_ok() {
                    result = dropped;
                }
            }
        }
        result
    }

    /// Calls `get`, weighs the output while the factory and its inputs still exist (so the
    /// peak counts both), then drops the factory and the last shares of its inputs. Returns
    /// the output and the bytes it was counted as held.
    fn take_output(&mut self, factory: &mut dyn ErasedFactory) -> Result<(Payload, u64), Error> {
        let spec = &self.shared.spec;
        let name = self.name;
        let output = {
            let _running =
                RunningGuard::enter(spec.signatures[self.index].name.clone(), Phase::Get, spec.sink.as_ref());
            guard::catch(|| factory.output()).map_err(|message| panicked(name, Phase::Get, message))
        };
        let provisional = match (&output, spec.slots[self.index].ops) {
            (Ok(output), Some(ops)) => guard::catch(|| ops.byte_size(output))
                .map_err(|message| guard::panicked(name, Operation::Weigh, message)),
            _ => Ok(0),
        };
        let provisional_bytes = provisional.as_ref().copied().unwrap_or(0);
        spec.counters.add_held(provisional_bytes);
        // Dropping the factory drops its shares of its inputs, so they can be released.
        let dropped =
            guard::catch(move || factory.dispose()).map_err(|message| guard::panicked(name, Operation::Drop, message));
        let mut inputs_dropped = Ok(());
        for LastShare { producer, payload, .. } in self.last_shares.drain(..) {
            let dropped = guard::drop_guarded(payload, spec.slots[producer].name, Operation::DropOutput);
            if inputs_dropped.is_ok() {
                inputs_dropped = dropped;
            }
        }
        match (output, provisional, dropped, inputs_dropped) {
            (Ok(output), Ok(_), Ok(()), Ok(())) => Ok((output, provisional_bytes)),
            (output, provisional, dropped, inputs_dropped) => {
                spec.counters.sub_held(provisional_bytes);
                let error = [provisional.err(), dropped.err(), inputs_dropped.err()].into_iter().flatten().next();
                Err(match (output, error) {
                    (Err(error), _) => error,
                    (Ok(output), Some(error)) => discard(error, output, name),
                    (Ok(_), None) => ErrorKind::Internal("a factory failed without an error".into()).into(),
                })
            }
        }
    }
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
