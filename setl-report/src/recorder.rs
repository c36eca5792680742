//! [`RunRecorder`]: the observer that turns a run's events into a [`RunReport`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use setl_core::{Event, EventKind, Observer, OutputRef, Phase, Pipeline, StoreOps};

use crate::report::{
    CacheEvent, CacheEventKind, CacheStats, CriticalPath, DeliveryRun, ExecutedRun, FactoryRun, Graph, MemorySample,
    OutputSize, PhaseRun, RunError, RunReport, Status, StoreStats, Worker, SCHEMA_VERSION,
};

/// Measures one output type, type-erased.
type Measure = Box<dyn Fn(&OutputRef) -> Option<OutputSize> + Send + Sync>;

/// What the recorder keeps of an event: no payloads, so outputs are released as usual.
#[derive(Debug, Clone)]
enum Recorded {
    PipelineStarted,
    PipelineFinished {
        ok: bool,
    },
    FactoryStarted(usize),
    FactoryFinished {
        index: usize,
        elapsed: f64,
    },
    FactoryFailed {
        index: usize,
        phase: Phase,
        message: String,
    },
    Delivery {
        producer: Option<usize>,
        consumer: usize,
        field: &'static str,
    },
    PhaseStarted {
        index: usize,
    },
    PhaseFinished {
        index: usize,
        phase: Phase,
        elapsed: f64,
        ok: bool,
    },
    PhaseSkipped {
        index: usize,
        phase: Phase,
    },
    Output {
        index: usize,
        size: Option<OutputSize>,
    },
    Released(usize),
    Cache {
        kind: CacheEventKind,
        index: usize,
        consumer: Option<usize>,
        bytes: u64,
    },
    CacheSummary(CacheStats),
    /// Work a factory defined, executed by an engine (boxed: much larger than the others).
    Executed(Box<ExecutedRun>),
    /// A periodic memory sample taken while the run goes on (its `rss` is the entry's).
    Sample,
}

/// How often memory is sampled while a run goes on, between the events' own samples: a long
/// phase is otherwise a flat line in the memory chart.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// The most periodic samples one run records (at [`SAMPLE_EVERY`], 20 minutes); past them the
/// sampler stops and events still sample.
const MAX_SAMPLES: usize = 120_000;

/// The thread that samples memory during a run; stopped (and joined) when the run ends or the
/// recorder goes.
struct Sampler {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(inner: &Arc<Mutex<Inner>>) -> Option<Sampler> {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (weak, flag) = (Arc::downgrade(inner), stop.clone());
        let thread = std::thread::Builder::new()
            .name("setl-report-sampler".into())
            .spawn(move || {
                let (stopped, wake) = &*flag;
                for _ in 0..MAX_SAMPLES {
                    let guard = stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let (guard, _) = wake
                        .wait_timeout_while(guard, SAMPLE_EVERY, |stopped| !*stopped)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if *guard {
                        return;
                    }
                    drop(guard);
                    let (Some(inner), Some(rss)) = (weak.upgrade(), resident_bytes()) else { return };
                    let entry = Entry { at: Instant::now(), thread: None, recorded: Recorded::Sample, rss: Some(rss) };
                    inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entries.push(entry);
                }
            })
            .ok()?;
        Some(Sampler { stop, thread })
    }

    fn stop(self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_all();
        // The thread ends at its next wake-up, which the flag makes immediate.
        let _ = self.thread.join();
    }
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    thread: Option<usize>,
    recorded: Recorded,
    rss: Option<u64>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    thread_names: BTreeMap<Option<usize>, String>,
    started_wall: Option<SystemTime>,
    cache: Option<CacheStats>,
}

