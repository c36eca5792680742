//! The work of lazy plans charged to the factories that defined them: a reader's scan and a
//! query factory's operators, executed later in `Load`, show under the reader and the query,
//! with where they ran; a shared read shows once, under its reader; a plan fused from three
//! factories is split three ways, and adds up to the phase that ran it; a plan that fails
//! halfway still reports what ran.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use setl_core::prelude::*;
use setl_core::{BenchmarkResult, ExecutedWork, Phase};
use setl_datafusion::arrow::datatypes::{DataType, Field, Schema};
use setl_datafusion::arrow::util::pretty::pretty_format_batches;
use setl_datafusion::{write_parquet, CsvScan, Engine, Frame, ParquetScan};

const ROWS: u64 = 20_000;
const BIG: &str = "SELECT k, count(*) AS n, sum(x) AS s FROM orders WHERE x > 10 GROUP BY k ORDER BY k";
const SMALL: &str = "SELECT max(x) AS m FROM orders WHERE k = 3";

/// Fails the test if `work` has not ended in 60 s.
fn within_a_minute<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(work()));
    receiver.recv_timeout(Duration::from_secs(60)).expect("the pipeline did not end within a minute")
}

fn write_orders(dir: &Path) -> PathBuf {
    write_orders_of(dir, ROWS)
}

/// `rows` orders `x` = 1, 2, .. with `k = x % 7`.
fn write_orders_of(dir: &Path, rows: u64) -> PathBuf {
    let engine = Engine::standalone(1, &Default::default()).unwrap();
    let sql = format!("SELECT value AS x, value % 7 AS k FROM generate_series(1, {rows}) AS t(value)");
    let data = engine.session().sql("orders", &sql).unwrap().collect().unwrap();
    let path = dir.join("orders.parquet");
    write_parquet(&data, &path).unwrap();
    path
}

#[factory]
struct ReadOrders {
    engine: Engine,
    path: PathBuf,
    shared: bool,
    out: Option<Frame>,
}

impl Factory for ReadOrders {
    type Output = Frame;
    fn read(&mut self) -> Result<()> {
        let scan = ParquetScan::new(&self.path).read(&self.engine.session())?;
        self.out = Some(if self.shared { scan.shared() } else { scan });
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in read")
    }
}

/// A factory whose `process` plans `$sql` over the frame of `$producer`, registered as `$table`.
macro_rules! query {
    ($name:ident, $producer:ident as $table:literal, $sql:expr) => {
        #[factory]
        struct $name {
            #[delivery(producer = $producer)]
            input: Delivery<Frame>,
            engine: Engine,
            out: Option<Frame>,
        }

        impl $name {
            fn new(engine: &Engine) -> Self {
                $name { input: Delivery::new(), engine: engine.clone(), out: None }
            }
        }

        impl Factory for $name {
            type Output = Frame;
            fn process(&mut self) -> Result<()> {
                self.out = Some(self.engine.query(stringify!($name), $sql, [($table, self.input.get())])?);
                Ok(())
            }
            fn get(&self) -> Frame {
                self.out.clone().expect("set in process")
            }
        }
    };
}

query!(Big, ReadOrders as "orders", BIG);
query!(Small, ReadOrders as "orders", SMALL);
query!(Filtered, ReadOrders as "orders", "SELECT x, k FROM orders WHERE x > 10");
query!(Grouped, Filtered as "filtered", "SELECT k, count(*) AS n, sum(x) AS s FROM filtered GROUP BY k ORDER BY k");
query!(Summed, ReadEvents as "events", "SELECT k, sum(x) AS s FROM events GROUP BY k");

/// A factory that collects the frame of `$producer` in its `process`: the plan runs there.
macro_rules! collect {
    ($name:ident, $producer:ident) => {
        #[factory]
        #[derive(Default)]
        struct $name {
            #[delivery(producer = $producer)]
            frame: Delivery<Frame>,
            rows: usize,
        }

        impl Factory for $name {
            type Output = usize;
            fn process(&mut self) -> Result<()> {
                self.rows = self.frame.get().collect()?.num_rows();
                Ok(())
            }
            fn get(&self) -> usize {
                self.rows
            }
        }
    };
}

collect!(CollectGrouped, Grouped);
collect!(CollectSummed, Summed);

