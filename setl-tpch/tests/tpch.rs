//! The TPC-H job at scale factor 0.01: every query's result equals the same query run directly
//! through DataFusion on the same files, and failures stop the run with an error naming the
//! factory, the phase and the file, leaving no partial output.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use setl_core::prelude::*;
use setl_core::{ErrorKind, Phase};
use setl_datafusion::arrow::array::RecordBatchReader;
use setl_datafusion::arrow::util::pretty::pretty_format_batches;
use setl_datafusion::{Engine, Frame};
use setl_tpch::generate::{ensure_tables, TpchFiles};
use setl_tpch::{Format, JobConfig, Share};

const SCALE: f64 = 0.01;

/// The tables, generated once per build directory and reused by every test and later runs.
fn tables() -> &'static TpchFiles {
    static FILES: OnceLock<TpchFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tpch-sf0.01");
        ensure_tables(&dir, SCALE).expect("TPC-H tables generate")
    })
}

/// A copy of the tables in a fresh directory, for tests that damage them.
fn copy_of_tables() -> tempfile::TempDir {
    let source = tables();
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source.dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

fn pretty(dataset: &setl_arrow::Dataset) -> String {
    pretty_format_batches(dataset.batches()).unwrap().to_string()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_parquet(path: &Path) -> setl_arrow::Dataset {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    setl_arrow::Dataset::try_new(schema, batches).unwrap()
}

/// Runs the job and checks every result against plain DataFusion on the same files.
fn check_job(config: &JobConfig) {
    let setl = Setl::builder().threads(config.threads).build().unwrap();
    let mut pipeline = setl_tpch::pipeline(&setl, config).unwrap();
    pipeline.run().unwrap();
    let results = setl_tpch::results(&pipeline).unwrap();
    let expected = setl_tpch::handwritten(tables(), &JobConfig { write: false, ..config.clone() }).unwrap();
    assert_eq!(results.len(), expected.len());
    for ((name, frame), (expected_name, expected)) in results.iter().zip(&expected) {
        assert_eq!(name, expected_name);
        let actual = frame.collect().unwrap();
        assert!(actual.num_rows() > 0, "{name} is empty");
        // Same values, in the same order (every query but Q6, a single row, sorts).
        assert_eq!(pretty(&actual), pretty(expected), "{name} differs from DataFusion run directly");
        if config.write {
            let written = read_parquet(&config.out.join(format!("{name}.parquet")));
            assert_eq!(pretty(&written), pretty(expected), "{name}.parquet");
            let csv = std::fs::read_to_string(config.out.join(format!("{name}.csv"))).unwrap();
            assert_eq!(csv.lines().count(), expected.num_rows() + 1, "{name}.csv: header + rows");
        }
    }
    let files = pipeline.output::<setl_tpch::Extract>().unwrap();
    let (rows_in, rows_out) = setl_tpch::row_counts(&files, &results);
    assert_eq!(rows_out, expected.iter().map(|(_, d)| d.num_rows()).sum::<usize>());
    assert!(rows_in > 60_000, "{rows_in}");
}

#[test]
fn parallel_shared_pipeline_matches_datafusion_and_writes_every_result() {
    let out = tempfile::tempdir().unwrap();
    let config = JobConfig::new(SCALE, &tables().dir, out.path(), 2);
    check_job(&config);
    let mut expected: Vec<String> = setl_tpch::queries::ALL
        .iter()
        .flat_map(|query| [format!("{}.csv", query.name), format!("{}.parquet", query.name)])
        .collect();
    expected.sort();
    assert_eq!(files_in(out.path()), expected, "only the results, no temporary file");
}

#[test]
fn csv_sources_without_sharing_run_sequentially_match_too() {
    let mut config = JobConfig::new(SCALE, &tables().dir, "unused", 2);
    config.format = Format::Csv;
    config.share = Share::None;
    config.parallel = false;
    config.write = false;
    check_job(&config);
}

#[test]
fn materialized_tables_are_read_once_and_released_after_the_last_query() {
    let setl = Setl::builder().threads(2).build().unwrap();
    let engine = Engine::of(&setl).unwrap();
    let mut config = JobConfig::new(SCALE, &tables().dir, "unused", 2);
    config.share = Share::Materialize;
    config.write = false;
    check_job(&config);
    let mut pipeline = setl_tpch::pipeline(&setl, &config).unwrap();
    pipeline.run().unwrap();
    // Three shared tables materialized once each, six queries once each; the lazy scans of
    // supplier, nation and region ran inside the queries, not on their own.
    assert_eq!(engine.executions(), 3 + 6);
    assert_eq!(engine.shared_reads(), 0);
    let results: usize = setl_tpch::results(&pipeline).unwrap().iter().map(|(_, f)| held(f)).sum();
    assert_eq!(engine.held_bytes(), results, "only the results are still held");
    assert!(engine.peak_held_bytes() > 10 * results, "the tables were held while queries ran");
}

#[test]
fn streamed_tables_are_read_once_for_the_six_queries_that_run_together() {
    let setl = Setl::builder().threads(2).build().unwrap();
    let engine = Engine::of(&setl).unwrap();
    let mut config = JobConfig::new(SCALE, &tables().dir, "unused", 2);
    config.write = false;
    assert_eq!(config.share, Share::Stream, "the default");
    let mut pipeline = setl_tpch::pipeline(&setl, &config).unwrap();
    pipeline.run().unwrap();
    // lineitem, orders and customer read once each, for all six queries run once each.
    assert_eq!(engine.shared_reads(), 3);
    assert_eq!(engine.executions(), 6);
    let results: usize = setl_tpch::results(&pipeline).unwrap().iter().map(|(_, f)| held(f)).sum();
    assert_eq!(engine.held_bytes(), results, "only the results are still held");

    // Where the work went: each shared table's read once, under its reader, streamed to the
    // queries that read it; each query's own operators under the query; all of it in Load.
    let benchmarks = pipeline.benchmarks();
    let executed = |factory: &str| {
        let result = benchmarks.iter().find(|result| result.factory == factory).expect("benchmarked");
        result.executed.clone()
    };
    let in_load = |work: &setl_core::ExecutedWork| {
        work.executed_in.as_ref().map(ToString::to_string).as_deref() == Some("Load.process")
    };
    for (reader, readers) in [("Lineitem", 6), ("Orders", 4)] {
        let rows = tables().rows[&reader.to_lowercase()];
        let works = executed(reader);
        assert_eq!(works.len(), 1, "{reader}: {works:#?}");
        assert!(in_load(&works[0]), "{reader}: {works:#?}");
        assert_eq!(works[0].shared, Some(format!("read once, streamed to {readers} queries")), "{reader}");
        assert_eq!(works[0].rows, rows, "{reader}: every row read once");
    }
    for query in ["Q1", "Q3", "Q5", "Q6", "Q10", "Q12"] {
        let works = executed(query);
        assert_eq!(works.len(), 1, "{query}: {works:#?}");
        assert!(in_load(&works[0]) && !works[0].compute.is_zero(), "{query}: {works:#?}");
        assert!(works[0].operators.iter().any(|operator| operator.name.starts_with("SharedScanExec")), "{query}");
    }
}

fn held(frame: &Frame) -> usize {
    frame.materialized().map_or(0, |dataset| dataset.byte_size())
}

/// Reads lineitem as the job does, then runs a query that fails.
#[setl_core::factory]
struct BadQuery {
    #[delivery(producer = setl_tpch::Lineitem)]
    lineitem: Delivery<Frame>,
    engine: Engine,
    sql: &'static str,
}

impl Factory for BadQuery {
    type Output = ();
    fn process(&mut self) -> Result<()> {
        let session = self.engine.session();
        session.register("lineitem", self.lineitem.get())?;
        session.sql("bad", self.sql)?.collect()?;
        Ok(())
    }
    fn get(&self) {}
}

fn run_with_bad_query(sql: &'static str, share: Share, out: &Path) -> Error {
    let setl = Setl::builder().threads(2).build().unwrap();
    let mut config = JobConfig::new(SCALE, &tables().dir, out, 2);
    config.share = share;
    config.parallel = false; // stage after stage: the failing stage runs after the writes
    let mut pipeline = setl_tpch::pipeline(&setl, &config).unwrap();
    pipeline.add_stage(Stage::new().add_factory(BadQuery {
        lineitem: Delivery::new(),
        engine: Engine::of(&setl).unwrap(),
        sql,
    }));
    pipeline.run().unwrap_err()
}

fn failure(error: &Error) -> (&str, Phase, String) {
    match error.kind() {
        ErrorKind::FactoryFailed { factory, phase, source } => (factory.as_str(), *phase, source.to_string()),
        other => panic!("expected a factory failure, got {other:?}"),
    }
}

#[test]
fn a_query_error_names_factory_and_phase_and_keeps_the_written_results() {
    let out = tempfile::tempdir().unwrap();
    let error = run_with_bad_query("SELECT no_such_column FROM lineitem", Share::Stream, out.path());
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("BadQuery", Phase::Process));
    assert!(message.starts_with("query `bad`: Schema error: No field named no_such_column"), "{message}");
    assert!(error.to_string().starts_with("factory `BadQuery` failed in process: query `bad`: "), "{error}");
    // Every query ran and Load wrote them before the failing stage; their files are complete.
    assert_eq!(files_in(out.path()).len(), 12, "{:?}", files_in(out.path()));
    for query in setl_tpch::queries::ALL {
        assert!(read_parquet(&out.path().join(format!("{}.parquet", query.name))).num_rows() > 0);
    }
}

#[test]
fn a_failure_while_running_a_fused_scan_names_the_file() {
    let out = tempfile::tempdir().unwrap();
    // Lazy lineitem: the scan runs inside the failing query, so its file is named.
    let error = run_with_bad_query("SELECT CAST(l_shipmode AS INT) FROM lineitem", Share::None, out.path());
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("BadQuery", Phase::Process));
    let file = tables().parquet("lineitem");
    assert!(message.starts_with(&format!("query `bad` over {}: ", file.display())), "{message}");
    assert!(message.contains("Cast error"), "DataFusion's message is kept: {message}");
}

