//! One event stream for everything that watches a run.
//!
//! The scheduler emits each event once, to every attached [`Observer`]: progress displays,
//! tracing exporters and run reports. Benchmarks do not need one: workers hand each benchmarked
//! factory's timings over with its output, and the events carry the same timings. When nothing
//! is benchmarked or observed, no clock is read and no event is built.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::CacheStats;
use crate::delivery::Payload;
use crate::error::Phase;
use crate::executed::ExecutedWork;
use crate::name::Name;

/// A factory of a running pipeline: its position in declaration order and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FactoryId {
    /// The factory's index in declaration order (stages in order, factories in stage order).
    pub index: usize,
    /// The factory's name (`ReadTable[orders]` for an instance with an id).
    pub name: Name,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `run()` started; `factories` will run.
    PipelineStarted {
        /// How many factories the run has.
        factories: usize,
    },
    /// A factory was taken by a worker; its inputs are about to be injected.
    FactoryStarted(FactoryId),
    /// A delivery was handed to a consumer's field.
    DeliveryTaken {
        /// The producer, or `None` for a pipeline input.
        producer: Option<FactoryId>,
        /// The consumer.
        consumer: FactoryId,
        /// The consumer's `Delivery` field.
        field: &'static str,
    },
    /// A phase started.
    PhaseStarted {
        /// The factory.
        factory: FactoryId,
        /// The phase.
        phase: Phase,
    },
    /// A phase ended, successfully or not.
    PhaseFinished {
        /// The factory.
        factory: FactoryId,
        /// The phase.
        phase: Phase,
        /// How long it ran.
        elapsed: Duration,
        /// Whether it returned `Ok`.
        ok: bool,
    },
    /// A phase did not run: `write` of a factory or stage that is not writable.
    PhaseSkipped {
        /// The factory.
        factory: FactoryId,
        /// The phase.
        phase: Phase,
    },
    /// A factory's `get` produced its output, just before it goes to the store. Lets a report
    /// measure outputs (rows, bytes); an observer must not keep the value, or it is never released.
    OutputProduced {
        /// The factory.
        factory: FactoryId,
        /// The output.
        output: OutputRef,
    },
    /// A factory finished all its phases and handed its output to the store.
    FactoryFinished {
        /// The factory.
        factory: FactoryId,
        /// Its wall time, from `FactoryStarted`.
        elapsed: Duration,
    },
    /// A factory failed (error or panic) in `phase`.
    FactoryFailed {
        /// The factory.
        factory: FactoryId,
        /// The phase that failed.
        phase: Phase,
        /// The error or panic message.
        message: String,
    },
    /// The store dropped its share of an output after the last consumer took it.
    OutputReleased(FactoryId),
    /// A persisted output was materialized once (a lazy value's recipe ran), for all consumers.
    OutputMaterialized {
        /// The producer.
        factory: FactoryId,
        /// The materialized value's bytes.
        bytes: u64,
    },
    /// An output was written to a spill file and left memory (over the memory budget, or
    /// disk-only).
    OutputSpilled {
        /// The producer.
        factory: FactoryId,
        /// The bytes written.
        bytes: u64,
    },
    /// A spilled output was read back for a consumer.
    OutputReloaded {
        /// The producer.
        factory: FactoryId,
        /// The consumer that needed it.
        consumer: FactoryId,
        /// The bytes read back.
        bytes: u64,
    },
    /// Work a factory defined ran (a lazy plan executed later, in this or another factory's
    /// phase), as the engine that ran it measured it.
    WorkExecuted(ExecutedWork),
    /// What the cache did during the run; sent once, just before `PipelineFinished`.
    CacheSummary(CacheStats),
    /// `run()` ended.
    PipelineFinished {
        /// The run's wall time.
        elapsed: Duration,
        /// Whether every factory succeeded.
        ok: bool,
    },
}

/// A factory's output as an observer sees it: look at it with [`downcast_ref`](Self::downcast_ref).
///
/// Two `OutputRef`s are equal when they share the same value.
#[derive(Clone)]
pub struct OutputRef(pub(crate) Payload);

impl OutputRef {
    /// The output as a `T`, when it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// The output, type-erased (for size measures that work on any payload).
    pub fn payload(&self) -> &Payload {
        &self.0
    }
}

impl PartialEq for OutputRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for OutputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputRef(..)")
    }
}

/// An event, with when and where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened.
    pub at: Instant,
    /// The index of the Rayon worker thread it happened on, or `None` off the pool.
    pub thread: Option<usize>,
    /// What happened.
    pub kind: EventKind,
}

/// Receives the events of a run. Attach with `Pipeline::observe`.
///
/// Called from worker threads, possibly concurrently; keep it quick. A panicking observer is
/// detached for the rest of the run and the run goes on.
pub trait Observer: Send + Sync {
    /// Handles one event.
    fn on_event(&self, event: &Event);
}

struct Attached {
    observer: Arc<dyn Observer>,
    detached: AtomicBool,
}

/// The observers of one run; clones share them (and whether each is detached).
#[derive(Clone)]
pub(crate) struct Observers {
    attached: Arc<[Attached]>,
}

impl Default for Observers {
    fn default() -> Self {
        Observers { attached: Arc::new([]) }
    }
}

impl Observers {
    pub(crate) fn new(observers: impl IntoIterator<Item = Arc<dyn Observer>>) -> Self {
        Observers {
            attached: observers
                .into_iter()
                .map(|observer| Attached { observer, detached: AtomicBool::new(false) })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// Whether anyone listens; when not, callers skip reading the clock.
    pub(crate) fn active(&self) -> bool {
        !self.attached.is_empty()
    }

    /// Emits the event `kind` builds; it is built only when someone listens.
    #[inline]
    pub(crate) fn emit(&self, kind: impl FnOnce() -> EventKind) {
        if self.attached.is_empty() {
            return;
        }
        self.emit_at(kind, Instant::now());
    }

    /// Emits with a timestamp the caller already read, so a phase boundary costs one clock read.
    #[inline]
    pub(crate) fn emit_at(&self, kind: impl FnOnce() -> EventKind, at: Instant) {
        if self.attached.is_empty() {
            return;
        }
        let event = Event { at, thread: rayon::current_thread_index(), kind: kind() };
        self.emit_event(&event);
    }

    pub(crate) fn emit_event(&self, event: &Event) {
        for attached in self.attached.iter() {
            if attached.detached.load(Ordering::Relaxed) {
                continue;
            }
            // `guard::catch` also survives a panic payload whose own `Drop` panics.
            if let Err(message) = crate::guard::catch(|| attached.observer.on_event(event)) {
                attached.detached.store(true, Ordering::Relaxed);
                tracing::warn!(
                    "an observer panicked on {:?}: {message}; it is detached for the rest of the run",
                    event.kind
                );
            }
        }
    }
}
