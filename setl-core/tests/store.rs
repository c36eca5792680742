//! The value store: release after the last consumer, keep, storage levels, the memory budget,
//! spill files and the cache statistics, with a small storable payload (`Blob`).

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use setl_core::prelude::*;
use setl_core::{BoxError, ErrorKind, Event, EventKind, Observer, Storable};

/// A storable payload: bytes shared by `Arc`, so a test can watch them with a `Weak`.
#[derive(Debug, Clone, PartialEq)]
struct Blob(Arc<Vec<u8>>);

impl Blob {
    fn filled(len: usize, seed: u8) -> Self {
        Blob(Arc::new((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()))
    }

    fn next(&self) -> Self {
        Blob(Arc::new(self.0.iter().map(|byte| byte.wrapping_add(1)).collect()))
    }
}

impl Storable for Blob {
    const FILE_EXTENSION: &'static str = "blob";

    fn byte_size(&self) -> usize {
        self.0.len()
    }

    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        Ok(std::fs::write(path, &*self.0)?)
    }

    fn reload(path: &Path) -> Result<Self, BoxError> {
        Ok(Blob(Arc::new(std::fs::read(path)?)))
    }
}

const LEN: usize = 1000;

/// Where a test watches buffers from: the weak handle of each produced blob, by name.
type Watch = Arc<Mutex<Vec<(&'static str, Weak<Vec<u8>>)>>>;

#[factory]
#[derive(Default)]
struct Source {
    watch: Watch,
}

impl Factory for Source {
    type Output = Blob;
    fn get(&self) -> Blob {
        let blob = Blob::filled(LEN, 7);
        self.watch.lock().unwrap().push(("Source", Arc::downgrade(&blob.0)));
        blob
    }
}

#[factory]
#[derive(Default)]
struct Step1 {
    #[delivery(producer = Source)]
    input: Delivery<Blob>,
}

impl Factory for Step1 {
    type Output = Blob;
    fn get(&self) -> Blob {
        self.input.get().next()
    }
}

#[factory]
#[derive(Default)]
struct Step2 {
    #[delivery(producer = Step1)]
    input: Delivery<Blob>,
}

impl Factory for Step2 {
    type Output = Blob;
    fn get(&self) -> Blob {
        self.input.get().next()
    }
}

/// Records, when it runs, which watched buffers are still alive.
#[factory]
#[derive(Default)]
struct Probe {
    #[delivery(producer = Step2)]
    input: Delivery<Blob>,
    watch: Watch,
    alive: Arc<Mutex<Vec<&'static str>>>,
    sum: u64,
}

impl Factory for Probe {
    type Output = u64;
    fn read(&mut self) -> Result<()> {
        let watch = self.watch.lock().unwrap();
        *self.alive.lock().unwrap() =
            watch.iter().filter(|(_, weak)| weak.upgrade().is_some()).map(|(name, _)| *name).collect();
        Ok(())
    }
    fn process(&mut self) -> Result<()> {
        self.sum = self.input.get().0.iter().map(|&byte| u64::from(byte)).sum();
        Ok(())
    }
    fn get(&self) -> u64 {
        self.sum
    }
}

fn chain(setl: &Setl, watch: &Watch, alive: &Arc<Mutex<Vec<&'static str>>>) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_factory(Source { watch: watch.clone() })
        .add_stage_from_type::<Step1>()
        .add_stage_from_type::<Step2>()
        .add_factory(Probe { watch: watch.clone(), alive: alive.clone(), ..Probe::default() });
    pipeline
}

fn expected_sum() -> u64 {
    Blob::filled(LEN, 7).next().next().0.iter().map(|&byte| u64::from(byte)).sum()
}

/// The same chain in one stage: intermediates still go after their last consumer.
#[test]
fn one_stage_frees_its_intermediates_too() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let watch = Watch::default();
    let alive: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage(
        Stage::new()
            .add_factory(Source { watch: watch.clone() })
            .add_factory_from_type::<Step1>()
            .add_factory_from_type::<Step2>()
            .add_factory(Probe { watch: watch.clone(), alive: alive.clone(), ..Probe::default() }),
    );
    pipeline.run()?;
    assert_eq!(*pipeline.output::<Probe>()?, expected_sum());
    assert_eq!(*alive.lock().unwrap(), Vec::<&str>::new(), "Source's buffer outlived its consumer");
    assert!(matches!(pipeline.output::<Step1>().unwrap_err().kind(), ErrorKind::OutputReleased { .. }));
    assert_eq!(pipeline.cache_stats().expect("the pipeline ran").releases, 3);
    Ok(())
}

