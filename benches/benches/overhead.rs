//! Scheduler and validation overhead per factory, and the cost of benchmark instrumentation.
//!
//! Groups: `run` (chain of 10,000 trivial factories; fan-out 1 -> 10,000), `validate` (the same
//! graphs), `instrumentation/trivial` and `instrumentation/working` (chains of trivial
//! factories and of ~20 µs factories, run with benchmarks on and off). The nodes are instances of
//! one `#[factory]` type told apart by their ids (see `setl_benches`).
//!
//! `cargo bench -p setl-benches --bench overhead`
//!
//! Targets (issue 2): run at most 1 µs per factory; validation at most 1 µs per factory;
//! instrumentation on vs off within noise. Each target is printed beside the measured figure.
//! Building and dropping a pipeline is not part of any timing (criterion's `iter_batched_ref`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use setl_benches::{pipeline, setl, Shape};
use setl_core::prelude::*;

const COUNT: usize = 10_000;
/// The chain of factories that do some work, for instrumentation.
const WORKING_COUNT: usize = 1_000;

/// The median and the fastest of `runs` timings of `measure`, each given a fresh pipeline from
/// `build`. On a shared machine other work only ever adds time, so the fastest run is the
/// closest to the cost itself; both are printed.
fn timings(
    runs: usize,
    mut build: impl FnMut() -> Pipeline,
    mut measure: impl FnMut(&mut Pipeline),
) -> (Duration, Duration) {
    let mut timings: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut pipeline = build();
            let started = Instant::now();
            measure(&mut pipeline);
            started.elapsed()
        })
        .collect();
    timings.sort();
    (timings[runs / 2], timings[0])
}

fn print_per_factory(what: &str, factories: usize, (median, fastest): (Duration, Duration), target_ns: f64) {
    let per_factory = |elapsed: Duration| elapsed.as_nanos() as f64 / factories as f64;
    println!(
        "{what}: median {:.0} ns, fastest {:.0} ns per factory (target <= {target_ns:.0} ns, ratio {:.2} / {:.2})",
        per_factory(median),
        per_factory(fastest),
        per_factory(median) / target_ns,
        per_factory(fastest) / target_ns,
    );
}

fn run_and_validate(c: &mut Criterion) {
    println!(
        "calibration: {}; run and validation move with both (a few thousand instructions and some cache misses per factory)",
        setl_benches::calibration()
    );
    let setl = setl();
    for (name, shape) in [("chain", Shape::chain(COUNT)), ("fan_out", Shape::fan_out(COUNT))] {
        let factories = shape.inputs.len();
        let run = timings(
            15,
            || pipeline(&setl, &shape, None),
            |p| {
                p.run().expect("runs");
            },
        );
        print_per_factory(&format!("run/{name}"), factories, run, 1000.0);
        let validate = timings(15, || pipeline(&setl, &shape, None), |p| p.validate().expect("valid"));
        print_per_factory(&format!("validate/{name}"), factories, validate, 1000.0);

        let mut group = c.benchmark_group("run");
        group.throughput(Throughput::Elements(factories as u64)).sample_size(20);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched_ref(
                || pipeline(&setl, &shape, None),
                |p| {
                    p.run().expect("runs");
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
        let mut group = c.benchmark_group("validate");
        group.throughput(Throughput::Elements(factories as u64)).sample_size(20);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched_ref(
                || pipeline(&setl, &shape, None),
                |p| p.validate().expect("valid"),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

/// Medians of `runs` alternating timings of `run()` with benchmarks off and on, so that load
/// drifting on a shared machine hits both alike. Returns (off, on).
fn paired_medians(runs: usize, setl: &Setl, shape: &Shape) -> (Duration, Duration) {
    let mut timings = [Vec::with_capacity(runs), Vec::with_capacity(runs)];
    for _ in 0..runs {
        for on in [false, true] {
            let mut pipeline = pipeline(setl, shape, None);
            pipeline.benchmark(on);
            let started = Instant::now();
            pipeline.run().expect("runs");
            timings[usize::from(on)].push(started.elapsed());
        }
    }
    let [mut off, mut on] = timings;
    off.sort();
    on.sort();
    (off[runs / 2], on[runs / 2])
}

fn instrumentation(c: &mut Criterion) {
    let setl = setl();
    // Trivial factories show the absolute cost; factories doing ~20 µs of work show what it
    // means for factories that do anything.
    let mut working = Shape::chain(WORKING_COUNT);
    working.work = vec![300; WORKING_COUNT];
    for (name, shape, count) in [("trivial", Shape::chain(COUNT), COUNT), ("working", working, WORKING_COUNT)] {
        let (off, on) = paired_medians(15, &setl, &shape);
        println!(
            "instrumentation/{name}: benchmarks on {:.0} ns vs off {:.0} ns per factory \
             (target: within noise; ratio {:.3}, +{:.0} ns per factory)",
            on.as_nanos() as f64 / count as f64,
            off.as_nanos() as f64 / count as f64,
            on.as_secs_f64() / off.as_secs_f64(),
            (on.as_nanos() as f64 - off.as_nanos() as f64) / count as f64,
        );
        let mut group = c.benchmark_group(format!("instrumentation/{name}"));
        group.throughput(Throughput::Elements(count as u64)).sample_size(20);
        for on in [false, true] {
            group.bench_function(BenchmarkId::from_parameter(if on { "on" } else { "off" }), |b| {
                b.iter_batched_ref(
                    || {
                        let mut pipeline = pipeline(&setl, &shape, None);
                        pipeline.benchmark(on);
                        pipeline
                    },
                    |p| {
                        p.run().expect("runs");
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, run_and_validate, instrumentation);
criterion_main!(benches);
