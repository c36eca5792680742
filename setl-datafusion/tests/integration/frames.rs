//! Frames, sessions and scans: no copies, fusion of lazy plans, persist, pushdown, errors.

use std::sync::Arc;

use setl_arrow::Dataset;
use setl_core::prelude::*;
use setl_datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use setl_datafusion::arrow::datatypes::{DataType, Field, Schema};
use setl_datafusion::arrow::util::pretty::pretty_format_batches;
use setl_datafusion::{write_csv, write_parquet, CsvScan, Engine, Frame, ParquetScan};

fn sample(rows: i64) -> Dataset {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, false),
    ]));
    let batches = (0..4)
        .map(|part| {
            let ids: Vec<i64> = (part * rows / 4..(part + 1) * rows / 4).collect();
            let kinds: Vec<&str> = ids.iter().map(|id| if id % 2 == 0 { "even" } else { "odd" }).collect();
            let amounts: Vec<i64> = ids.iter().map(|id| id * 10).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(kinds)),
                    Arc::new(Int64Array::from(amounts)),
                ],
            )
            .unwrap()
        })
        .collect();
    Dataset::try_new(schema, batches).unwrap()
}

fn engine() -> Engine {
    Engine::of(&Setl::builder().threads(2).build().unwrap()).unwrap()
}

fn pretty(dataset: &Dataset) -> String {
    pretty_format_batches(dataset.batches()).unwrap().to_string()
}

#[test]
fn registering_a_dataset_shares_its_buffers() {
    let engine = engine();
    let data = sample(100);
    let session = engine.session();
    session.register_dataset("t", &data).unwrap();
    let back = session.sql("all", "SELECT id FROM t").unwrap().collect().unwrap();
    let original: Vec<*const u8> =
        data.batches().iter().map(|batch| batch.column(0).to_data().buffers()[0].as_ptr()).collect();
    for batch in back.batches() {
        let pointer = batch.column(0).to_data().buffers()[0].as_ptr();
        assert!(original.contains(&pointer), "the scan returned a copy of the id column");
    }
    assert_eq!(back.num_rows(), 100);
}

#[test]
fn each_session_has_its_own_table_names() {
    let engine = engine();
    let first = engine.session();
    let second = engine.session();
    first.register_dataset("t", &sample(3)).unwrap();
    second.register_dataset("t", &sample(5)).unwrap();
    assert_eq!(first.sql("q", "SELECT id FROM t").unwrap().collect().unwrap().num_rows(), 3);
    assert_eq!(second.sql("q", "SELECT id FROM t").unwrap().collect().unwrap().num_rows(), 5);
    assert!(engine.session().sql("q", "SELECT id FROM t").is_err(), "a new session sees no table");
}

#[test]
fn a_lazy_scan_fuses_into_its_consumer_with_projection_and_filter_pushed_down() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    write_parquet(&sample(1000), &path).unwrap();
    let producer = ParquetScan::new(&path).read(&engine.session()).unwrap();
    assert!(!producer.is_materialized());

    let consumer = engine.session();
    consumer.register("events", &producer).unwrap();
    let query = consumer.sql("big", "SELECT sum(amount) AS total FROM events WHERE id >= 900").unwrap();
    let plan = query.explain().unwrap();
    // One plan: the consumer's aggregate over the producer's file scan, which reads only the
    // columns the consumer needs and carries its predicate.
    assert!(plan.contains("file_type=parquet"), "{plan}");
    assert!(plan.contains("projection=[id, amount]"), "{plan}");
    assert!(plan.contains("predicate=id@0 >= 900"), "{plan}");
    assert_eq!(query.sources(), std::slice::from_ref(&path));
    let total = query.collect().unwrap();
    assert_eq!(pretty(&total), "+--------+\n| total  |\n+--------+\n| 949500 |\n+--------+");
    assert_eq!(engine.executions(), 1, "the producer's scan did not run on its own");
}