/// Reads a CSV file of `x,k` rows with the schema given.
#[factory]
struct ReadEvents {
    engine: Engine,
    path: PathBuf,
    out: Option<Frame>,
}

impl Factory for ReadEvents {
    type Output = Frame;
    fn read(&mut self) -> Result<()> {
        let schema =
            Schema::new(vec![Field::new("x", DataType::Int64, false), Field::new("k", DataType::Int64, false)]);
        self.out = Some(CsvScan::new(&self.path).schema(Arc::new(schema)).read(&self.engine.session())?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in read")
    }
}

/// Runs both queries together, as the main job's `Load` does.
#[factory]
struct Load {
    #[delivery(producer = Big)]
    big: Delivery<Frame>,
    #[delivery(producer = Small)]
    small: Delivery<Frame>,
    out: Vec<String>,
}

impl Factory for Load {
    type Output = Vec<String>;
    fn process(&mut self) -> Result<()> {
        let results = Frame::collect_all(&[self.big.get(), self.small.get()])?;
        self.out = results
            .iter()
            .map(|data| pretty_format_batches(data.batches()).map(|table| table.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        Ok(())
    }
    fn get(&self) -> Vec<String> {
        self.out.clone()
    }
}

struct Run {
    results: Vec<String>,
    benchmarks: Vec<BenchmarkResult>,
    big_plan: String,
}

fn run(path: PathBuf, shared: bool, benchmark: bool) -> Run {
    let setl = Setl::builder().threads(2).build().unwrap();
    let engine = Engine::of(&setl).unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(benchmark);
    pipeline
        .add_factory(ReadOrders { engine: engine.clone(), path, shared, out: None })
        .add_factory(Big::new(&engine))
        .add_factory(Small::new(&engine))
        .add_factory(Load { big: Delivery::new(), small: Delivery::new(), out: Vec::new() });
    pipeline.keep_output::<Big>();
    pipeline.run().unwrap();
    Run {
        results: (*pipeline.output::<Load>().unwrap()).clone(),
        benchmarks: pipeline.benchmarks(),
        big_plan: pipeline.output::<Big>().unwrap().explain().unwrap(),
    }
}

fn executed<'a>(benchmarks: &'a [BenchmarkResult], factory: &str) -> &'a [ExecutedWork] {
    &benchmarks.iter().find(|result| result.factory == factory).expect("benchmarked").executed
}

fn expected(path: &Path) -> Vec<String> {
    let engine = Engine::standalone(2, &Default::default()).unwrap();
    [BIG, SMALL]
        .iter()
        .map(|sql| {
            let session = engine.session();
            session.register("orders", &ParquetScan::new(path).read(&session).unwrap()).unwrap();
            let data = session.sql("expected", sql).unwrap().collect().unwrap();
            pretty_format_batches(data.batches()).unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_scan_and_queries_executed_in_load_are_charged_to_the_reader_and_the_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_orders(dir.path());
    let want = expected(&path);
    within_a_minute(move || {
        let run = run(path.clone(), false, true);
        assert_eq!(run.results, want);
        let load_process =
            |work: &ExecutedWork| work.executed_in.as_ref().map(ToString::to_string).as_deref() == Some("Load.process");

        // The reader's scan, once per query that fused it, executed in Load.
        let reader = executed(&run.benchmarks, "ReadOrders");
        assert_eq!(reader.len(), 2, "{reader:#?}");
        for work in reader {
            assert!(load_process(work), "{work:#?}");
            assert_eq!(work.defined_in.to_string(), "ReadOrders.read");
            assert_eq!(work.rows, ROWS, "the scan read every row: {work:#?}");
            assert!(work.operators[0].name.starts_with("DataSourceExec"), "{:#?}", work.operators);
        }

        // Each query's own operators, not the scan.
        for (factory, rows) in [("Big", 7), ("Small", 1)] {
            let works = executed(&run.benchmarks, factory);
            assert_eq!(works.len(), 1, "{factory}: {works:#?}");
            let work = &works[0];
            assert!(load_process(work), "{work:#?}");
            assert_eq!(work.rows, rows, "{factory}: {work:#?}");
            assert!(work.operators.iter().any(|operator| operator.name.starts_with("AggregateExec")));
            assert!(!work.operators.iter().any(|operator| operator.name.starts_with("DataSourceExec")));
            // Its aggregate's hash table, reserved in DataFusion's pool through its part's view
            // of the pool: at least as much as its largest operator reported on its own.
            let largest = work.operators.iter().map(|operator| operator.peak_memory).max().unwrap_or(0);
            assert!(work.peak_memory > 0 && work.peak_memory >= largest, "{factory}: {work:#?}");
        }
        // What the queries reserved is theirs, not the scan's below them.
        let scan_peak = executed(&run.benchmarks, "ReadOrders").iter().map(|work| work.peak_memory).max();
        assert!(scan_peak < Some(executed(&run.benchmarks, "Big")[0].peak_memory), "{scan_peak:?}");

        // The seed's text form says where the reader's work ran.
        let reader = run.benchmarks.iter().find(|result| result.factory == "ReadOrders").unwrap();
        assert!(reader.to_string().contains("executed later, in Load.process: "), "{reader}");
        assert!(reader.to_string().contains(" 40,000 rows"), "{reader}");

        // The mark lets the filter reach the Parquet scan.
        assert!(run.big_plan.contains("DefinedExec: ReadOrders.read"), "{}", run.big_plan);
        let scan = run.big_plan.lines().find(|line| line.contains("DataSourceExec")).unwrap();
        assert!(scan.contains("predicate=x@0 > 10"), "{}", run.big_plan);
    });
}

#[test]
fn a_shared_read_is_charged_once_to_its_reader_and_says_how_it_was_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_orders(dir.path());
    let want = expected(&path);
    within_a_minute(move || {
        let run = run(path, true, true);
        assert_eq!(run.results, want);
        let reader = executed(&run.benchmarks, "ReadOrders");
        assert_eq!(reader.len(), 1, "{reader:#?}");
        assert_eq!(reader[0].rows, ROWS);
        assert_eq!(reader[0].shared.as_deref(), Some("read once, streamed to 2 queries"));
        for factory in ["Big", "Small"] {
            let works = executed(&run.benchmarks, factory);
            assert_eq!(works.len(), 1, "{factory}: {works:#?}");
            // Its scan of the shared frame counts the rows it took from the one read.
            let scan = works[0].operators.iter().find(|operator| operator.name.starts_with("SharedScanExec"));
            assert_eq!(scan.map(|scan| scan.rows), Some(ROWS), "{factory}: {works:#?}");
        }
    });
}

#[test]
fn without_benchmarks_nothing_is_measured_and_results_are_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_orders(dir.path());
    let want = expected(&path);
    within_a_minute(move || {
        for shared in [false, true] {
            let run = run(path.clone(), shared, false);
            assert_eq!(run.results, want, "shared: {shared}");
            assert!(run.benchmarks.is_empty());
        }
    });
}

#[test]
fn the_run_report_shows_the_work_under_its_definer_and_where_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_orders(dir.path());
    within_a_minute(move || {
        let setl = Setl::builder().threads(2).build().unwrap();
        let engine = Engine::of(&setl).unwrap();
        let mut pipeline = setl.new_pipeline();
        pipeline
            .add_factory(ReadOrders { engine: engine.clone(), path, shared: true, out: None })
            .add_factory(Big::new(&engine))
            .add_factory(Small::new(&engine))
            .add_factory(Load { big: Delivery::new(), small: Delivery::new(), out: Vec::new() });
        let (result, report) = setl_report::run_with_report(&mut pipeline, setl_report::RunRecorder::new());
        result.unwrap();
        let reader = report.factory("ReadOrders").unwrap();
        assert_eq!(reader.executed.len(), 1, "{:#?}", reader.executed);
        assert_eq!(reader.executed[0].executed_in.as_deref(), Some("Load.process"));
        assert_eq!(reader.executed[0].rows, ROWS);
        let loaded = setl_report::RunReport::from_json(&report.to_json()).unwrap();
        assert_eq!(loaded.factory("Big").unwrap().executed, report.factory("Big").unwrap().executed);

        let html = report.to_html();
        assert!(html.contains("<g class=\"attributed\" data-factory=\"ReadOrders\">"), "no attributed bar");
        assert!(html.contains("Top operators by CPU time"));
        assert!(html.contains("<details class=\"plans\"><summary><b>Big</b>"));
        let svg = report.to_timeline_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.contains("<g class=\"attributed\" data-factory=\"ReadOrders\">"));
        let trace = report.to_chrome_trace_value();
        let executed = trace["traceEvents"].as_array().unwrap().iter().filter(|event| event["cat"] == "executed");
        assert_eq!(executed.count(), 2 * (1 + 1 + 1), "a begin and an end per executed part");
    });
}

