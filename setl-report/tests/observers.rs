//! The event stream as observers see it: order, several observers, a panicking one.

mod common;

use std::sync::{Arc, Mutex};

use setl_core::{Event, EventKind, Observer, Phase};

/// Records each event as a short line, e.g. `phase+ Squares process`.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
}

fn line(event: &Event) -> String {
    match &event.kind {
        EventKind::PipelineStarted { factories } => format!("pipeline+ {factories}"),
        EventKind::FactoryStarted(factory) => format!("factory+ {}", factory.name),
        EventKind::DeliveryTaken { producer, consumer, field } => {
            format!(
                "delivery {}->{}.{field}",
                producer.as_ref().map_or("input", |producer| &*producer.name),
                consumer.name
            )
        }
        EventKind::PhaseStarted { factory, phase } => format!("phase+ {} {phase}", factory.name),
        EventKind::PhaseFinished { factory, phase, ok, .. } => format!("phase- {} {phase} {ok}", factory.name),
        EventKind::PhaseSkipped { factory, phase } => format!("skipped {} {phase}", factory.name),
        EventKind::OutputProduced { factory, .. } => format!("output {}", factory.name),
        EventKind::FactoryFinished { factory, .. } => format!("factory- {}", factory.name),
        EventKind::FactoryFailed { factory, phase, .. } => format!("failed {} {phase}", factory.name),
        EventKind::OutputReleased(factory) => format!("released {}", factory.name),
        EventKind::CacheSummary(stats) => format!("cache releases={}", stats.releases),
        EventKind::PipelineFinished { ok, .. } => format!("pipeline- {ok}"),
        other => format!("{other:?}"),
    }
}

impl Observer for Log {
    fn on_event(&self, event: &Event) {
        self.lines.lock().unwrap().push(line(event));
    }
}

/// Panics on the first phase it sees.
struct Grumpy;

impl Observer for Grumpy {
    fn on_event(&self, event: &Event) {
        if matches!(event.kind, EventKind::PhaseStarted { phase: Phase::Read, .. }) {
            panic!("this observer does not like reading");
        }
    }
}

#[test]
fn a_chain_delivers_events_in_run_order_to_every_observer() {
    let first = Arc::new(Log::default());
    let second = Arc::new(Log::default());
    let mut pipeline = common::small_pipeline(1);
    pipeline.observe(first.clone()).observe(Arc::new(Grumpy)).observe(second.clone());
    pipeline.run().unwrap();
    let lines = first.lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "pipeline+ 3",
            "factory+ Numbers",
            "phase+ Numbers read",
            "phase- Numbers read true",
            "phase+ Numbers process",
            "phase- Numbers process true",
            "phase+ Numbers write",
            "phase- Numbers write true",
            "output Numbers",
            "factory- Numbers",
            "factory+ Squares",
            "delivery Numbers->Squares.numbers",
            "released Numbers",
            "phase+ Squares read",
            "phase- Squares read true",
            "phase+ Squares process",
            "phase- Squares process true",
            "phase+ Squares write",
            "phase- Squares write true",
            "output Squares",
            "factory- Squares",
            "factory+ Total",
            "delivery Squares->Total.squares",
            "delivery input->Total.offset",
            "released Squares",
            "phase+ Total read",
            "phase- Total read true",
            "phase+ Total process",
            "phase- Total process true",
            "skipped Total write",
            "output Total",
            "factory- Total",
            "cache releases=2",
            "pipeline- true",
        ]
    );
    // The observer after the panicking one got every event too, in the same order.
    assert_eq!(*second.lines.lock().unwrap(), lines);
}

#[test]
fn on_several_threads_each_factory_sees_its_events_in_order_after_its_producers() {
    let log = Arc::new(Log::default());
    let setl = setl_core::Setl::builder().threads(2).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<common::Origin>();
    pipeline.add_stage(
        setl_core::Stage::new().add_factory_from_type::<common::Left>().add_factory_from_type::<common::Right>(),
    );
    pipeline.add_stage_from_type::<common::Join>();
    pipeline.observe(log.clone());
    pipeline.run().unwrap();
    let lines = log.lines.lock().unwrap().clone();
    let at = |wanted: &str| {
        lines.iter().position(|line| line == wanted).unwrap_or_else(|| panic!("no `{wanted}` in {lines:#?}"))
    };
    assert_eq!(at("pipeline+ 4"), 0);
    assert_eq!(at("pipeline- true"), lines.len() - 1);
    for name in ["Origin", "Left", "Right", "Join"] {
        let sequence = [
            format!("factory+ {name}"),
            format!("phase+ {name} read"),
            format!("phase- {name} read true"),
            format!("phase+ {name} process"),
            format!("phase- {name} process true"),
            format!("phase+ {name} write"),
            format!("phase- {name} write true"),
            format!("output {name}"),
            format!("factory- {name}"),
        ];
        let positions: Vec<usize> = sequence.iter().map(|line| at(line)).collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{name}: {positions:?}");
    }
    for (producer, consumer) in [("Origin", "Left"), ("Origin", "Right"), ("Left", "Join"), ("Right", "Join")] {
        assert!(at(&format!("factory- {producer}")) < at(&format!("factory+ {consumer}")), "{producer} -> {consumer}");
        let delivery =
            lines.iter().position(|line| line.starts_with(&format!("delivery {producer}->{consumer}."))).unwrap();
        assert!(at(&format!("factory+ {consumer}")) < delivery && delivery < at(&format!("phase+ {consumer} read")));
    }
    assert_eq!(lines.iter().filter(|line| line.starts_with("factory+")).count(), 4, "each factory starts once");
}

#[test]
fn a_failure_is_an_event_and_ends_the_run() {
    let log = Arc::new(Log::default());
    let setl = setl_core::Setl::builder().threads(1).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<common::Numbers>().add_stage_from_type::<common::Broken>();
    pipeline.observe(log.clone());
    assert!(pipeline.run().is_err());
    let lines = log.lines.lock().unwrap().clone();
    let tail: Vec<&str> = lines.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(tail, ["phase- Broken process false", "failed Broken process", "cache releases=1", "pipeline- false"]);
}
