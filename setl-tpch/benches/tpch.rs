//! TPC-H queries 1, 3, 5, 6, 10 and 12: the setl-rs pipeline against a hand-written program
//! that calls DataFusion query after query, on the same Parquet files, with the same threads.
//!
//! Groups (`tpch/sf<scale>`):
//! - `handwritten`: plain DataFusion, every query scans its files, results written.
//! - `pipeline_sequential_lazy`: the pipeline, one factory at a time, every query scanning its
//!   files as the hand-written program does (the framework's own overhead).
//! - `pipeline_sequential_shared`: one factory at a time, lineitem/orders/customer read once,
//!   held whole and delivered to every query (`Share::Materialize`).
//! - `pipeline_parallel_shared`: the default: lineitem/orders/customer read once and streamed
//!   to the six queries, which run together (`Share::Stream`; each query planned for its share
//!   of the threads, see `JobConfig::partitions_per_query`).
//! - `pipeline_parallel_materialized`: independent factories at once, the shared tables held
//!   whole (`Share::Materialize`).
//! - `pipeline_parallel_lazy`: independent factories at once, every query scanning its files.
//! - `pipeline_parallel_unmeasured`: the default, with benchmarks off, so nothing is timed and no
//!   lazy plan's work is attributed (every other pipeline variant has benchmarks on, as the job).
//!
//! Targets: `pipeline_sequential_lazy` at most 1.03 x `handwritten`; the parallel shared variant
//! faster; `pipeline_parallel_shared` (attribution on) at most 1.02 x
//! `pipeline_parallel_unmeasured`. Before criterion's samples, every variant runs in `TPCH_ROUNDS` (default 5) rounds,
//! interleaved and in a rotating order, and the bench prints the medians of their wall and CPU
//! times with the ratios to `handwritten`, and their peak memory (resident set, reset before
//! each run; peak bytes held by the pipeline's frames).
//!
//! ```text
//! cargo bench -p setl-tpch --bench tpch                       # scale 0.1, 2 threads
//! TPCH_SCALES=0.1,1 TPCH_THREADS=2 TPCH_ROUNDS=5 cargo bench -p setl-tpch --bench tpch
//! TPCH_FORMAT=csv cargo bench -p setl-tpch --bench tpch        # lineitem, orders from CSV
//! ```
//! Tables are generated once into the build directory's `tmp/tpch-bench-sf<scale>`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use setl_core::Setl;
use setl_datafusion::Engine;
use setl_report::summary;
use setl_tpch::generate::{ensure_tables, TpchFiles};
use setl_tpch::{Format, JobConfig, Share};

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Handwritten,
    SequentialLazy,
    SequentialShared,
    ParallelShared,
    ParallelMaterialized,
    ParallelLazy,
    ParallelUnmeasured,
}

impl Variant {
    const ALL: [Variant; 7] = [
        Variant::Handwritten,
        Variant::SequentialLazy,
        Variant::SequentialShared,
        Variant::ParallelShared,
        Variant::ParallelMaterialized,
        Variant::ParallelLazy,
        Variant::ParallelUnmeasured,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Handwritten => "handwritten",
            Variant::SequentialLazy => "pipeline_sequential_lazy",
            Variant::SequentialShared => "pipeline_sequential_shared",
            Variant::ParallelShared => "pipeline_parallel_shared",
            Variant::ParallelMaterialized => "pipeline_parallel_materialized",
            Variant::ParallelLazy => "pipeline_parallel_lazy",
            Variant::ParallelUnmeasured => "pipeline_parallel_unmeasured",
        }
    }
}

/// Runs one variant once; returns the peak bytes held by the pipeline's frames (0 for the
/// hand-written program, which holds only DataFusion's own buffers).
fn run(variant: Variant, files: &TpchFiles, out: &Path, threads: usize) -> usize {
    let mut config = JobConfig::new(files.scale, &files.dir, out.join(variant.name()), threads);
    config.format = format();
    std::fs::create_dir_all(&config.out).expect("output directory");
    match variant {
        Variant::Handwritten => {
            setl_tpch::handwritten(files, &config).expect("hand-written run");
            return 0;
        }
        Variant::SequentialLazy => {
            config.parallel = false;
            config.share = Share::None;
        }
        Variant::SequentialShared => {
            config.parallel = false;
            config.share = Share::Materialize;
        }
        Variant::ParallelShared | Variant::ParallelUnmeasured => config.share = Share::Stream,
        Variant::ParallelMaterialized => config.share = Share::Materialize,
        Variant::ParallelLazy => config.share = Share::None,
    }
    let setl = Setl::builder().threads(threads).build().expect("context");
    let mut pipeline = setl_tpch::pipeline(&setl, &config).expect("pipeline");
    pipeline.benchmark(variant != Variant::ParallelUnmeasured);
    pipeline.run().expect("pipeline run");
    Engine::of(&setl).expect("engine").peak_held_bytes()
}

struct Measure {
    wall: Duration,
    cpu: Option<Duration>,
    rss: Option<u64>,
    held: u64,
}

