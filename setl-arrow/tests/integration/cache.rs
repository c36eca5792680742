//! Datasets in the pipeline's cache: buffers freed after the last consumer, spilled to Arrow IPC
//! and read back identical, lazy datasets run once per consumer or once when persisted, spill
//! files gone after success and failure.

use std::path::Path;
use std::sync::{Arc, Mutex};

use setl_arrow::arrow::array::{Array, Int64Array, RecordBatch};
use setl_arrow::arrow::buffer::Buffer;
use setl_arrow::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use setl_arrow::{Dataset, LazyDataset};
use setl_core::prelude::*;

const ROWS: i64 = 10_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
}

/// `ROWS` numbers from `start`, in 4 batches.
fn numbers(start: i64) -> Dataset {
    let schema = schema();
    let batches = (0..4)
        .map(|part| {
            let from = start + part * ROWS / 4;
            let column = Arc::new(Int64Array::from_iter_values(from..from + ROWS / 4));
            RecordBatch::try_new(schema.clone(), vec![column]).unwrap()
        })
        .collect();
    Dataset::try_new(schema, batches).unwrap()
}

/// Adds `delta` to every number.
fn shifted(input: &Dataset, delta: i64) -> Dataset {
    let batches = input
        .batches()
        .iter()
        .map(|batch| {
            let column = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let column = Arc::new(column.iter().map(|value| value.map(|value| value + delta)).collect::<Int64Array>());
            RecordBatch::try_new(input.schema().clone(), vec![column]).unwrap()
        })
        .collect();
    Dataset::try_new(input.schema().clone(), batches).unwrap()
}

fn sum(dataset: &Dataset) -> i64 {
    dataset
        .batches()
        .iter()
        .map(|batch| batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().iter().flatten().sum::<i64>())
        .sum()
}

/// The first buffer of a dataset, shared, to watch its reference count.
type Watched = Arc<Mutex<Option<Buffer>>>;

#[factory]
#[derive(Default)]
struct Source {
    watched: Watched,
}

impl Factory for Source {
    type Output = Dataset;
    fn get(&self) -> Dataset {
        let dataset = numbers(0);
        let values = dataset.batches()[0].column(0).to_data().buffers()[0].clone();
        *self.watched.lock().unwrap() = Some(values);
        dataset
    }
}

#[factory]
#[derive(Default)]
struct Double {
    #[delivery(producer = Source)]
    input: Delivery<Dataset>,
}

impl Factory for Double {
    type Output = Dataset;
    fn get(&self) -> Dataset {
        shifted(self.input.get(), 1)
    }
}

/// Records how many holders Source's first buffer has when it runs, besides the test's own.
#[factory]
#[derive(Default)]
struct Probe {
    #[delivery(producer = Double)]
    input: Delivery<Dataset>,
    watched: Watched,
    holders: Arc<Mutex<Option<usize>>>,
    sum: i64,
}

impl Factory for Probe {
    type Output = i64;
    fn read(&mut self) -> Result<()> {
        let watched = self.watched.lock().unwrap();
        let count = watched.as_ref().map(Buffer::strong_count).unwrap_or_default();
        *self.holders.lock().unwrap() = Some(count.saturating_sub(1));
        Ok(())
    }
    fn process(&mut self) -> Result<()> {
        self.sum = sum(self.input.get());
        Ok(())
    }
    fn get(&self) -> i64 {
        self.sum
    }
}

fn chain(setl: &Setl, watched: &Watched, holders: &Arc<Mutex<Option<usize>>>) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline.add_factory(Source { watched: watched.clone() }).add_stage_from_type::<Double>().add_factory(Probe {
        watched: watched.clone(),
        holders: holders.clone(),
        ..Probe::default()
    });
    pipeline
}

