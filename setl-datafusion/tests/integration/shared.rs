//! Shared frames: one read of a plan streamed to every query that runs with it, paced by the
//! slowest query, never deadlocked by queries that read two shared scans in opposite orders.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use setl_arrow::Dataset;
use setl_datafusion::arrow::util::pretty::pretty_format_batches;
use setl_datafusion::{Engine, EngineSettings, Frame, ParquetScan};

fn pretty(dataset: &Dataset) -> String {
    pretty_format_batches(dataset.batches()).unwrap().to_string()
}

/// Runs `work` on a thread of its own and fails the test if it has not ended in 60 s (a
/// deadlock would otherwise hang the test run).
fn within_a_minute<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(work()));
    receiver.recv_timeout(Duration::from_secs(60)).expect("the queries did not end within a minute")
}

/// `rows` numbers in batches of `batch_size`, as a lazy frame on `engine`.
fn numbers(engine: &Engine, rows: u64) -> Frame {
    let sql = format!("SELECT value AS x, value % 7 AS k FROM generate_series(1, {rows}) AS t(value)");
    engine.session().sql("numbers", &sql).unwrap()
}

/// Plans `sql` with `tables` registered (a fresh session per query, as factories do).
fn query(engine: &Engine, label: &str, sql: &str, tables: &[(&str, &Frame)]) -> Frame {
    let session = engine.session().with_target_partitions(1);
    for (name, frame) in tables {
        session.register(name, frame).unwrap();
    }
    session.sql(label, sql).unwrap()
}

const QUERIES: [&str; 3] = [
    "SELECT k, count(*) AS n, sum(x) AS s FROM t GROUP BY k ORDER BY k",
    "SELECT sum(x) AS s FROM t WHERE x % 3 = 0",
    "SELECT max(x) AS m, min(k) AS low FROM t WHERE x > 1000",
];

