//! A pipeline whose intermediates do not all fit in the memory budget: it completes, spills the
//! datasets needed furthest in the future to Arrow IPC files, reads them back when their
//! consumer runs, and gives the same results as without a budget.
//!
//! `cargo run --example memory_budget`
//!
//! `Load` makes 8 MB of numbers; `Clean`, `Enrich` and `Score` each derive another 8 MB dataset;
//! `CheckLoad`, `CheckClean` and `CheckEnrich` compare those with `Score` at the end, so they wait
//! while the chain runs. Without a budget they stay in memory all along (4 datasets at the
//! peak); with a 16 MiB budget (2 datasets), the waiting ones go to disk and come back, one at a
//! time, for their check, and the peak drops to 3 datasets: a new dataset is held until the
//! older one is written out, since spilling happens after a factory finishes. One thread, so
//! that the checks do not each hold a copy at once.

use std::sync::Arc;

use setl_arrow::arrow::array::{Array, Float64Array, Int64Array, RecordBatch};
use setl_arrow::arrow::datatypes::{DataType, Field, Schema};
use setl_arrow::Dataset;
use setl_core::prelude::*;

const ROWS: i64 = 1_000_000;
const BUDGET: u64 = 16 << 20;

/// One column of `f64`s as a dataset (8 bytes a row), in batches of 100,000 rows.
fn floats(values: impl Iterator<Item = f64>) -> Result<Dataset> {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let values: Vec<f64> = values.collect();
    let batches = values
        .chunks(100_000)
        .map(|chunk| RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(chunk.to_vec()))]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Dataset::try_new(schema, batches)?)
}

fn values(dataset: &Dataset) -> impl Iterator<Item = f64> + '_ {
    dataset.batches().iter().flat_map(|batch| {
        let column = batch.column(0).as_any().downcast_ref::<Float64Array>().expect("x is Float64");
        column.values().iter().copied()
    })
}

#[factory]
#[derive(Default)]
struct Load {
    data: Option<Dataset>,
}

impl Factory for Load {
    type Output = Dataset;
    fn read(&mut self) -> Result<()> {
        let ids = Int64Array::from_iter_values(0..ROWS);
        self.data = Some(floats(ids.values().iter().map(|&id| (id % 1000) as f64))?);
        Ok(())
    }
    fn get(&self) -> Dataset {
        self.data.clone().expect("read ran")
    }
}

macro_rules! step {
    ($name:ident, $input:ident, $f:expr) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = $input)]
            input: Delivery<Dataset>,
            data: Option<Dataset>,
        }

        impl Factory for $name {
            type Output = Dataset;
            fn process(&mut self) -> Result<()> {
                let f: fn(f64) -> f64 = $f;
                self.data = Some(floats(values(self.input.get()).map(f))?);
                Ok(())
            }
            fn get(&self) -> Dataset {
                self.data.clone().expect("process ran")
            }
        }
    };
}

step!(Clean, Load, |x| x.max(1.0));
step!(Enrich, Clean, |x| x.ln());
step!(Score, Enrich, |x| x * 2.0 + 1.0);

/// Compares an early dataset with the last one; runs at the end, so `early` waits meanwhile.
macro_rules! check {
    ($name:ident, $early:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = $early)]
            early: Delivery<Dataset>,
            #[delivery(producer = Score)]
            scored: Delivery<Dataset>,
            total: f64,
        }

        impl Factory for $name {
            type Output = f64;
            fn process(&mut self) -> Result<()> {
                self.total = values(self.early.get()).zip(values(self.scored.get())).map(|(a, b)| a * b).sum();
                Ok(())
            }
            fn get(&self) -> f64 {
                self.total
            }
        }
    };
}

check!(CheckLoad, Load);
check!(CheckClean, Clean);
check!(CheckEnrich, Enrich);

#[factory]
#[derive(Default)]
struct Report {
    #[delivery(producer = CheckLoad)]
    load: Delivery<f64>,
    #[delivery(producer = CheckClean)]
    clean: Delivery<f64>,
    #[delivery(producer = CheckEnrich)]
    enrich: Delivery<f64>,
}

impl Factory for Report {
    type Output = f64;
    fn get(&self) -> f64 {
        self.load.get() + self.clean.get() + self.enrich.get()
    }
}

fn run(setl: &Setl) -> setl_core::Result<(f64, setl_core::CacheStats)> {
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_stage_from_type::<Load>()
        .add_stage_from_type::<Clean>()
        .add_stage_from_type::<Enrich>()
        .add_stage_from_type::<Score>()
        .add_stage(
            Stage::new()
                .add_factory(CheckLoad::default())
                .add_factory(CheckClean::default())
                .add_factory(CheckEnrich::default()),
        )
        .add_stage_from_type::<Report>();
    pipeline.run()?;
    if let Some(dir) = pipeline.spill_dir() {
        println!("spill directory (deleted with the pipeline): {}", dir.display());
    }
    let stats = pipeline.cache_stats().cloned().unwrap_or_default();
    Ok((*pipeline.output::<Report>()?, stats))
}

fn main() -> setl_core::Result<()> {
    println!("--- Without a budget ---");
    let (unbounded, stats) = run(&Setl::builder().threads(1).build()?)?;
    println!("{stats}\n");

    println!("--- With a budget of {} MiB ---", BUDGET >> 20);
    let (bounded, stats) = run(&Setl::builder().threads(1).memory_budget(BUDGET).build()?)?;
    println!("{stats}\n");

    println!("report total: {unbounded} without a budget, {bounded} with it");
    if unbounded.to_bits() != bounded.to_bits() {
        return Err(Error::msg("spilling changed the result"));
    }
    println!("identical results; {} files spilled, {} reloads", stats.spill_files, stats.reloads);
    Ok(())
}
