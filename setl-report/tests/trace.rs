//! The Chrome trace: balanced begin/end per track, one track per thread, flows for deliveries.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use setl_report::{track_of, RunReport};

fn events(report: &RunReport) -> Vec<Value> {
    let trace: Value = serde_json::from_str(&report.to_chrome_trace()).unwrap();
    assert_eq!(trace["displayTimeUnit"], "ms");
    trace["traceEvents"].as_array().unwrap().clone()
}

/// Per track, every `E` closes the innermost open `B` of the same name, at or after its start,
/// and nothing stays open. Returns the slices per track as (name, begin, end).
fn balanced(events: &[Value]) -> BTreeMap<u64, Vec<(String, f64, f64)>> {
    let mut open: BTreeMap<u64, Vec<(String, f64)>> = BTreeMap::new();
    let mut slices: BTreeMap<u64, Vec<(String, f64, f64)>> = BTreeMap::new();
    for event in events {
        let tid = event["tid"].as_u64().unwrap();
        let name = event["name"].as_str().unwrap().to_owned();
        match event["ph"].as_str().unwrap() {
            "B" => open.entry(tid).or_default().push((name, event["ts"].as_f64().unwrap())),
            "E" => {
                let (begun, start) = open
                    .get_mut(&tid)
                    .and_then(Vec::pop)
                    .unwrap_or_else(|| panic!("E {name} on track {tid} with nothing open"));
                assert_eq!(begun, name, "track {tid}: E {name} closes B {begun}");
                let end = event["ts"].as_f64().unwrap();
                assert!(end >= start, "track {tid}: {name} ends at {end} before it begins at {start}");
                slices.entry(tid).or_default().push((name, start, end));
            }
            _ => {}
        }
    }
    for (tid, stack) in open {
        assert!(stack.is_empty(), "track {tid} leaves {stack:?} open");
    }
    slices
}

#[test]
fn slices_balance_and_each_thread_has_one_track() {
    let report = common::diamond_report();
    let events = events(&report);
    let slices = balanced(&events);

    // One named track per thread: the caller's (0) and each worker that ran a factory.
    let named: BTreeSet<u64> = events
        .iter()
        .filter(|event| event["ph"] == "M" && event["name"] == "thread_name")
        .map(|event| event["tid"].as_u64().unwrap())
        .collect();
    let mut expected: BTreeSet<u64> = report.factories.iter().map(|factory| track_of(factory.thread)).collect();
    expected.insert(0);
    assert_eq!(named, expected);
    assert_eq!(slices.keys().copied().collect::<BTreeSet<_>>(), expected);
    assert_eq!(slices[&0].iter().map(|slice| slice.0.as_str()).collect::<Vec<_>>(), ["pipeline"]);
    // Left and Right overlap in time, so they ran on two workers.
    let threads: BTreeSet<Option<usize>> =
        ["Left", "Right"].iter().map(|name| report.factory(name).unwrap().thread).collect();
    assert_eq!(threads.len(), 2, "Left and Right ran on {threads:?}");

    // Each factory is one slice on its worker's track, each phase nested inside it.
    for factory in &report.factories {
        let track = &slices[&track_of(factory.thread)];
        let own: Vec<_> = track.iter().filter(|slice| slice.0 == factory.name).collect();
        assert_eq!(own.len(), 1, "{} has {} slices", factory.name, own.len());
        let (_, start, end) = own[0];
        for phase in &factory.phases {
            assert!(
                track.iter().any(|(name, s, e)| *name == phase.phase && s >= start && e <= end),
                "{} {} is not nested in its factory",
                factory.name,
                phase.phase
            );
        }
    }
}

#[test]
fn every_delivery_between_factories_is_a_flow() {
    let report = common::diamond_report();
    let events = events(&report);
    let starts: BTreeMap<u64, &Value> =
        events.iter().filter(|event| event["ph"] == "s").map(|event| (event["id"].as_u64().unwrap(), event)).collect();
    let finishes: BTreeMap<u64, &Value> =
        events.iter().filter(|event| event["ph"] == "f").map(|event| (event["id"].as_u64().unwrap(), event)).collect();
    assert_eq!(starts.len(), 4, "Origin->Left, Origin->Right, Left->Join, Right->Join");
    assert_eq!(starts.keys().collect::<Vec<_>>(), finishes.keys().collect::<Vec<_>>());
    for (id, start) in &starts {
        let finish = finishes[id];
        assert_eq!(finish["bp"], "e");
        assert!(finish["ts"].as_f64().unwrap() >= start["ts"].as_f64().unwrap(), "flow {id} goes back in time");
        let name = start["name"].as_str().unwrap();
        let producer = name.split(" -> ").next().unwrap();
        assert_eq!(start["tid"].as_u64().unwrap(), track_of(report.factory(producer).unwrap().thread), "{name}");
    }
}

#[test]
fn a_failed_factory_still_closes_its_slices() {
    let report = common::failing_report();
    let slices = balanced(&events(&report));
    let broken = report.factory("Broken").unwrap();
    let track = &slices[&track_of(broken.thread)];
    assert!(track.iter().any(|slice| slice.0 == "Broken"));
    assert!(track.iter().any(|slice| slice.0 == "process"));
}
