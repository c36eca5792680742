//! The memory a pipeline's instance ids take comes back when the pipeline goes: a long-lived
//! service that builds pipelines with ever new ids all day holds only the pipelines it has.
//!
//! Measured as the bytes live on the heap, counted by this binary's global allocator: exact and
//! independent of the machine's load, unlike the process's resident size. The file holds one
//! test, so no other test allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use setl_core::prelude::*;

/// The system allocator, counting the bytes it has handed out and not got back.
struct Counting;

/// Bytes allocated and not yet freed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

fn signed(size: usize) -> isize {
    isize::try_from(size).expect("an allocation fits in isize")
}

#[expect(unsafe_code, reason = "a global allocator implements the unsafe `GlobalAlloc` trait")]
// SAFETY: every call is passed on to `System` with the caller's arguments unchanged, so the
// caller's guarantees are `System`'s; the counting only reads the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller guarantees for `GlobalAlloc::alloc`.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(signed(layout.size()), Ordering::SeqCst);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller guarantees for `GlobalAlloc::alloc_zeroed`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(signed(layout.size()), Ordering::SeqCst);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(signed(layout.size()), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as the caller guarantees for `GlobalAlloc::realloc`.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_add(signed(new_size) - signed(layout.size()), Ordering::SeqCst);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[factory]
#[derive(Default)]
struct Source {
    value: u64,
}

impl Factory for Source {
    type Output = u64;
    fn get(&self) -> u64 {
        self.value
    }
}

#[factory]
#[derive(Default)]
struct Double {
    #[delivery(producer = Source)]
    source: Delivery<u64>,
}

impl Factory for Double {
    type Output = u64;
    fn get(&self) -> u64 {
        self.source.get() * 2
    }
}

/// A pipeline of `count` sources and as many consumers, each instance with ids no other round
/// uses: `Source[r{round}-s{index}]` feeding `Double[r{round}-d{index}]`.
fn pipeline(setl: &Setl, round: usize, count: usize) -> Pipeline {
    let mut sources = Stage::new();
    let mut doubles = Stage::new();
    for index in 0..count {
        let source = format!("r{round}-s{index}");
        sources = sources.add_factory(Source { value: index as u64 }.with_id(&source));
        doubles = doubles
            .add_factory(Double::default().with_id(&format!("r{round}-d{index}")).with_input_id("source", &source));
    }
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage(sources).add_stage(doubles);
    pipeline
}

/// Builds, runs and drops one round's pipeline; returns the bytes it held once built.
fn build_run_and_drop(setl: &Setl, round: usize, count: usize) -> isize {
    let before = live_bytes();
    let mut pipeline = pipeline(setl, round, count);
    let held = live_bytes() - before;
    pipeline.run().unwrap();
    assert_eq!(
        *pipeline.output_with_id::<Double>(&format!("r{round}-d{}", count - 1)).unwrap(),
        2 * (count as u64 - 1)
    );
    drop(pipeline);
    held
}

#[test]
fn the_heap_returns_to_its_baseline_after_pipelines_with_ever_new_ids_are_dropped() {
    const COUNT: usize = 2_000;
    const ROUNDS: usize = 50;
    // The bound on what may stay: far below one round's pipeline, and independent of the rounds.
    const SLACK: isize = 64 * 1024;

    let setl = Setl::builder().threads(2).build().unwrap();
    // Warm-up rounds of full size, so that whatever is made once per process (the types' own
    // signatures and keys, the pool's threads, the tables' first room) is in the baseline.
    for round in 0..3 {
        build_run_and_drop(&setl, round, COUNT);
    }
    let baseline = live_bytes();
    let entries_baseline = setl_core::__private::__interned_entries();
    let mut held = 0;
    for round in 3..3 + ROUNDS {
        held = held.max(build_run_and_drop(&setl, round, COUNT));
    }
    let after = live_bytes();
    let entries_after = setl_core::__private::__interned_entries();
    println!(
        "live heap: baseline {baseline} B, after {ROUNDS} rounds of {} instances {after} B ({:+} B); \
         one pipeline held {held} B; interned entries {entries_baseline} -> {entries_after}",
        2 * COUNT,
        after - baseline,
    );
    // The measure sees a pipeline: each instance with ids holds its own signature and ids.
    assert!(held > signed(2 * COUNT) * 200, "a pipeline of {} instances held only {held} B", 2 * COUNT);
    assert!(
        after - baseline <= SLACK,
        "the heap grew by {} B over {ROUNDS} dropped pipelines of {} instances each (one held {held} B)",
        after - baseline,
        2 * COUNT,
    );
    assert_eq!(entries_after, entries_baseline, "interned entries grew over the dropped pipelines");
}