/// Records the events of one run and builds its [`RunReport`].
///
/// Attach it before `run()`, then ask for the report:
///
/// ```
/// use std::sync::Arc;
/// use setl_core::prelude::*;
/// use setl_report::{OutputSize, RunRecorder};
///
/// #[factory]
/// #[derive(Default)]
/// struct Numbers { out: Vec<i64> }
///
/// impl Factory for Numbers {
///     type Output = Vec<i64>;
///     fn read(&mut self) -> Result<()> { self.out = (1..=10).collect(); Ok(()) }
///     fn get(&self) -> Vec<i64> { self.out.clone() }
/// }
///
/// let setl = Setl::builder().threads(1).build()?;
/// let mut pipeline = setl.new_pipeline();
/// pipeline.add_stage_from_type::<Numbers>();
/// let recorder = Arc::new(RunRecorder::new().measure(|numbers: &Vec<i64>| OutputSize {
///     rows: Some(numbers.len() as u64),
///     bytes: Some((numbers.len() * 8) as u64),
/// }));
/// pipeline.observe(recorder.clone());
/// let result = pipeline.run().map(drop);
/// let report = recorder.report(&pipeline, result.as_ref().err());
/// assert!(report.ok);
/// assert_eq!(report.factory("Numbers").unwrap().output.unwrap().rows, Some(10));
/// # Ok::<(), setl_core::Error>(())
/// ```
///
/// One recorder records one run: a second `PipelineStarted` starts over.
pub struct RunRecorder {
    inner: Arc<Mutex<Inner>>,
    sampler: Mutex<Option<Sampler>>,
    measures: Vec<Measure>,
    /// Per factory: the store's operations of its output type, when it is `Storable`.
    storable: Vec<Option<StoreOps>>,
    sample_memory: bool,
}

impl Default for RunRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RunRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRecorder")
            .field("events", &self.lock().entries.len())
            .field("measures", &self.measures.len())
            .field("sample_memory", &self.sample_memory)
            .finish()
    }
}

impl RunRecorder {
    /// A recorder that samples the process's memory (on Linux) and measures no output.
    pub fn new() -> Self {
        RunRecorder {
            inner: Arc::new(Mutex::new(Inner::default())),
            sampler: Mutex::new(None),
            measures: Vec::new(),
            storable: Vec::new(),
            sample_memory: true,
        }
    }

