//! The value store between factories: who still needs each output, what it weighs, where it
//! lives (memory or a spill file), and when it goes.
//!
//! The plan says, per output, how many input slots take it. The store hands each taker a share
//! and lets go of the value right after the last one, unless the output is kept. Values whose
//! type implements [`Storable`] are also weighed: when the bytes held exceed the pipeline's
//! memory budget, those needed furthest in the future (by the plan's order) are written to spill
//! files and read back when a consumer takes them. A [`StorageLevel`] per output (the seed's
//! `persist`) materializes lazy values once, and may keep them on disk only.
//!
//! The store never does I/O under the scheduler's lock: it decides under the lock and returns
//! the work (a spill, a reload, a file to delete) for the worker to do after unlocking.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::delivery::Payload;
use crate::error::BoxError;
use crate::factory::Factory;

/// Where a factory's output is kept once produced: Spark's storage levels, as the seed uses them
/// with `persist`.
///
/// Persisting an output (any level) materializes it once, right after its factory's `get`, so
/// that a lazy value (a recipe) runs once for all its consumers instead of once per consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StorageLevel {
    /// Materialized and held in memory; never spilled, even over the memory budget.
    MemoryOnly,
    /// Materialized and held in memory; spilled to disk when the memory budget is exceeded.
    MemoryAndDisk,
    /// Materialized, written to a spill file at once, and read back by each consumer.
    DiskOnly,
}

impl StorageLevel {
    /// The level's name as written in `#[factory(storage = ..)]`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageLevel::MemoryOnly => "memory_only",
            StorageLevel::MemoryAndDisk => "memory_and_disk",
            StorageLevel::DiskOnly => "disk_only",
        }
    }
}

impl fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload type the store can weigh, spill to a file and read back, and (for lazy values)
/// materialize. setl-arrow implements it for its datasets (spilled as Arrow IPC files).
///
/// A factory whose `Output` implements it gets this automatically: `#[factory]` detects it at
/// compile time. Outputs of other types are still released after their last consumer, but weigh
/// nothing and never spill.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use setl_core::{BoxError, Storable};
///
/// struct Blob(Vec<u8>);
///
/// impl Storable for Blob {
///     fn byte_size(&self) -> usize { self.0.len() }
///     fn spill(&self, path: &Path) -> Result<(), BoxError> { Ok(std::fs::write(path, &self.0)?) }
///     fn reload(path: &Path) -> Result<Self, BoxError> { Ok(Blob(std::fs::read(path)?)) }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached by setl: it does not implement `Storable`",
    label = "not storable",
    note = "storage levels and spilling need the output type to implement `setl_core::Storable` (setl-arrow's datasets do)"
)]
pub trait Storable: Send + Sync + Sized + 'static {
    /// The extension of this type's spill files, without the dot.
    const FILE_EXTENSION: &'static str = "spill";

    /// The bytes the value holds in memory. A lazy value not yet materialized weighs what its
    /// recipe holds (usually nothing).
    fn byte_size(&self) -> usize;

    /// Writes the value to `path` (a new file in the pipeline's spill directory).
    ///
    /// # Errors
    ///
    /// Any I/O or encoding error; the store then keeps the value in memory.
    fn spill(&self, path: &Path) -> Result<(), BoxError>;

    /// Reads back a value written by [`spill`](Self::spill).
    ///
    /// # Errors
    ///
    /// Any I/O or decoding error; the consumer that needed the value fails with it.
    fn reload(path: &Path) -> Result<Self, BoxError>;

    /// For a lazy value: runs its recipe and returns the materialized value, which consumers then
    /// share. `None` (the default) means the value is already data.
    ///
    /// # Errors
    ///
    /// The recipe's error; the producing factory fails with it.
    fn materialize(&self) -> Result<Option<Self>, BoxError> {
        Ok(None)
    }

    /// For a lazy value: the counter of its recipe's runs, summed into the cache statistics.
    fn lazy_counter(&self) -> Option<LazyCounter> {
        None
    }
}

/// Counts how many times a lazy value's recipe ran. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct LazyCounter(Arc<AtomicU64>);

