//! Runs the overhead bench's 10,000-factory pipelines many times with nothing else in the
//! process, for a profiler: `perf record -g target/release/examples/run_loop fan_out 40`.
//!
//! Arguments: `chain` or `fan_out`, the number of runs (default 40) and of factories (default
//! 10,000). `VALIDATE=1` validates instead of running, `BENCHMARK=1` runs with benchmarks on,
//! `SETL_BENCH_THREADS` sets the pool size (default 2). Prints per-factory figures and a
//! calibration of the machine, then the median of a whole cycle (build, run, drop): a change that
//! only moves work out of `run()` (into the drop, or into the allocator's next call) shows there.
//! `--features mimalloc` runs it with mimalloc as the global allocator (see `setl_benches`).
//! The calibration runs after the pipelines, so they see the heap of a process that has freed no
//! large buffer yet: glibc's malloc then gives pages back after each run and the next one faults
//! them in again (about 500 per 10,000 factories, `perf stat -e page-faults`). The overhead bench
//! calibrates first; a process that handles data is in that state too.

use std::time::{Duration, Instant};

use setl_benches::{pipeline, setl, Shape};

fn main() -> setl_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let shape_name = args.next().unwrap_or_else(|| "chain".to_owned());
    let runs: usize = args.next().and_then(|runs| runs.parse().ok()).unwrap_or(40).max(1);
    let count: usize = args.next().and_then(|count| count.parse().ok()).unwrap_or(10_000).clamp(1, 10_000);
    let shape = match shape_name.as_str() {
        "chain" => Shape::chain(count),
        "fan_out" => Shape::fan_out(count),
        other => {
            eprintln!("unknown shape `{other}`: use `chain` or `fan_out`");
            std::process::exit(2);
        }
    };
    let validate_only = std::env::var_os("VALIDATE").is_some();
    let benchmark = std::env::var_os("BENCHMARK").is_some();
    let setl = setl();
    let factories = shape.inputs.len() as f64;
    let mut timings = Vec::with_capacity(runs);
    let mut cycles = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cycle = Instant::now();
        let mut pipeline = pipeline(&setl, &shape, None);
        pipeline.benchmark(benchmark);
        let started = Instant::now();
        if validate_only {
            pipeline.validate()?;
        } else {
            pipeline.run()?;
        }
        timings.push(started.elapsed());
        drop(pipeline);
        cycles.push(cycle.elapsed());
    }
    cycles.sort();
    timings.sort();
    let per_factory = |elapsed: Duration| elapsed.as_nanos() as f64 / factories;
    println!(
        "{} {shape_name}: median {:.0} ns, fastest {:.0} ns per factory over {runs} runs; {}",
        if validate_only { "validate" } else { "run" },
        per_factory(timings[runs / 2]),
        per_factory(timings[0]),
        setl_benches::calibration(),
    );
    println!(
        "build, {} and drop: median {:.0} ns per factory",
        if validate_only { "validate" } else { "run" },
        per_factory(cycles[runs / 2])
    );
    Ok(())
}
