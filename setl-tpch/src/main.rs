//! The main job of setl-rs: a TPC-H ETL pipeline on DataFusion.
//!
//! ```text
//! cargo run --release -p setl-tpch -- --scale 1 --threads 2
//! ```
//!
//! Extract generates the TPC-H tables once (Parquet, plus CSV for lineitem and orders) into
//! `--data`; Transform computes queries 1, 3, 5, 6, 10 and 12, one factory each, sharing the
//! lineitem, orders and customer tables through deliveries; Load runs the queries together (each
//! shared table is read once, streamed to all of them) and writes every result as Parquet and
//! CSV into `--out`, atomically. It prints progress and the benchmark report (with each factory's
//! lazy work, wherever it executed), writes the Mermaid diagram of the pipeline and the run
//! report (HTML, JSON, Perfetto trace) next to the results, and ends with a one-line summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use setl_core::{HasBenchmark, Setl};
use setl_datafusion::{Engine, EngineSettings};
use setl_report::{summary, RunRecorder};
use setl_tpch::{report, Format, JobConfig, Share};

const HELP: &str = "\
setl-tpch: TPC-H queries 1, 3, 5, 6, 10 and 12 as a setl-rs pipeline on DataFusion

USAGE:
    cargo run --release -p setl-tpch -- [OPTIONS]