/// Runs the job on damaged tables; returns the error and the output directory's files.
fn run_on(data: &Path, out: &Path) -> Error {
    let setl = Setl::builder().threads(2).build().unwrap();
    let config = JobConfig::new(SCALE, data, out, 2);
    let mut pipeline = setl_tpch::pipeline(&setl, &config).unwrap();
    pipeline.run().unwrap_err()
}

/// An output directory holding the result of an earlier run, which must survive.
fn out_with_earlier_result() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let out = tempfile::tempdir().unwrap();
    let earlier = out.path().join("q1.parquet");
    let bytes = b"an earlier, complete result".to_vec();
    std::fs::write(&earlier, &bytes).unwrap();
    (out, earlier, bytes)
}

#[test]
fn a_missing_table_file_names_reader_phase_and_file() {
    let data = copy_of_tables();
    let missing = data.path().join("orders.parquet");
    std::fs::remove_file(&missing).unwrap();
    let (out, earlier, bytes) = out_with_earlier_result();
    let error = run_on(data.path(), out.path());
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("Orders", Phase::Read));
    let head = format!("Parquet scan defined in `Orders.read` over {}: ", missing.display());
    assert!(message.starts_with(&head), "{message}");
    assert!(message.contains("no file ending in `.parquet` matches"), "{message}");
    assert_eq!(std::fs::read(&earlier).unwrap(), bytes, "the earlier output is intact");
    assert_eq!(files_in(out.path()), ["q1.parquet"], "no partial output");
}

