//! Benching setl pipelines with criterion through `setl_report::bench`: a whole pipeline, one
//! factory inside it, and one phase, each in one line.
//!
//! Groups (`cargo bench -p setl-benches --bench pipeline_criterion`):
//! - `seed_shape/pipeline`: Source -> Transform -> Sink over 100,000 numbers, building untimed.
//! - `seed_shape/factory_transform`: only TransformFactory's wall time, inside its pipeline.
//! - `seed_shape/phase_transform_process`: only TransformFactory's `process`.
//! - `seed_shape/pipeline_recorded`: the pipeline with a `RunRecorder` attached.
//!
//! Target: recording a run for a report costs under 5% of this pipeline's time; the bench
//! prints the measured ratio (median of runs with / without the recorder).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use setl_core::prelude::*;
use setl_core::{Phase, Pipeline};
use setl_report::bench::{bench_factory, bench_phase, bench_pipeline};
use setl_report::RunRecorder;

const ROWS: i64 = 100_000;

#[factory]
#[derive(Default)]
struct SourceFactory {
    rows: Vec<i64>,
}

impl Factory for SourceFactory {
    type Output = Vec<i64>;
    fn read(&mut self) -> Result<()> {
        self.rows = (0..ROWS).collect();
        Ok(())
    }
    fn get(&self) -> Vec<i64> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct TransformFactory {
    #[delivery(producer = SourceFactory)]
    input: Delivery<Vec<i64>>,
    out: Vec<i64>,
}

impl Factory for TransformFactory {
    type Output = Vec<i64>;
    fn process(&mut self) -> Result<()> {
        self.out = self.input.get().iter().map(|value| value.wrapping_mul(*value) % 1_000_003).collect();
        Ok(())
    }
    fn get(&self) -> Vec<i64> {
        self.out.clone()
    }
}

#[factory]
#[derive(Default)]
struct SinkFactory {
    #[delivery(producer = TransformFactory)]
    input: Delivery<Vec<i64>>,
    total: i64,
}

impl Factory for SinkFactory {
    type Output = i64;
    fn process(&mut self) -> Result<()> {
        self.total = self.input.get().iter().sum();
        Ok(())
    }
    fn get(&self) -> i64 {
        self.total
    }
}

fn build(setl: &Setl) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_stage_from_type::<SourceFactory>()
        .add_stage_from_type::<TransformFactory>()
        .add_stage_from_type::<SinkFactory>();
    pipeline
}

/// Runs the pipeline `runs` times in each of the `variants` (none, recorder, recorder without
/// memory sampling), interleaved so that load from other processes hits all alike, and returns
/// the median time of each.
fn interleaved_medians(setl: &Setl, runs: usize) -> [Duration; 3] {
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (variant, samples) in times.iter_mut().enumerate() {
            let mut pipeline = build(setl);
            match variant {
                1 => {
                    pipeline.observe(Arc::new(RunRecorder::new()));
                }
                2 => {
                    pipeline.observe(Arc::new(RunRecorder::new().sample_memory(false)));
                }
                _ => {}
            }
            let started = Instant::now();
            pipeline.run().expect("the bench pipeline runs");
            samples.push(started.elapsed());
            black_box(pipeline.last_output::<i64>().ok());
        }
    }
    times.map(|mut samples| {
        samples.sort();
        samples[samples.len() / 2]
    })
}

fn seed_shape(c: &mut Criterion) {
    let setl = Setl::builder().threads(2).build().expect("a 2-thread pool");
    let mut group = c.benchmark_group("seed_shape");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    bench_pipeline(&mut group, "pipeline", || build(&setl));
    bench_factory(&mut group, "factory_transform", "TransformFactory", || build(&setl));
    bench_phase(&mut group, "phase_transform_process", "TransformFactory", Phase::Process, || build(&setl));
    bench_pipeline(&mut group, "pipeline_recorded", || {
        let mut pipeline = build(&setl);
        pipeline.observe(Arc::new(RunRecorder::new()));
        pipeline
    });
    group.finish();

    let [plain, recorded, without_memory] = interleaved_medians(&setl, 101);
    for (name, time) in [("recorder", recorded), ("recorder without memory sampling", without_memory)] {
        let ratio = time.as_secs_f64() / plain.as_secs_f64();
        println!(
            "{name}: median {time:?} vs {plain:?} without = {ratio:.3}x (target < 1.05x): {}",
            if ratio < 1.05 { "met" } else { "NOT met" }
        );
    }
}

criterion_group!(benches, seed_shape);
criterion_main!(benches);