OPTIONS:
    --scale <factor>    TPC-H scale factor [default: 1]
    --data <dir>        where the tables are generated once and reused
                        [default: target/tpch/sf<factor>/data]
    --out <dir>         where the results go [default: target/tpch/sf<factor>/out]
    --threads <n>       threads for the whole job, factories and queries [default: CPUs]
    --format <fmt>      read lineitem and orders from `parquet` or `csv` [default: parquet]
    --share <how>       how queries share lineitem, orders and customer: `stream`
                        (read once, streamed to the queries running together),
                        `materialize` (read once, held whole) or `none` (every query
                        scans the files) [default: stream]
    --no-share          the same as --share none
    --sequential        run one factory at a time
    --query-partitions <n>
                        partitions each query is planned for [default: the threads
                        when sequential, the threads shared among concurrent queries
                        otherwise]
    --shared-buffer <MiB>
                        memory the batches of a shared table may take while they wait
                        for the queries that lag behind; past it they spill to disk
                        [default: a quarter of the machine's memory, 256 MiB to 16 GiB]
    --no-report         do not write the run report (report.html, report.json and the
                        Perfetto trace trace.json) into --out
    -h, --help          print this help
";

struct Args {
    scale: f64,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    threads: Option<usize>,
    format: Format,
    share: Share,
    parallel: bool,
    query_partitions: Option<usize>,
    shared_buffer_mib: Option<usize>,
    report: bool,
}

fn parse_args() -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        scale: 1.0,
        data: None,
        out: None,
        threads: None,
        format: Format::Parquet,
        share: Share::Stream,
        parallel: true,
        query_partitions: None,
        shared_buffer_mib: None,
        report: true,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("scale") => {
                args.scale = parser.value()?.parse()?;
                if !(args.scale > 0.0 && args.scale.is_finite()) {
                    return Err("--scale must be a positive number, e.g. 0.1 or 1".into());
                }
            }
            Long("data") => args.data = Some(parser.value()?.into()),
            Long("out") => args.out = Some(parser.value()?.into()),
            Long("threads") => args.threads = Some(parser.value()?.parse()?),
            Long("format") => {
                args.format = match parser.value()?.string()?.as_str() {
                    "parquet" => Format::Parquet,
                    "csv" => Format::Csv,
                    other => return Err(format!("--format must be `parquet` or `csv`, not `{other}`").into()),
                }
            }
            Long("share") => {
                args.share = match parser.value()?.string()?.as_str() {
                    "stream" => Share::Stream,
                    "materialize" => Share::Materialize,
                    "none" => Share::None,
                    other => {
                        return Err(format!("--share must be `stream`, `materialize` or `none`, not `{other}`").into())
                    }
                }
            }
            Long("no-share") => args.share = Share::None,
            Long("sequential") => args.parallel = false,
            Long("query-partitions") => args.query_partitions = Some(parser.value()?.parse()?),
            Long("shared-buffer") => args.shared_buffer_mib = Some(parser.value()?.parse()?),
            Long("no-report") => args.report = false,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(args))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}\n\n{HELP}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> setl_core::Result<()> {
    let started = Instant::now();
    let cpu_before = summary::cpu_time();
    let mut builder = Setl::builder();
    if let Some(threads) = args.threads {
        builder = builder.threads(threads);
    }
    if let Some(mib) = args.shared_buffer_mib {
        let settings = EngineSettings { shared_buffer_bytes: mib.saturating_mul(1 << 20), ..EngineSettings::default() };
        builder = builder.extension(settings);
    }
    let setl = builder.build()?;
    let mut config = JobConfig::new(
        args.scale,
        args.data.unwrap_or_else(|| setl_tpch::default_data_dir(args.scale)),
        args.out.unwrap_or_else(|| setl_tpch::default_out_dir(args.scale)),
        setl.threads(),
    );
    config.format = args.format;
    config.share = args.share;
    config.parallel = args.parallel;
    config.query_partitions = args.query_partitions;
    eprintln!(
        "TPC-H scale {} on {} threads, tables shared by {:?}, queries planned for {} partition(s): data {}, results {}",
        config.scale,
        config.threads,
        config.share,
        config.partitions_per_query(),
        config.data.display(),
        config.out.display()
    );

    setl_tpch::clean_up_on_signal(vec![config.data.clone(), config.out.clone()])?;
    let mut pipeline = setl_tpch::pipeline(&setl, &config)?;
    pipeline.observe(Arc::new(report::Progress::default()));
    let recorder = args.report.then(|| Arc::new(RunRecorder::new().measure_storable(&pipeline)));
    if let Some(recorder) = &recorder {
        pipeline.observe(recorder.clone());
    }
    pipeline.run()?;
    // Written once the run succeeded: a failed run leaves the previous results as they were.
    let diagram = config.out.join("pipeline.mmd");
    setl_datafusion::write_atomic(&diagram, |file| {
        use std::io::Write;
        Ok(file.write_all(pipeline.to_mermaid().as_bytes())?)
    })?;

    let benchmarks = pipeline.benchmarks();
    println!();
    for result in &benchmarks {
        println!("{result}");
    }
    println!("\n{}", summary::benchmark_table(&benchmarks));
    let files = pipeline.output::<setl_tpch::Extract>()?;
    let results = setl_tpch::results(&pipeline)?;
    for (name, frame) in results.iter() {
        if let Some(dataset) = frame.materialized() {
            println!(
                "{name}: {} rows -> {}",
                dataset.num_rows(),
                config.out.join(format!("{name}.{{parquet,csv}}")).display()
            );
        }
    }
    println!("diagram: {}", diagram.display());
    if let Some(recorder) = recorder {
        let report = recorder.report(&pipeline, None);
        let html = config.out.join("report.html");
        setl_report::write_file(&html, report.to_html())?;
        setl_report::write_file(config.out.join("report.json"), report.to_json())?;
        setl_report::write_file(config.out.join("trace.json"), report.to_chrome_trace())?;
        println!("run report: {} (and report.json, trace.json for ui.perfetto.dev beside it)", html.display());
    }
    if files.generated {
        println!("tables generated into {} (reused by later runs)", files.dir.display());
    }
    let (rows_in, rows_out) = setl_tpch::row_counts(&files, &results);
    let engine = Engine::of(&setl)?;
    let cpu = match (cpu_before, summary::cpu_time()) {
        (Some(before), Some(after)) => format!(", cpu {:.2} s", (after - before).as_secs_f64()),
        _ => String::new(),
    };
    println!(
        "done: {rows_in} rows in, {rows_out} rows out, wall {:.2} s{cpu}, peak held {}, spilled {}, peak rss {}",
        started.elapsed().as_secs_f64(),
        summary::bytes(engine.peak_held_bytes() as u64),
        summary::bytes(engine.shared_spilled_bytes()),
        summary::peak_rss().map_or_else(|| "n/a".to_owned(), summary::bytes),
    );
    Ok(())
}
