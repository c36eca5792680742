//! Running pipelines: order, failures, benchmarks, stage settings, outputs, diagrams, registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use setl_core::prelude::*;
use setl_core::{ErrorKind, Event, EventKind, Name, Observer, Phase};

fn setl(threads: usize) -> Setl {
    Setl::builder().threads(threads).build().unwrap()
}

/// Records every event, in the order observers receive them.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<EventKind>>,
}

impl Observer for Recorder {
    fn on_event(&self, event: &Event) {
        self.events.lock().unwrap().push(event.kind.clone());
    }
}

impl Recorder {
    fn started(&self) -> Vec<Name> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|kind| match kind {
                EventKind::FactoryStarted(factory) => Some(factory.name.clone()),
                _ => None,
            })
            .collect()
    }

    fn position(&self, wanted: impl Fn(&EventKind) -> bool) -> usize {
        self.events.lock().unwrap().iter().position(wanted).expect("event not found")
    }
}

// ---------------------------------------------------------------- dataflow vs stage barriers

/// A slow source in stage 0 beside a fast one; a consumer of the fast one in stage 1.
#[factory]
#[derive(Default)]
struct Slow;
impl Factory for Slow {
    type Output = u8;
    fn process(&mut self) -> Result<()> {
        // Slow waits until `FastConsumer` has run, which only dataflow order allows.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Ok(())
    }
    fn get(&self) -> u8 {
        1
    }
}

#[factory]
#[derive(Default)]
struct Fast;
impl Factory for Fast {
    type Output = u16;
    fn get(&self) -> u16 {
        2
    }
}

#[factory]
#[derive(Default)]
struct FastConsumer {
    #[delivery(producer = Fast)]
    fast: Delivery<u16>,
}
impl Factory for FastConsumer {
    type Output = u32;
    fn get(&self) -> u32 {
        u32::from(*self.fast.get()) * 10
    }
}

#[factory]
#[derive(Default)]
struct SlowConsumer {
    #[delivery(producer = Slow)]
    slow: Delivery<u8>,
}
impl Factory for SlowConsumer {
    type Output = u64;
    fn get(&self) -> u64 {
        u64::from(*self.slow.get()) * 100
    }
}

fn two_branches(mode: ExecutionMode) -> (Pipeline, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut pipeline = setl(2).new_pipeline();
    pipeline.mode(mode);
    pipeline
        .add_stage(Stage::new().add_factory(Slow).add_factory(Fast))
        .add_stage(Stage::new().add_factory(FastConsumer::default()).add_factory(SlowConsumer::default()));
    pipeline.observe(recorder.clone());
    (pipeline, recorder)
}

#[test]
fn dataflow_starts_a_consumer_before_the_previous_stage_finished() {
    let (mut pipeline, recorder) = two_branches(ExecutionMode::Dataflow);
    pipeline.run().unwrap();
    let consumer_started =
        recorder.position(|kind| matches!(kind, EventKind::FactoryStarted(f) if f.name == "FastConsumer"));
    let slow_finished =
        recorder.position(|kind| matches!(kind, EventKind::FactoryFinished { factory, .. } if factory.name == "Slow"));
    assert!(consumer_started < slow_finished, "FastConsumer waited for Slow: {:?}", recorder.events.lock().unwrap());
    assert_eq!(*pipeline.output::<FastConsumer>().unwrap(), 20);
    assert_eq!(*pipeline.output::<SlowConsumer>().unwrap(), 100);
}

#[test]
fn stage_barrier_mode_waits_for_the_whole_previous_stage() {
    let (mut pipeline, recorder) = two_branches(ExecutionMode::StageBarrier);
    pipeline.run().unwrap();
    let consumer_started =
        recorder.position(|kind| matches!(kind, EventKind::FactoryStarted(f) if f.name == "FastConsumer"));
    let slow_finished =
        recorder.position(|kind| matches!(kind, EventKind::FactoryFinished { factory, .. } if factory.name == "Slow"));
    assert!(consumer_started > slow_finished);
    // Same results either way.
    assert_eq!(*pipeline.output::<FastConsumer>().unwrap(), 20);
    assert_eq!(*pipeline.output::<SlowConsumer>().unwrap(), 100);
}