impl LazyCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one run of the recipe.
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The runs recorded so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn same(&self, other: &LazyCounter) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The type-erased [`Storable`] operations of one output type, found at compile time by
/// `#[factory]` and kept in the factory's `Signature`.
#[derive(Clone, Copy)]
pub struct StoreOps {
    type_name: &'static str,
    extension: &'static str,
    byte_size: fn(&(dyn Any + Send + Sync)) -> usize,
    spill: fn(&(dyn Any + Send + Sync), &Path) -> Result<(), BoxError>,
    reload: fn(&Path) -> Result<Payload, BoxError>,
    materialize: fn(&(dyn Any + Send + Sync)) -> Result<Option<Payload>, BoxError>,
    lazy_counter: fn(&(dyn Any + Send + Sync)) -> Option<LazyCounter>,
}

impl StoreOps {
    /// The operations of `T`.
    pub fn of<T: Storable>() -> Self {
        StoreOps {
            type_name: std::any::type_name::<T>(),
            extension: T::FILE_EXTENSION,
            byte_size: |value| value.downcast_ref::<T>().map_or(0, T::byte_size),
            spill: |value, path| match value.downcast_ref::<T>() {
                Some(value) => value.spill(path),
                None => Err(wrong_type::<T>()),
            },
            reload: |path| T::reload(path).map(|value| Arc::new(value) as Payload),
            materialize: |value| match value.downcast_ref::<T>() {
                Some(value) => Ok(value.materialize()?.map(|value| Arc::new(value) as Payload)),
                None => Err(wrong_type::<T>()),
            },
            lazy_counter: |value| value.downcast_ref::<T>().and_then(T::lazy_counter),
        }
    }

    /// The name of the type these operations work on.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    pub(crate) fn extension(&self) -> &'static str {
        self.extension
    }

    /// The bytes `value` holds, as its `Storable::byte_size` says (0 when it is another type).
    /// Reports use it to size outputs.
    pub fn byte_size(&self, value: &Payload) -> u64 {
        (self.byte_size)(&**value) as u64
    }

    pub(crate) fn spill(&self, value: &Payload, path: &Path) -> Result<(), BoxError> {
        (self.spill)(&**value, path)
    }

    pub(crate) fn reload(&self, path: &Path) -> Result<Payload, BoxError> {
        (self.reload)(path)
    }

    pub(crate) fn materialize(&self, value: &Payload) -> Result<Option<Payload>, BoxError> {
        (self.materialize)(&**value)
    }

    pub(crate) fn lazy_counter(&self, value: &Payload) -> Option<LazyCounter> {
        (self.lazy_counter)(&**value)
    }
}

fn wrong_type<T>() -> BoxError {
    format!("the store handed a value of another type to the operations of `{}` (a bug)", std::any::type_name::<T>())
        .into()
}

impl fmt::Debug for StoreOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOps").field("type", &self.type_name).finish_non_exhaustive()
    }
}

/// Gives the [`StoreOps`] of factory `F`'s output when `F` is a factory whose output is
/// [`Storable`], and `None` otherwise, chosen at compile time by auto-ref method resolution (no
/// specialization needed), like `DefaultProbe`. Probing the factory rather than its output type
/// keeps a struct without `impl Factory` down to the one error `Signature::__new` reports.
#[doc(hidden)]
pub struct StorableProbe<F>(PhantomData<fn() -> F>);

impl<F> StorableProbe<F> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        StorableProbe(PhantomData)
    }
}

impl<F> Default for StorableProbe<F> {
    fn default() -> Self {
        Self::new()
    }
}

#[doc(hidden)]
pub trait ViaStorable {
    fn store_ops(&self) -> Option<StoreOps>;
}

impl<F: Factory> ViaStorable for &StorableProbe<F>
where
    F::Output: Storable,
{
    fn store_ops(&self) -> Option<StoreOps> {
        Some(StoreOps::of::<F::Output>())
    }
}

#[doc(hidden)]
pub trait ViaNotStorable {
    fn store_ops(&self) -> Option<StoreOps>;
}

impl<F> ViaNotStorable for StorableProbe<F> {
    fn store_ops(&self) -> Option<StoreOps> {
        None
    }
}

/// Fails to compile, on the `storage = ..` key, when the factory's output is not [`Storable`].
#[doc(hidden)]
pub fn assert_storable<T: Storable>() {}