#[test]
fn queries_that_run_together_read_a_shared_frame_once_and_get_the_lazy_results() {
    let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
    let lazy = numbers(&engine, 200_000);
    let shared = lazy.shared();
    assert!(shared.is_shared() && !shared.is_materialized());
    let expected: Vec<String> =
        QUERIES.iter().map(|sql| pretty(&query(&engine, "lazy", sql, &[("t", &lazy)]).collect().unwrap())).collect();
    let planned: Vec<Frame> = QUERIES.iter().map(|sql| query(&engine, "shared", sql, &[("t", &shared)])).collect();
    let reads = engine.shared_reads();
    let results = Frame::collect_all(&planned.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(engine.shared_reads(), reads + 1, "one read for the three queries");
    let results: Vec<String> = results.iter().map(pretty).collect();
    assert_eq!(results, expected);
    assert_eq!(engine.held_bytes(), 0, "nothing is left buffered");
    // On their own, one at a time: the first reads the frame and keeps it for the others.
    for (frame, expected) in planned.iter().zip(&expected) {
        assert_eq!(&pretty(&frame.collect().unwrap()), expected);
    }
    assert_eq!(engine.shared_reads(), reads + 2);
    assert_eq!(engine.shared_kept(), 1);
    assert!(engine.held_bytes() > 0, "kept while the frame lives");
    drop((planned, shared));
    assert_eq!(engine.held_bytes(), 0, "released with the frame");
}

#[test]
fn the_reader_waits_for_the_slowest_query_so_the_table_is_never_held_whole() {
    // Small batches: 250 of them, and about 4 MB for the whole table.
    let settings = EngineSettings { batch_size: 1024, ..EngineSettings::default() };
    let engine = Engine::standalone(2, &settings).unwrap();
    let table = numbers(&engine, 256_000).shared();
    // A cheap query and an expensive one (a sort of every row) over the same scan.
    let cheap = query(&engine, "cheap", "SELECT count(*) AS n FROM t", &[("t", &table)]);
    let slow = query(&engine, "slow", "SELECT x FROM t ORDER BY (x * 7919) % 256000 LIMIT 3", &[("t", &table)]);
    engine.reset_peak_held_bytes();
    let results = Frame::collect_all(&[&cheap, &slow]).unwrap();
    assert_eq!(results[0].num_rows(), 1);
    assert_eq!(results[1].num_rows(), 3);
    let whole = numbers(&engine, 256_000).collect().unwrap().byte_size();
    let peak = engine.peak_held_bytes();
    assert!(peak < whole / 4, "the scan buffered {peak} bytes of a {whole}-byte table");
}

#[test]
fn queries_that_read_two_shared_scans_in_opposite_orders_do_not_wait_for_each_other() {
    within_a_minute(|| {
        let settings = EngineSettings { batch_size: 512, ..EngineSettings::default() };
        let engine = Engine::standalone(2, &settings).unwrap();
        let left = numbers(&engine, 50_000);
        let right = engine
            .session()
            .sql("right", "SELECT value AS x, value * 2 AS y FROM generate_series(1, 50000) AS t(value)")
            .unwrap();
        // Each join builds its hash table from its first table before it reads the second: one
        // query needs all of `a` before it reads `b`, the other all of `b` before `a`.
        let sql = |first: &str, second: &str| {
            format!(
                "SELECT count(*) AS n, sum({first}.x + {second}.x) AS s \
                 FROM {first} JOIN {second} ON {first}.x = {second}.x"
            )
        };
        let tables = |a: &Frame, b: &Frame| {
            [
                query(&engine, "a then b", &sql("a", "b"), &[("a", a), ("b", b)]),
                query(&engine, "b then a", &sql("b", "a"), &[("a", a), ("b", b)]),
            ]
        };
        let expected: Vec<String> = tables(&left, &right).iter().map(|q| pretty(&q.collect().unwrap())).collect();
        let shared = tables(&left.shared(), &right.shared());
        let results = Frame::collect_all(&[&shared[0], &shared[1]]).unwrap();
        assert_eq!(results.iter().map(pretty).collect::<Vec<_>>(), expected);
    });
}

#[test]
fn a_query_that_stops_early_does_not_stop_the_others() {
    within_a_minute(|| {
        let settings = EngineSettings { batch_size: 1024, ..EngineSettings::default() };
        let engine = Engine::standalone(2, &settings).unwrap();
        let table = numbers(&engine, 100_000).shared();
        let first = query(&engine, "first", "SELECT x FROM t LIMIT 5", &[("t", &table)]);
        let all = query(&engine, "all", "SELECT count(*) AS n, sum(x) AS s FROM t", &[("t", &table)]);
        let results = Frame::collect_all(&[&first, &all]).unwrap();
        assert_eq!(results[0].num_rows(), 5);
        assert_eq!(pretty(&results[1]), pretty(&all.collect().unwrap()));
    });
}

#[test]
fn a_failing_shared_read_fails_every_query_with_its_message() {
    within_a_minute(|| {
        let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
        // Fails while running, after some batches went out: a cast of a text that is no number.
        let source = engine
            .session()
            .sql(
                "bad numbers",
                "SELECT CAST(CASE WHEN value < 30000 THEN CAST(value AS VARCHAR) ELSE 'x' END AS BIGINT) AS x \
                 FROM generate_series(1, 60000) AS t(value)",
            )
            .unwrap()
            .shared();
        let a = query(&engine, "a", "SELECT sum(x) AS s FROM t", &[("t", &source)]);
        let b = query(&engine, "b", "SELECT count(*) AS n FROM t", &[("t", &source)]);
        let error = Frame::collect_all(&[&a, &b]).unwrap_err().to_string();
        assert!(error.starts_with("query `a`: ") || error.starts_with("query `b`: "), "{error}");
        assert!(error.contains("Cast error"), "DataFusion's message is kept: {error}");
        assert_eq!(engine.held_bytes(), 0, "nothing is left buffered");
    });
}

#[test]
fn a_shared_parquet_scan_names_its_file_when_it_fails() {
    within_a_minute(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.parquet");
        let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
        setl_datafusion::write_parquet(&numbers(&engine, 100_000).collect().unwrap(), &path).unwrap();
        damage_first_page(&path);
        let table = ParquetScan::new(&path).read(&engine.session()).unwrap().shared();
        let a = query(&engine, "a", "SELECT sum(x) AS s FROM t", &[("t", &table)]);
        let b = query(&engine, "b", "SELECT count(*) AS n FROM t WHERE k = 1", &[("t", &table)]);
        let error = Frame::collect_all(&[&a, &b]).unwrap_err().to_string();
        assert!(error.contains(&format!(" over {}: ", path.display())), "the file is named: {error}");
        assert_eq!(engine.held_bytes(), 0, "nothing is left buffered");
    });
}

