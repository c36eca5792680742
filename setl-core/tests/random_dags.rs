//! Property: on random DAGs, random stage layouts and thread counts, a parallel run gives the same
//! outputs as a sequential one and as a reference evaluation, and every factory runs once.
//!
//! Factories are types, so the DAGs are induced subgraphs of a fixed sparse 12-node DAG: each
//! node's inputs are optional, so dropping a node removes its edges. Proptest chooses which nodes
//! are present, their stages, stage order and seriality, per-node work and the thread count.

#![expect(clippy::needless_range_loop, reason = "a node is an index into several arrays at once")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use setl_core::prelude::*;

fn mix(state: u64, input: u64) -> u64 {
    (state ^ input).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn spin(work: u32) -> u64 {
    (0..work).fold(0_u64, |acc, i| std::hint::black_box(acc.wrapping_add(u64::from(i))))
}

macro_rules! node {
    ($name:ident, $index:expr $(, $field:ident <- $dep:ident)*) => {
        #[factory]
        struct $name {
            $(
                #[delivery(producer = $dep, optional)]
                $field: Delivery<u64>,
            )*
            runs: Arc<AtomicUsize>,
            work: u32,
            value: u64,
        }

        impl $name {
            fn new(runs: Arc<AtomicUsize>, work: u32) -> Self {
                $name { $($field: Delivery::default(),)* runs, work, value: 0 }
            }
        }

        impl Factory for $name {
            type Output = u64;
            fn process(&mut self) -> Result<()> {
                self.runs.fetch_add(1, Ordering::SeqCst);
                #[allow(unused_mut)]
                let mut value = ($index as u64 + 1) * 1_000_003;
                $(
                    if let Some(input) = self.$field.try_get() {
                        value = mix(value, *input);
                    }
                )*
                spin(self.work);
                self.value = value;
                Ok(())
            }
            fn get(&self) -> u64 {
                self.value
            }
        }
    };
}

node!(N0, 0);
node!(N1, 1, a <- N0);
node!(N2, 2, a <- N0);
node!(N3, 3, a <- N1, b <- N2);
node!(N4, 4, a <- N1);
node!(N5, 5, a <- N3, b <- N4);
node!(N6, 6, a <- N2);
node!(N7, 7, a <- N4, b <- N6);
node!(N8, 8, a <- N5);
node!(N9, 9, a <- N6, b <- N7);
node!(N10, 10, a <- N8, b <- N9);
node!(N11, 11, a <- N0, b <- N10);

/// The producers of each node, in field order.
const DEPENDENCIES: [&[usize]; 12] =
    [&[], &[0], &[0], &[1, 2], &[1], &[3, 4], &[2], &[4, 6], &[5], &[6, 7], &[8, 9], &[0, 10]];

fn add(stage: Stage, node: usize, runs: Arc<AtomicUsize>, work: u32) -> Stage {
    match node {
        0 => stage.add_factory(N0::new(runs, work)),
        1 => stage.add_factory(N1::new(runs, work)),
        2 => stage.add_factory(N2::new(runs, work)),
        3 => stage.add_factory(N3::new(runs, work)),
        4 => stage.add_factory(N4::new(runs, work)),
        5 => stage.add_factory(N5::new(runs, work)),
        6 => stage.add_factory(N6::new(runs, work)),
        7 => stage.add_factory(N7::new(runs, work)),
        8 => stage.add_factory(N8::new(runs, work)),
        9 => stage.add_factory(N9::new(runs, work)),
        10 => stage.add_factory(N10::new(runs, work)),
        _ => stage.add_factory(N11::new(runs, work)),
    }
}

fn output(pipeline: &Pipeline, node: usize) -> u64 {
    let value = match node {
        0 => pipeline.output::<N0>(),
        1 => pipeline.output::<N1>(),
        2 => pipeline.output::<N2>(),
        3 => pipeline.output::<N3>(),
        4 => pipeline.output::<N4>(),
        5 => pipeline.output::<N5>(),
        6 => pipeline.output::<N6>(),
        7 => pipeline.output::<N7>(),
        8 => pipeline.output::<N8>(),
        9 => pipeline.output::<N9>(),
        10 => pipeline.output::<N10>(),
        _ => pipeline.output::<N11>(),
    };
    *value.expect("kept output")
}

/// What each present node must output, computed without the runtime.
fn reference(present: &[bool; 12]) -> [Option<u64>; 12] {
    let mut values = [None; 12];
    for node in 0..12 {
        if present[node] {
            let mut value = (node as u64 + 1) * 1_000_003;
            for &dependency in DEPENDENCIES[node] {
                if let Some(input) = values[dependency] {
                    value = mix(value, input);
                }
            }
            values[node] = Some(value);
        }
    }
    values
}

#[derive(Debug, Clone)]
struct Layout {
    present: [bool; 12],
    /// Per node: its stage (0..4).
    stage_of: [usize; 12],
    /// Per stage: whether it runs its factories one at a time.
    serial: [bool; 4],
    work: [u32; 12],
    threads: usize,
}

fn layouts() -> impl Strategy<Value = Layout> {
    (
        proptest::array::uniform12(any::<bool>()),
        proptest::array::uniform12(0..4_usize),
        proptest::array::uniform4(proptest::bool::weighted(0.2)),
        proptest::array::uniform12(0..20_000_u32),
        2..=4_usize,
    )
        .prop_filter("at least one factory", |(present, ..)| present.iter().any(|p| *p))
        .prop_map(|(present, stage_of, serial, work, threads)| Layout { present, stage_of, serial, work, threads })
}

/// Runs the layout; returns each present node's output and how many times each node ran.
fn run(layout: &Layout, threads: usize) -> ([Option<u64>; 12], Vec<usize>) {
    let runs: Vec<Arc<AtomicUsize>> = (0..12).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let setl = Setl::builder().threads(threads).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.keep_all_outputs(true);
    for (stage_index, serial) in layout.serial.iter().enumerate() {
        let mut stage = Stage::new().parallel(!serial);
        // Declare nodes in reverse order inside a stage: declaration order must not matter.
        for node in (0..12).rev() {
            if layout.present[node] && layout.stage_of[node] == stage_index {
                stage = add(stage, node, runs[node].clone(), layout.work[node]);
            }
        }
        pipeline.add_stage(stage);
    }
    pipeline.run().unwrap();
    let mut values = [None; 12];
    for node in 0..12 {
        if layout.present[node] {
            values[node] = Some(output(&pipeline, node));
        }
    }
    (values, runs.iter().map(|runs| runs.load(Ordering::SeqCst)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn parallel_runs_match_sequential_runs_and_run_each_factory_once(layout in layouts()) {
        let expected = reference(&layout.present);
        let (sequential, sequential_runs) = run(&layout, 1);
        let (parallel, parallel_runs) = run(&layout, layout.threads);
        prop_assert_eq!(sequential, expected);
        prop_assert_eq!(parallel, expected);
        for node in 0..12 {
            let once = usize::from(layout.present[node]);
            prop_assert_eq!(sequential_runs[node], once);
            prop_assert_eq!(parallel_runs[node], once);
        }
    }
}