#[test]
fn a_corrupted_parquet_file_names_reader_phase_and_file() {
    let data = copy_of_tables();
    let corrupted = data.path().join("lineitem.parquet");
    let length = std::fs::metadata(&corrupted).unwrap().len();
    // Cut the file in half: the footer (schema, row groups) is gone.
    std::fs::OpenOptions::new().write(true).open(&corrupted).unwrap().set_len(length / 2).unwrap();
    let (out, earlier, bytes) = out_with_earlier_result();
    let error = run_on(data.path(), out.path());
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("Lineitem", Phase::Read));
    let head = format!("Parquet scan defined in `Lineitem.read` over {}: ", corrupted.display());
    assert!(message.starts_with(&head), "{message}");
    assert!(message.to_lowercase().contains("parquet"), "DataFusion's message is kept: {message}");
    assert_eq!(std::fs::read(&earlier).unwrap(), bytes, "the earlier output is intact");
    assert_eq!(files_in(out.path()), ["q1.parquet"], "no partial output");
}

#[test]
fn a_damaged_page_in_a_streamed_table_fails_load_naming_the_file_and_writes_nothing() {
    let data = copy_of_tables();
    let damaged = data.path().join("lineitem.parquet");
    // The footer stays: the file opens, and its first page fails to decode while the queries run.
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[4..68].fill(0xff);
    std::fs::write(&damaged, bytes).unwrap();
    let (out, earlier, bytes) = out_with_earlier_result();
    let error = run_on(data.path(), out.path());
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("Load", Phase::Process));
    assert!(message.starts_with("query `q"), "{message}");
    assert!(message.contains(&damaged.display().to_string()), "the file is named: {message}");
    assert_eq!(std::fs::read(&earlier).unwrap(), bytes, "the earlier output is intact");
    assert_eq!(files_in(out.path()), ["q1.parquet"], "no partial output");
}

