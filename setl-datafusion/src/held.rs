//! The bytes an engine's frames and shared scans hold, as shares given back on drop, and the
//! engine's counts of plan runs and shared reads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes held by materialized frames and shared scans' buffers, now and at peak, and counts of
/// plan runs.
#[derive(Default)]
pub(crate) struct HeldBytes {
    pub(crate) now: AtomicUsize,
    pub(crate) peak: AtomicUsize,
    pub(crate) executions: AtomicU64,
    pub(crate) shared_reads: AtomicU64,
    pub(crate) shared_spilled_bytes: AtomicU64,
    pub(crate) shared_kept: AtomicU64,
}

/// A share of [`HeldBytes`], given back on drop (when the frame's data is released).
pub(crate) struct HeldGuard {
    bytes: usize,
    held: Arc<HeldBytes>,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.held.now.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl HeldBytes {
    /// Counts `bytes` as held until the returned guard drops.
    pub(crate) fn hold(held: &Arc<HeldBytes>, bytes: usize) -> HeldGuard {
        let now = held.now.fetch_add(bytes, Ordering::Relaxed) + bytes;
        held.peak.fetch_max(now, Ordering::Relaxed);
        HeldGuard { bytes, held: held.clone() }
    }
}