/// What the cache did during a run. Bytes count only values whose type is [`Storable`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// The memory budget the run had, if any.
    pub budget: Option<u64>,
    /// Bytes held in memory at the end of the run (kept outputs and results).
    pub bytes_held: u64,
    /// The most bytes held at once: values in the store, plus values a running consumer holds
    /// after the store let go of them.
    pub peak_bytes: u64,
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
    /// Spill files deleted during the run (after their last consumer); the rest go with the
    /// pipeline.
    pub spill_files_deleted: u64,
    /// Values read back from spill files.
    pub reloads: u64,
    /// Bytes read back from spill files.
    pub reloaded_bytes: u64,
    /// Outputs the store let go of after their last consumer.
    pub releases: u64,
    /// Outputs materialized once because they were persisted.
    pub materializations: u64,
    /// Runs of lazy recipes, over every lazy output.
    pub lazy_runs: u64,
    /// Runs of lazy recipes beyond the first, per lazy output: work a cache would have saved.
    pub lazy_recomputations: u64,
}

impl fmt::Display for CacheStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Cache statistics")?;
        match self.budget {
            Some(budget) => writeln!(f, "memory budget: {}", Bytes(budget))?,
            None => writeln!(f, "memory budget: none")?,
        }
        writeln!(f, "bytes held at end: {}", Bytes(self.bytes_held))?;
        writeln!(f, "peak bytes held: {}", Bytes(self.peak_bytes))?;
        writeln!(
            f,
            "spilled: {} in {} files ({} deleted during the run)",
            Bytes(self.spilled_bytes),
            self.spill_files,
            self.spill_files_deleted
        )?;
        writeln!(f, "reloads: {} ({})", self.reloads, Bytes(self.reloaded_bytes))?;
        writeln!(f, "releases: {}", self.releases)?;
        writeln!(f, "materializations: {}", self.materializations)?;
        write!(f, "lazy recipe runs: {} ({} recomputations)", self.lazy_runs, self.lazy_recomputations)
    }
}

/// A byte count printed in binary units.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// The run's cache counters, updated without the scheduler's lock.
#[derive(Default)]
pub(crate) struct Counters {
    held: AtomicU64,
    peak: AtomicU64,
    spilled_bytes: AtomicU64,
    spill_files: AtomicU64,
    spill_files_deleted: AtomicU64,
    reloads: AtomicU64,
    reloaded_bytes: AtomicU64,
    releases: AtomicU64,
    materializations: AtomicU64,
    lazy: Mutex<Vec<LazyCounter>>,
}

