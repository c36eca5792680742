//! Makespan of a random DAG of CPU-bound factories on 2 threads, against its lower bound and
//! against SETL's stage-barrier order.
//!
//! Group: `makespan` (dataflow, stage_barrier).
//!
//! `cargo bench -p setl-benches --bench makespan`
//!
//! Target (issue 2): makespan / max(critical path, total work / threads) at most 1.10, and never
//! above the stage-barrier mode. Both bounds come from the same run's benchmark results.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use setl_benches::{node_index, pipeline, Shape};
use setl_core::prelude::*;

const NODES: usize = 120;
const THREADS: usize = 2;

/// One run: (makespan, lower bound).
fn measure(setl: &Setl, shape: &Shape, barrier: bool) -> (Duration, Duration) {
    let levels = shape.levels();
    let mut pipeline = pipeline(setl, shape, barrier.then_some(levels.as_slice()));
    pipeline.benchmark(true).mode(if barrier { ExecutionMode::StageBarrier } else { ExecutionMode::Dataflow });
    let started = Instant::now();
    pipeline.run().expect("runs");
    let makespan = started.elapsed();
    // Node i's result: results come in declaration order, so map them back by name.
    let mut cost = vec![Duration::ZERO; shape.inputs.len()];
    for result in pipeline.benchmarks() {
        let index = node_index(&result.factory).expect("a node's name is `Node[nI]`");
        cost[index] = result.total;
    }
    let work: Duration = cost.iter().sum();
    let mut finish = vec![Duration::ZERO; shape.inputs.len()];
    for node in 0..shape.inputs.len() {
        let ready = shape.inputs[node].iter().map(|&input| finish[input]).max().unwrap_or_default();
        finish[node] = ready + cost[node];
    }
    let critical_path = finish.iter().copied().max().unwrap_or_default();
    (makespan, critical_path.max(work / THREADS as u32))
}

fn makespan(c: &mut Criterion) {
    let setl = Setl::builder().threads(THREADS).build().expect("a 2-thread pool");
    let shape = Shape::random(NODES, 3, 2_000..40_000, 42);
    for barrier in [false, true] {
        let mut ratios: Vec<f64> = (0..7)
            .map(|_| {
                let (makespan, bound) = measure(&setl, &shape, barrier);
                makespan.as_secs_f64() / bound.as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "makespan/{}: makespan / lower bound = {:.3} (median of 7; target <= 1.10)",
            if barrier { "stage_barrier" } else { "dataflow" },
            ratios[3]
        );
    }
    let mut group = c.benchmark_group("makespan");
    group.sample_size(10);
    for barrier in [false, true] {
        let name = if barrier { "stage_barrier" } else { "dataflow" };
        let levels = shape.levels();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || {
                    let mut pipeline = pipeline(&setl, &shape, barrier.then_some(levels.as_slice()));
                    pipeline.mode(if barrier { ExecutionMode::StageBarrier } else { ExecutionMode::Dataflow });
                    pipeline
                },
                |mut p| {
                    p.run().expect("runs");
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, makespan);
criterion_main!(benches);
