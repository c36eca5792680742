//! Loading a report checks it: indices refer to existing factories, stages, inputs and worker
//! threads, counts agree with the report's own arrays, times are finite. A bad file is an error
//! naming the field by its JSON path, and the command exits with 2, instead of panicking or
//! running forever.

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use setl_report::{ReportError, RunReport};

/// `common::small_report()` as JSON, with `edit` applied.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&common::small_report().to_json()).unwrap();
    edit(&mut value);
    value.to_string()
}

fn load_error(text: &str) -> String {
    match RunReport::from_json(text) {
        Ok(_) => panic!("the report should be rejected"),
        Err(error @ ReportError::Invalid { .. }) => error.to_string(),
        Err(other) => panic!("expected an invalid report, got: {other}"),
    }
}

#[test]
fn reports_this_crate_writes_load_back() {
    for report in [common::small_report(), common::diamond_report(), common::failing_report()] {
        report.validate().unwrap();
        assert_eq!(RunReport::from_json(&report.to_json()).unwrap(), report);
    }
}

#[test]
fn a_factory_index_out_of_range_is_an_error_naming_the_field() {
    let text = edited(|report| report["factories"][0]["index"] = json!(7));
    assert_eq!(
        load_error(&text),
        "invalid run report: `factories[0].index` is 7: not the index of a factory (the report has 3)"
    );
    let text = edited(|report| report["deliveries"][0]["consumer"] = json!(99));
    assert_eq!(
        load_error(&text),
        "invalid run report: `deliveries[0].consumer` is 99: not the index of a factory (the report has 3)"
    );
    let text = edited(|report| report["critical_path"]["factories"] = json!([0, 5]));
    assert!(load_error(&text).starts_with("invalid run report: `critical_path.factories[1]` is 5"));
}

#[test]
fn an_input_source_out_of_range_is_an_error() {
    let text = edited(|report| {
        report["graph"]["factories"][1]["inputs"][0]["source"] = json!({"kind": "factory", "index": 40})
    });
    assert_eq!(
        load_error(&text),
        "invalid run report: `graph.factories[1].inputs[0].source.index` is 40: not the index of a factory (the report has 3)"
    );
}

#[test]
fn a_huge_stage_count_is_an_error() {
    let text = edited(|report| report["graph"]["stages"] = json!(1_000_000_000_000_000_u64));
    assert_eq!(
        load_error(&text),
        "invalid run report: `graph.stages` is 1000000000000000: expected at most 1048576 stages"
    );
}

#[test]
fn a_pipeline_with_more_empty_stages_than_factories_loads() {
    let text = edited(|report| report["graph"]["stages"] = json!(12));
    assert!(RunReport::from_json(&text).is_ok(), "twelve stages, three factories: a valid report");
}

#[test]
fn a_graph_with_a_huge_stage_count_still_renders_at_once() {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut report = common::small_report();
        report.graph.stages = 1_000_000_000_000_000;
        let _ = sender.send((report.graph.to_mermaid_flowchart(), report.graph.to_dot()));
    });
    let (mermaid, dot) = receiver.recv_timeout(Duration::from_secs(30)).expect("rendering should not take 30 s");
    assert!(mermaid.starts_with("flowchart LR\n") && dot.starts_with("digraph pipeline {\n"));
}

#[test]
fn a_thread_out_of_range_and_a_bad_time_are_errors() {
    let text = edited(|report| report["factories"][2]["thread"] = json!(1000));
    assert!(load_error(&text)
        .starts_with("invalid run report: `factories[2].thread` is 1000: not the index of a worker thread"));
    let text = edited(|report| report["elapsed_s"] = json!(-1.0));
    assert_eq!(
        load_error(&text),
        "invalid run report: `elapsed_s` is -1: expected a finite, non-negative number of seconds"
    );
    let text = edited(|report| report["threads"] = json!(0));
    assert_eq!(load_error(&text), "invalid run report: `threads` is 0: expected 1 to 65536 threads");
}

#[test]
fn the_command_exits_with_2_on_an_invalid_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, edited(|report| report["factories"][0]["index"] = json!(7))).unwrap();
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, edited(|report| report["graph"]["stages"] = json!(1_000_000_000_000_000_u64))).unwrap();
    let output = dir.path().join("trace.json");
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_setl-report")).args(args).output().unwrap();

    let trace = run(&["trace", bad.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    assert_eq!(trace.status.code(), Some(2));
    let stderr = String::from_utf8(trace.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "setl-report: {}: invalid run report: `factories[0].index` is 7: not the index of a factory (the report has 3)\n",
            bad.display()
        )
    );
    assert!(!output.exists());

    let graph = run(&["graph", huge.to_str().unwrap()]);
    assert_eq!(graph.status.code(), Some(2));
    assert!(String::from_utf8(graph.stderr).unwrap().contains("`graph.stages` is 1000000000000000"));
}
