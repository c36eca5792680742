//! The seed's benchmark example: three factories that sleep in each phase, benchmarked.
//!
//! `cargo run --example seed_benchmark`
//!
//! Each printed phase should match its sleep: Source 0.1/0.05/0.2 s, Transform 0.08/0.15/0.03 s,
//! Sink 0.02/0.07/0.1 s (read/process/write).

use std::thread::sleep;
use std::time::Duration;

use setl_core::prelude::*;

/// A row of the source data (the seed's `DataA`).
#[derive(Debug, Clone)]
struct DataA {
    id: i32,
    value: String,
}

/// A processed row (the seed's `DataB`).
#[derive(Debug, Clone)]
struct DataB {
    id: i32,
    processed_value: String,
}

/// A final row (the seed's `DataC`).
#[derive(Debug, Clone)]
struct DataC {
    id: i32,
    final_value: String,
}

#[factory]
#[derive(Default)]
struct SourceFactory {
    rows: Vec<DataA>,
}

impl Factory for SourceFactory {
    type Output = Vec<DataA>;

    fn read(&mut self) -> Result<()> {
        self.rows = (0..10_000).map(|id| DataA { id, value: format!("val_{id}") }).collect();
        sleep(Duration::from_secs_f64(0.1));
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.05));
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.2));
        Ok(())
    }

    fn get(&self) -> Vec<DataA> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct TransformFactory {
    #[delivery(producer = SourceFactory)]
    input_data: Delivery<Vec<DataA>>,
    processed: Vec<DataB>,
}

impl Factory for TransformFactory {
    type Output = Vec<DataB>;

    fn read(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.08));
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        self.processed =
            self.input_data.get().iter().map(|row| DataB { id: row.id, processed_value: row.value.clone() }).collect();
        sleep(Duration::from_secs_f64(0.15));
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.03));
        Ok(())
    }

    fn get(&self) -> Vec<DataB> {
        self.processed.clone()
    }
}

#[factory]
#[derive(Default)]
struct SinkFactory {
    #[delivery(producer = TransformFactory)]
    input_data: Delivery<Vec<DataB>>,
    result: Vec<DataC>,
}

impl Factory for SinkFactory {
    type Output = Vec<DataC>;

    fn read(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.02));
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        self.result = self
            .input_data
            .get()
            .iter()
            .map(|row| DataC { id: row.id, final_value: row.processed_value.clone() })
            .collect();
        sleep(Duration::from_secs_f64(0.07));
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        sleep(Duration::from_secs_f64(0.1));
        Ok(())
    }

    fn get(&self) -> Vec<DataC> {
        self.result.clone()
    }
}

fn main() -> setl_core::Result<()> {
    let setl = Setl::builder().build()?;
    let mut pipeline = setl.new_pipeline().benchmark(true);
    pipeline
        .add_stage_from_type::<SourceFactory>()
        .add_stage_from_type::<TransformFactory>()
        .add_stage_from_type::<SinkFactory>();
    pipeline.run()?;

    let output = pipeline.output::<SinkFactory>()?;
    let last = output.last().expect("the source makes 10,000 rows");
    println!("SinkFactory produced {} rows; last: {} = {}", output.len(), last.id, last.final_value);

    println!("\n--- Pipeline Benchmark Results ---");
    for result in pipeline.benchmarks() {
        println!("{result}");
    }
    Ok(())
}