#[test]
fn an_output_is_freed_after_its_last_consumer() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let (watch, alive) = (Watch::default(), Arc::default());
    let mut pipeline = chain(&setl, &watch, &alive);
    pipeline.run()?;
    assert_eq!(*pipeline.output::<Probe>()?, expected_sum());
    // When Probe ran, Step1 (Source's only consumer) had finished: Source's buffer was gone.
    assert_eq!(*alive.lock().unwrap(), Vec::<&str>::new());
    let error = pipeline.output::<Source>().unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::OutputReleased { factory } if factory == "Source"), "{error}");
    assert!(error.to_string().contains("keep_output::<Source>()"), "{error}");
    let stats = pipeline.cache_stats().expect("the pipeline ran");
    assert_eq!(stats.releases, 3, "{stats}");
    // `#[factory]` found out which outputs the store can weigh and spill.
    assert!(<Source as setl_core::FactoryWiring>::signature().store_ops.is_some());
    assert!(<Probe as setl_core::FactoryWiring>::signature().store_ops.is_none());
    assert_eq!(stats.bytes_held, 0, "Probe's u64 is not storable: {stats}");
    Ok(())
}

#[test]
fn a_kept_output_stays_alive_and_available() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let (watch, alive) = (Watch::default(), Arc::default());
    let mut pipeline = chain(&setl, &watch, &alive);
    pipeline.keep_output::<Source>();
    pipeline.run()?;
    assert_eq!(*alive.lock().unwrap(), ["Source"]);
    assert_eq!(*pipeline.output::<Source>()?, Blob::filled(LEN, 7));
    assert!(pipeline.output::<Step1>().is_err());
    assert_eq!(pipeline.cache_stats().unwrap().bytes_held, LEN as u64);

    let mut everything = chain(&setl, &watch, &alive);
    everything.keep_all_outputs(true);
    everything.run()?;
    assert_eq!(everything.output::<Step1>()?.0.len(), LEN);
    assert_eq!(everything.cache_stats().unwrap().peak_bytes, 3 * LEN as u64);
    Ok(())
}

/// Collects the cache events of a run.
#[derive(Default)]
struct CacheEvents(Mutex<Vec<EventKind>>);

impl Observer for CacheEvents {
    fn on_event(&self, event: &Event) {
        if matches!(
            event.kind,
            EventKind::OutputReleased(_)
                | EventKind::OutputSpilled { .. }
                | EventKind::OutputReloaded { .. }
                | EventKind::OutputMaterialized { .. }
                | EventKind::CacheSummary(_)
        ) {
            self.0.lock().unwrap().push(event.kind.clone());
        }
    }
}

#[test]
fn release_holds_at_most_two_values_of_a_chain() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let (watch, alive) = (Watch::default(), Arc::default());
    let mut pipeline = chain(&setl, &watch, &alive);
    let events = Arc::new(CacheEvents::default());
    pipeline.observe(events.clone());
    pipeline.run()?;
    let stats = pipeline.cache_stats().unwrap().clone();
    assert!(stats.peak_bytes <= 2 * LEN as u64, "{stats}");
    let events = events.0.lock().unwrap();
    let released: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            EventKind::OutputReleased(factory) => Some(&*factory.name),
            _ => None,
        })
        .collect();
    assert_eq!(released, ["Source", "Step1", "Step2"]);
    assert_eq!(events.last(), Some(&EventKind::CacheSummary(stats)));
    Ok(())
}