#[test]
fn a_serial_stage_runs_its_factories_one_at_a_time() {
    let recorder = Arc::new(Recorder::default());
    let mut pipeline = setl(2).new_pipeline();
    pipeline.add_stage(Stage::new().parallel(false).add_factory(Slow).add_factory(Fast));
    pipeline.observe(recorder.clone());
    pipeline.run().unwrap();
    let events = recorder.events.lock().unwrap();
    let lifecycle: Vec<String> = events
        .iter()
        .filter_map(|kind| match kind {
            EventKind::FactoryStarted(f) => Some(format!("start {}", f.name)),
            EventKind::FactoryFinished { factory, .. } => Some(format!("end {}", factory.name)),
            _ => None,
        })
        .collect();
    assert_eq!(lifecycle, ["start Slow", "end Slow", "start Fast", "end Fast"]);
}

#[test]
fn among_ready_factories_the_longest_remaining_path_starts_first() {
    // One thread: `Head` leads a chain of two, `Lone` has nothing after it; Head goes first even
    // though Lone is declared first.
    #[factory]
    #[derive(Default)]
    struct Lone;
    impl Factory for Lone {
        type Output = i8;
        fn get(&self) -> i8 {
            0
        }
    }
    #[factory]
    #[derive(Default)]
    struct Head;
    impl Factory for Head {
        type Output = i32;
        fn get(&self) -> i32 {
            0
        }
    }
    #[factory]
    #[derive(Default)]
    struct Tail {
        #[delivery(producer = Head)]
        head: Delivery<i32>,
    }
    impl Factory for Tail {
        type Output = i64;
        fn get(&self) -> i64 {
            i64::from(*self.head.get())
        }
    }
    let recorder = Arc::new(Recorder::default());
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage(Stage::new().add_factory(Lone).add_factory(Head).add_factory(Tail::default()));
    pipeline.observe(recorder.clone());
    pipeline.run().unwrap();
    assert_eq!(recorder.started()[0], "Head");
}

// ---------------------------------------------------------------- failures

/// Fails in the phase it is told to, by error or by panic.
#[factory]
struct Faulty {
    phase: Phase,
    panic: bool,
}
impl Faulty {
    fn fail(&self, phase: Phase) -> Result<()> {
        if self.phase != phase {
            return Ok(());
        }
        if self.panic {
            panic!("boom in {phase}");
        }
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("orders.csv missing in {phase}")))?
    }
}
impl Factory for Faulty {
    type Output = ();
    fn read(&mut self) -> Result<()> {
        self.fail(Phase::Read)
    }
    fn process(&mut self) -> Result<()> {
        self.fail(Phase::Process)
    }
    fn write(&mut self) -> Result<()> {
        self.fail(Phase::Write)
    }
    fn get(&self) {
        if self.phase == Phase::Get && self.panic {
            panic!("boom in get");
        }
    }
}

/// Runs after `Faulty`; must never start when `Faulty` fails.
#[factory]
#[derive(Default)]
struct AfterFaulty {
    #[delivery(producer = Faulty)]
    input: Delivery<()>,
}
impl Factory for AfterFaulty {
    type Output = u8;
    fn get(&self) -> u8 {
        1
    }
}

#[test]
fn an_error_in_each_phase_stops_the_run_and_names_factory_phase_and_cause() {
    for phase in Phase::TIMED {
        let recorder = Arc::new(Recorder::default());
        let mut pipeline = setl(2).new_pipeline();
        pipeline.add_factory(Faulty { phase, panic: false }).add_stage_from_type::<AfterFaulty>();
        pipeline.observe(recorder.clone());
        let error = pipeline.run().unwrap_err();
        assert_eq!(error.to_string(), format!("factory `Faulty` failed in {phase}: orders.csv missing in {phase}"));
        let ErrorKind::FactoryFailed { factory, phase: failed, .. } = error.kind() else { panic!("{error:?}") };
        assert_eq!((factory.as_str(), *failed), ("Faulty", phase));
        assert_eq!(error.find_cause::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::NotFound);
        assert!(!recorder.started().iter().any(|name| name == "AfterFaulty"));
        assert!(matches!(pipeline.output::<AfterFaulty>().unwrap_err().kind(), ErrorKind::NotRun { .. }));
    }
}