#[test]
fn persist_runs_the_plan_once_for_every_consumer_and_lazy_runs_it_each_time() {
    let engine = engine();
    let session = engine.session();
    session.register_dataset("t", &sample(100)).unwrap();
    let lazy = session.sql("odd", "SELECT * FROM t WHERE kind = 'odd'").unwrap();
    for _ in 0..3 {
        assert_eq!(lazy.collect().unwrap().num_rows(), 50);
    }
    assert_eq!(engine.executions(), 3);
    assert_eq!(engine.held_bytes(), 0, "a lazy frame holds nothing");

    let persisted = lazy.persist();
    let consumers: Vec<Frame> = (0..3).map(|_| persisted.clone()).collect();
    std::thread::scope(|scope| {
        for consumer in &consumers {
            scope.spawn(|| assert_eq!(consumer.collect().unwrap().num_rows(), 50));
        }
    });
    assert_eq!(engine.executions(), 4, "one more run for three consumers");
    assert!(persisted.is_materialized());
    assert!(engine.held_bytes() > 0);
    drop((persisted, consumers));
    assert_eq!(engine.held_bytes(), 0, "released with the last consumer");
}

#[test]
fn a_persisted_frame_registered_before_any_collect_still_runs_once() {
    let engine = engine();
    let session = engine.session();
    session.register_dataset("t", &sample(100)).unwrap();
    let persisted = session.sql("odd", "SELECT * FROM t WHERE kind = 'odd'").unwrap().persist();
    // Two consumers register it before anything collected it, as factories do.
    let consumers: Vec<Frame> = (0..2)
        .map(|index| {
            let consumer = engine.session();
            consumer.register("odd", &persisted).unwrap();
            consumer.sql(&format!("count {index}"), "SELECT count(*) AS n FROM odd").unwrap()
        })
        .collect();
    assert!(persisted.is_materialized(), "registering a persisted frame runs it");
    for consumer in &consumers {
        assert_eq!(pretty(&consumer.collect().unwrap()), "+----+\n| n  |\n+----+\n| 50 |\n+----+");
    }
    assert_eq!(engine.executions(), 3, "the persisted plan once, then each consumer's count");
    assert!(engine.held_bytes() > 0, "the persisted data is held");
    drop((persisted, consumers, session));
    assert_eq!(engine.held_bytes(), 0, "released with the last consumer");
}

#[test]
fn a_scan_of_a_path_that_matches_nothing_fails_naming_it_unless_empty_is_allowed() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let data = sample(8);
    write_csv(&data, dir.path().join("present.csv")).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/notes.txt"), "not a csv").unwrap();
    let missing_file = dir.path().join("presnet.csv");
    let missing_dir = dir.path().join("no-such-dir");
    let empty_dir = dir.path().join("empty");
    let empty_glob = dir.path().join("*.tsv");
    for path in [&missing_file, &missing_dir, &empty_dir, &empty_glob] {
        // With a schema DataFusion would plan a read of no files and return no rows.
        let error = CsvScan::new(path).schema(data.schema().clone()).read(&engine.session()).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.files(), std::slice::from_ref(path));
        assert!(message.contains(&format!("matches `{}`", path.display())), "{message}");
        assert!(message.contains("allow_empty(true)"), "says what to do: {message}");
        let empty = CsvScan::new(path).schema(data.schema().clone()).allow_empty(true).read(&engine.session());
        assert_eq!(empty.unwrap().collect().unwrap().num_rows(), 0, "{}", path.display());
    }
    let found = CsvScan::new(dir.path().join("*.csv")).schema(data.schema().clone()).read(&engine.session());
    assert_eq!(found.unwrap().collect().unwrap().num_rows(), 8);

    let parquet = dir.path().join("parquet");
    std::fs::create_dir(&parquet).unwrap();
    let error = ParquetScan::new(&parquet).read(&engine.session()).unwrap_err();
    assert!(error.to_string().contains("no file ending in `.parquet` matches"), "{error}");
    write_parquet(&data, parquet.join("part-0.parquet")).unwrap();
    assert_eq!(ParquetScan::new(&parquet).read(&engine.session()).unwrap().collect().unwrap().num_rows(), 8);
}

#[test]
fn a_csv_scan_reads_the_chosen_columns_with_the_given_schema() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.csv");
    let data = sample(10_000);
    write_csv(&data, &path).unwrap();
    let frame = CsvScan::new(&path)
        .schema(data.schema().clone())
        .columns(["kind", "amount"])
        .filter("kind = 'even'")
        .read(&engine.session())
        .unwrap();
    let plan = frame.explain().unwrap();
    assert!(plan.contains("file_type=csv"), "{plan}");
    assert!(plan.contains("projection=[kind, amount]"), "{plan}");
    let session = engine.session();
    session.register("even", &frame).unwrap();
    let total = session.sql("sum", "SELECT count(*) AS n, sum(amount) AS s FROM even").unwrap().collect().unwrap();
    assert_eq!(
        pretty(&total),
        "+------+-----------+\n| n    | s         |\n+------+-----------+\n| 5000 | 249950000 |\n+------+-----------+"
    );
}

