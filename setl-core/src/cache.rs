//! The cache's public vocabulary: what a value must implement to be weighed, spilled and
//! materialized ([`Storable`]), where an output is kept ([`StorageLevel`]), and what the cache
//! did during a run ([`CacheStats`]). The store that acts on them is the runtime's.

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::delivery::Payload;
use crate::error::BoxError;

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

    pub(crate) fn same(&self, other: &LazyCounter) -> bool {
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
