//! The seed's caching example, made real: `SourceFactory -> TransformFactoryWithCache`, whose
//! output is a lazy dataset (a recipe, like a Spark DataFrame's lineage) consumed twice, by
//! `SinkFactory` and `SummaryFactory`.
//!
//! `cargo run --example seed_caching`
//!
//! Without caching, each consumer runs the transform's recipe again when it reads its input.
//! With `pipeline.persist::<TransformFactoryWithCache>(StorageLevel::MemoryAndDisk)` (the seed's
//! `persist(StorageLevel.MEMORY_AND_DISK)`), the recipe runs once, inside the transform, and the
//! consumers' `read` drops to almost nothing. Both benchmark reports and the cache statistics are
//! printed, then the consumers' read times side by side.
//!
//! The recipe does real work (upper-casing 200,000 strings) plus a 0.15 s sleep standing for the
//! rest of an expensive lineage (joins, shuffles) that the seed simulates with sleeps.

use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use setl_arrow::arrow::array::{Array, Int32Array, RecordBatch, StringArray};
use setl_arrow::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use setl_arrow::arrow::error::ArrowError;
use setl_arrow::{Dataset, LazyDataset};
use setl_core::prelude::*;

const ROWS: i32 = 200_000;

fn schema_a() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false), Field::new("value", DataType::Utf8, false)]))
}

fn schema_b() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("processed_value", DataType::Utf8, false),
    ]))
}

/// Reads the source rows (the seed's `DataA`).
#[factory]
#[derive(Default)]
struct SourceFactory {
    data: Option<Dataset>,
}

impl Factory for SourceFactory {
    type Output = Dataset;

    fn read(&mut self) -> Result<()> {
        let ids = Int32Array::from_iter_values(0..ROWS);
        let values = StringArray::from_iter_values((0..ROWS).map(|id| format!("val_{id}")));
        let batch = RecordBatch::try_new(schema_a(), vec![Arc::new(ids), Arc::new(values)])?;
        self.data = Some(Dataset::try_new(schema_a(), vec![batch])?);
        Ok(())
    }

    fn get(&self) -> Dataset {
        self.data.clone().expect("read ran")
    }
}

/// The expensive transform: `processed_value = upper(value)`, as a recipe.
fn transform(input: &Dataset) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
    sleep(Duration::from_millis(150));
    input
        .batches()
        .iter()
        .map(|batch| {
            let values = batch.column(1).as_any().downcast_ref::<StringArray>().expect("value is Utf8");
            let processed: StringArray = values.iter().map(|value| value.map(str::to_uppercase)).collect();
            RecordBatch::try_new(schema_b(), vec![batch.column(0).clone(), Arc::new(processed)])
        })
        .collect()
}

/// The seed's `TransformFactoryWithCache`: hands on a lazy dataset. Whether it is cached is the
/// pipeline's decision (`persist`), not the factory's.
#[factory]
#[derive(Default)]
struct TransformFactoryWithCache {
    #[delivery(producer = SourceFactory)]
    input_data: Delivery<Dataset>,
}

impl Factory for TransformFactoryWithCache {
    type Output = LazyDataset;

    fn get(&self) -> LazyDataset {
        let input = self.input_data.get().clone();
        LazyDataset::new(schema_b(), move || transform(&input))
    }
}

/// The seed's `SinkFactory`: `final_value = processed_value`.
#[factory]
#[derive(Default)]
struct SinkFactory {
    #[delivery(producer = TransformFactoryWithCache)]
    input_data: Delivery<LazyDataset>,
    data: Option<Dataset>,
    rows: usize,
}

impl Factory for SinkFactory {
    type Output = usize;

    fn read(&mut self) -> Result<()> {
        self.data = Some(self.input_data.get().collect()?);
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        let data = self.data.as_ref().expect("read ran");
        self.rows = data.batches().iter().map(|batch| batch.column(1).len()).sum();
        Ok(())
    }

    fn get(&self) -> usize {
        self.rows
    }
}

/// A second consumer of the transform's output: the longest processed value.
#[factory]
#[derive(Default)]
struct SummaryFactory {
    #[delivery(producer = TransformFactoryWithCache)]
    input_data: Delivery<LazyDataset>,
    data: Option<Dataset>,
    longest: usize,
}

impl Factory for SummaryFactory {
    type Output = usize;

    fn read(&mut self) -> Result<()> {
        self.data = Some(self.input_data.get().collect()?);
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        let data = self.data.as_ref().expect("read ran");
        self.longest = data
            .batches()
            .iter()
            .flat_map(|batch| {
                let values = batch.column(1).as_any().downcast_ref::<StringArray>().expect("Utf8");
                values.iter().flatten().map(str::len).collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0);
        Ok(())
    }

    fn get(&self) -> usize {
        self.longest
    }
}

/// Runs the pipeline with or without caching; returns the consumers' read times.
fn run(setl: &Setl, should_cache: bool) -> setl_core::Result<Duration> {
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline
        .add_stage_from_type::<SourceFactory>()
        .add_stage_from_type::<TransformFactoryWithCache>()
        .add_stage(Stage::new().add_factory(SinkFactory::default()).add_factory(SummaryFactory::default()));
    if should_cache {
        pipeline.persist::<TransformFactoryWithCache>(StorageLevel::MemoryAndDisk);
    }
    pipeline.run()?;
    println!(
        "sink rows: {}, longest value: {}",
        pipeline.output::<SinkFactory>()?,
        pipeline.output::<SummaryFactory>()?
    );
    let benchmarks = pipeline.benchmarks();
    for result in &benchmarks {
        println!("{result}");
    }
    if let Some(stats) = pipeline.cache_stats() {
        println!("{stats}");
    }
    Ok(benchmarks
        .iter()
        .filter(|result| result.factory == "SinkFactory" || result.factory == "SummaryFactory")
        .map(|result| result.read)
        .sum())
}

fn main() -> setl_core::Result<()> {
    let setl = Setl::builder().build()?;
    println!("\n--- Running Pipeline WITHOUT Caching ---");
    let without = run(&setl, false)?;
    println!("\n--- Running Pipeline WITH Caching ---");
    let with = run(&setl, true)?;
    println!(
        "\nconsumers' read time: {:.3} s without caching, {:.6} s with caching; the recipe ran once, inside \
         TransformFactoryWithCache (its total time includes it)",
        without.as_secs_f64(),
        with.as_secs_f64(),
    );
    Ok(())
}
