//! Benches of the cache: lazy datasets with and without persist, and the peak memory of a chain
//! with release after the last consumer versus keeping everything.
//!
//! `cargo bench -p setl-benches --bench cache`
//!
//! Groups:
//! - `lazy_consumers/{no_persist,persist}/{2,4}`: one expensive lazy producer (its recipe computes
//!   2 million `sin`/`sqrt` values) read by 2 or 4 consumers, on one thread so that the time is
//!   the work done. Target: persisting makes the run about N times faster (the recipe runs once
//!   instead of N times); the bench prints the measured ratio next to N.
//! - `chain_peak_memory/{release,keep_all}`: a 10-step chain of 100 MB datasets. Target: with
//!   release, the store holds at most 2 datasets at a time (keep-everything holds all 10); the
//!   bench prints the store's peak bytes held and the process's peak resident memory (Linux
//!   `VmHWM`, reset before each run) for both.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use setl_arrow::arrow::array::{Array, Float64Array, Int64Array, RecordBatch};
use setl_arrow::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use setl_arrow::{Dataset, LazyDataset};
use setl_core::prelude::*;

const LAZY_ROWS: usize = 2_000_000;

fn float_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]))
}

/// The expensive recipe: 2 million trigonometric values in batches of 100,000.
fn expensive() -> std::result::Result<Vec<RecordBatch>, setl_arrow::arrow::error::ArrowError> {
    let schema = float_schema();
    (0..LAZY_ROWS / 100_000)
        .map(|part| {
            let start = part * 100_000;
            let values = (start..start + 100_000).map(|i| (i as f64).sin().abs().sqrt() * (i as f64).cos());
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from_iter_values(values))])
        })
        .collect()
}

#[factory]
#[derive(Default)]
struct Producer;

impl Factory for Producer {
    type Output = LazyDataset;
    fn get(&self) -> LazyDataset {
        LazyDataset::new(float_schema(), expensive)
    }
}

macro_rules! consumer {
    ($name:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = Producer)]
            input: Delivery<LazyDataset>,
            total: f64,
        }

        impl Factory for $name {
            type Output = f64;
            fn read(&mut self) -> Result<()> {
                let data = self.input.get().collect()?;
                self.total = data
                    .batches()
                    .iter()
                    .map(|batch| {
                        let column = batch.column(0).as_any().downcast_ref::<Float64Array>().expect("Float64");
                        column.values().iter().sum::<f64>()
                    })
                    .sum();
                Ok(())
            }
            fn get(&self) -> f64 {
                self.total
            }
        }
    };
}

consumer!(C1);
consumer!(C2);
consumer!(C3);
consumer!(C4);

fn lazy_pipeline(setl: &Setl, consumers: usize, persist: bool) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    let mut stage = Stage::new().add_factory(C1::default()).add_factory(C2::default());
    if consumers == 4 {
        stage = stage.add_factory(C3::default()).add_factory(C4::default());
    }
    pipeline.add_stage_from_type::<Producer>().add_stage(stage);
    if persist {
        pipeline.persist::<Producer>(StorageLevel::MemoryOnly);
    }
    pipeline
}