#[test]
fn a_panic_in_each_phase_is_caught_and_reported() {
    for phase in [Phase::Read, Phase::Process, Phase::Write, Phase::Get] {
        let mut pipeline = setl(2).new_pipeline();
        pipeline.add_factory(Faulty { phase, panic: true }).add_stage_from_type::<AfterFaulty>();
        let error = pipeline.run().unwrap_err();
        assert_eq!(error.to_string(), format!("factory `Faulty` panicked in {phase}: boom in {phase}"));
    }
}

#[test]
fn running_factories_finish_after_a_failure_but_no_new_one_starts() {
    let recorder = Arc::new(Recorder::default());
    let mut pipeline = setl(2).new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(Slow).add_factory(Faulty { phase: Phase::Read, panic: false }))
        .add_stage(Stage::new().add_factory(SlowConsumer::default()).add_factory(AfterFaulty::default()));
    pipeline.observe(recorder.clone());
    assert!(pipeline.run().is_err());
    let events = recorder.events.lock().unwrap();
    assert!(events
        .iter()
        .any(|kind| matches!(kind, EventKind::FactoryFinished { factory, .. } if factory.name == "Slow")));
    assert!(!events.iter().any(|kind| matches!(kind, EventKind::FactoryStarted(f) if f.name == "SlowConsumer")));
    assert!(matches!(events.last(), Some(EventKind::PipelineFinished { ok: false, .. })));
}

#[test]
fn a_pipeline_runs_once() {
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage_from_type::<Fast>();
    pipeline.run().unwrap();
    assert!(matches!(pipeline.run().unwrap_err().kind(), ErrorKind::AlreadyRan));
}

/// Counts its drops; fails in `process` when told to.
#[factory]
struct DropCounted {
    drops: Arc<AtomicUsize>,
    fail: bool,
}
impl Factory for DropCounted {
    type Output = u8;
    fn process(&mut self) -> Result<()> {
        if self.fail {
            Err(std::io::Error::other("told to fail"))?;
        }
        Ok(())
    }
    fn get(&self) -> u8 {
        1
    }
}
impl Drop for DropCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Consumes `DropCounted` and counts its own drops in the same counter.
#[factory]
struct DropCountedConsumer {
    #[delivery(producer = DropCounted)]
    input: Delivery<u8>,
    drops: Arc<AtomicUsize>,
}
impl Factory for DropCountedConsumer {
    type Output = u8;
    fn get(&self) -> u8 {
        *self.input.get()
    }
}
impl Drop for DropCountedConsumer {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn each_factory_is_dropped_once_after_its_run_or_with_the_pipeline_when_it_never_started() {
    for fail in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut pipeline = setl(2).new_pipeline();
        pipeline
            .add_factory(DropCounted { drops: drops.clone(), fail })
            .add_factory(DropCountedConsumer { input: Delivery::default(), drops: drops.clone() });
        assert_eq!(pipeline.run().is_ok(), !fail);
        // A factory that ran, well or not, is dropped at once (with its shares of its inputs);
        // one that never started (the consumer of a failed one) stays with the pipeline.
        assert_eq!(drops.load(Ordering::SeqCst), if fail { 1 } else { 2 }, "fail: {fail}");
        drop(pipeline);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "fail: {fail}");
    }
}

#[test]
fn an_empty_pipeline_and_zero_threads_are_refused() {
    assert!(matches!(setl(1).new_pipeline().run().unwrap_err().kind(), ErrorKind::EmptyPipeline));
    let error = Setl::builder().threads(0).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid setting `threads`: a pipeline needs at least one thread; use 1 to run factories one at a time"
    );
}

#[test]
fn a_panicking_observer_is_detached_and_the_run_goes_on() {
    struct Panicky;
    impl Observer for Panicky {
        fn on_event(&self, _: &Event) {
            panic!("observer bug");
        }
    }
    let recorder = Arc::new(Recorder::default());
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage_from_type::<Fast>().add_stage_from_type::<FastConsumer>();
    pipeline.observe(Arc::new(Panicky)).observe(recorder.clone());
    pipeline.run().unwrap();
    assert_eq!(recorder.started(), ["Fast", "FastConsumer"]);
}

