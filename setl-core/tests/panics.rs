//! No panic out of the library: a panic in any user code the runtime calls (phases, `get`,
//! `writable`, the drop of a factory or of its output, the output's `Storable` operations,
//! observers) becomes an error naming the factory and what was being done, and leaves a
//! pipeline whose later calls do not panic. Each test runs under a watchdog, so it cannot hang.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use setl_core::prelude::*;
use setl_core::{BoxError, ErrorKind, Event, Observer, Operation, Storable};

/// Runs `test` on its own thread and fails if it takes more than 30 s.
fn watchdog<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = sender.send(test());
    });
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test did not finish within 30 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test thread ended without a result"),
        },
    }
}

/// Which of its operations a `Touchy` value panics in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Fault {
    #[default]
    None,
    Weigh,
    Spill,
    Reload,
    Drop,
}

impl Fault {
    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Self {
        [Fault::None, Fault::Weigh, Fault::Spill, Fault::Reload, Fault::Drop][code as usize]
    }
}

/// A storable value that panics in the operation it is told to.
struct Touchy {
    fault: Fault,
    bytes: Vec<u8>,
}

impl Storable for Touchy {
    fn byte_size(&self) -> usize {
        if self.fault == Fault::Weigh {
            panic!("weigh boom");
        }
        self.bytes.len()
    }

    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        if self.fault == Fault::Spill {
            panic!("spill boom");
        }
        let mut file = vec![self.fault.code()];
        file.extend_from_slice(&self.bytes);
        Ok(std::fs::write(path, file)?)
    }

    fn reload(path: &Path) -> Result<Self, BoxError> {
        let file = std::fs::read(path)?;
        let fault = Fault::from_code(file[0]);
        if fault == Fault::Reload {
            panic!("reload boom");
        }
        Ok(Touchy { fault, bytes: file[1..].to_vec() })
    }
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if self.fault == Fault::Drop {
            self.fault = Fault::None;
            panic!("drop boom");
        }
    }
}

#[factory]
struct Load {
    fault: Fault,
}

impl Factory for Load {
    type Output = Touchy;
    fn get(&self) -> Touchy {
        Touchy { fault: self.fault, bytes: vec![7; 100] }
    }
}

#[factory]
#[derive(Default)]
struct Use {
    #[delivery(producer = Load)]
    input: Delivery<Touchy>,
}

impl Factory for Use {
    type Output = usize;
    fn get(&self) -> usize {
        self.input.get().bytes.len()
    }
}

fn setl() -> Setl {
    Setl::builder().threads(2).build().unwrap()
}

/// Runs `Load` (with `fault`) and `Use`, `Load` persisted as `level` if any; returns the error.
fn run_failing(fault: Fault, level: Option<StorageLevel>, budget: Option<u64>) -> String {
    watchdog(move || {
        let mut pipeline = setl().new_pipeline();
        if let Some(budget) = budget {
            pipeline.memory_budget(budget);
        }
        pipeline.add_factory(Load { fault }).add_stage_from_type::<Use>();
        if budget.is_some() {
            // Kept, so that it is still held over the budget after its consumer took it.
            pipeline.keep_output::<Load>();
        }
        if let Some(level) = level {
            pipeline.persist::<Load>(level);
        }
        let error = pipeline.run().map(drop).expect_err("the run should fail");
        let message = error.to_string();
        // Later calls return errors, and dropping the pipeline does not panic either.
        assert!(pipeline.run().is_err());
        let _ = pipeline.output::<Use>();
        let _ = pipeline.output::<Load>();
        let _ = pipeline.cache_stats();
        drop(pipeline);
        message
    })
}

#[test]
fn a_panic_while_weighing_an_output_is_an_error_naming_the_factory() {
    assert_eq!(run_failing(Fault::Weigh, None, None), "factory `Load` panicked while weighing its output: weigh boom");
}

#[test]
fn a_panic_while_spilling_a_disk_only_output_is_an_error_naming_the_factory() {
    assert_eq!(
        run_failing(Fault::Spill, Some(StorageLevel::DiskOnly), None),
        "factory `Load` panicked while spilling its output: spill boom"
    );
}

#[test]
fn a_panic_while_spilling_over_the_memory_budget_is_an_error_naming_the_factory() {
    assert_eq!(
        run_failing(Fault::Spill, Some(StorageLevel::MemoryAndDisk), Some(10)),
        "factory `Load` panicked while spilling its output: spill boom"
    );
}

#[test]
fn a_panic_while_reading_back_an_input_is_an_error_naming_the_producer() {
    assert_eq!(
        run_failing(Fault::Reload, Some(StorageLevel::DiskOnly), None),
        "factory `Load` panicked while reading its output back from a spill file: reload boom"
    );
}