#[test]
fn a_datasets_buffers_are_freed_after_its_last_consumer() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let (watched, holders) = (Watched::default(), Arc::default());
    let mut released = chain(&setl, &watched, &holders);
    released.run()?;
    assert_eq!(*released.output::<Probe>()?, (0..ROWS).sum::<i64>() + ROWS);
    assert_eq!(*holders.lock().unwrap(), Some(0), "nothing but the test held Source's buffer when Probe ran");
    assert!(released.output::<Source>().is_err());
    let stats = released.cache_stats().unwrap();
    // The peak is Double at work: its input and its output, nothing else.
    let (source, doubled) = (numbers(0).byte_size() as u64, shifted(&numbers(0), 1).byte_size() as u64);
    assert_eq!(stats.peak_bytes, source + doubled, "{stats}");

    let (watched, holders) = (Watched::default(), Arc::default());
    let mut kept = chain(&setl, &watched, &holders);
    kept.keep_output::<Source>();
    kept.run()?;
    assert_eq!(*holders.lock().unwrap(), Some(1), "the store still held Source's dataset");
    assert_eq!(sum(&*kept.output::<Source>()?), (0..ROWS).sum::<i64>());
    Ok(())
}

/// Needs Source again after Probe's input, so that Source waits (on disk when over budget).
#[factory]
#[derive(Default)]
struct Compare {
    #[delivery(producer = Source)]
    source: Delivery<Dataset>,
    #[delivery(producer = Double)]
    doubled: Delivery<Dataset>,
    difference: i64,
}

impl Factory for Compare {
    type Output = Dataset;
    fn process(&mut self) -> Result<()> {
        self.difference = sum(self.doubled.get()) - sum(self.source.get());
        Ok(())
    }
    fn get(&self) -> Dataset {
        shifted(self.source.get(), self.difference)
    }
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|entry| if entry.path().is_dir() { files_under(&entry.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

#[test]
fn spilled_datasets_read_back_give_identical_results() -> setl_core::Result<()> {
    let run = |budget: Option<u64>, base: &Path| -> setl_core::Result<(Vec<RecordBatch>, setl_core::CacheStats)> {
        let mut builder = Setl::builder().threads(1).spill_dir(base);
        if let Some(budget) = budget {
            builder = builder.memory_budget(budget);
        }
        let setl = builder.build()?;
        let (watched, holders) = (Watched::default(), Arc::default());
        let mut pipeline = chain(&setl, &watched, &holders);
        pipeline.add_stage_from_type::<Compare>();
        pipeline.run()?;
        let batches = pipeline.output::<Compare>()?.batches().to_vec();
        Ok((batches, pipeline.cache_stats().unwrap().clone()))
    };
    let base = tempfile::tempdir()?;
    let (reference, plain) = run(None, base.path())?;
    assert_eq!((plain.spill_files, plain.reloads), (0, 0), "{plain}");
    let (spilled, stats) = run(Some(1024), base.path())?;
    assert_eq!(spilled, reference);
    assert!(stats.spill_files >= 2 && stats.reloads >= 2, "{stats}");
    assert!(stats.spilled_bytes >= 2 * numbers(0).byte_size() as u64, "{stats}");
    assert_eq!(files_under(base.path()), 0, "every spill file is gone with its pipeline");
    Ok(())
}

/// Fails after its inputs were spilled and read back.
#[factory]
#[derive(Default)]
struct Broken {
    #[delivery(producer = Source)]
    source: Delivery<Dataset>,
    #[delivery(producer = Double)]
    doubled: Delivery<Dataset>,
}

impl Factory for Broken {
    type Output = i64;
    fn process(&mut self) -> Result<()> {
        Err(Error::msg("the warehouse is closed"))
    }
    fn get(&self) -> i64 {
        0
    }
}

#[test]
fn spill_files_are_gone_after_a_failed_run() -> setl_core::Result<()> {
    let base = tempfile::tempdir()?;
    let setl = Setl::builder().threads(1).memory_budget(0).spill_dir(base.path()).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.keep_all_outputs(true);
    pipeline.add_factory(Source::default()).add_stage_from_type::<Double>().add_stage_from_type::<Broken>();
    let error = pipeline.run().unwrap_err();
    assert_eq!(error.to_string(), "factory `Broken` failed in process: the warehouse is closed");
    let stats = pipeline.cache_stats().unwrap();
    assert_eq!(stats.spill_files, 2, "{stats}");
    assert_eq!(files_under(base.path()), 2, "kept outputs wait on disk");
    assert_eq!(sum(&*pipeline.output::<Double>()?), (0..ROWS).sum::<i64>() + ROWS);
    drop(pipeline);
    assert_eq!(files_under(base.path()), 0);
    Ok(())
}

/// An expensive lazy dataset: its recipe runs on each use unless persisted.
#[factory]
#[derive(Default)]
struct Expensive;

impl Factory for Expensive {
    type Output = LazyDataset;
    fn get(&self) -> LazyDataset {
        LazyDataset::new(schema(), || Ok(shifted(&numbers(0), 10).batches().to_vec()))
    }
}

/// The same recipe, persisted by its declaration.
#[factory(storage = memory_and_disk)]
#[derive(Default)]
struct Declared;

impl Factory for Declared {
    type Output = LazyDataset;
    fn get(&self) -> LazyDataset {
        Expensive.get()
    }
}

macro_rules! consumer {
    ($name:ident, $producer:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = $producer)]
            input: Delivery<LazyDataset>,
            sum: i64,
        }

        impl Factory for $name {
            type Output = i64;
            fn read(&mut self) -> Result<()> {
                self.sum = sum(&self.input.get().collect()?);
                Ok(())
            }
            fn get(&self) -> i64 {
                self.sum
            }
        }
    };
}