/// The file names in `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// Needs Source again at the end, so that Source waits on disk meanwhile.
#[factory]
#[derive(Default)]
struct Join {
    #[delivery(producer = Source)]
    first: Delivery<Blob>,
    #[delivery(producer = Step2)]
    last: Delivery<Blob>,
}

impl Factory for Join {
    type Output = Blob;
    fn get(&self) -> Blob {
        let (first, last) = (self.first.get(), self.last.get());
        Blob(Arc::new(first.0.iter().zip(last.0.iter()).map(|(a, b)| a ^ b).collect()))
    }
}

#[test]
fn over_the_budget_values_spill_and_results_are_identical() -> setl_core::Result<()> {
    let (watch, alive) = (Watch::default(), Arc::default());
    let plain = Setl::builder().threads(1).build()?;
    let mut reference = chain(&plain, &watch, &alive);
    reference.keep_all_outputs(true);
    reference.add_stage_from_type::<Join>();
    reference.run()?;
    assert_eq!(reference.cache_stats().unwrap().spill_files, 0);

    let base = tempfile::tempdir()?;
    let tight = Setl::builder().threads(1).memory_budget(LEN as u64 / 2).spill_dir(base.path()).build()?;
    let mut spilled = chain(&tight, &watch, &alive);
    spilled.keep_all_outputs(true);
    spilled.add_stage_from_type::<Join>();
    let events = Arc::new(CacheEvents::default());
    spilled.observe(events.clone());
    spilled.run()?;
    let stats = spilled.cache_stats().unwrap().clone();
    // Every blob exceeds the budget alone, so each one spills once its next consumer took it.
    assert_eq!(stats.spill_files, 4, "{stats}");
    assert_eq!(stats.spilled_bytes, 4 * LEN as u64, "{stats}");
    assert_eq!(stats.reloads, 2, "Join reads Source back, Step2's second consumer reads it back: {stats}");
    assert_eq!(stats.bytes_held, 0, "{stats}");
    assert!(events.0.lock().unwrap().iter().any(|event| matches!(event, EventKind::OutputReloaded { .. })));
    for (with, without) in [
        (spilled.output::<Source>()?, reference.output::<Source>()?),
        (spilled.output::<Step1>()?, reference.output::<Step1>()?),
        (spilled.output::<Step2>()?, reference.output::<Step2>()?),
        (spilled.output::<Join>()?, reference.output::<Join>()?),
    ] {
        assert_eq!(with, without);
    }
    assert_eq!(*spilled.output::<Probe>()?, *reference.output::<Probe>()?);
    // Kept outputs stay on disk until the pipeline goes; then nothing is left.
    assert_eq!(files_under(base.path()), ["0000-Source.blob", "0001-Step1.blob", "0002-Step2.blob", "0004-Join.blob"]);
    let dir = spilled.spill_dir().expect("the run spilled").to_owned();
    assert!(dir.starts_with(base.path()));
    drop(spilled);
    assert!(!dir.exists());
    assert_eq!(files_under(base.path()), Vec::<String>::new());
    Ok(())
}

#[test]
fn spill_files_are_deleted_after_their_last_consumer() -> setl_core::Result<()> {
    let base = tempfile::tempdir()?;
    let tight = Setl::builder().threads(1).memory_budget(0).spill_dir(base.path()).build()?;
    let (watch, alive) = (Watch::default(), Arc::default());
    let mut pipeline = chain(&tight, &watch, &alive);
    pipeline.add_stage_from_type::<Join>();
    pipeline.run()?;
    assert_eq!(*pipeline.output::<Probe>()?, expected_sum());
    let stats = pipeline.cache_stats().unwrap();
    // Step1 goes straight to its only consumer and never spills; Source and Step2 wait for Join,
    // on disk, and their files go once Join read them; Join, a result, stays on disk.
    assert_eq!((stats.spill_files, stats.reloads, stats.spill_files_deleted), (3, 2, 2), "{stats}");
    assert_eq!(files_under(base.path()), ["0004-Join.blob"]);
    assert_eq!(pipeline.output::<Join>()?.0.len(), LEN);
    drop(pipeline);
    assert_eq!(files_under(base.path()), Vec::<String>::new());
    Ok(())
}