    /// Measures outputs of type `T` (rows and bytes) when they are produced, for the report's
    /// `output` fields and the memory chart. Call once per output type.
    pub fn measure<T: 'static>(mut self, measure: impl Fn(&T) -> OutputSize + Send + Sync + 'static) -> Self {
        self.measures.push(Box::new(move |output: &OutputRef| output.downcast_ref::<T>().map(&measure)));
        self
    }

    /// Sizes (in bytes) the outputs of `pipeline`'s factories whose type is `Storable` (such as
    /// setl-arrow's datasets) with their `byte_size`, when no [`measure`](Self::measure) knows
    /// them. [`run_with_report`] does this by itself.
    pub fn measure_storable(mut self, pipeline: &Pipeline) -> Self {
        self.storable = pipeline.factories().map(|signature| signature.store_ops).collect();
        self
    }

    /// Samples the process's resident memory when the run starts and ends, when each factory
    /// ends, and every 10 ms in between from a thread of its own (default on; a read of
    /// `/proc/self/statm` each time, nothing off Linux).
    pub fn sample_memory(mut self, sample: bool) -> Self {
        self.sample_memory = sample;
        self
    }

    /// Sets the cache statistics the report carries, for a cache outside setl-core's store
    /// (the store's own statistics arrive with the run's `CacheSummary` event and win).
    pub fn set_cache_stats(&self, stats: CacheStats) {
        self.lock().cache = Some(stats);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn measure_output(&self, index: usize, output: &OutputRef) -> Option<OutputSize> {
        self.measures.iter().find_map(|measure| measure(output)).or_else(|| {
            let ops = self.storable.get(index).copied().flatten()?;
            Some(OutputSize { rows: None, bytes: Some(ops.byte_size(output.payload())) })
        })
    }

    /// Builds the report of the recorded run of `pipeline`. Pass the run's error, if any, so a
    /// failure that happened before any factory started (validation) is reported too.
    pub fn report(&self, pipeline: &Pipeline, error: Option<&setl_core::Error>) -> RunReport {
        let graph = pipeline.graph();
        let mut report = self.build(Graph::from(&graph), error.map(ToString::to_string));
        report.threads = graph.threads;
        report.stage_barrier = graph.stage_barrier;
        report
    }

    fn build(&self, graph: Graph, error: Option<String>) -> RunReport {
        let inner = self.lock();
        let entries = &inner.entries;
        let t0 = entries
            .iter()
            .find(|entry| matches!(entry.recorded, Recorded::PipelineStarted))
            .or(entries.first())
            .map(|entry| entry.at);
        let offset = |at: Instant| t0.map_or(0.0, |t0| at.saturating_duration_since(t0).as_secs_f64());

        let mut factories: Vec<FactoryRun> = graph
            .factories
            .iter()
            .enumerate()
            .map(|(index, node)| FactoryRun {
                index,
                name: node.name.clone(),
                stage: node.stage,
                status: Status::NotStarted,
                starts: 0,
                thread: None,
                thread_name: None,
                start_s: None,
                end_s: None,
                total_s: None,
                phases: Vec::new(),
                skipped: Vec::new(),
                output: None,
                released_s: None,
                critical: false,
                executed: Vec::new(),
            })
            .collect();
        let mut deliveries = Vec::new();
        let mut memory = Vec::new();
        let mut phase_starts: BTreeMap<usize, f64> = BTreeMap::new();
        let mut run_error: Option<RunError> = None;
        let mut finished_ok: Option<bool> = None;
        let mut elapsed = 0.0_f64;
        let mut held: u64 = 0;
        let mut peak: Option<u64> = None;
        let mut released = 0;
        let mut measured_any = false;
        let mut cache_events = Vec::new();
        let mut cache = inner.cache.clone();

        for entry in entries {
            let at = offset(entry.at);
            elapsed = elapsed.max(at);
            let mut outputs_changed = false;
            match &entry.recorded {
                Recorded::PipelineStarted => {}
                Recorded::PipelineFinished { ok } => finished_ok = Some(*ok),
                Recorded::FactoryStarted(index) => {
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.starts += 1;
                        factory.start_s = Some(at);
                        factory.thread = entry.thread;
                        factory.thread_name = inner.thread_names.get(&entry.thread).cloned();
                    }
                }
                Recorded::FactoryFinished { index, elapsed } => {
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.status = Status::Finished;
                        factory.end_s = Some(at);
                        factory.total_s = Some(*elapsed);
                    }
                }
                Recorded::FactoryFailed { index, phase, message } => {
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.status = Status::Failed;
                        factory.end_s = Some(at);
                        factory.total_s = factory.start_s.map(|start| at - start);
                        if run_error.is_none() {
                            run_error = Some(RunError {
                                factory: Some(factory.name.clone()),
                                phase: Some(phase.as_str().to_owned()),
                                message: message.clone(),
                            });
                        }
                    }
                }
                Recorded::Delivery { producer, consumer, field } => deliveries.push(DeliveryRun {
                    producer: *producer,
                    consumer: *consumer,
                    field: (*field).to_owned(),
                    at_s: at,
                    thread: entry.thread,
                }),
                Recorded::PhaseStarted { index } => {
                    phase_starts.insert(*index, at);
                }
                Recorded::PhaseFinished { index, phase, elapsed, ok } => {
                    if let Some(factory) = factories.get_mut(*index) {
                        let start = phase_starts.remove(index).unwrap_or(at - elapsed);
                        factory.phases.push(PhaseRun {
                            phase: phase.as_str().to_owned(),
                            start_s: start,
                            elapsed_s: *elapsed,
                            ok: *ok,
                        });
                    }
                }
                Recorded::PhaseSkipped { index, phase } => {
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.skipped.push(phase.as_str().to_owned());
                    }
                }
                Recorded::Output { index, size } => {
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.output = *size;
                        if let Some(bytes) = size.and_then(|size| size.bytes) {
                            held += bytes;
                            measured_any = true;
                            outputs_changed = true;
                            peak = Some(peak.unwrap_or(0).max(held));
                        }
                    }
                }
                Recorded::Cache { kind, index, consumer, bytes } => cache_events.push(CacheEvent {
                    at_s: at,
                    kind: *kind,
                    factory: *index,
                    consumer: *consumer,
                    bytes: *bytes,
                    thread: entry.thread,
                }),
                Recorded::CacheSummary(stats) => cache = Some(stats.clone()),
                Recorded::Sample => {}
                Recorded::Executed(work) => {
                    // Charged to the factory that defined it, found by name (`Factory.phase`).
                    let definer = work.defined_in.rsplit_once('.').map_or(work.defined_in.as_str(), |(name, _)| name);
                    if let Some(factory) = factories.iter_mut().find(|factory| factory.name == definer) {
                        factory.executed.push((**work).clone());
                    }
                }
                Recorded::Released(index) => {
                    released += 1;
                    if let Some(factory) = factories.get_mut(*index) {
                        factory.released_s = Some(at);
                        if let Some(bytes) = factory.output.and_then(|size| size.bytes) {
                            held = held.saturating_sub(bytes);
                            outputs_changed = true;
                        }
                    }
                }
            }
            if entry.rss.is_some() || outputs_changed {
                memory.push(MemorySample {
                    at_s: at,
                    rss_bytes: entry.rss,
                    outputs_bytes: measured_any.then_some(held),
                });
            }
        }

        // The sampler's entries are pushed when it takes the lock, a little after their time.
        memory.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        if run_error.is_none() {
            if let Some(message) = error {
                run_error = Some(RunError { factory: None, phase: None, message });
            }
        }
        let ok = run_error.is_none() && finished_ok.unwrap_or(false);
        let critical_path = critical_path(&graph, &factories);
        for &index in &critical_path.factories {
            factories[index].critical = true;
        }
        RunReport {
            schema_version: SCHEMA_VERSION,
            setl_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_unix_s: inner
                .started_wall
                .and_then(|wall| wall.duration_since(UNIX_EPOCH).ok())
                .map(|since| since.as_secs_f64()),
            elapsed_s: elapsed,
            ok,
            error: run_error,
            threads: 0,
            stage_barrier: false,
            graph,
            workers: inner
                .thread_names
                .iter()
                .map(|(index, name)| Worker { index: *index, name: name.clone() })
                .collect(),
            factories,
            deliveries,
            critical_path,
            memory,
            store: StoreStats { outputs_released: released, peak_output_bytes: peak },
            cache,
            cache_events,
        }
    }
}