/// Overwrites the first page header of a Parquet file (right after its magic bytes), keeping
/// the footer, so that the file opens and fails while its data is read.
fn damage_first_page(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[4..68].fill(0xff);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_shared_frame_read_by_datafusion_directly_is_a_plain_scan() {
    let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
    let lazy = numbers(&engine, 10_000);
    let shared = lazy.shared();
    let frame = shared.dataframe();
    let batches = engine.run(async move { frame.collect().await }).unwrap();
    let rows: usize = batches.iter().map(|batch| batch.num_rows()).sum();
    assert_eq!(rows, 10_000);
    // Partitions arrive in any order: the same rows, in whatever order.
    let sorted_lines = |dataset: &Dataset| {
        let mut lines: Vec<String> = pretty(dataset).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted_lines(&shared.collect().unwrap()), sorted_lines(&lazy.collect().unwrap()));
    let plan = shared.explain().unwrap();
    assert!(plan.contains("SharedScanExec"), "{plan}");
    assert!(plan.contains("shared source query `numbers` (read once for every query of its group):"), "{plan}");
    assert!(plan.contains("GenerateSeries") || plan.contains("LazyMemoryExec"), "the source's own plan: {plan}");
}

/// Queries that read one shared table more than once: each must end, with the lazy result.
const SELF_READS: [&str; 3] = [
    "SELECT count(*) AS n FROM t a JOIN t b ON a.x = b.x",
    "SELECT count(*) AS n, sum(x) AS s FROM (SELECT x FROM t UNION ALL SELECT x FROM t) u",
    "SELECT a.k, count(*) AS n FROM t a JOIN (SELECT x FROM t WHERE k = 3) b ON a.x = b.x GROUP BY a.k",
];

#[test]
fn a_query_that_reads_a_shared_frame_twice_ends_with_the_lazy_result() {
    within_a_minute(|| {
        for partitions in [1, 2] {
            let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
            let lazy = numbers(&engine, 200_000);
            for sql in SELF_READS {
                let session = engine.session().with_target_partitions(partitions);
                session.register("t", &lazy).unwrap();
                let expected = pretty(&session.sql("lazy", sql).unwrap().collect().unwrap());
                let plan = |shared: &Frame| {
                    let session = engine.session().with_target_partitions(partitions);
                    session.register("t", shared).unwrap();
                    session.sql("shared", sql).unwrap()
                };
                // On its own: read once, kept for readers to come.
                let frame = plan(&lazy.shared());
                assert_eq!(pretty(&frame.collect().unwrap()), expected, "{sql} on {partitions} partitions");
                drop(frame);
                // With a query of one read beside it, in one group: streamed.
                let shared = lazy.shared();
                let frame = plan(&shared);
                let other = query(&engine, "other", QUERIES[0], &[("t", &shared)]);
                let results = Frame::collect_all(&[&frame, &other]).unwrap();
                assert_eq!(pretty(&results[0]), expected, "{sql} beside another query");
                assert_eq!(engine.held_bytes(), 0, "nothing is left buffered");
            }
        }
    });
}

#[test]
fn a_blocked_query_spills_past_the_buffer_and_gets_the_same_result() {
    within_a_minute(|| {
        let settings = EngineSettings { batch_size: 1024, shared_buffer_bytes: 256 << 10, ..EngineSettings::default() };
        let engine = Engine::standalone(2, &settings).unwrap();
        let lazy = numbers(&engine, 200_000);
        let whole = lazy.collect().unwrap().byte_size();
        let sql = SELF_READS[0];
        let expected = pretty(&query(&engine, "lazy", sql, &[("t", &lazy)]).collect().unwrap());
        let table = lazy.shared();
        let shared = query(&engine, "shared", sql, &[("t", &table)]);
        // Run with a second reader: a group that holds every reader streams (a query alone would
        // keep the table whole for readers to come).
        let other = query(&engine, "other", QUERIES[1], &[("t", &table)]);
        engine.reset_peak_held_bytes();
        assert_eq!(pretty(&Frame::collect_all(&[&shared, &other]).unwrap()[0]), expected);
        let peak = engine.peak_held_bytes();
        // The self-join's second read waits until its hash table is built from the first: the
        // whole table, were it not spilled past the 256 KiB buffer (plus a batch in flight).
        assert!(peak < whole / 4, "the scan buffered {peak} bytes of a {whole}-byte table");
        assert!(engine.shared_spilled_bytes() > 0, "the lagging read went to disk");
        assert_eq!(engine.held_bytes(), 0);
    });
}

#[test]
fn a_query_waiting_on_a_reader_parked_for_a_busy_query_is_paced_not_spilled() {
    within_a_minute(|| {
        // Tables of about 100 batches of 16 KiB, a buffer of 16 batches per partition: room for
        // the lag a reader allows, not for a table buffered whole for a query.
        let settings = EngineSettings { batch_size: 1024, shared_buffer_bytes: 512 << 10, ..EngineSettings::default() };
        let engine = Engine::standalone(2, &settings).unwrap();
        let (x, y) = (numbers(&engine, 100_000).shared(), numbers(&engine, 100_000).shared());
        // `both` reads all of x before any of y (its join builds its hash table from x first);
        // `busy` reads x slowly, so x's reader parks for it while `both` waits on x. `both` is
        // then waiting, but not blocked: `busy` goes on, and so does x. y's reader must wait for
        // `both` rather than buffer (and spill) all of y for it. `count` reads y too, so that
        // the group holds every reader of both tables and streams them.
        // The timing decides whether x's reader parks while `both` waits: a few rounds.
        for _ in 0..8 {
            let both =
                query(&engine, "both", "SELECT count(*) AS n FROM x JOIN y ON x.x = y.x", &[("x", &x), ("y", &y)]);
            let busy =
                query(&engine, "busy", "SELECT sum(length(repeat(CAST(x AS VARCHAR), 400))) AS s FROM x", &[("x", &x)]);
            let count = query(&engine, "count", "SELECT count(*) AS n FROM y", &[("y", &y)]);
            let results = Frame::collect_all(&[&both, &busy, &count]).unwrap();
            assert_eq!(pretty(&results[0]), "+--------+\n| n      |\n+--------+\n| 100000 |\n+--------+");
            assert_eq!(results[1].num_rows(), 1);
            assert_eq!(
                engine.shared_spilled_bytes(),
                0,
                "nothing spilled: every reader waited for a query that was not blocked"
            );
        }
        assert_eq!(engine.held_bytes(), 0);
    });
}

#[test]
fn collect_works_inside_a_current_thread_tokio_runtime() {
    within_a_minute(|| {
        let engine = Engine::standalone(2, &EngineSettings::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let frame = numbers(&engine, 1_000);
        let rows = runtime.block_on(async move { frame.collect().map(|dataset| dataset.num_rows()) }).unwrap();
        assert_eq!(rows, 1_000);
    });
}

mod random_shapes {
    //! Random query shapes over random sets of shared frames, each run under a watchdog: every
    //! group ends, with the results the lazy plans give one by one (or an error when one fails).

    use proptest::prelude::*;

    use super::*;

    /// Tables `t0`..`t2`: numbers, each a different size.
    const ROWS: [u64; 3] = [30_000, 20_000, 12_000];

    /// A query over the tables in `order` (each read once or twice), in one of the shapes.
    fn sql(shape: u8, order: &[usize]) -> String {
        let t = |i: usize| format!("t{}", order[i % order.len()]);
        match shape {
            // A join chain: each join builds from the tables before it.
            0 => {
                let mut sql = format!("SELECT count(*) AS n, sum(a0.x) AS s FROM {} a0", t(0));
                for i in 1..order.len() {
                    sql += &format!(" JOIN {} a{i} ON a0.x = a{i}.x", t(i));
                }
                sql
            }
            1 => format!("SELECT count(*) AS n FROM {} a JOIN {} b ON a.x = b.x", t(0), t(0)),
            2 => format!(
                "SELECT count(*) AS n, sum(x) AS s FROM (SELECT x FROM {} UNION ALL SELECT x FROM {}) u",
                t(0),
                t(1)
            ),
            3 => format!("SELECT x FROM {} ORDER BY x LIMIT 7", t(0)),
            4 => format!("SELECT k, count(*) AS n, sum(x) AS s FROM {} GROUP BY k ORDER BY k", t(0)),
            // Fails once x passes 5,000: a text that is no number.
            _ => format!(
                "SELECT sum(CAST(CASE WHEN x < 5000 THEN CAST(x AS VARCHAR) ELSE 'x' END AS BIGINT)) AS s FROM {}",
                t(0)
            ),
        }
    }

    fn run(shapes: Vec<(u8, Vec<usize>)>, shared_tables: Vec<bool>, buffer: usize, partitions: usize) {
        let settings = EngineSettings { batch_size: 512, shared_buffer_bytes: buffer, ..EngineSettings::default() };
        let engine = Engine::standalone(2, &settings).unwrap();
        let lazy: Vec<Frame> = ROWS.iter().map(|&rows| numbers(&engine, rows)).collect();
        let used: Vec<Frame> = lazy
            .iter()
            .zip(&shared_tables)
            .map(|(frame, &shared)| if shared { frame.shared() } else { frame.clone() })
            .collect();
        let plan = |tables: &[Frame], sql: &str| {
            let session = engine.session().with_target_partitions(partitions);
            for (i, table) in tables.iter().enumerate() {
                session.register(&format!("t{i}"), table).unwrap();
            }
            session.sql("q", sql).unwrap()
        };
        let texts: Vec<String> = shapes.iter().map(|(shape, order)| sql(*shape, order)).collect();
        let expected: Vec<Result<String, String>> =
            texts.iter().map(|sql| plan(&lazy, sql).collect().map(|d| pretty(&d)).map_err(|e| e.to_string())).collect();
        let frames: Vec<Frame> = texts.iter().map(|sql| plan(&used, sql)).collect();
        let got = Frame::collect_all(&frames.iter().collect::<Vec<_>>());
        // A table that only one query of the group reads is kept whole while the frames live.
        drop((frames, used));
        match got {
            Ok(results) => {
                let results: Vec<Result<String, String>> = results.iter().map(|d| Ok(pretty(d))).collect();
                assert_eq!(results, expected, "{texts:?}");
            }
            Err(error) => {
                assert!(expected.iter().any(Result::is_err), "{texts:?} failed: {error}");
                assert!(error.to_string().contains("Cast error"), "{error}");
            }
        }
        // What a kept source holds goes with its last plan, which tasks DataFusion spawned may
        // still hold for a moment while they are cancelled: wait for it, boundedly.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while engine.held_bytes() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(engine.held_bytes(), 0, "nothing is left buffered");
    }

    fn shape() -> impl Strategy<Value = (u8, Vec<usize>)> {
        (
            0u8..6,
            Just(vec![0usize, 1, 2])
                .prop_shuffle()
                .prop_flat_map(|order| (1..=3usize).prop_map(move |n| order[..n].to_vec())),
        )
    }

    proptest! {
        // A hang fails a case after a minute; shrinking is bounded so that a failure ends soon too.
        #![proptest_config(ProptestConfig {
            cases: 24,
            max_shrink_iters: 4,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn every_group_of_queries_ends_with_the_lazy_results(
            shapes in prop::collection::vec(shape(), 1..4),
            shared_tables in prop::collection::vec(any::<bool>(), 3),
            buffer in prop::sample::select(vec![64usize << 10, 256 << 20]),
            partitions in 1usize..=2,
        ) {
            within_a_minute(move || run(shapes, shared_tables, buffer, partitions));
        }
    }
}

mod factories {
    //! PySetl's layout: a reader factory and one factory per aggregate, each collecting its own
    //! query. The shared frame is read once all the same.

    use setl_core::prelude::*;

    use super::*;

    #[factory]
    struct Numbers {
        engine: Engine,
        out: Option<Frame>,
    }

    impl Factory for Numbers {
        type Output = Frame;
        fn read(&mut self) -> Result<()> {
            self.out = Some(numbers(&self.engine, 100_000).shared());
            Ok(())
        }
        fn get(&self) -> Frame {
            self.out.clone().expect("set in read")
        }
    }

    macro_rules! aggregate {
        ($name:ident, $sql:expr) => {
            #[factory]
            struct $name {
                #[delivery(producer = Numbers)]
                numbers: Delivery<Frame>,
                engine: Engine,
                out: Option<Frame>,
            }

            impl Factory for $name {
                type Output = Frame;
                fn process(&mut self) -> Result<()> {
                    let session = self.engine.session();
                    session.register("t", self.numbers.get())?;
                    self.out = Some(session.sql(stringify!($name), $sql)?.materialize()?);
                    Ok(())
                }
                fn get(&self) -> Frame {
                    self.out.clone().expect("set in process")
                }
            }
        };
    }

    aggregate!(ByKey, QUERIES[0]);
    aggregate!(Thirds, QUERIES[1]);
    aggregate!(Extremes, QUERIES[2]);

    #[test]
    fn one_factory_per_aggregate_reads_the_shared_frame_once() {
        within_a_minute(|| {
            for threads in [1, 2] {
                let setl = Setl::builder().threads(threads).build().unwrap();
                let engine = Engine::of(&setl).unwrap();
                let lazy = numbers(&engine, 100_000);
                let expected: Vec<String> = QUERIES
                    .iter()
                    .map(|sql| pretty(&query(&engine, "lazy", sql, &[("t", &lazy)]).collect().unwrap()))
                    .collect();
                let (reads, kept) = (engine.shared_reads(), engine.shared_kept());
                let mut pipeline = setl.new_pipeline();
                pipeline
                    .add_factory(Numbers { engine: engine.clone(), out: None })
                    .add_factory(ByKey { numbers: Delivery::new(), engine: engine.clone(), out: None })
                    .add_factory(Thirds { numbers: Delivery::new(), engine: engine.clone(), out: None })
                    .add_factory(Extremes { numbers: Delivery::new(), engine: engine.clone(), out: None });
                pipeline.run().unwrap();
                let got = [
                    pretty(&pipeline.output::<ByKey>().unwrap().collect().unwrap()),
                    pretty(&pipeline.output::<Thirds>().unwrap().collect().unwrap()),
                    pretty(&pipeline.output::<Extremes>().unwrap().collect().unwrap()),
                ];
                assert_eq!(got.as_slice(), expected.as_slice(), "{threads} threads");
                assert_eq!(engine.shared_reads(), reads + 1, "{threads} threads: read once for three factories");
                assert_eq!(engine.shared_kept(), kept + 1, "{threads} threads: kept for the later readers");
            }
        });
    }
}