fn measure(variant: Variant, files: &TpchFiles, out: &Path, threads: usize) -> Measure {
    let rss_reset = summary::reset_peak_rss();
    let cpu = summary::cpu_time();
    let started = Instant::now();
    let held = run(variant, files, out, threads);
    let wall = started.elapsed();
    let cpu = cpu.zip(summary::cpu_time()).map(|(before, after)| after.saturating_sub(before));
    let rss = if rss_reset { summary::peak_rss() } else { None };
    Measure { wall, cpu, rss, held: held as u64 }
}

fn scales() -> Vec<f64> {
    std::env::var("TPCH_SCALES")
        .unwrap_or_else(|_| "0.1".into())
        .split(',')
        .map(|scale| scale.trim().parse().expect("TPCH_SCALES: comma-separated numbers"))
        .collect()
}

fn rounds() -> usize {
    std::env::var("TPCH_ROUNDS").ok().and_then(|rounds| rounds.parse().ok()).unwrap_or(5).max(1)
}

/// The median of `values` (NaN when there are none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// `TPCH_FORMAT=csv` reads lineitem and orders from their CSV copies, in every variant.
fn format() -> Format {
    match std::env::var("TPCH_FORMAT").as_deref() {
        Ok("csv") => Format::Csv,
        Ok("parquet") | Err(_) => Format::Parquet,
        Ok(other) => panic!("TPCH_FORMAT: `{other}` is neither `parquet` nor `csv`"),
    }
}

fn threads() -> usize {
    std::env::var("TPCH_THREADS").ok().and_then(|threads| threads.parse().ok()).unwrap_or(2)
}

fn bench_tpch(c: &mut Criterion) {
    let threads = threads();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for scale in scales() {
        let files = {
            // Generation uses the current Rayon pool; give it the same number of threads.
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
            pool.install(|| ensure_tables(&tmp.join(format!("tpch-bench-sf{scale}")), scale)).expect("tables")
        };
        let out = tmp.join(format!("tpch-bench-sf{scale}-out"));

        // Rounds of one run of each variant, after a warm-up that brings the files into the
        // page cache. The order rotates from round to round and the medians are compared, so
        // that load from other processes during one stretch of time does not bias one variant.
        run(Variant::Handwritten, &files, &out, threads);
        let rounds = rounds();
        let mut measured: Vec<Vec<Measure>> = Variant::ALL.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for offset in 0..Variant::ALL.len() {
                let index = (round + offset) % Variant::ALL.len();
                measured[index].push(measure(Variant::ALL[index], &files, &out, threads));
            }
        }
        let format = if format() == Format::Csv { "lineitem and orders from CSV" } else { "Parquet" };
        println!("\nTPC-H sf {scale}, {format}, {threads} threads, medians of {rounds} interleaved rounds:");
        println!(
            "{:<28} {:>9} {:>9} {:>11} {:>11} {:>8} {:>8}",
            "variant", "wall s", "cpu s", "peak rss", "peak held", "wall", "cpu"
        );
        let base_wall = median(measured[0].iter().map(|m| m.wall.as_secs_f64()));
        let base_cpu = median(measured[0].iter().filter_map(|m| m.cpu.map(|cpu| cpu.as_secs_f64())));
        for (variant, runs) in Variant::ALL.iter().zip(&measured) {
            let wall = median(runs.iter().map(|m| m.wall.as_secs_f64()));
            let cpu = median(runs.iter().filter_map(|m| m.cpu.map(|cpu| cpu.as_secs_f64())));
            let rss = runs.iter().filter_map(|m| m.rss).max();
            let held = runs.iter().map(|m| m.held).max().unwrap_or(0);
            println!(
                "{:<28} {:>9.3} {:>9} {:>11} {:>11} {:>7.3}x {:>7}",
                variant.name(),
                wall,
                if cpu.is_nan() { "n/a".into() } else { format!("{cpu:.3}") },
                rss.map_or_else(|| "n/a".into(), summary::bytes),
                if *variant == Variant::Handwritten { "-".into() } else { summary::bytes(held) },
                wall / base_wall,
                if cpu.is_nan() { "n/a".into() } else { format!("{:.3}x", cpu / base_cpu) },
            );
        }
        println!("target: pipeline_sequential_lazy <= 1.03x handwritten; parallel shared < 1.00x");
        let wall_of = |variant: Variant| {
            let index = Variant::ALL.iter().position(|known| *known == variant).expect("a variant");
            median(measured[index].iter().map(|m| m.wall.as_secs_f64()))
        };
        println!(
            "attribution: pipeline_parallel_shared / pipeline_parallel_unmeasured = {:.3}x (target <= 1.02x)",
            wall_of(Variant::ParallelShared) / wall_of(Variant::ParallelUnmeasured)
        );
        println!(
            "(peak rss: the process's peak during the run, which includes memory the allocator kept \
             from earlier runs)\n"
        );

        let mut group = c.benchmark_group(format!("tpch/sf{scale}"));
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
        for variant in Variant::ALL {
            group.bench_function(variant.name(), |b| b.iter(|| run(variant, &files, &out, threads)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_tpch);
criterion_main!(benches);
