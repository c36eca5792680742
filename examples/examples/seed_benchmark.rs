//! The seed's benchmark example: three factories that sleep in each phase, benchmarked.
//!
//! `cargo run --example seed_benchmark`
//!
//! With reports: `cargo run --example seed_benchmark -- --report report.html --trace trace.json`
//! (also `--json report.json`; `--no-progress` hides the progress bar, which is shown only when
//! stderr is a terminal anyway). Open the trace in ui.perfetto.dev or chrome://tracing.
//!
//! Each printed phase should match its sleep: Source 0.1/0.05/0.2 s, Transform 0.08/0.15/0.03 s,
//! Sink 0.02/0.07/0.1 s (read/process/write).

use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use setl_core::prelude::*;
use setl_report::{OutputSize, RunRecorder};

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

/// Where to write the reports, from the command line.
#[derive(Default)]
struct Args {
    report: Option<String>,
    trace: Option<String>,
    json: Option<String>,
    progress: bool,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args { progress: true, ..Args::default() };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or_else(|| format!("{name} needs a file name"));
        match arg.as_str() {
            "--report" => args.report = Some(value("--report")?),
            "--trace" => args.trace = Some(value("--trace")?),
            "--json" => args.json = Some(value("--json")?),
            "--no-progress" => args.progress = false,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: seed_benchmark [--report FILE.html] [--trace FILE.json] [--json FILE.json] [--no-progress]"
                ))
            }
        }
    }
    Ok(args)
}

/// Rows, and bytes held (the vector plus each row's string), of a vector of rows.
fn measure<T>(rows: &[T], text: impl Fn(&T) -> &String) -> OutputSize {
    let bytes = std::mem::size_of_val(rows) + rows.iter().map(|row| text(row).capacity()).sum::<usize>();
    OutputSize { rows: Some(rows.len() as u64), bytes: Some(bytes as u64) }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = parse_args()?;
    let setl = Setl::builder().build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline
        .add_stage_from_type::<SourceFactory>()
        .add_stage_from_type::<TransformFactory>()
        .add_stage_from_type::<SinkFactory>();

    let recorder = Arc::new(
        RunRecorder::new()
            .measure(|rows: &Vec<DataA>| measure(rows, |row| &row.value))
            .measure(|rows: &Vec<DataB>| measure(rows, |row| &row.processed_value))
            .measure(|rows: &Vec<DataC>| measure(rows, |row| &row.final_value)),
    );
    pipeline.observe(recorder.clone());
    if args.progress {
        if let Some(progress) = setl_report::progress::ProgressObserver::stderr_if_terminal() {
            pipeline.observe(Arc::new(progress));
        }
    }
    let result = pipeline.run().map(drop);
    let report = recorder.report(&pipeline, result.as_ref().err());
    for (path, text) in
        [(&args.report, report.to_html()), (&args.trace, report.to_chrome_trace()), (&args.json, report.to_json())]
    {
        if let Some(path) = path {
            setl_report::write_file(path, text)?;
            eprintln!("wrote {path}");
        }
    }
    result?;

    let output = pipeline.output::<SinkFactory>()?;
    let last = output.last().ok_or("the source makes 10,000 rows")?;
    println!("SinkFactory produced {} rows; last: {} = {}", output.len(), last.id, last.final_value);

    println!("\n--- Pipeline Benchmark Results ---");
    for result in pipeline.benchmarks() {
        println!("{result}");
    }
    Ok(())
}