// ---------------------------------------------------------------- benchmarks and stage flags

/// Counts its phases in a shared log.
#[factory]
struct Logged {
    log: Arc<Mutex<Vec<&'static str>>>,
    writable: bool,
}
impl Factory for Logged {
    type Output = ();
    fn read(&mut self) -> Result<()> {
        self.log.lock().unwrap().push("read");
        Ok(())
    }
    fn process(&mut self) -> Result<()> {
        self.log.lock().unwrap().push("process");
        Ok(())
    }
    fn write(&mut self) -> Result<()> {
        self.log.lock().unwrap().push("write");
        Ok(())
    }
    fn get(&self) {}
    fn writable(&self) -> bool {
        self.writable
    }
}

#[test]
fn write_runs_only_when_both_stage_and_factory_are_writable() {
    for (stage_writable, factory_writable, wrote) in
        [(true, true, true), (false, true, false), (true, false, false), (false, false, false)]
    {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut pipeline = setl(1).new_pipeline();
        pipeline.add_stage(
            Stage::new().writable(stage_writable).add_factory(Logged { log: log.clone(), writable: factory_writable }),
        );
        pipeline.run().unwrap();
        let expected: &[&str] = if wrote { &["read", "process", "write"] } else { &["read", "process"] };
        assert_eq!(*log.lock().unwrap(), expected);
    }
}

#[test]
fn benchmark_on_gives_one_result_per_factory_in_declaration_order() {
    let mut pipeline = setl(2).new_pipeline();
    pipeline.benchmark(true);
    pipeline
        .add_stage(Stage::new().add_factory(FastConsumer::default()).add_factory(Fast))
        .add_stage(Stage::new().add_factory(Slow).add_factory(SlowConsumer::default()));
    pipeline.run().unwrap();
    let names: Vec<String> = pipeline.benchmarks().into_iter().map(|result| result.factory).collect();
    assert_eq!(names, ["FastConsumer", "Fast", "Slow", "SlowConsumer"]);
    let stage1: Vec<String> = pipeline.stage(1).unwrap().benchmarks().into_iter().map(|r| r.factory).collect();
    assert_eq!(stage1, ["Slow", "SlowConsumer"]);
    let slow = &pipeline.benchmarks()[2];
    assert!(slow.process >= std::time::Duration::from_millis(50));
    assert!(slow.total >= slow.read + slow.process + slow.write);
    assert!(slow.thread.is_some());
}

#[test]
fn benchmark_off_gives_none() {
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage_from_type::<Fast>();
    pipeline.run().unwrap();
    assert!(pipeline.benchmarks().is_empty());
}

#[test]
fn a_stage_flag_overrides_the_pipeline_flag_both_ways() {
    let mut pipeline = setl(1).new_pipeline();
    pipeline.benchmark(true);
    pipeline
        .add_stage(Stage::new().benchmark(false).add_factory(Fast))
        .add_stage(Stage::new().add_factory(FastConsumer::default()));
    pipeline.run().unwrap();
    let names: Vec<String> = pipeline.benchmarks().into_iter().map(|result| result.factory).collect();
    assert_eq!(names, ["FastConsumer"]);

    let mut pipeline = setl(1).new_pipeline();
    pipeline.benchmark(false);
    pipeline
        .add_stage(Stage::new().benchmark(true).add_factory(Fast))
        .add_stage(Stage::new().add_factory(FastConsumer::default()));
    pipeline.run().unwrap();
    let names: Vec<String> = pipeline.benchmarks().into_iter().map(|result| result.factory).collect();
    assert_eq!(names, ["Fast"]);
}

#[test]
fn a_stage_runs_on_its_own_and_reports_its_benchmarks() {
    let stage = Stage::new().benchmark(true).add_factory(Fast).add_factory(FastConsumer::default());
    let ran = stage.run(&setl(2)).unwrap();
    let names: Vec<String> = ran.benchmarks().into_iter().map(|result| result.factory).collect();
    assert_eq!(names, ["Fast", "FastConsumer"]);
    assert_eq!(*ran.output::<FastConsumer>().unwrap(), 20);
    assert!(matches!(ran.output::<Slow>().unwrap_err().kind(), ErrorKind::UnknownFactory { .. }));

    // Its inputs must come from inside it.
    let alone = Stage::new().add_factory(FastConsumer::default());
    let error = alone.run(&setl(1)).unwrap_err();
    assert!(error.validation_errors().is_some_and(|errors| errors.len() == 1), "{error}");
}

