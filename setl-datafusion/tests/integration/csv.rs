//! CSV scans as users meet them: null markers in every type, the dialect options, and malformed
//! rows reported where they are (the factory that defined the scan, the file, the line, the
//! column), however DataFusion split the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use setl_core::prelude::*;
use setl_datafusion::arrow::array::{Array, AsArray};
use setl_datafusion::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef};
use setl_datafusion::{CsvScan, Engine, Frame};

fn engine() -> Engine {
    Engine::of(&Setl::builder().threads(2).build().unwrap()).unwrap()
}

fn typed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
        Field::new("ok", DataType::Boolean, true),
    ]))
}

/// Five rows; every column has an `NA`, an empty field and a real value.
const WITH_NULLS: &str = "id,price,name,day,ok\n\
                          1,2.5,apple,2024-01-31,true\n\
                          NA,NA,NA,NA,NA\n\
                          ,,,,\n\
                          4,NA,pear,,false\n\
                          NA,7.25,,2024-02-29,NA\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn null_values_are_null_in_every_type_with_a_schema_or_inferred() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "nulls.csv", WITH_NULLS);
    let given = CsvScan::new(&path).schema(typed_schema()).null_values(["NA"]).read(&engine.session()).unwrap();
    let inferred = CsvScan::new(&path).null_values(["NA"]).read(&engine.session()).unwrap();
    for (how, frame) in [("given", given), ("inferred", inferred)] {
        let data = frame.collect().unwrap();
        let batch = setl_datafusion::arrow::compute::concat_batches(data.schema(), data.batches()).unwrap();
        let types: Vec<&DataType> = batch.schema_ref().fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [&DataType::Int64, &DataType::Float64, &DataType::Utf8, &DataType::Date32, &DataType::Boolean],
            "{how}"
        );
        let nulls: Vec<usize> = batch.columns().iter().map(|c| c.null_count()).collect();
        assert_eq!(nulls, [3, 3, 3, 3, 3], "{how}: NA and the empty field are null in every column");
        let ids = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!((ids.value(0), ids.value(3)), (1, 4), "{how}");
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(4), 7.25, "{how}");
        assert_eq!(batch.column(2).as_string::<i32>().value(3), "pear", "{how}");
        assert_eq!(batch.column(3).as_primitive::<Date32Type>().value(0), 19_753, "{how}: 2024-01-31");
        assert!(!batch.column(4).as_boolean().value(3), "{how}");
    }
    // Without the option DataFusion cannot read `NA` as a number.
    let error = CsvScan::new(&path).schema(typed_schema()).read(&engine.session()).unwrap().collect().unwrap_err();
    assert!(error.to_string().contains("NA"), "{error}");
}

#[test]
fn the_dialect_options_reach_the_parallel_reader() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let text = "# exported 2024-03-01\nid;note\n1;'a;b'\n# a comment line\n2;'it\\'s'\n";
    let path = write(dir.path(), "dialect.csv", text);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("note", DataType::Utf8, false),
    ]));
    let frame = CsvScan::new(&path)
        .schema(schema)
        .delimiter(b';')
        .quote(b'\'')
        .escape(b'\\')
        .comment(b'#')
        .read(&engine.session())
        .unwrap();
    let data = frame.collect().unwrap();
    let notes: Vec<String> = data
        .batches()
        .iter()
        .flat_map(|batch| batch.column(1).as_string::<i32>().iter().map(|v| v.unwrap().to_owned()).collect::<Vec<_>>())
        .collect();
    assert_eq!(notes, ["a;b", "it's"]);
}

/// A reader factory: defines the scan, runs nothing.
#[factory]
struct ReadEvents {
    engine: Engine,
    path: PathBuf,
    out: Option<Frame>,
}

impl Factory for ReadEvents {
    type Output = Frame;
    fn read(&mut self) -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
        ]));
        self.out = Some(CsvScan::new(&self.path).schema(schema).read(&self.engine.session())?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in read")
    }
}