consumer!(First, Expensive);
consumer!(Second, Expensive);
consumer!(Third, Expensive);
consumer!(FromDeclared, Declared);
consumer!(AlsoFromDeclared, Declared);

fn three_consumers(setl: &Setl) -> Pipeline {
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Expensive>().add_stage(
        Stage::new().add_factory(First::default()).add_factory(Second::default()).add_factory(Third::default()),
    );
    pipeline
}

#[test]
fn a_lazy_dataset_runs_per_consumer_without_cache_and_once_with_it() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let expected = (0..ROWS).sum::<i64>() + 10 * ROWS;

    let mut uncached = three_consumers(&setl);
    uncached.run()?;
    let stats = uncached.cache_stats().unwrap();
    assert_eq!((stats.lazy_runs, stats.lazy_recomputations), (3, 2), "{stats}");
    assert_eq!(*uncached.output::<Third>()?, expected);

    for level in [StorageLevel::MemoryOnly, StorageLevel::MemoryAndDisk, StorageLevel::DiskOnly] {
        let mut cached = three_consumers(&setl);
        cached.persist::<Expensive>(level);
        cached.run()?;
        let stats = cached.cache_stats().unwrap();
        assert_eq!((stats.lazy_runs, stats.lazy_recomputations, stats.materializations), (1, 0, 1), "{level}: {stats}");
        let reloads = if level == StorageLevel::DiskOnly { 3 } else { 0 };
        assert_eq!(stats.reloads, reloads, "{level}: {stats}");
        assert_eq!(
            (*cached.output::<First>()?, *cached.output::<Second>()?, *cached.output::<Third>()?),
            (expected, expected, expected)
        );
    }

    let mut declared = setl.new_pipeline();
    declared
        .add_stage_from_type::<Declared>()
        .add_stage(Stage::new().add_factory(FromDeclared::default()).add_factory(AlsoFromDeclared::default()));
    declared.run()?;
    assert_eq!(declared.cache_stats().unwrap().lazy_runs, 1);
    assert_eq!(*declared.output::<AlsoFromDeclared>()?, expected);
    Ok(())
}

/// A recipe whose batches do not have the declared schema.
#[factory]
#[derive(Default)]
struct Mislabelled;

impl Factory for Mislabelled {
    type Output = LazyDataset;
    fn get(&self) -> LazyDataset {
        let other = Arc::new(Schema::new(vec![Field::new("m", DataType::Int64, false)]));
        LazyDataset::new(schema(), move || {
            Ok(vec![RecordBatch::try_new(other.clone(), vec![Arc::new(Int64Array::from(vec![1]))])?])
        })
    }
}

#[test]
fn a_persisted_recipe_that_fails_fails_its_factory() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(1).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Mislabelled>().persist::<Mislabelled>(StorageLevel::MemoryOnly);
    let error = pipeline.run().unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("factory `Mislabelled` failed in get: Schema error: lazy dataset: batch 0"),
        "{message}"
    );
    Ok(())
}
