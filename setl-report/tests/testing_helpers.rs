//! The assertion helpers pass on good runs and fail with clear messages on bad ones.

mod common;

use setl_core::HasBenchmark;
use setl_report::testing::{expect_benchmarks, expect_run};
use setl_report::{run_with_report, Status};

#[test]
fn a_good_run_passes_every_check() {
    let mut pipeline = common::small_pipeline(2);
    let (result, report) = run_with_report(&mut pipeline, common::vec_measure());
    result.unwrap();
    expect_benchmarks(&pipeline.benchmarks())
        .has_factory("Numbers")
        .has_factory("Total")
        .factories(&["Numbers", "Squares", "Total"])
        .each_once()
        .totals_cover_phases();
    expect_run(&report)
        .succeeded()
        .has_factory("Squares")
        .ran_once_each()
        .phase_order("Numbers", &["read", "process", "write"])
        .phase_order("Total", &["read", "process"])
        .ran_before("Numbers", "Squares")
        .ran_before("Squares", "Total");
}

fn panic_message(check: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(check).expect_err("the check should fail");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn failing_checks_name_the_factory() {
    let mut pipeline = common::small_pipeline(1);
    let (result, report) = run_with_report(&mut pipeline, common::vec_measure());
    result.unwrap();
    let benchmarks = pipeline.benchmarks();
    let message = panic_message(|| {
        expect_benchmarks(&benchmarks).has_factory("Cubes");
    });
    assert_eq!(
        message,
        "no benchmark result for factory `Cubes`; results exist for [\"Numbers\", \"Squares\", \"Total\"]"
    );

    let mut doubled = benchmarks.clone();
    doubled.push(benchmarks[1].clone());
    let message = panic_message(|| {
        expect_benchmarks(&doubled).each_once();
    });
    assert!(message.starts_with("factory `Squares` has more than one benchmark result"), "{message}");

    let message = panic_message(|| {
        expect_run(&report).phase_order("Total", &["read", "process", "write"]);
    });
    assert!(
        message.starts_with("assertion `left == right` failed: factory `Total` ran other phases than expected"),
        "{message}"
    );

    let mut twice = report.clone();
    twice.factories[0].starts = 2;
    let message = panic_message(|| {
        expect_run(&twice).ran_once_each();
    });
    assert_eq!(message, "factory `Numbers` started 2 times");

    let message = panic_message(|| {
        expect_run(&report).ran_before("Total", "Numbers");
    });
    assert!(message.starts_with("`Total` ended at "), "{message}");
}

#[test]
fn a_failed_run_is_reported_as_such() {
    let report = common::failing_report();
    expect_run(&report).failed_in("Broken", "process").has_factory("Numbers");
    assert_eq!(report.factory("Broken").unwrap().status, Status::Failed);
    let message = panic_message(|| {
        expect_run(&report).succeeded();
    });
    assert!(message.starts_with("the run failed: Some(RunError { factory: Some(\"Broken\")"), "{message}");
}