impl Observer for RunRecorder {
    fn on_event(&self, event: &Event) {
        let (recorded, sample) = match &event.kind {
            EventKind::PipelineStarted { .. } => (Recorded::PipelineStarted, true),
            EventKind::PipelineFinished { ok, .. } => (Recorded::PipelineFinished { ok: *ok }, true),
            EventKind::FactoryStarted(factory) => (Recorded::FactoryStarted(factory.index), false),
            EventKind::FactoryFinished { factory, elapsed } => {
                (Recorded::FactoryFinished { index: factory.index, elapsed: elapsed.as_secs_f64() }, true)
            }
            EventKind::FactoryFailed { factory, phase, message } => {
                (Recorded::FactoryFailed { index: factory.index, phase: *phase, message: message.clone() }, true)
            }
            EventKind::DeliveryTaken { producer, consumer, field } => (
                Recorded::Delivery {
                    producer: producer.as_ref().map(|producer| producer.index),
                    consumer: consumer.index,
                    field,
                },
                false,
            ),
            EventKind::PhaseStarted { factory, .. } => (Recorded::PhaseStarted { index: factory.index }, false),
            EventKind::PhaseFinished { factory, phase, elapsed, ok } => (
                Recorded::PhaseFinished {
                    index: factory.index,
                    phase: *phase,
                    elapsed: elapsed.as_secs_f64(),
                    ok: *ok,
                },
                false,
            ),
            EventKind::PhaseSkipped { factory, phase } => {
                (Recorded::PhaseSkipped { index: factory.index, phase: *phase }, false)
            }
            EventKind::OutputProduced { factory, output } => {
                (Recorded::Output { index: factory.index, size: self.measure_output(factory.index, output) }, false)
            }
            EventKind::OutputReleased(factory) => (Recorded::Released(factory.index), false),
            EventKind::OutputMaterialized { factory, bytes } => (
                Recorded::Cache {
                    kind: CacheEventKind::Materialized,
                    index: factory.index,
                    consumer: None,
                    bytes: *bytes,
                },
                false,
            ),
            EventKind::OutputSpilled { factory, bytes } => (
                Recorded::Cache { kind: CacheEventKind::Spilled, index: factory.index, consumer: None, bytes: *bytes },
                false,
            ),
            EventKind::OutputReloaded { factory, consumer, bytes } => (
                Recorded::Cache {
                    kind: CacheEventKind::Reloaded,
                    index: factory.index,
                    consumer: Some(consumer.index),
                    bytes: *bytes,
                },
                false,
            ),
            EventKind::WorkExecuted(work) => (Recorded::Executed(Box::new(ExecutedRun::from(work))), false),
            EventKind::CacheSummary(stats) => (Recorded::CacheSummary(CacheStats::from(stats)), false),
            _ => return,
        };
        let rss = if sample && self.sample_memory { resident_bytes() } else { None };
        let (started, finished) =
            (matches!(recorded, Recorded::PipelineStarted), matches!(recorded, Recorded::PipelineFinished { .. }));
        if finished || started {
            if let Some(sampler) = self.lock_sampler().take() {
                sampler.stop();
            }
        }
        let mut inner = self.lock();
        if matches!(recorded, Recorded::PipelineStarted) {
            let cache = inner.cache.take();
            *inner = Inner { cache, started_wall: Some(SystemTime::now()), ..Inner::default() };
        }
        inner.thread_names.entry(event.thread).or_insert_with(|| match (std::thread::current().name(), event.thread) {
            (Some(name), _) => name.to_owned(),
            (None, Some(index)) => format!("worker-{index}"),
            (None, None) => "caller".to_owned(),
        });
        inner.entries.push(Entry { at: event.at, thread: event.thread, recorded, rss });
        drop(inner);
        if started && self.sample_memory && cfg!(target_os = "linux") {
            *self.lock_sampler() = Sampler::start(&self.inner);
        }
    }
}