/// The factory whose query runs the scan.
#[factory]
struct Load {
    #[delivery(producer = ReadEvents)]
    events: Delivery<Frame>,
    engine: Engine,
    out: Option<Frame>,
}

impl Factory for Load {
    type Output = Frame;
    fn process(&mut self) -> Result<()> {
        let session = self.engine.session();
        // Split every file into byte ranges parsed in parallel, as DataFusion does for big files.
        session.context().state_ref().write().config_mut().options_mut().optimizer.repartition_file_min_size = 1024;
        session.register("events", self.events.get())?;
        self.out =
            Some(session.sql("total", "SELECT kind, sum(amount) AS s FROM events GROUP BY kind")?.materialize()?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in process")
    }
}

#[test]
fn a_malformed_row_is_reported_under_the_factory_that_defined_the_scan_with_its_file_line_and_column() {
    let setl = Setl::builder().threads(2).build().unwrap();
    let engine = Engine::of(&setl).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Two files; the second has a bad value far into it, past the first byte ranges.
    let good: String = std::iter::once("id,kind,amount\n".to_owned())
        .chain((0..2_000).map(|i| format!("{i},k{},{}\n", i % 3, i * 10)))
        .collect();
    write(dir.path(), "a.csv", &good);
    let mut bad = good.clone();
    bad.push_str("2000,k1,12x5\n");
    let bad_path = write(dir.path(), "b.csv", &bad);
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_factory(ReadEvents { engine: engine.clone(), path: dir.path().to_path_buf(), out: None })
        .add_factory(Load { events: Delivery::new(), engine, out: None });
    let message = pipeline.run().unwrap_err().to_string();
    assert!(message.contains("factory `Load` failed in process"), "{message}");
    assert!(message.contains("CSV scan defined in `ReadEvents.read` (run by query `total`)"), "{message}");
    assert!(message.contains(&format!("over {}:", bad_path.display())), "the one file: {message}");
    assert!(!message.contains("a.csv"), "not the other files: {message}");
    assert!(message.contains("line 2002"), "the real 1-based line: {message}");
    assert!(message.contains("`amount`"), "the column's name: {message}");
}

#[test]
fn a_join_of_two_csv_scans_builds_on_the_smaller_whatever_the_order_in_the_sql() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let big: String =
        std::iter::once("k,v\n".to_owned()).chain((0..20_000).map(|i| format!("{},{i}\n", i % 50))).collect();
    let small: String = std::iter::once("k,name\n".to_owned()).chain((0..50).map(|i| format!("{i},n{i}\n"))).collect();
    let schema = |second: &str, kind: DataType| {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new(second, kind, false)]))
    };
    let big = CsvScan::new(write(dir.path(), "big.csv", &big)).schema(schema("v", DataType::Int64));
    let small = CsvScan::new(write(dir.path(), "small.csv", &small)).schema(schema("name", DataType::Utf8));
    for sql in [
        "SELECT count(*) AS n, sum(v) AS s FROM big JOIN small ON big.k = small.k",
        "SELECT count(*) AS n, sum(v) AS s FROM small JOIN big ON big.k = small.k",
    ] {
        let session = engine.session();
        session.register("big", &big.read(&session).unwrap()).unwrap();
        session.register("small", &small.read(&session).unwrap()).unwrap();
        let frame = session.sql("join", sql).unwrap();
        let plan = frame.explain().unwrap();
        // The build side is the hash join's first input: the first scan below the join.
        let below_join = &plan[plan.find("HashJoinExec").expect("a hash join")..];
        let first_scan = below_join.find("small.csv").zip(below_join.find("big.csv"));
        assert!(matches!(first_scan, Some((small, big)) if small < big), "{sql}: builds on the small table\n{plan}");
        let data = frame.collect().unwrap();
        let batch = &data.batches()[0];
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 20_000, "{sql}");
    }
}