#[test]
fn a_directory_in_the_way_of_one_result_fails_the_run_before_any_result_is_replaced() {
    let out = tempfile::tempdir().unwrap();
    let config = JobConfig::new(SCALE, &tables().dir, out.path(), 2);
    let setl = Setl::builder().threads(2).build().unwrap();
    setl_tpch::pipeline(&setl, &config).unwrap().run().unwrap();
    let before: Vec<(String, Vec<u8>)> = files_in(out.path())
        .into_iter()
        .map(|name| (name.clone(), std::fs::read(out.path().join(&name)).unwrap()))
        .collect();
    assert_eq!(before.len(), 12);
    // q5.parquet becomes a directory holding an unrelated file.
    let q5 = out.path().join("q5.parquet");
    std::fs::remove_file(&q5).unwrap();
    std::fs::create_dir(&q5).unwrap();
    std::fs::write(q5.join("unrelated.txt"), "kept").unwrap();
    let error = setl_tpch::pipeline(&setl, &config).unwrap().run().unwrap_err();
    let (factory, phase, message) = failure(&error);
    assert_eq!((factory, phase), ("Load", Phase::Write));
    assert!(message.contains(&format!("{} is a directory", q5.display())), "{message}");
    for (name, bytes) in &before {
        if name != "q5.parquet" {
            assert_eq!(&std::fs::read(out.path().join(name)).unwrap(), bytes, "{name} is untouched");
        }
    }
    assert_eq!(std::fs::read_to_string(q5.join("unrelated.txt")).unwrap(), "kept");
    assert_eq!(files_in(out.path()).len(), 12, "no staging directory is left: {:?}", files_in(out.path()));
}

#[test]
fn a_scale_the_disk_cannot_hold_fails_before_writing_and_says_how_much_is_needed() {
    let data = tempfile::tempdir().unwrap();
    let error = ensure_tables(data.path(), 1e6).unwrap_err().to_string();
    assert!(error.starts_with("the TPC-H tables at scale 1000000 need about 1.4 PB in "), "{error}");
    assert!(error.contains("choose a smaller --scale or another --data"), "{error}");
    assert_eq!(files_in(data.path()), Vec::<String>::new(), "nothing was written");
}

/// Set in a child process of the kill test: the output directory its job writes to.
const CHILD_OUT: &str = "SETL_TPCH_KILL_TEST_OUT";

/// The job a child process of the kill test runs (a no-op in a normal test run).
#[test]
#[ignore = "run as a child process by the kill test"]
fn child_runs_the_job() {
    let Some(out) = std::env::var_os(CHILD_OUT) else { return };
    let config = JobConfig::new(SCALE, &tables().dir, Path::new(&out), 2);
    let setl = Setl::builder().threads(2).build().unwrap();
    setl_tpch::pipeline(&setl, &config).unwrap().run().unwrap();
}