// ---------------------------------------------------------------- outputs

#[test]
fn outputs_are_shared_not_copied_and_intermediates_are_released() {
    #[factory]
    #[derive(Default)]
    struct Big;
    impl Factory for Big {
        type Output = Vec<u8>;
        fn get(&self) -> Vec<u8> {
            vec![7; 1024]
        }
    }
    #[factory]
    #[derive(Default)]
    struct Left {
        #[delivery(producer = Big)]
        big: Delivery<Vec<u8>>,
    }
    impl Factory for Left {
        type Output = usize;
        fn get(&self) -> usize {
            self.big.get().as_ptr() as usize
        }
    }
    #[factory]
    #[derive(Default)]
    struct Right {
        #[delivery(producer = Big)]
        big: Delivery<Vec<u8>>,
    }
    impl Factory for Right {
        type Output = usize;
        fn get(&self) -> usize {
            self.big.get().as_ptr() as usize
        }
    }
    let mut pipeline = setl(2).new_pipeline();
    pipeline
        .add_stage_from_type::<Big>()
        .add_stage(Stage::new().add_factory(Left::default()).add_factory(Right::default()));
    pipeline.run().unwrap();
    // Both consumers saw the very same buffer.
    assert_eq!(*pipeline.output::<Left>().unwrap(), *pipeline.output::<Right>().unwrap());
    let error = pipeline.output::<Big>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "output of `Big` was released after its last consumer took it; call `pipeline.keep_output::<Big>()` \
         (or `keep_all_outputs(true)`) before `run()` to keep it"
    );

    let mut pipeline = setl(2).new_pipeline();
    pipeline
        .add_stage_from_type::<Big>()
        .add_stage(Stage::new().add_factory(Left::default()).add_factory(Right::default()));
    pipeline.keep_output::<Big>();
    pipeline.run().unwrap();
    assert_eq!(pipeline.output::<Big>().unwrap().as_ptr() as usize, *pipeline.output::<Left>().unwrap());

    let mut pipeline = setl(2).new_pipeline();
    pipeline.keep_all_outputs(true);
    pipeline
        .add_stage_from_type::<Big>()
        .add_stage(Stage::new().add_factory(Left::default()).add_factory(Right::default()));
    pipeline.run().unwrap();
    assert_eq!(pipeline.output::<Big>().unwrap().len(), 1024);
}

#[test]
fn output_of_an_unknown_factory_and_last_output() {
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage_from_type::<Fast>().add_stage_from_type::<FastConsumer>();
    assert!(matches!(pipeline.output::<Fast>().unwrap_err().kind(), ErrorKind::NotRun { .. }));
    pipeline.run().unwrap();
    assert_eq!(
        pipeline.output::<Slow>().unwrap_err().to_string(),
        "factory `Slow` is not in this pipeline; add it with `add_stage_from_type::<Slow>()` or `add_factory(..)`"
    );
    assert_eq!(*pipeline.last_output::<u32>().unwrap(), 20);
    assert_eq!(
        pipeline.last_output::<String>().unwrap_err().to_string(),
        "output of `FastConsumer` has type `u32`, not `String`"
    );
}