/// The phase time of `factory`'s `phase`.
fn phase_time(benchmarks: &[BenchmarkResult], factory: &str, phase: Phase) -> Duration {
    benchmarks.iter().find(|result| result.factory == factory).expect("benchmarked").phase(phase)
}

#[test]
fn a_plan_fused_from_three_factories_is_split_three_ways_and_adds_up_to_the_phase_that_ran_it() {
    const MANY: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = write_orders_of(dir.path(), MANY);
    within_a_minute(move || {
        // One thread: the CPU times of the operators cannot overlap, so their sum is bounded by
        // the wall time of the phase that ran them.
        let setl = Setl::builder().threads(1).build().unwrap();
        let engine = Engine::of(&setl).unwrap();
        let mut pipeline = setl.new_pipeline();
        pipeline.benchmark(true);
        pipeline
            .add_factory(ReadOrders { engine: engine.clone(), path, shared: false, out: None })
            .add_factory(Filtered::new(&engine))
            .add_factory(Grouped::new(&engine))
            .add_factory(CollectGrouped::default());
        pipeline.run().unwrap();
        assert_eq!(*pipeline.output::<CollectGrouped>().unwrap(), 7);
        let benchmarks = pipeline.benchmarks();
        let mut total = Duration::ZERO;
        for (factory, rows) in [("ReadOrders", MANY), ("Filtered", MANY - 10), ("Grouped", 7)] {
            let works = executed(&benchmarks, factory);
            assert_eq!(works.len(), 1, "{factory}: {works:#?}");
            let work = &works[0];
            assert_eq!(work.executed_in.as_ref().map(ToString::to_string).as_deref(), Some("CollectGrouped.process"));
            assert_eq!(work.rows, rows, "{factory}: {work:#?}");
            total += work.compute;
        }
        assert!(executed(&benchmarks, "CollectGrouped").is_empty(), "it defined nothing");
        // The bound: the three parts' CPU time is at most the phase's wall time (one thread;
        // 1% for the clocks' granularity), and at least half of it (the rest is planning and
        // collecting, small beside a million rows).
        let phase = phase_time(&benchmarks, "CollectGrouped", Phase::Process);
        assert!(total <= phase.mul_f64(1.01), "attributed {total:?} > the phase's {phase:?}");
        assert!(total >= phase / 2, "attributed {total:?} is less than half the phase's {phase:?}");
    });
}