fn spawn_child(out: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_runs_the_job", "--ignored", "--quiet"])
        .env(CHILD_OUT, out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `child` at most `limit`, then kills it: no child outlives the test.
fn wait_at_most(child: &mut std::process::Child, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_job_killed_at_any_point_leaves_complete_results_and_the_next_run_cleans_up() {
    use std::time::{Duration, Instant};
    tables();
    let out = tempfile::tempdir().unwrap();
    // A complete first run: the reference every later state is checked against (the job is
    // deterministic, so an old and a new result are the same bytes).
    let started = Instant::now();
    let status = wait_at_most(&mut spawn_child(out.path()), Duration::from_secs(120)).expect("the job ends");
    assert!(status.success());
    let run_time = started.elapsed();
    let visible = |dir: &Path| -> Vec<String> { files_in(dir).into_iter().filter(|n| !n.starts_with('.')).collect() };
    let reference: Vec<(String, Vec<u8>)> =
        visible(out.path()).into_iter().map(|n| (n.clone(), std::fs::read(out.path().join(&n)).unwrap())).collect();
    assert_eq!(reference.len(), 12);
    let (kills, mut states) = (16, 0);
    let mut leftovers = std::collections::BTreeSet::new();
    for kill in 0..kills {
        // Kill points spread over the run, most of them in its second half, where Load writes.
        let fraction = if kill < 4 { f64::from(kill) / 8.0 } else { 0.5 + f64::from(kill - 4) / 22.0 };
        let delay = run_time.mul_f64(fraction);
        let mut child = spawn_child(out.path());
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; fails only when the child already ended
        assert!(wait_at_most(&mut child, Duration::from_secs(30)).is_some());
        for (name, bytes) in &reference {
            assert_eq!(&std::fs::read(out.path().join(name)).unwrap(), bytes, "{name} after kill {kill}");
            states += 1;
        }
        assert_eq!(visible(out.path()).len(), 12, "only the results are visible after kill {kill}");
        leftovers.extend(files_in(out.path()).into_iter().filter(|n| n.starts_with('.')));
    }
    // The next run removes what the killed ones left, and commits complete results.
    let status = wait_at_most(&mut spawn_child(out.path()), Duration::from_secs(120)).expect("the job ends");
    assert!(status.success());
    assert_eq!(files_in(out.path()).len(), 12, "the next run removed the leftovers: {:?}", files_in(out.path()));
    eprintln!(
        "main job: {kills} kills, {states} result files checked complete, {} leftovers found, all removed",
        leftovers.len()
    );
}

/// Set in a child process of the signal test: the directory it generates tables into.
const CHILD_DATA: &str = "SETL_TPCH_SIGNAL_TEST_DATA";

/// Generates the tables at scale 0.05 as the main job does, removing its temporaries on
/// SIGTERM (a no-op in a normal test run).
#[test]
#[ignore = "run as a child process by the signal test"]
fn child_generates_tables() {
    let Some(data) = std::env::var_os(CHILD_DATA) else { return };
    setl_tpch::clean_up_on_signal(vec![PathBuf::from(&data)]).unwrap();
    ensure_tables(Path::new(&data), 0.05).unwrap();
}

#[cfg(unix)]
#[test]
fn sigterm_while_generating_removes_the_half_written_tables() {
    use std::time::Duration;
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_generates_tables", "--ignored", "--quiet"])
        .env(CHILD_DATA, data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the generation has temporaries in the directory (bounded), then SIGTERM.
    let started = std::time::Instant::now();
    while !files_in(data.path()).iter().any(|name| name.starts_with(".setl-")) {
        assert!(started.elapsed() < Duration::from_secs(60), "no temporary file appeared");
        assert!(child.try_wait().unwrap().is_none(), "the child ended before it was signalled");
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait_at_most(&mut child, Duration::from_secs(60)).expect("the child exits on SIGTERM");
    // 143 = 128 + SIGTERM; 0 only if the generation ended between the poll and the signal.
    assert!(matches!(status.code(), Some(143) | Some(0)), "{status:?}");
    let left: Vec<String> = files_in(data.path()).into_iter().filter(|name| name.starts_with(".setl-")).collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
}