/// Fails in `process`, after its input was spilled and read back.
#[factory]
#[derive(Default)]
struct Failing {
    #[delivery(producer = Step1)]
    input: Delivery<Blob>,
}

impl Factory for Failing {
    type Output = Blob;
    fn process(&mut self) -> Result<()> {
        Err(Error::msg("disk full"))
    }
    fn get(&self) -> Blob {
        self.input.get().clone()
    }
}

/// Also consumes Source, so that Source's spill file is still needed when Failing fails.
#[factory]
#[derive(Default)]
struct Late {
    #[delivery(producer = Source)]
    input: Delivery<Blob>,
    #[delivery(producer = Failing)]
    failing: Delivery<Blob>,
}

impl Factory for Late {
    type Output = usize;
    fn get(&self) -> usize {
        self.input.get().0.len()
    }
}

#[test]
fn spill_files_are_gone_after_a_failed_run() -> setl_core::Result<()> {
    let base = tempfile::tempdir()?;
    let tight = Setl::builder().threads(1).memory_budget(0).spill_dir(base.path()).build()?;
    let mut pipeline = tight.new_pipeline();
    pipeline
        .add_factory(Source::default())
        .add_stage_from_type::<Step1>()
        .add_stage_from_type::<Failing>()
        .add_stage_from_type::<Late>();
    let error = pipeline.run().unwrap_err();
    assert_eq!(error.to_string(), "factory `Failing` failed in process: disk full");
    let stats = pipeline.cache_stats().unwrap();
    assert_eq!(stats.spill_files, 1, "{stats}");
    // Source's file waits for Late, which never ran.
    assert_eq!(files_under(base.path()), ["0000-Source.blob"]);
    drop(pipeline);
    assert_eq!(files_under(base.path()), Vec::<String>::new());
    Ok(())
}

/// A source persisted on disk only by its declaration.
#[factory(storage = disk_only)]
#[derive(Default)]
struct DiskSource;

impl Factory for DiskSource {
    type Output = Blob;
    fn get(&self) -> Blob {
        Blob::filled(LEN, 3)
    }
}

#[factory]
#[derive(Default)]
struct ReaderA {
    #[delivery(producer = DiskSource)]
    input: Delivery<Blob>,
}

impl Factory for ReaderA {
    type Output = usize;
    fn get(&self) -> usize {
        self.input.get().0.iter().filter(|&&byte| byte % 2 == 0).count()
    }
}

#[factory]
#[derive(Default)]
struct ReaderB {
    #[delivery(producer = DiskSource)]
    input: Delivery<Blob>,
}

impl Factory for ReaderB {
    type Output = usize;
    fn get(&self) -> usize {
        self.input.get().0.len()
    }
}

fn two_readers(setl: &Setl) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_stage_from_type::<DiskSource>()
        .add_stage(Stage::new().add_factory(ReaderA::default()).add_factory(ReaderB::default()));
    pipeline
}

