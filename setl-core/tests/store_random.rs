//! Property: on random DAGs of storable values, any memory budget, thread count and keep policy
//! gives the same outputs as a run without a budget, and no spill file outlives its pipeline.
//!
//! The DAGs are induced subgraphs of a fixed 8-node DAG whose inputs are optional, so dropping a
//! node removes its edges.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use setl_core::prelude::*;
use setl_core::{BoxError, Storable};

/// A storable payload of bytes.
#[derive(Debug, Clone, PartialEq)]
struct Bytes(Arc<Vec<u8>>);

impl Storable for Bytes {
    fn byte_size(&self) -> usize {
        self.0.len()
    }
    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        Ok(std::fs::write(path, &*self.0)?)
    }
    fn reload(path: &Path) -> Result<Self, BoxError> {
        Ok(Bytes(Arc::new(std::fs::read(path)?)))
    }
}

const LEN: usize = 256;

fn make(index: u8, inputs: &[&Bytes]) -> Bytes {
    let mut bytes: Vec<u8> = (0..LEN).map(|i| (i as u8).wrapping_mul(index.wrapping_add(3))).collect();
    for input in inputs {
        for (byte, other) in bytes.iter_mut().zip(input.0.iter()) {
            *byte = byte.wrapping_mul(31).wrapping_add(*other);
        }
    }
    Bytes(Arc::new(bytes))
}

macro_rules! node {
    ($name:ident, $index:expr $(, $field:ident <- $dep:ident)*) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            $(
                #[delivery(producer = $dep, optional)]
                $field: Delivery<Bytes>,
            )*
            value: Option<Bytes>,
        }

        impl Factory for $name {
            type Output = Bytes;
            fn process(&mut self) -> Result<()> {
                #[allow(unused_mut)]
                let mut inputs: Vec<&Bytes> = Vec::new();
                $(
                    if let Some(input) = self.$field.try_get() {
                        inputs.push(input);
                    }
                )*
                self.value = Some(make($index, &inputs));
                Ok(())
            }
            fn get(&self) -> Bytes {
                self.value.clone().expect("process ran")
            }
        }
    };
}

node!(N0, 0);
node!(N1, 1, a <- N0);
node!(N2, 2, a <- N0);
node!(N3, 3, a <- N1, b <- N2);
node!(N4, 4, a <- N0, b <- N3);
node!(N5, 5, a <- N2);
node!(N6, 6, a <- N4, b <- N5, c <- N1);
node!(N7, 7, a <- N6, b <- N0);

fn pipeline(setl: &Setl, present: &[bool], keep_all: bool) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline.keep_all_outputs(keep_all);
    // Declared in reverse: dataflow order does not depend on declaration order.
    for node in (0..8).rev() {
        if !present[node] {
            continue;
        }
        match node {
            0 => pipeline.add_stage_from_type::<N0>(),
            1 => pipeline.add_stage_from_type::<N1>(),
            2 => pipeline.add_stage_from_type::<N2>(),
            3 => pipeline.add_stage_from_type::<N3>(),
            4 => pipeline.add_stage_from_type::<N4>(),
            5 => pipeline.add_stage_from_type::<N5>(),
            6 => pipeline.add_stage_from_type::<N6>(),
            _ => pipeline.add_stage_from_type::<N7>(),
        };
    }
    pipeline
}

fn outputs(pipeline: &Pipeline) -> Vec<Option<Vec<u8>>> {
    fn one<F: Factory<Output = Bytes>>(pipeline: &Pipeline) -> Option<Vec<u8>> {
        pipeline.output::<F>().ok().map(|bytes| bytes.0.to_vec())
    }
    vec![
        one::<N0>(pipeline),
        one::<N1>(pipeline),
        one::<N2>(pipeline),
        one::<N3>(pipeline),
        one::<N4>(pipeline),
        one::<N5>(pipeline),
        one::<N6>(pipeline),
        one::<N7>(pipeline),
    ]
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|entry| if entry.path().is_dir() { files_under(&entry.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn spilling_never_changes_results(
        present in proptest::collection::vec(any::<bool>(), 8),
        budget in 0..(4 * LEN as u64),
        threads in 1_usize..4,
        keep_all in any::<bool>(),
    ) {
        prop_assume!(present.iter().any(|&present| present));
        let reference_setl = Setl::builder().threads(1).build().unwrap();
        let mut reference = pipeline(&reference_setl, &present, keep_all);
        reference.run().unwrap();

        let base = tempfile::tempdir().unwrap();
        let setl = Setl::builder().threads(threads).memory_budget(budget).spill_dir(base.path()).build().unwrap();
        let mut spilled = pipeline(&setl, &present, keep_all);
        spilled.run().unwrap();
        prop_assert_eq!(outputs(&spilled), outputs(&reference));
        let stats = spilled.cache_stats().unwrap().clone();
        // Kept values over a budget smaller than one value must go to disk: spilling happened.
        if keep_all && budget < LEN as u64 {
            prop_assert!(stats.spill_files >= 1, "{}", stats);
        }
        prop_assert_eq!(stats.spill_files - stats.spill_files_deleted, files_under(base.path()) as u64);
        drop(spilled);
        prop_assert_eq!(files_under(base.path()), 0);
    }
}