/// A value that counts its drops, to see when the runtime lets go of it.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_input_declared_release_process_is_freed_before_write_and_reading_it_later_says_why() {
    #[factory]
    struct Source {
        drops: Arc<AtomicUsize>,
    }
    impl Factory for Source {
        type Output = Tracked;
        fn get(&self) -> Tracked {
            Tracked(self.drops.clone())
        }
    }
    #[factory]
    struct Report {
        #[delivery(producer = Source, release = process)]
        source: Delivery<Tracked>,
        drops: Arc<AtomicUsize>,
        drops_seen_by_write: Option<usize>,
        read_in_get: bool,
    }
    impl Factory for Report {
        type Output = usize;
        fn process(&mut self) -> Result<()> {
            assert!(self.source.is_filled());
            Ok(())
        }
        fn write(&mut self) -> Result<()> {
            self.drops_seen_by_write = Some(self.drops.load(Ordering::SeqCst));
            Ok(())
        }
        fn get(&self) -> usize {
            if self.read_in_get {
                let _ = self.source.get();
            }
            self.drops_seen_by_write.expect("set in write")
        }
    }
    let report = |drops: &Arc<AtomicUsize>, read_in_get| Report {
        source: Delivery::new(),
        drops: drops.clone(),
        drops_seen_by_write: None,
        read_in_get,
    };

    let drops = Arc::new(AtomicUsize::new(0));
    let mut pipeline = setl(2).new_pipeline();
    pipeline.add_factory(Source { drops: drops.clone() }).add_factory(report(&drops, false));
    pipeline.run().unwrap();
    // `Report` held the last share: releasing it after `process` dropped the value, before `write`.
    assert_eq!(*pipeline.output::<Report>().unwrap(), 1);

    // A phase after the release that still reads the input fails, and the error says why.
    let drops = Arc::new(AtomicUsize::new(0));
    let mut pipeline = setl(2).new_pipeline();
    pipeline.add_factory(Source { drops: drops.clone() }).add_factory(report(&drops, true));
    let error = pipeline.run().unwrap_err().to_string();
    assert!(error.contains("factory `Report` panicked in get"), "{error}");
    assert!(error.contains("Delivery<Tracked> was released when `process` returned"), "{error}");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- diagrams and the registry

#[test]
fn the_mermaid_diagram_of_a_small_pipeline_is_exact_and_deterministic() {
    let build = || {
        let mut pipeline = setl(1).new_pipeline();
        pipeline.set_input(3_u8).with_id("factor");
        pipeline.add_stage_from_type::<Fast>().add_stage_from_type::<FastConsumer>();
        pipeline
    };
    let expected = "\
classDiagram
class Fast {
  <<Factory[u16]>>
}
class FastConsumer {
  <<Factory[u32]>>
  +u16 fast
}
class FastOutput {
  <<u16>>
}
class FastConsumerOutput {
  <<u32>>
}
class ExternalInput0 {
  <<u8>>
  +id factor
}
FastOutput <|.. Fast : Output
FastConsumerOutput <|.. FastConsumer : Output
FastConsumer <|-- FastOutput : Input
";
    assert_eq!(build().to_mermaid(), expected);
    assert_eq!(build().to_mermaid(), build().to_mermaid());
}

#[test]
fn describe_summarises_factories_and_flows() {
    let mut pipeline = setl(1).new_pipeline();
    pipeline.add_stage_from_type::<Fast>().add_stage_from_type::<FastConsumer>();
    assert_eq!(
        pipeline.describe(),
        "\
Pipeline: 2 factories in 2 stages, 0 external inputs

Data Transformation Summary
  stage 0: Fast
    output u16
  stage 1: FastConsumer
    input  fast: u16 from Fast
    output u32

Data Flow Summary
  Fast ==> FastConsumer.fast : u16
"
    );
    let mut single = setl(1).new_pipeline();
    single.set_input(3_u8);
    single.add_stage_from_type::<Fast>();
    assert!(
        single.describe().starts_with("Pipeline: 1 factory in 1 stage, 1 external input\n"),
        "{}",
        single.describe()
    );
}

#[test]
fn the_registry_lists_linked_factories_and_builds_a_pipeline_from_them() {
    let registered = setl_core::Registration::all();
    let fast = registered.iter().find(|r| r.name() == "Fast").expect("Fast is registered");
    assert_eq!(fast.module(), "running");
    assert_eq!(fast.signature().output.name(), "u16");
    assert!(fast.is_default_constructible());
    let faulty = registered.iter().find(|r| r.name() == "Faulty").unwrap();
    assert!(!faulty.is_default_constructible());
    let consumer = registered.iter().find(|r| r.name() == "FastConsumer").unwrap();
    assert_eq!(consumer.signature().inputs[0].field, "fast");
    assert_eq!(consumer.signature().inputs[0].producer.unwrap().name(), "Fast");

    let mut pipeline = setl(2).new_pipeline();
    pipeline.add_stage_from_registry(|r| ["Fast", "FastConsumer"].contains(&r.name()));
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<FastConsumer>().unwrap(), 20);
}