#[test]
fn a_plan_that_fails_halfway_still_reports_what_ran() {
    const LINES: u64 = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.csv");
    let mut csv = String::from("x,k\n");
    for x in 1..=LINES {
        // The one malformed value, near the end: most of the file is read before it.
        let value = if x == LINES - 100 { "12x5".to_owned() } else { x.to_string() };
        csv.push_str(&format!("{value},{}\n", x % 7));
    }
    std::fs::write(&path, csv).unwrap();
    within_a_minute(move || {
        let setl = Setl::builder().threads(1).build().unwrap();
        let engine = Engine::of(&setl).unwrap();
        let mut pipeline = setl.new_pipeline();
        pipeline.benchmark(true);
        pipeline
            .add_factory(ReadEvents { engine: engine.clone(), path, out: None })
            .add_factory(Summed::new(&engine))
            .add_factory(CollectSummed::default());
        let error = pipeline.run().expect_err("a malformed value fails the run").to_string();
        assert!(error.contains("CollectSummed"), "{error}");
        let benchmarks = pipeline.benchmarks();
        let works = executed(&benchmarks, "ReadEvents");
        assert_eq!(works.len(), 1, "{works:#?}");
        let work = &works[0];
        assert_eq!(work.executed_in.as_ref().map(ToString::to_string).as_deref(), Some("CollectSummed.process"));
        assert!(work.rows > 0 && work.rows < LINES, "what ran before the failure: {work:#?}");
        assert!(!work.compute.is_zero(), "{work:#?}");
    });
}