#[test]
fn disk_only_outputs_are_read_back_by_each_consumer() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(1).build()?;
    let evens = Blob::filled(LEN, 3).0.iter().filter(|&&byte| byte % 2 == 0).count();

    let mut declared = two_readers(&setl);
    declared.run()?;
    let stats = declared.cache_stats().unwrap();
    assert_eq!((stats.spill_files, stats.reloads, stats.spill_files_deleted), (1, 2, 1), "{stats}");
    // Written while in memory, then one reader at a time holds a copy.
    assert_eq!(stats.peak_bytes, LEN as u64, "{stats}");
    assert_eq!((*declared.output::<ReaderA>()?, *declared.output::<ReaderB>()?), (evens, LEN));

    let mut unpersisted = two_readers(&setl);
    unpersisted.unpersist::<DiskSource>();
    unpersisted.run()?;
    let stats = unpersisted.cache_stats().unwrap();
    assert_eq!((stats.spill_files, stats.reloads), (0, 0), "{stats}");
    assert_eq!((*unpersisted.output::<ReaderA>()?, *unpersisted.output::<ReaderB>()?), (evens, LEN));
    Ok(())
}

#[test]
fn memory_only_outputs_never_spill() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(1).memory_budget(0).build()?;
    let mut pipeline = two_readers(&setl);
    pipeline.persist::<DiskSource>(StorageLevel::MemoryOnly);
    pipeline.run()?;
    let stats = pipeline.cache_stats().unwrap();
    assert_eq!((stats.spill_files, stats.reloads), (0, 0), "{stats}");
    assert_eq!(stats.peak_bytes, LEN as u64, "{stats}");
    Ok(())
}

/// A lazy payload: a recipe run by every `value()` call unless materialized.
#[derive(Clone)]
struct LazyBlob {
    materialized: Option<Blob>,
    counter: setl_core::LazyCounter,
}

impl LazyBlob {
    fn value(&self) -> Blob {
        match &self.materialized {
            Some(blob) => blob.clone(),
            None => {
                self.counter.record();
                Blob::filled(LEN, 11)
            }
        }
    }
}

impl Storable for LazyBlob {
    fn byte_size(&self) -> usize {
        self.materialized.as_ref().map_or(0, Storable::byte_size)
    }
    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        self.value().spill(path)
    }
    fn reload(path: &Path) -> Result<Self, BoxError> {
        Ok(LazyBlob { materialized: Some(Blob::reload(path)?), counter: setl_core::LazyCounter::new() })
    }
    fn materialize(&self) -> Result<Option<Self>, BoxError> {
        Ok(Some(LazyBlob { materialized: Some(self.value()), counter: self.counter.clone() }))
    }
    fn lazy_counter(&self) -> Option<setl_core::LazyCounter> {
        Some(self.counter.clone())
    }
}

#[factory]
#[derive(Default)]
struct Recipe;

impl Factory for Recipe {
    type Output = LazyBlob;
    fn get(&self) -> LazyBlob {
        LazyBlob { materialized: None, counter: setl_core::LazyCounter::new() }
    }
}

macro_rules! lazy_consumer {
    ($name:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = Recipe)]
            input: Delivery<LazyBlob>,
        }

        impl Factory for $name {
            type Output = usize;
            fn get(&self) -> usize {
                self.input.get().value().0.len()
            }
        }
    };
}

lazy_consumer!(LazyA);
lazy_consumer!(LazyB);
lazy_consumer!(LazyC);

#[test]
fn a_lazy_output_runs_once_per_consumer_unless_persisted() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let build = || {
        let mut pipeline = setl.new_pipeline();
        pipeline.add_stage_from_type::<Recipe>().add_stage(
            Stage::new().add_factory(LazyA::default()).add_factory(LazyB::default()).add_factory(LazyC::default()),
        );
        pipeline
    };
    let mut uncached = build();
    uncached.run()?;
    let stats = uncached.cache_stats().unwrap();
    assert_eq!((stats.lazy_runs, stats.lazy_recomputations, stats.materializations), (3, 2, 0), "{stats}");

    let mut cached = build();
    cached.persist::<Recipe>(StorageLevel::MemoryAndDisk);
    cached.run()?;
    let stats = cached.cache_stats().unwrap();
    assert_eq!((stats.lazy_runs, stats.lazy_recomputations, stats.materializations), (1, 0, 1), "{stats}");
    assert_eq!(*cached.output::<LazyC>()?, LEN);
    Ok(())
}