#[test]
fn a_panic_while_reading_back_a_kept_output_is_an_error() {
    let message = watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_factory(Load { fault: Fault::Reload }).persist::<Load>(StorageLevel::DiskOnly);
        pipeline.run().unwrap();
        let error = pipeline.output::<Load>().map(drop).unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::Panicked { operation: Operation::Reload, .. }));
        error.to_string()
    });
    assert_eq!(message, "factory `Load` panicked while reading its output back from a spill file: reload boom");
}

#[test]
fn a_panic_while_dropping_a_released_output_is_an_error_naming_its_producer() {
    assert_eq!(run_failing(Fault::Drop, None, None), "factory `Load` panicked while dropping its output: drop boom");
}

#[test]
fn a_panic_while_dropping_a_kept_output_does_not_escape_the_pipeline_drop() {
    watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_factory(Load { fault: Fault::Drop });
        pipeline.run().unwrap();
        drop(pipeline);
    });
}

/// Panics in `get`.
#[factory]
#[derive(Default)]
struct BadGet;

impl Factory for BadGet {
    type Output = u8;
    fn get(&self) -> u8 {
        panic!("get boom")
    }
}

#[test]
fn a_panic_in_get_is_an_error_naming_the_factory() {
    let message = watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_stage_from_type::<BadGet>();
        pipeline.run().map(drop).unwrap_err().to_string()
    });
    assert_eq!(message, "factory `BadGet` panicked in get: get boom");
}

/// Panics when dropped.
#[factory]
#[derive(Default)]
struct BadDrop;

impl Factory for BadDrop {
    type Output = u8;
    fn get(&self) -> u8 {
        1
    }
}

impl Drop for BadDrop {
    fn drop(&mut self) {
        panic!("factory drop boom");
    }
}

#[test]
fn a_panic_while_dropping_a_factory_is_an_error_naming_it() {
    let message = watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_stage_from_type::<BadDrop>();
        let message = pipeline.run().map(drop).unwrap_err().to_string();
        assert!(pipeline.output::<BadDrop>().is_err());
        message
    });
    assert_eq!(message, "factory `BadDrop` panicked while being dropped: factory drop boom");
}

#[test]
fn a_factory_that_never_ran_may_panic_in_its_drop_without_escaping() {
    watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        // `BadGet` fails first; `Use` never runs, `BadDrop` may or may not.
        pipeline.add_stage_from_type::<BadGet>().add_stage_from_type::<BadDrop>();
        let _ = pipeline.run();
        drop(pipeline);
        let mut never_run = setl().new_pipeline();
        never_run.add_stage_from_type::<BadDrop>();
        drop(never_run);
    });
}

/// Panics in `writable`.
#[factory]
#[derive(Default)]
struct BadWritable;

impl Factory for BadWritable {
    type Output = u8;
    fn get(&self) -> u8 {
        1
    }
    fn writable(&self) -> bool {
        panic!("writable boom")
    }
}

#[test]
fn a_panic_in_writable_is_an_error_naming_the_factory() {
    let message = watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_stage_from_type::<BadWritable>();
        pipeline.run().map(drop).unwrap_err().to_string()
    });
    assert_eq!(message, "factory `BadWritable` panicked while deciding whether to write: writable boom");
}

/// A panic payload whose own `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

#[test]
fn a_panic_whose_payload_panics_when_dropped_is_still_an_error() {
    #[factory]
    #[derive(Default)]
    struct Bombing;
    impl Factory for Bombing {
        type Output = u8;
        fn read(&mut self) -> Result<()> {
            std::panic::panic_any(Bomb)
        }
        fn get(&self) -> u8 {
            1
        }
    }
    let message = watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_stage_from_type::<Bombing>();
        pipeline.run().map(drop).unwrap_err().to_string()
    });
    assert_eq!(message, "factory `Bombing` panicked in read: a panic with a non-string payload");
}

/// Panics on every event, with a payload that panics when dropped.
struct BombingObserver;

impl Observer for BombingObserver {
    fn on_event(&self, _: &Event) {
        std::panic::panic_any(Bomb)
    }
}

#[test]
fn a_panicking_observer_never_unwinds_out_of_the_run() {
    // An observer's panic detaches it and the run goes on (see `Observer`): a progress display
    // must not fail a production run. It must not unwind out of `run()` either, even when its
    // payload panics again while dropped.
    watchdog(|| {
        let mut pipeline = setl().new_pipeline();
        pipeline.add_factory(Load { fault: Fault::None }).add_stage_from_type::<Use>();
        pipeline.observe(Arc::new(BombingObserver));
        pipeline.run().unwrap();
        assert_eq!(*pipeline.output::<Use>().unwrap(), 100);
    });
}
