//! `Engine`: DataFusion's async runtime and settings, one per `Setl` context.
//!
//! How its threads stay within the context's budget is told on [`Engine`] itself (Threads).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use setl_core::Setl;

use crate::attribution::MarkingQueryPlanner;
use crate::held::{HeldBytes, HeldGuard};

/// Settings of the engine, attached with `Setl::builder().extension(EngineSettings { .. })`.
/// Without them the engine uses [`EngineSettings::default`].
///
/// # Examples
///
/// ```
/// use setl_datafusion::{Engine, EngineSettings};
/// let setl = setl_core::Setl::builder()
///     .threads(2)
///     .extension(EngineSettings { batch_size: 4096, ..EngineSettings::default() })
///     .build()?;
/// let engine = Engine::of(&setl)?;
/// assert_eq!(engine.threads(), 2);
/// # Ok::<(), setl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Rows per batch inside DataFusion (its default: 8192).
    pub batch_size: usize,
    /// A cap on the memory DataFusion's operators reserve (sorts, joins, aggregates), in bytes;
    /// `None` for no cap. Operators that can spill do so past it, the others fail.
    pub memory_limit: Option<usize>,
    /// Bytes that shared scans read together may buffer in memory for queries that are behind
    /// (see [`Frame::shared`](crate::Frame::shared)); past them, the queries furthest behind read their
    /// batches from spill files instead. Default: a quarter of the machine's memory, from
    /// 256 MiB to 16 GiB.
    pub shared_buffer_bytes: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { batch_size: 8192, memory_limit: None, shared_buffer_bytes: default_shared_buffer_bytes() }
    }
}

/// A quarter of the machine's memory, from 256 MiB to 16 GiB (256 MiB when it is unknown).
///
/// Spilling a lagging query costs a write and a read of every batch it lags, once per lagging
/// query: at TPC-H scale 10 a fixed 256 MiB made the main job write 24 GiB of spills and take
/// 53 s instead of 10 s. The lag between queries grows with the data, so the bound does
/// too, leaving room for the queries' own operators.
fn default_shared_buffer_bytes() -> usize {
    const FLOOR: usize = 256 << 20;
    const CEILING: usize = 16 << 30;
    total_memory().map_or(FLOOR, |bytes| (bytes / 4).clamp(FLOOR, CEILING))
}

/// The machine's memory, from `/proc/meminfo` (`None` elsewhere).
fn total_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// DataFusion inside a `Setl` context: a Tokio runtime sized to the context's threads, a shared
/// DataFusion runtime environment, and the bytes held by materialized frames.
///
/// Cheap to clone. Get it with [`Engine::of`]; factories usually keep a clone as a field.
///
/// # Threads
///
/// A `Setl` context has `n` threads (`Setl::builder().threads(n)`): its Rayon pool runs
/// factories. The engine adds one Tokio runtime with `n` workers, shared by every factory of
/// every pipeline of the context, and DataFusion plans for `n` partitions. A factory never runs
/// a query on its Rayon worker: [`Engine::run`] spawns the query onto the runtime and parks the
/// worker until it ends, and [`Engine::compute`] does the same for other heavy work (encoding
/// an output file). So while queries run, at most `n` threads do CPU work, however many
/// factories wait on them: the parked Rayon workers are idle, not busy. The only other threads
/// are Tokio's blocking pool, which DataFusion's local file store uses for reads; they wait on
/// the disk rather than compute.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Some` until drop, which shuts it down without blocking (it may be dropped anywhere).
    runtime: Option<tokio::runtime::Runtime>,
    config: SessionConfig,
    /// A session state with DataFusion's functions, planners and formats, built once: building
    /// them costs about a millisecond, and a job makes a session per factory phase.
    template: SessionState,
    threads: usize,
    shared_buffer_bytes: usize,
    held: Arc<HeldBytes>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The slot in the `Setl` context: the engine, or why it could not start.
struct Slot(std::result::Result<Engine, String>);

