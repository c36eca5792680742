//! The value store between factories: who still needs each output, what it weighs, where it
//! lives (memory or a spill file), and when it goes.
//!
//! The plan says, per output, how many input slots take it. The store hands each taker a share
//! and lets go of the value right after the last one, unless the output is kept. Values whose
//! type implements [`Storable`](crate::Storable) are also weighed: when the bytes held exceed the pipeline's
//! memory budget, those needed furthest in the future (by the plan's order) are written to spill
//! files and read back when a consumer takes them. A [`StorageLevel`] per output (the seed's
//! `persist`) materializes lazy values once, and may keep them on disk only.
//!
//! The store never does I/O under the scheduler's lock: it decides under the lock and returns
//! the work (a spill, a reload, a file to delete) for the worker to do after unlocking.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache::{CacheStats, LazyCounter, StorageLevel, StoreOps};
use crate::delivery::Payload;

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

/// What a store is given, once, for its run.
pub(crate) struct StoreSettings<'a> {
    /// Per output: its factory's name, whether it is kept, and how it is weighed and spilled.
    pub(crate) specs: Arc<[SlotSpec<'a>]>,
    /// Per output: how many input slots take it.
    pub(crate) takers: &'a [usize],
    /// Per output, when there is a memory budget: the plan positions of the input slots taking
    /// it, ascending (see [`Store::pending`]).
    pub(crate) pending: Option<Vec<Vec<usize>>>,
    /// The pipeline inputs, and per input how many slots take it.
    pub(crate) externals: Vec<Payload>,
    pub(crate) external_takers: Vec<usize>,
    pub(crate) budget: Option<u64>,
    /// Where spill files go, if spilling is possible.
    pub(crate) spill_dir: Option<PathBuf>,
    pub(crate) counters: Arc<Counters>,
}

/// Every output of a run, with its takers, weight and place.
pub(crate) struct Store<'a> {
    /// Per output: its factory's name, whether it is kept, and how it is weighed and spilled.
    specs: Arc<[SlotSpec<'a>]>,
    slots: Vec<Slot>,
    /// Per output: the plan positions of the consumers still to take it, ascending, one entry
    /// per input slot, for "needed furthest in the future". Empty when the run has no memory
    /// budget, so that the slots every run walks stay small.
    pending: Vec<Vec<usize>>,
    /// The pipeline inputs until their last taker.
    externals: Vec<Option<Payload>>,
    external_takers_left: Vec<usize>,
    budget: Option<u64>,
    spill_dir: Option<PathBuf>,
    counters: Arc<Counters>,
}

impl<'a> Store<'a> {
    /// A store for one run.
    pub(crate) fn new(settings: StoreSettings<'a>) -> Self {
        let StoreSettings { specs, takers, pending, externals, external_takers, budget, spill_dir, counters } =
            settings;
        let slots = takers.iter().map(|&takers| Slot { held: Held::Empty, takers_left: takers, bytes: 0 }).collect();
        Store {
            specs,
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
    pub(crate) fn take(&mut self, producer: usize, position: usize) -> (Option<Taken>, Option<u64>) {
        let spec = &self.specs[producer];
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
    pub(crate) fn put(&mut self, index: usize, produced: Produced) -> Option<Produced> {
        let slot = &mut self.slots[index];
        if slot.takers_left == 0 && !self.specs[index].keep {
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
    pub(crate) fn plan_spills(&mut self) -> Vec<SpillJob> {
        match (self.budget, &self.spill_dir) {
            (Some(_), Some(_)) => self.plan_spills_over_budget(),
            _ => Vec::new(),
        }
    }

    fn plan_spills_over_budget(&mut self) -> Vec<SpillJob> {
        let specs = &self.specs;
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
            let path = dir.join(spill_file_name(index, specs[index].name, ops.extension()));
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
    pub(crate) fn finish(&mut self) -> Vec<Option<Kept>> {
        self.slots
            .iter_mut()
            .zip(self.specs.iter())
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
