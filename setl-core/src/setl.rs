//! The `Setl` context: the thread pool and settings shared by every pipeline it creates.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{ErrorKind, Result};
use crate::pipeline::Pipeline;

/// The setl-rs context. Cheap to clone; pipelines made from it share its thread pool, so the
/// number of busy threads stays within [`SetlBuilder::threads`] however many pipelines run.
///
/// # Examples
///
/// ```
/// let setl = setl_core::Setl::builder().threads(2).build()?;
/// assert_eq!(setl.threads(), 2);
/// let mut pipeline = setl.new_pipeline();
/// pipeline.benchmark(true);
/// # Ok::<(), setl_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Setl {
    inner: Arc<Inner>,
}

struct Inner {
    pool: rayon::ThreadPool,
    memory_budget: Option<u64>,
    spill_dir: Option<PathBuf>,
    extensions: Mutex<Extensions>,
}

/// Values that other crates attach to the context, one per type (e.g. setl-datafusion's query
/// engine), so that the core needs no dependency on them.
type Extensions = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

impl Setl {
    /// Starts configuring a context.
    pub fn builder() -> SetlBuilder {
        SetlBuilder::default()
    }

    /// A new, empty pipeline running on this context's threads.
    pub fn new_pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.inner.pool.current_num_threads()
    }

    /// The worker pool, for running parallel work inside a factory within the same bound.
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.inner.pool
    }

    /// The memory budget of each pipeline's cache, if set.
    pub fn memory_budget(&self) -> Option<u64> {
        self.inner.memory_budget
    }

    /// The directory under which each pipeline makes its spill directory (default: the system's
    /// temporary directory).
    pub fn spill_dir(&self) -> Option<&Path> {
        self.inner.spill_dir.as_deref()
    }

    /// The extension of type `T` attached with [`SetlBuilder::extension`] or
    /// [`extension_or_insert_with`](Self::extension_or_insert_with), if any.
    ///
    /// Extensions let crates built on the core (a query engine, a connection pool) keep one
    /// shared instance per context without the core knowing their types.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug, PartialEq)]
    /// struct Tenant(&'static str);
    /// let setl = setl_core::Setl::builder().extension(Tenant("acme")).build()?;
    /// assert_eq!(*setl.extension::<Tenant>().unwrap(), Tenant("acme"));
    /// assert!(setl.extension::<String>().is_none());
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let extensions = self.extensions();
        let value = extensions.get(&TypeId::of::<T>())?.clone();
        value.downcast::<T>().ok()
    }

    /// The extension of type `T`, created by `init` and attached to the context on first use.
    /// Every clone of the context then shares it; `init` runs at most once per context.
    ///
    /// # Examples
    ///
    /// ```
    /// let setl = setl_core::Setl::builder().threads(2).build()?;
    /// let first = setl.extension_or_insert_with(|setl| setl.threads() * 10);
    /// let again = setl.clone().extension_or_insert_with(|_| 0_usize);
    /// assert_eq!((*first, *again), (20, 20));
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn extension_or_insert_with<T: Send + Sync + 'static>(&self, init: impl FnOnce(&Setl) -> T) -> Arc<T> {
        if let Some(value) = self.extension::<T>() {
            return value;
        }
        // Built outside the lock: `init` may itself read other extensions.
        let fresh: Arc<dyn Any + Send + Sync> = Arc::new(init(self));
        let mut extensions = self.extensions();
        let value = extensions.entry(TypeId::of::<T>()).or_insert(fresh).clone();
        drop(extensions);
        // The entry for `TypeId::of::<T>()` always holds a `T`: both insertion paths key by it.
        value.downcast::<T>().unwrap_or_else(|_| unreachable!("extension keyed by another type"))
    }

    fn extensions(&self) -> std::sync::MutexGuard<'_, Extensions> {
        // Nothing panics while holding the lock; recover anyway.
        self.inner.extensions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Setl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setl")
            .field("threads", &self.threads())
            .field("memory_budget", &self.inner.memory_budget)
            .field("spill_dir", &self.inner.spill_dir)
            .finish()
    }
}

/// Configures a [`Setl`] context.
#[derive(Default, Clone)]
#[must_use]
pub struct SetlBuilder {
    threads: Option<usize>,
    memory_budget: Option<u64>,
    spill_dir: Option<PathBuf>,
    extensions: Extensions,
}

impl std::fmt::Debug for SetlBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetlBuilder")
            .field("threads", &self.threads)
            .field("memory_budget", &self.memory_budget)
            .field("spill_dir", &self.spill_dir)
            .field("extensions", &self.extensions.len())
            .finish()
    }
}

impl SetlBuilder {
    /// The number of worker threads (default: the number of CPUs). Bounding it bounds how many
    /// factories run at once, and so their peak memory (SETL issue 240).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Attaches `value` to the context, one per type; read it back with [`Setl::extension`].
    /// Crates built on the core use it for their settings or shared state (setl-datafusion reads
    /// its engine settings from here). A second value of the same type replaces the first.
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The most bytes of cacheable outputs (types implementing [`Storable`](crate::Storable),
    /// such as setl-arrow's datasets) a pipeline holds in memory. Over it, the outputs needed
    /// furthest in the future are written to spill files and read back when a consumer takes
    /// them; results are the same. Default: no budget, nothing spills.
    ///
    /// # Examples
    ///
    /// ```
    /// let setl = setl_core::Setl::builder().memory_budget(512 << 20).build()?;
    /// assert_eq!(setl.memory_budget(), Some(512 << 20));
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Where pipelines put their spill directories (each pipeline makes its own inside, deleted
    /// with the pipeline, even after a failed run). Default: the system's temporary directory.
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Builds the context.
    ///
    /// # Errors
    ///
    /// `InvalidSetting` when `threads` is 0; `ThreadPool` when the OS refuses the threads.
    pub fn build(self) -> Result<Setl> {
        let threads = match self.threads {
            Some(0) => {
                return Err(ErrorKind::InvalidSetting {
                    setting: "threads",
                    reason: "a pipeline needs at least one thread; use 1 to run factories one at a time".into(),
                }
                .into())
            }
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("setl-worker-{index}"))
            .build()
            .map_err(|source| ErrorKind::ThreadPool { threads, source })?;
        Ok(Setl {
            inner: Arc::new(Inner {
                pool,
                memory_budget: self.memory_budget,
                spill_dir: self.spill_dir,
                extensions: Mutex::new(self.extensions),
            }),
        })
    }
}