impl Engine {
    /// The engine of `setl`, started on first use and shared by every clone of the context.
    ///
    /// # Errors
    ///
    /// When the Tokio runtime or DataFusion's environment cannot be created (the OS refused
    /// threads, or the memory limit is invalid).
    pub fn of(setl: &Setl) -> setl_core::Result<Engine> {
        let slot = setl.extension_or_insert_with(|setl| {
            let settings = setl.extension::<EngineSettings>().map(|s| (*s).clone()).unwrap_or_default();
            Slot(Engine::start(setl.threads(), &settings))
        });
        slot.0.clone().map_err(setl_core::Error::msg)
    }

    /// An engine outside any `Setl` context, with `threads` workers (for programs that call
    /// DataFusion directly, such as the hand-written baseline of the TPC-H bench).
    ///
    /// # Errors
    ///
    /// As [`Engine::of`].
    pub fn standalone(threads: usize, settings: &EngineSettings) -> setl_core::Result<Engine> {
        Engine::start(threads.max(1), settings).map_err(setl_core::Error::msg)
    }

    fn start(threads: usize, settings: &EngineSettings) -> std::result::Result<Engine, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("setl-datafusion")
            .enable_all()
            .build()
            .map_err(|error| format!("could not start DataFusion's Tokio runtime of {threads} threads: {error}"))?;
        let mut env = RuntimeEnvBuilder::new();
        if let Some(limit) = settings.memory_limit {
            env = env.with_memory_limit(limit, 1.0);
        }
        let env = env.build_arc().map_err(|error| format!("could not start DataFusion: {error}"))?;
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_batch_size(settings.batch_size.max(1))
            .with_information_schema(false);
        let template = SessionStateBuilder::new()
            .with_config(config.clone())
            .with_runtime_env(env)
            .with_default_features()
            .with_query_planner(Arc::new(MarkingQueryPlanner))
            .build();
        Ok(Engine {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                config,
                template,
                threads,
                shared_buffer_bytes: settings.shared_buffer_bytes,
                held: Arc::new(HeldBytes::default()),
            }),
        })
    }

    /// The number of Tokio workers, which is also the number of partitions of a plan.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// A session state with this engine's functions, runtime and settings, and a catalog of
    /// its own, for [`Engine::session`].
    pub(crate) fn session_state(&self) -> SessionState {
        SessionStateBuilder::new_from_existing(self.inner.template.clone())
            .with_config(self.inner.config.clone())
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build()
    }

    /// Runs `future` on the engine's runtime and waits for it, parking the calling thread (a
    /// Rayon worker is then idle, not busy, see [Threads](Engine#threads)). A panic inside the
    /// future is resumed here.
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.runtime().spawn(future);
        let on_multi_thread_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|current| current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let joined = if on_multi_thread_worker {
            // Already on a Tokio worker (e.g. inside `compute`): let the runtime move this
            // worker's other tasks away while it blocks.
            tokio::task::block_in_place(|| futures::executor::block_on(handle))
        } else {
            // No runtime, or a current-thread one (`#[tokio::test]`), which cannot hand its
            // tasks away: the future runs on the engine's own workers, this thread just waits.
            futures::executor::block_on(handle)
        };
        match joined {
            Ok(output) => output,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("a DataFusion task was cancelled: {error}"),
        }
    }

    /// Runs the CPU-heavy closure `work` on one of the engine's workers and waits for it, so
    /// that it counts within the context's thread budget (see [Threads](Engine#threads)).
    pub fn compute<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> R {
        self.run(async move { work() })
    }

    /// Bytes now held by materialized frames of this engine (persisted or query results) and by
    /// shared scans for queries that have not taken them yet.
    pub fn held_bytes(&self) -> usize {
        self.inner.held.now.load(Ordering::Relaxed)
    }

    /// The most bytes frames and shared scans held at once since the engine started (or since
    /// [`reset_peak_held_bytes`](Self::reset_peak_held_bytes)).
    pub fn peak_held_bytes(&self) -> usize {
        self.inner.held.peak.load(Ordering::Relaxed)
    }

    /// Restarts the peak from the bytes held now, e.g. between two runs.
    pub fn reset_peak_held_bytes(&self) {
        self.inner.held.peak.store(self.held_bytes(), Ordering::Relaxed);
    }

    /// How many plans frames of this engine executed (a persisted frame counts once).
    pub fn executions(&self) -> u64 {
        self.inner.held.executions.load(Ordering::Relaxed)
    }

    /// How many times a shared frame's plan was read for a group of queries (once per group
    /// however many queries read it, see [`Frame::shared`](crate::Frame::shared)).
    pub fn shared_reads(&self) -> u64 {
        self.inner.held.shared_reads.load(Ordering::Relaxed)
    }

    /// Bytes of shared scans' batches written to disk for queries that lagged while their
    /// group's buffer was full (see [`Frame::shared`](crate::Frame::shared)); zero when the buffer sufficed.
    pub fn shared_spilled_bytes(&self) -> u64 {
        self.inner.held.shared_spilled_bytes.load(Ordering::Relaxed)
    }

    /// How many times a shared frame was read by a group without all its readers and kept
    /// whole for the others (see [`Frame::shared`](crate::Frame::shared)); each consumer factory collecting
    /// its own query over a shared frame does this.
    pub fn shared_kept(&self) -> u64 {
        self.inner.held.shared_kept.load(Ordering::Relaxed)
    }

    pub(crate) fn count_shared_kept(&self) {
        self.inner.held.shared_kept.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_shared_spill(&self, bytes: usize) {
        self.inner.held.shared_spilled_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// [`EngineSettings::shared_buffer_bytes`].
    pub(crate) fn shared_buffer_bytes(&self) -> usize {
        self.inner.shared_buffer_bytes
    }

    pub(crate) fn count_shared_read(&self) {
        self.inner.held.shared_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn hold(&self, bytes: usize) -> HeldGuard {
        HeldBytes::hold(&self.inner.held, bytes)
    }

    pub(crate) fn count_execution(&self) {
        self.inner.held.executions.fetch_add(1, Ordering::Relaxed);
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        // `runtime` is `Some` from construction until `Inner` drops.
        self.inner.runtime.as_ref().unwrap_or_else(|| unreachable!("runtime taken before drop"))
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.inner.threads)
            .field("held_bytes", &self.held_bytes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_engine_per_context_sized_to_its_threads() {
        let setl = Setl::builder().threads(3).build().unwrap();
        let first = Engine::of(&setl).unwrap();
        let second = Engine::of(&setl.clone()).unwrap();
        assert!(Arc::ptr_eq(&first.inner, &second.inner));
        assert_eq!(first.threads(), 3);
        let workers = first.run(async { tokio::runtime::Handle::current().metrics().num_workers() });
        assert_eq!(workers, 3);
        let other = Engine::of(&Setl::builder().threads(1).build().unwrap()).unwrap();
        assert!(!Arc::ptr_eq(&first.inner, &other.inner));
    }

    #[test]
    fn run_moves_work_off_the_calling_thread_and_resumes_panics() {
        let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
        let caller = std::thread::current().id();
        let worker = engine.compute(|| std::thread::current().name().map(str::to_owned));
        assert_eq!(worker.as_deref(), Some("setl-datafusion"));
        assert_ne!(engine.compute(|| std::thread::current().id()), caller);
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.compute(|| panic!("boom"))));
        assert_eq!(panic.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
        // `run` nested in `compute` does not deadlock.
        let inner = engine.clone();
        assert_eq!(engine.compute(move || inner.compute(|| 7)), 7);
    }

    #[test]
    fn held_bytes_follow_guards() {
        let engine = Engine::standalone(1, &EngineSettings::default()).unwrap();
        let a = engine.hold(100);
        let b = engine.hold(50);
        assert_eq!((engine.held_bytes(), engine.peak_held_bytes()), (150, 150));
        drop(a);
        drop(b);
        assert_eq!((engine.held_bytes(), engine.peak_held_bytes()), (0, 150));
        engine.reset_peak_held_bytes();
        assert_eq!(engine.peak_held_bytes(), 0);
    }
}
