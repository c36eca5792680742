//! Instance ids do not outlive the pipelines that use them: a long-lived service that builds
//! pipelines all day with ever new ids must get its memory back when a pipeline goes.

use setl_core::prelude::*;

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

/// Builds, runs and drops a pipeline of `count` instances of `Source`, each with an id no other
/// pipeline used.
fn build_and_drop(setl: &Setl, round: usize, count: usize) {
    let mut stage = Stage::new();
    for index in 0..count {
        stage = stage.add_factory(Source { value: index as u64 }.with_id(&format!("r{round}-i{index}")));
    }
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage(stage);
    pipeline.validate().unwrap();
    drop(pipeline);
}

#[test]
fn interning_tables_return_to_their_baseline_after_pipelines_are_dropped() {
    let setl = Setl::builder().threads(2).build().unwrap();
    // One round first, so that whatever is interned once per process (the type's own keys) is in
    // the baseline.
    build_and_drop(&setl, 0, 10);
    let baseline = setl_core::__private::__interned_entries();
    for round in 1..=100 {
        build_and_drop(&setl, round, 2_000);
    }
    let after = setl_core::__private::__interned_entries();
    assert!(after <= baseline + 16, "interned entries grew from {baseline} to {after} over 200,000 dropped instances");
}
