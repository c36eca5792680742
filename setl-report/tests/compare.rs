//! Comparing two runs: the table, the regression flags, and the command's exit status.

mod common;

use std::process::Command;

use setl_report::{compare, CompareOptions, RunReport};

/// A report of the small pipeline with fixed times, so the comparison text is exact.
fn fixed(read: f64, process: f64, elapsed: f64) -> RunReport {
    let mut report = common::small_report();
    for factory in &mut report.factories {
        for phase in &mut factory.phases {
            phase.elapsed_s = match phase.phase.as_str() {
                "read" => read,
                "process" => process,
                _ => 0.01,
            };
        }
        factory.total_s = Some(factory.phases.iter().map(|phase| phase.elapsed_s).sum());
    }
    report.elapsed_s = elapsed;
    report
}

const EXPECTED: &str = "\
factory     phase       old (s)     new (s)     change
Numbers     read         0.1000      0.1000      +0.0%
Numbers     process      0.2000      0.3000     +50.0%  REGRESSION
Numbers     write        0.0100      0.0100      +0.0%
Numbers     total        0.3100      0.4100     +32.3%  REGRESSION
Squares     read         0.1000      0.1000      +0.0%
Squares     process      0.2000      0.3000     +50.0%  REGRESSION
Squares     write        0.0100      0.0100      +0.0%
Squares     total        0.3100      0.4100     +32.3%  REGRESSION
Total       read         0.1000      0.1000      +0.0%
Total       process      0.2000      0.3000     +50.0%  REGRESSION
Total       total        0.3000      0.4000     +33.3%  REGRESSION
(pipeline)  total        1.0000      1.0500      +5.0%
6 regression(s) above 10%";

#[test]
fn the_comparison_flags_what_grew_beyond_the_threshold() {
    let comparison = compare(&fixed(0.1, 0.2, 1.0), &fixed(0.1, 0.3, 1.05), CompareOptions::default());
    // The factory column is as wide as its longest name, `(pipeline)`; the pipeline's 5% is
    // below the 10% threshold, Total has no write (its stage is not writable).
    assert_eq!(comparison.to_string(), EXPECTED);
    assert_eq!(comparison.regressions().count(), 6);
}

#[test]
fn small_changes_are_noise() {
    // +50% of 1 ms is below the 1 ms noise floor; a 5% slowdown is below the 10% threshold.
    let comparison = compare(&fixed(0.001, 0.001, 1.0), &fixed(0.0015, 0.0015, 1.05), CompareOptions::default());
    assert!(!comparison.has_regressions(), "{comparison}");
    let strict = CompareOptions { threshold_pct: 1.0, min_delta_s: 0.0 };
    assert!(compare(&fixed(0.001, 0.001, 1.0), &fixed(0.0015, 0.0015, 1.05), strict).has_regressions());
    // Faster is never a regression.
    assert!(!compare(&fixed(0.1, 0.3, 1.0), &fixed(0.1, 0.2, 0.5), CompareOptions::default()).has_regressions());
}

#[test]
fn factories_in_one_run_only_are_listed_not_flagged() {
    let old = fixed(0.1, 0.2, 1.0);
    let mut new = fixed(0.1, 0.2, 1.0);
    new.factories.retain(|factory| factory.name != "Squares");
    let comparison = compare(&old, &new, CompareOptions::default());
    let squares: Vec<_> = comparison.rows.iter().filter(|row| row.factory == "Squares").collect();
    assert_eq!(squares.len(), 4);
    assert!(squares.iter().all(|row| row.new_s.is_none() && !row.regression));
    assert!(comparison.to_string().contains("Squares     total        0.3100           -          -"));
}

#[test]
fn the_command_exits_non_zero_on_regression() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let new = dir.path().join("new.json");
    std::fs::write(&old, fixed(0.1, 0.2, 1.0).to_json()).unwrap();
    std::fs::write(&new, fixed(0.1, 0.3, 1.05).to_json()).unwrap();
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_setl-report")).args(args).output().unwrap();
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());

    let regressed = run(&["compare", old, new, "--threshold", "10"]);
    assert_eq!(regressed.status.code(), Some(1));
    let stdout = String::from_utf8(regressed.stdout).unwrap();
    assert!(stdout.contains("REGRESSION") && stdout.ends_with("6 regression(s) above 10%\n"), "{stdout}");

    let tolerant = run(&["compare", old, new, "--threshold", "60"]);
    assert_eq!(tolerant.status.code(), Some(0), "{}", String::from_utf8_lossy(&tolerant.stdout));

    let same = run(&["compare", old, old]);
    assert_eq!(same.status.code(), Some(0));

    let missing = run(&["compare", old, "/nonexistent/new.json"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(stderr.starts_with("setl-report: /nonexistent/new.json: "), "{stderr}");

    let bad_threshold = run(&["compare", old, new, "--threshold", "ten"]);
    assert_eq!(bad_threshold.status.code(), Some(2));
    assert!(String::from_utf8(bad_threshold.stderr)
        .unwrap()
        .contains("--threshold ten: expected a non-negative number"));
}

#[test]
fn the_command_renders_saved_reports() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(&report, common::small_report().to_json()).unwrap();
    let report = report.to_str().unwrap();
    let html = dir.path().join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_setl-report"))
        .args(["html", report, "--output", html.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read_to_string(&html).unwrap().starts_with("<!DOCTYPE html>"));
    let dot =
        Command::new(env!("CARGO_BIN_EXE_setl-report")).args(["graph", report, "--format", "dot"]).output().unwrap();
    assert!(String::from_utf8(dot.stdout).unwrap().starts_with("digraph pipeline {\n"));
    // Nothing but the two files: the atomic write leaves no temporary behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