impl RunRecorder {
    fn lock_sampler(&self) -> MutexGuard<'_, Option<Sampler>> {
        self.sampler.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for RunRecorder {
    fn drop(&mut self) {
        if let Some(sampler) = self.lock_sampler().take() {
            sampler.stop();
        }
    }
}

/// The process's resident set size (Linux only): resident pages from `/proc/self/statm`, a
/// cheap read, times the page size.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size, found once by comparing `VmRSS` of `/proc/self/status` (in KiB) with the
/// resident pages of `/proc/self/statm`, rounded to a power of two; 4 KiB when unknown.
fn page_size() -> u64 {
    static PAGE_SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        let measured = || -> Option<u64> {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
            let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
            let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
            (pages > 0).then(|| (kib * 1024 / pages).max(1).next_power_of_two())
        };
        measured().unwrap_or(4096)
    })
}

/// The chain of producer → consumer factories with the largest sum of wall times (`total_s`;
/// factories that did not run weigh zero). Ties go to
/// the earlier declared factory, so the result is deterministic.
pub fn critical_path(graph: &Graph, factories: &[FactoryRun]) -> CriticalPath {
    let count = graph.factories.len().min(factories.len());
    let weight: Vec<f64> = factories.iter().take(count).map(|factory| factory.total_s.unwrap_or(0.0)).collect();
    let mut producers: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (producer, consumer, _) in graph.factory_edges() {
        if producer < count && consumer < count && !producers[consumer].contains(&producer) {
            producers[consumer].push(producer);
            consumers[producer].push(consumer);
        }
    }
    // Kahn's order; a cycle (impossible after validation) leaves its factories out.
    let mut waiting: Vec<usize> = producers.iter().map(Vec::len).collect();
    let mut order: Vec<usize> = (0..count).filter(|&index| waiting[index] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let index = order[next];
        next += 1;
        for &consumer in &consumers[index] {
            waiting[consumer] -= 1;
            if waiting[consumer] == 0 {
                order.push(consumer);
            }
        }
    }
    let mut best = vec![0.0_f64; count];
    let mut via: Vec<Option<usize>> = vec![None; count];
    for &index in &order {
        let mut from: Option<usize> = None;
        for &producer in &producers[index] {
            let better = match from {
                None => true,
                Some(current) => {
                    best[producer] > best[current] || (best[producer] == best[current] && producer < current)
                }
            };
            if better {
                from = Some(producer);
            }
        }
        best[index] = weight[index] + from.map_or(0.0, |producer| best[producer]);
        via[index] = from;
    }
    let Some(mut end) =
        order.iter().copied().reduce(|a, b| if best[b] > best[a] || (best[b] == best[a] && b < a) { b } else { a })
    else {
        return CriticalPath::default();
    };
    let elapsed_s = best[end];
    let mut path = vec![end];
    while let Some(producer) = via[end] {
        path.push(producer);
        end = producer;
    }
    path.reverse();
    CriticalPath { factories: path, elapsed_s }
}

/// Runs `pipeline` with `recorder` attached (sizing `Storable` outputs, see
/// [`RunRecorder::measure_storable`]) and returns the run's result with its report.
///
/// # Errors
///
/// The run's error, as `Pipeline::run` returns it; the report is built either way.
pub fn run_with_report(pipeline: &mut Pipeline, recorder: RunRecorder) -> (setl_core::Result<()>, RunReport) {
    let recorder = Arc::new(recorder.measure_storable(pipeline));
    pipeline.observe(recorder.clone());
    let result = pipeline.run().map(drop);
    let report = recorder.report(pipeline, result.as_ref().err());
    (result, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn resident_memory_is_read_in_whole_pages() {
        let page = page_size();
        assert!(page >= 4096 && page.is_power_of_two(), "page size {page}");
        let rss = resident_bytes().expect("Linux has /proc/self/statm");
        assert!(rss >= page && rss % page == 0, "rss {rss}");
    }
}
