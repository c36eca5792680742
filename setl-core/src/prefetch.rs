//! A cache hint for loops over memory that was last touched long ago (or on another core):
//! factories and signatures of a large pipeline. Starting the load a few steps ahead turns a
//! stall per factory into none; on a chain of 10,000 trivial factories the first touch of each
//! factory was a tenth of `run()`.

/// Asks the CPU to start loading the cache line at `address`. Does nothing else, and nothing
/// at all on targets without a prefetch instruction in their baseline.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T: ?Sized>(address: *const T) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is only a hint: it never faults, whatever the address, and changes no
    // memory. SSE is part of the x86_64 baseline.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>()) }
}

/// Asks the CPU to start loading the cache line at `address` (a no-op on this target).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn prefetch<T: ?Sized>(_address: *const T) {}

/// The cache line size assumed by [`prefetch_value`].
const LINE: usize = 64;

/// Asks the CPU to start loading every cache line of `value`, up to `max_bytes`: a value's
/// fields can sit on a line after the one its address is on.
pub(crate) fn prefetch_value<T: ?Sized>(value: &T, max_bytes: usize) {
    let start = std::ptr::from_ref(value).cast::<u8>();
    let bytes = std::mem::size_of_val(value).min(max_bytes);
    if bytes == 0 {
        return;
    }
    // From the line holding the first byte to the line holding the last one.
    let first_line = start.wrapping_sub(start.addr() % LINE);
    let end = start.wrapping_add(bytes);
    let lines = (end.addr() - first_line.addr()).div_ceil(LINE);
    for line in 0..lines {
        prefetch(first_line.wrapping_add(line * LINE));
    }
}