#[test]
fn a_scan_error_keeps_datafusions_message_and_names_the_file() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.parquet");
    let error = ParquetScan::new(&missing).read(&engine.session()).unwrap_err();
    assert_eq!(error.files(), std::slice::from_ref(&missing));
    let message = error.to_string();
    assert!(message.starts_with(&format!("Parquet scan over {}: ", missing.display())), "{message}");
    assert!(message.len() > format!("Parquet scan over {}: ", missing.display()).len() + 10, "{message}");

    let not_parquet = dir.path().join("text.parquet");
    std::fs::write(&not_parquet, "this is not parquet").unwrap();
    let error = ParquetScan::new(&not_parquet).read(&engine.session()).unwrap_err();
    assert!(error.to_string().to_lowercase().contains("parquet error"), "{error}");

    let bad_column = ParquetScan::new(&missing).columns(["nope"]);
    assert!(bad_column.read(&engine.session()).is_err());
}

/// A producer handing on a lazy plan and a consumer finishing it: one query, in the consumer.
#[setl_core::factory]
struct Evens {
    engine: Engine,
    data: Dataset,
    out: Option<Frame>,
}

impl Factory for Evens {
    type Output = Frame;
    fn process(&mut self) -> Result<()> {
        let session = self.engine.session();
        session.register_dataset("t", &self.data)?;
        self.out = Some(session.sql("evens", "SELECT id, amount FROM t WHERE kind = 'even'")?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in process")
    }
}

#[setl_core::factory]
struct Total {
    #[delivery(producer = Evens)]
    evens: Delivery<Frame>,
    engine: Engine,
    out: Option<Frame>,
}

impl Factory for Total {
    type Output = Frame;
    fn process(&mut self) -> Result<()> {
        let session = self.engine.session();
        session.register("evens", self.evens.get())?;
        self.out = Some(session.sql("total", "SELECT sum(amount) AS s FROM evens")?.materialize()?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in process")
    }
}

#[test]
fn a_plan_handed_between_factories_runs_as_one_query() {
    let setl = Setl::builder().threads(2).build().unwrap();
    let engine = Engine::of(&setl).unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_factory(Evens { engine: engine.clone(), data: sample(100), out: None }).add_factory(Total {
        evens: Delivery::new(),
        engine: engine.clone(),
        out: None,
    });
    pipeline.run().unwrap();
    let total = pipeline.output::<Total>().unwrap().collect().unwrap();
    assert_eq!(total.num_rows(), 1);
    let column = total.batches()[0].column(0);
    assert_eq!(column.len(), 1);
    assert_eq!(engine.executions(), 1, "the producer's plan ran inside the consumer's query");
}

#[test]
fn fewer_partitions_per_session_give_the_same_results_without_repartitioning() {
    let engine = engine();
    let data = sample(10_000);
    let query = "SELECT kind, sum(amount) AS total, count(*) AS n FROM t GROUP BY kind ORDER BY kind";
    let run = |partitions: Option<usize>| {
        let session = match partitions {
            Some(partitions) => engine.session().with_target_partitions(partitions),
            None => engine.session(),
        };
        session.register_dataset("t", &data).unwrap();
        let frame = session.sql("totals", query).unwrap();
        (session.target_partitions(), frame.explain().unwrap(), pretty(&frame.collect().unwrap()))
    };
    let (default_partitions, default_plan, default_rows) = run(None);
    let (one, one_plan, one_rows) = run(Some(1));
    assert_eq!((default_partitions, one), (2, 1));
    assert_eq!(one_rows, default_rows);
    assert!(default_plan.contains("RepartitionExec"), "{default_plan}");
    assert!(!one_plan.contains("RepartitionExec"), "one partition, nothing to repartition:\n{one_plan}");
    assert_eq!(run(Some(0)).0, 1, "at least one partition");
}
