//! Criterion integration: bench a whole pipeline, or one factory (or phase) inside its
//! pipeline, in a few lines.
//!
//! ```no_run
//! use criterion::{criterion_group, criterion_main, Criterion};
//! # use setl_core::prelude::*;
//! # #[factory] #[derive(Default)] struct Numbers;
//! # impl Factory for Numbers { type Output = (); fn get(&self) {} }
//!
//! fn benches(c: &mut Criterion) {
//!     let setl = Setl::builder().threads(2).build().unwrap();
//!     let build = || {
//!         let mut pipeline = setl.new_pipeline();
//!         pipeline.add_stage_from_type::<Numbers>();
//!         pipeline
//!     };
//!     let mut group = c.benchmark_group("numbers");
//!     setl_report::bench::bench_pipeline(&mut group, "pipeline", build);
//!     setl_report::bench::bench_factory(&mut group, "Numbers", "Numbers", build);
//!     group.finish();
//! }
//! criterion_group!(all, benches);
//! criterion_main!(all);
//! ```
//!
//! Building the pipeline is never timed. A factory bench runs the whole pipeline each
//! iteration (so the factory gets its real inputs) and times only that factory, from the
//! event stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup};
use setl_core::{Event, EventKind, Observer, Phase, Pipeline};

/// Benches `build()`'s pipeline: each iteration builds one (not timed) and runs it (timed).
///
/// # Panics
///
/// When a run fails, with the run's error: a bench of a failing pipeline measures nothing.
pub fn bench_pipeline(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut build: impl FnMut() -> Pipeline) {
    group.bench_function(id, |bencher| {
        bencher.iter_batched_ref(
            &mut build,
            |pipeline| {
                if let Err(error) = pipeline.run() {
                    panic!("bench `{id}`: the pipeline failed: {error}");
                }
            },
            BatchSize::PerIteration,
        )
    });
}

/// Benches factory `factory` of `build()`'s pipeline: its wall time from start to hand-off.
///
/// # Panics
///
/// When a run fails, or `factory` did not run in it.
pub fn bench_factory(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    factory: &str,
    build: impl FnMut() -> Pipeline,
) {
    bench_timed(group, id, factory, None, build);
}

/// Benches one phase of factory `factory` of `build()`'s pipeline.
///
/// # Panics
///
/// When a run fails, or that phase of `factory` did not run in it.
pub fn bench_phase(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    factory: &str,
    phase: Phase,
    build: impl FnMut() -> Pipeline,
) {
    bench_timed(group, id, factory, Some(phase), build);
}

fn bench_timed(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    factory: &str,
    phase: Option<Phase>,
    mut build: impl FnMut() -> Pipeline,
) {
    group.bench_function(id, |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let stopwatch = Arc::new(Stopwatch { factory: factory.to_owned(), phase, measured: Mutex::new(None) });
                let mut pipeline = build();
                pipeline.observe(stopwatch.clone());
                if let Err(error) = pipeline.run() {
                    panic!("bench `{id}`: the pipeline failed: {error}");
                }
                let measured = *stopwatch.measured.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match measured {
                    Some(elapsed) => total += elapsed,
                    None => panic!(
                        "bench `{id}`: factory `{factory}`{} did not run in the pipeline",
                        phase.map(|phase| format!(" phase {phase}")).unwrap_or_default()
                    ),
                }
            }
            total
        })
    });
}

/// Times one factory, or one of its phases, from the event stream.
struct Stopwatch {
    factory: String,
    phase: Option<Phase>,
    measured: Mutex<Option<Duration>>,
}

impl Observer for Stopwatch {
    fn on_event(&self, event: &Event) {
        let elapsed = match (&event.kind, self.phase) {
            (EventKind::FactoryFinished { factory, elapsed }, None) if factory.name == self.factory => *elapsed,
            (EventKind::PhaseFinished { factory, phase, elapsed, .. }, Some(wanted))
                if factory.name == self.factory && *phase == wanted =>
            {
                *elapsed
            }
            _ => return,
        };
        *self.measured.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(elapsed);
    }
}