impl Counters {
    pub(crate) fn add_held(&self, bytes: u64) {
        if bytes > 0 {
            let now = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn sub_held(&self, bytes: u64) {
        if bytes > 0 {
            let before = self.held.fetch_sub(bytes, Ordering::Relaxed);
            debug_assert!(before >= bytes, "the store released more bytes than it held");
        }
    }

    fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub(crate) fn spilled(&self, bytes: u64) {
        self.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.spill_files.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reloaded(&self, bytes: u64) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.reloaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn released(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn materialized(&self) {
        self.materializations.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers a lazy value's counter, once per recipe.
    pub(crate) fn track_lazy(&self, counter: LazyCounter) {
        let mut lazy = self.lazy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !lazy.iter().any(|known| known.same(&counter)) {
            lazy.push(counter);
        }
    }

    pub(crate) fn snapshot(&self, budget: Option<u64>) -> CacheStats {
        let lazy = self.lazy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        CacheStats {
            budget,
            bytes_held: self.held(),
            peak_bytes: self.peak.load(Ordering::Relaxed),
            spilled_bytes: self.spilled_bytes.load(Ordering::Relaxed),
            spill_files: self.spill_files.load(Ordering::Relaxed),
            spill_files_deleted: self.spill_files_deleted.load(Ordering::Relaxed),
            reloads: self.reloads.load(Ordering::Relaxed),
            reloaded_bytes: self.reloaded_bytes.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
            materializations: self.materializations.load(Ordering::Relaxed),
            lazy_runs: lazy.iter().map(LazyCounter::count).sum(),
            lazy_recomputations: lazy.iter().map(|counter| counter.count().saturating_sub(1)).sum(),
        }
    }
}

/// A spill file; deleted when the last handle goes (its last consumer, or the pipeline).
pub(crate) struct SpillFile {
    path: PathBuf,
    counters: Arc<Counters>,
}

impl SpillFile {
    pub(crate) fn new(path: PathBuf, counters: Arc<Counters>) -> Self {
        SpillFile { path, counters }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                self.counters.spill_files_deleted.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %self.path.display(), "could not delete a spill file: {error}"),
        }
    }
}

/// Where a stored value is.
enum Held {
    /// Not produced yet, or let go of.
    Empty,
    /// In memory.
    Memory(Payload),
    /// In memory while a worker writes it to a spill file; takers still get the memory copy.
    Spilling(Payload),
    /// In a spill file only.
    Disk(Arc<SpillFile>),
}

/// One output in the store.
struct Slot {
    held: Held,
    /// Input slots still to take the output.
    takers_left: usize,
    /// The value's weight while in memory (0 when not storable).
    bytes: u64,
}

/// What a consumer receives for one input slot. Two words: the scheduler moves one per input
/// slot of every job, and reading back from disk is the rare case.
pub(crate) enum Taken {
    /// The value itself, shared.
    Value(Payload),
    /// The value is in a spill file: read it back (outside the lock).
    Reload(Box<Reload>),
}

/// A value to read back from its spill file.
pub(crate) struct Reload {
    /// The producer's index.
    pub(crate) producer: usize,
    /// The file; when this is the last handle, dropping it deletes the file.
    pub(crate) file: Arc<SpillFile>,
    /// How to read it.
    pub(crate) ops: StoreOps,
}

impl Taken {
    fn reload(producer: usize, file: Arc<SpillFile>, spec: &SlotSpec<'_>) -> Self {
        Taken::Reload(Box::new(Reload { producer, file, ops: *spec.ops.expect("only storable values reach the disk") }))
    }
}

/// A value to write to a spill file, outside the lock.
pub(crate) struct SpillJob {
    pub(crate) producer: usize,
    pub(crate) payload: Payload,
    pub(crate) path: PathBuf,
    pub(crate) ops: StoreOps,
    pub(crate) bytes: u64,
}

/// A finished factory's output, prepared outside the lock.
pub(crate) struct Produced {
    /// The value, unless it went straight to disk.
    pub(crate) payload: Option<Payload>,
    /// The spill file of a `DiskOnly` output.
    pub(crate) file: Option<Arc<SpillFile>>,
    /// Its weight in memory.
    pub(crate) bytes: u64,
}

/// What a finished run leaves of one output.
pub(crate) enum Kept {
    /// In memory.
    Memory(Payload),
    /// In a spill file, read back on demand with its factory's `Signature::store_ops`.
    Disk(Arc<SpillFile>),
}

/// The per-output settings the pipeline computes before a run. The store reads them from the
/// run's table rather than copying them into each slot, so a slot stays small.
#[derive(Clone, Copy)]
pub(crate) struct SlotSpec<'a> {
    /// The factory's name, for messages and spill file names.
    pub(crate) name: &'a str,
    pub(crate) keep: bool,
    pub(crate) ops: Option<&'a StoreOps>,
    pub(crate) level: Option<StorageLevel>,
}

/// Every output of a run, with its takers, weight and place. Methods that need an output's
/// settings take the run's `SlotSpec` table.
pub(crate) struct Store {
    slots: Vec<Slot>,
    /// Per output: the plan positions of the consumers still to take it, ascending, one entry
    /// per input slot, for "needed furthest in the future". Empty when the run has no memory
    /// budget, so that the slots every run walks stay small.
    pending: Vec<Vec<usize>>,
    externals: Vec<Option<Payload>>,
    external_takers_left: Vec<usize>,
    budget: Option<u64>,
    spill_dir: Option<PathBuf>,
    counters: Arc<Counters>,
}

impl Store {
    /// A store for one run. `takers[i]` counts the input slots taking output `i`, and, when
    /// there is a budget, `pending[i]` lists their plan positions in ascending order;
    /// `external_takers[j]` counts the slots taking pipeline input `j`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        takers: &[usize],
        pending: Option<Vec<Vec<usize>>>,
        externals: Vec<Payload>,
        external_takers: Vec<usize>,
        budget: Option<u64>,
        spill_dir: Option<PathBuf>,
        counters: Arc<Counters>,
    ) -> Self {
        let slots = takers.iter().map(|&takers| Slot { held: Held::Empty, takers_left: takers, bytes: 0 }).collect();
        Store {
            slots,
            pending: pending.unwrap_or_default(),
            externals: externals.into_iter().map(Some).collect(),
            external_takers_left: external_takers,
            budget,
            spill_dir,
            counters,
        }
    }

    /// Takes one share of `producer`'s output for a consumer at plan position `position`.
    /// Returns what the consumer gets, and the bytes it now holds alone (the store let go).
    pub(crate) fn take(
        &mut self,
        specs: &[SlotSpec<'_>],
        producer: usize,
        position: usize,
    ) -> (Option<Taken>, Option<u64>) {
        let spec = &specs[producer];
        let slot = &mut self.slots[producer];
        debug_assert!(slot.takers_left > 0, "more takes than the plan counted");
        slot.takers_left = slot.takers_left.saturating_sub(1);
        if let Some(pending) = self.pending.get_mut(producer) {
            if let Ok(at) = pending.binary_search(&position) {
                pending.remove(at);
            }
        }
        let last = slot.takers_left == 0 && !spec.keep;
        if !last {
            let taken = match &slot.held {
                Held::Empty => None,
                Held::Memory(payload) | Held::Spilling(payload) => Some(Taken::Value(payload.clone())),
                Held::Disk(file) => Some(Taken::reload(producer, file.clone(), spec)),
            };
            return (taken, None);
        }
        self.counters.released();
        match std::mem::replace(&mut slot.held, Held::Empty) {
            Held::Empty => (None, None),
            // The bytes stay counted as held until the consumer drops its share.
            Held::Memory(payload) | Held::Spilling(payload) => (Some(Taken::Value(payload)), Some(slot.bytes)),
            Held::Disk(file) => (Some(Taken::reload(producer, file, spec)), Some(0)),
        }
    }

    /// Takes one share of pipeline input `input`; the store lets go of it after the last taker.
    pub(crate) fn take_external(&mut self, input: usize) -> Option<Payload> {
        let left = &mut self.external_takers_left[input];
        debug_assert!(*left > 0, "more takes than the plan counted");
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.externals[input].take()
        } else {
            self.externals[input].clone()
        }
    }

    /// Stores a finished factory's output. Returns it back when nobody will take it, to drop
    /// outside the lock.
    pub(crate) fn put(&mut self, specs: &[SlotSpec<'_>], index: usize, produced: Produced) -> Option<Produced> {
        let slot = &mut self.slots[index];
        if slot.takers_left == 0 && !specs[index].keep {
            self.counters.released();
            if produced.payload.is_some() {
                self.counters.sub_held(produced.bytes);
            }
            return Some(produced);
        }
        slot.bytes = produced.bytes;
        // A value in memory was counted as held when its factory made it.
        slot.held = match (produced.file, produced.payload) {
            (Some(file), _) => Held::Disk(file),
            (None, Some(payload)) => Held::Memory(payload),
            (None, None) => Held::Empty,
        };
        None
    }

    /// Picks the values to spill when the bytes held exceed the budget: those whose next
    /// consumer comes latest in the plan (kept values nobody will take first), and marks them.
    /// Called by every worker round; inlined so that a run without a budget pays one test.
    #[inline]
    pub(crate) fn plan_spills(&mut self, specs: &[SlotSpec<'_>]) -> Vec<SpillJob> {
        match (self.budget, &self.spill_dir) {
            (Some(_), Some(_)) => self.plan_spills_over_budget(specs),
            _ => Vec::new(),
        }
    }

    fn plan_spills_over_budget(&mut self, specs: &[SlotSpec<'_>]) -> Vec<SpillJob> {
        let (Some(budget), Some(dir)) = (self.budget, &self.spill_dir) else { return Vec::new() };
        let spilling: u64 =
            self.slots.iter().filter(|slot| matches!(slot.held, Held::Spilling(_))).map(|slot| slot.bytes).sum();
        let mut excess = self.counters.held().saturating_sub(spilling).saturating_sub(budget);
        if excess == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<usize> = (0..self.slots.len())
            .filter(|&index| {
                let (slot, spec) = (&self.slots[index], &specs[index]);
                matches!(slot.held, Held::Memory(_))
                    && spec.ops.is_some()
                    && slot.bytes > 0
                    && spec.level != Some(StorageLevel::MemoryOnly)
            })
            .collect();
        let next_use =
            |index: usize| self.pending.get(index).and_then(|pending| pending.first()).copied().unwrap_or(usize::MAX);
        candidates.sort_by(|&a, &b| next_use(b).cmp(&next_use(a)).then(self.slots[b].bytes.cmp(&self.slots[a].bytes)));
        let mut jobs = Vec::new();
        for index in candidates {
            if excess == 0 {
                break;
            }
            let slot = &mut self.slots[index];
            let Held::Memory(payload) = std::mem::replace(&mut slot.held, Held::Empty) else { continue };
            let ops = specs[index].ops.expect("candidates are storable");
            let path = dir.join(spill_file_name(index, specs[index].name, ops.extension));
            jobs.push(SpillJob { producer: index, payload: payload.clone(), path, ops: *ops, bytes: slot.bytes });
            slot.held = Held::Spilling(payload);
            excess = excess.saturating_sub(slot.bytes);
        }
        jobs
    }

    /// Records a spill's result: on success the value leaves memory (unless its last consumer
    /// took it meanwhile); on failure it stays in memory. Returns a file to drop (delete) outside
    /// the lock when the value was released while being written.
    pub(crate) fn finish_spill(&mut self, job: &SpillJob, written: bool) -> (Option<Arc<SpillFile>>, bool) {
        let slot = &mut self.slots[job.producer];
        let file = written.then(|| Arc::new(SpillFile::new(job.path.clone(), self.counters.clone())));
        if written {
            self.counters.spilled(job.bytes);
        }
        match std::mem::replace(&mut slot.held, Held::Empty) {
            Held::Spilling(payload) => match file {
                Some(file) => {
                    self.counters.sub_held(slot.bytes);
                    slot.held = Held::Disk(file);
                    (None, true)
                }
                None => {
                    slot.held = Held::Memory(payload);
                    (None, false)
                }
            },
            // Released while being written: the file is of no use.
            other => {
                slot.held = other;
                (file, false)
            }
        }
    }

    /// What the run leaves behind: per factory, its output if still held.
    pub(crate) fn finish(&mut self, specs: &[SlotSpec<'_>]) -> Vec<Option<Kept>> {
        self.slots
            .iter_mut()
            .zip(specs)
            .map(|(slot, spec)| match std::mem::replace(&mut slot.held, Held::Empty) {
                Held::Empty => None,
                Held::Memory(payload) | Held::Spilling(payload) => Some(Kept::Memory(payload)),
                Held::Disk(file) => spec.ops.map(|_| Kept::Disk(file)),
            })
            .collect()
    }
}

/// The name of output `index`'s spill file.
pub(crate) fn spill_file_name(index: usize, name: &str, extension: &str) -> String {
    format!("{index:04}-{name}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_in_binary_units() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(100 * 1024 * 1024).to_string(), "100.0 MiB");
    }

    struct Plain;

    struct Weighed(usize);

    impl Storable for Weighed {
        fn byte_size(&self) -> usize {
            self.0
        }
        fn spill(&self, _: &Path) -> Result<(), BoxError> {
            Ok(())
        }
        fn reload(_: &Path) -> Result<Self, BoxError> {
            Ok(Weighed(0))
        }
    }

    #[test]
    fn the_operations_work_on_their_own_type_only() {
        let ops = StoreOps::of::<Weighed>();
        let payload: Payload = Arc::new(Weighed(42));
        assert_eq!(ops.byte_size(&payload), 42);
        let plain: Payload = Arc::new(Plain);
        assert_eq!(ops.byte_size(&plain), 0);
        assert!(ops.spill(&plain, Path::new("unused")).is_err());
        assert!(ops.type_name().ends_with("Weighed"));
    }
}
