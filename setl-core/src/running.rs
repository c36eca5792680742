//! Which factory's phase is running on the current thread, and where work done for it is
//! recorded.
//!
//! Libraries that build lazy work inside a phase (a DataFusion scan or query that runs later,
//! in another factory's phase) read it to name the factory that defined the work: an error or a
//! cost is then reported where the user wrote the code, not where it happened to execute.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Phase;
use crate::executed::{Attribution, ExecutedWork, FactoryPhase};
use crate::name::Name;
use crate::observe::{EventKind, Observers};

/// A factory phase running on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The factory's name as reports show it (`Type` or `Type[id]`).
    pub factory: Name,
    /// The phase.
    pub phase: Phase,
}

impl From<&Running> for FactoryPhase {
    fn from(running: &Running) -> Self {
        FactoryPhase { factory: running.factory.to_string(), phase: running.phase }
    }
}

/// The phase running on a thread, and its run's sink when the run records attributed work.
struct Current {
    running: Running,
    sink: Option<Arc<WorkSink>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The factory phase running on this thread, if any: set by the pipeline around each `read`,
/// `process`, `write` and `get` call.
pub fn running() -> Option<Running> {
    CURRENT.with(|current| current.borrow().as_ref().map(|current| current.running.clone()))
}

/// Whether work executed on this thread now would be recorded by [`attribute`]: a phase of a
/// pipeline with benchmarks or observers is running. Engines check it before measuring.
pub fn attribution_wanted() -> bool {
    CURRENT.with(|current| current.borrow().as_ref().is_some_and(|current| current.sink.is_some()))
}

/// Records work an engine executed on this thread for the factory that defined it: it shows in
/// that factory's [`BenchmarkResult::executed`](crate::BenchmarkResult::executed) and goes to
/// observers as [`EventKind::WorkExecuted`], with the phase running now as where it executed.
/// Returns whether a run took it (it does when [`attribution_wanted`]).
pub fn attribute(work: Attribution) -> bool {
    let taken = CURRENT.with(|current| {
        let current = current.borrow();
        let current = current.as_ref()?;
        Some((current.sink.clone()?, FactoryPhase::from(&current.running)))
    });
    let Some((sink, executed_in)) = taken else { return false };
    sink.record(work, Some(executed_in));
    true
}

/// Marks `factory`'s `phase` as running on this thread until dropped; what ran before (a phase
/// this one is nested in, when a worker picks up other work while it waits) comes back then.
pub(crate) struct RunningGuard {
    previous: Option<Current>,
}

impl RunningGuard {
    pub(crate) fn enter(factory: Name, phase: Phase, sink: Option<&Arc<WorkSink>>) -> Self {
        let now = Current { running: Running { factory, phase }, sink: sink.cloned() };
        RunningGuard { previous: CURRENT.with(|current| current.replace(Some(now))) }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Where one run collects attributed work: the benchmark results read it after the run, and
/// observers get each piece as an event.
pub(crate) struct WorkSink {
    started: Instant,
    observers: Observers,
    works: Mutex<Vec<ExecutedWork>>,
}

impl WorkSink {
    pub(crate) fn new(started: Instant, observers: Observers) -> Arc<Self> {
        Arc::new(WorkSink { started, observers, works: Mutex::new(Vec::new()) })
    }

    fn record(&self, work: Attribution, executed_in: Option<FactoryPhase>) {
        let executed = ExecutedWork {
            defined_in: work.defined_in,
            executed_in,
            what: work.what,
            shared: work.shared,
            start: work.started.saturating_duration_since(self.started),
            elapsed: work.elapsed,
            compute: work.compute,
            rows: work.rows,
            spilled_bytes: work.spilled_bytes,
            peak_memory: work.peak_memory,
            thread: rayon::current_thread_index(),
            operators: work.operators,
        };
        self.observers.emit(|| EventKind::WorkExecuted(executed.clone()));
        self.lock().push(executed);
    }

    /// Everything recorded, in the order it was.
    pub(crate) fn take(&self) -> Vec<ExecutedWork> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ExecutedWork>> {
        // Nothing panics while it is held.
        self.works.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_phases_restore_the_outer_one() {
        assert_eq!(running(), None);
        let outer = RunningGuard::enter(Name::from_static("Outer"), Phase::Process, None);
        {
            let _inner = RunningGuard::enter(Name::from_static("Inner"), Phase::Read, None);
            assert_eq!(running(), Some(Running { factory: Name::from_static("Inner"), phase: Phase::Read }));
        }
        assert_eq!(running().map(|r| r.factory), Some(Name::from_static("Outer")));
        drop(outer);
        assert_eq!(running(), None);
    }

    #[test]
    fn attributed_work_goes_to_the_sink_of_the_running_phase() {
        let sink = WorkSink::new(Instant::now(), Observers::default());
        let work = |what: &str| Attribution {
            defined_in: FactoryPhase { factory: "Reader".into(), phase: Phase::Read },
            what: what.into(),
            shared: None,
            started: Instant::now(),
            elapsed: std::time::Duration::from_millis(5),
            compute: std::time::Duration::from_millis(4),
            rows: 10,
            spilled_bytes: 0,
            peak_memory: 0,
            operators: Vec::new(),
        };
        assert!(!attribution_wanted());
        assert!(!attribute(work("outside a run")));
        {
            let _untimed = RunningGuard::enter(Name::from_static("Quiet"), Phase::Process, None);
            assert!(!attribute(work("in an untimed run")));
        }
        {
            let _timed = RunningGuard::enter(Name::from_static("Consumer"), Phase::Process, Some(&sink));
            assert!(attribution_wanted());
            assert!(attribute(work("scan")));
        }
        let works = sink.take();
        assert_eq!(works.len(), 1);
        assert_eq!(works[0].what, "scan");
        assert_eq!(works[0].executed_in, Some(FactoryPhase { factory: "Consumer".into(), phase: Phase::Process }));
        assert_eq!(works[0].defined_in.to_string(), "Reader.read");
    }
}