/// The median wall time of `runs` runs.
fn median_run(setl: &Setl, consumers: usize, persist: bool, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let mut pipeline = lazy_pipeline(setl, consumers, persist);
            let started = Instant::now();
            pipeline.run().expect("the lazy pipeline runs");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn lazy_consumers(c: &mut Criterion) {
    let setl = Setl::builder().threads(1).build().expect("a one-thread context");
    let mut group = c.benchmark_group("lazy_consumers");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for consumers in [2, 4] {
        for (name, persist) in [("no_persist", false), ("persist", true)] {
            group.bench_with_input(BenchmarkId::new(name, consumers), &consumers, |b, &consumers| {
                b.iter_batched(
                    || lazy_pipeline(&setl, consumers, persist),
                    |mut pipeline| {
                        pipeline.run().expect("the lazy pipeline runs");
                        black_box(pipeline)
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
    for consumers in [2, 4] {
        let without = median_run(&setl, consumers, false, 5);
        let with = median_run(&setl, consumers, true, 5);
        let mut check = lazy_pipeline(&setl, consumers, false);
        check.run().expect("the lazy pipeline runs");
        let runs = check.cache_stats().map_or(0, |stats| stats.lazy_runs);
        println!(
            "lazy_consumers/{consumers}: no persist {:.1} ms ({runs} recipe runs), persist {:.1} ms (1 run): \
             ratio {:.2} (target: about {consumers})",
            without.as_secs_f64() * 1e3,
            with.as_secs_f64() * 1e3,
            without.as_secs_f64() / with.as_secs_f64()
        );
    }
}

/// 100 MB: 12.5 million `i64`s.
const CHAIN_ROWS: i64 = 12_500_000;

fn int_dataset(values: Int64Array) -> Dataset {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).expect("one Int64 column");
    Dataset::try_new(schema, vec![batch]).expect("the batch has the schema")
}

#[factory]
#[derive(Default)]
struct Gen {
    data: Option<Dataset>,
}

impl Factory for Gen {
    type Output = Dataset;
    fn read(&mut self) -> Result<()> {
        self.data = Some(int_dataset(Int64Array::from_iter_values(0..CHAIN_ROWS)));
        Ok(())
    }
    fn get(&self) -> Dataset {
        self.data.clone().expect("read ran")
    }
}

macro_rules! step {
    ($name:ident, $input:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = $input)]
            input: Delivery<Dataset>,
            data: Option<Dataset>,
        }

        impl Factory for $name {
            type Output = Dataset;
            fn process(&mut self) -> Result<()> {
                let input = self.input.get().batches()[0].column(0).clone();
                let input = input.as_any().downcast_ref::<Int64Array>().expect("Int64");
                self.data = Some(int_dataset(Int64Array::from_iter_values(input.values().iter().map(|v| v + 1))));
                // Drop this factory's share of its input as soon as it is used.
                self.input.take();
                Ok(())
            }
            fn get(&self) -> Dataset {
                self.data.clone().expect("process ran")
            }
        }
    };
}

step!(S1, Gen);
step!(S2, S1);
step!(S3, S2);
step!(S4, S3);
step!(S5, S4);
step!(S6, S5);
step!(S7, S6);
step!(S8, S7);
step!(S9, S8);

fn chain(setl: &Setl, keep_all: bool) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline.keep_all_outputs(keep_all);
    pipeline
        .add_stage_from_type::<Gen>()
        .add_stage_from_type::<S1>()
        .add_stage_from_type::<S2>()
        .add_stage_from_type::<S3>()
        .add_stage_from_type::<S4>()
        .add_stage_from_type::<S5>()
        .add_stage_from_type::<S6>()
        .add_stage_from_type::<S7>()
        .add_stage_from_type::<S8>()
        .add_stage_from_type::<S9>();
    pipeline
}

/// A field of `/proc/self/status` in bytes (Linux only).
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak resident memory (`VmHWM`) to the current one (Linux only).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn chain_peak_memory(c: &mut Criterion) {
    let setl = Setl::builder().threads(2).build().expect("a two-thread context");
    let dataset_bytes = int_dataset(Int64Array::from_iter_values(0..CHAIN_ROWS)).byte_size() as u64;
    for (name, keep_all) in [("release", false), ("keep_all", true)] {
        let mut pipeline = chain(&setl, keep_all);
        let base = proc_status("VmRSS:");
        let reset = reset_peak_rss();
        pipeline.run().expect("the chain runs");
        let stats = pipeline.cache_stats().cloned().unwrap_or_default();
        let rss = match (reset, base, proc_status("VmHWM:")) {
            (true, Some(base), Some(peak)) => {
                format!(
                    "{:.0} MB ({:.1} datasets)",
                    (peak - base) as f64 / 1e6,
                    (peak - base) as f64 / dataset_bytes as f64
                )
            }
            _ => "unavailable".to_owned(),
        };
        println!(
            "chain_peak_memory/{name}: peak bytes held by the store {:.0} MB = {:.1} datasets of {:.0} MB \
             (target for release: at most 2); process peak above the start: {rss}",
            stats.peak_bytes as f64 / 1e6,
            stats.peak_bytes as f64 / dataset_bytes as f64,
            dataset_bytes as f64 / 1e6
        );
        drop(pipeline);
    }
    let mut group = c.benchmark_group("chain_peak_memory");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    for (name, keep_all) in [("release", false), ("keep_all", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || chain(&setl, keep_all),
                |mut pipeline| {
                    pipeline.run().expect("the chain runs");
                    black_box(pipeline)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, lazy_consumers, chain_peak_memory);
criterion_main!(benches);
