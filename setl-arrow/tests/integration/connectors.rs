//! Round trips through every connector (nulls, unicode, empty files, many files, partitions,
//! globs, streaming, projection, options) and save modes.

use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use setl_arrow::io::{
    CsvReader, CsvWriter, IpcReader, IpcWriter, JsonReader, JsonWriter, ParquetCompression, ParquetReader,
    ParquetWriter, SaveMode,
};
use setl_arrow::{Dataset, Error, Schema};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Flat rows: every format can hold them, CSV included.
#[derive(Schema, Debug, Clone, PartialEq)]
struct Order {
    id: i64,
    customer: String,
    #[schema(decimal(10, 2))]
    amount: Option<i128>,
    day: NaiveDate,
    at: Option<DateTime<Utc>>,
    paid: bool,
    score: f64,
    note: Option<String>,
}

#[derive(Schema, Debug, Clone, PartialEq)]
struct Line {
    sku: String,
    qty: u32,
}

/// Nested rows for the formats that hold lists and structs.
#[derive(Schema, Debug, Clone, PartialEq)]
struct Basket {
    id: i64,
    lines: Vec<Line>,
    tags: Vec<Option<String>>,
    main: Option<Line>,
}

fn orders(n: i64) -> Vec<Order> {
    (0..n)
        .map(|i| Order {
            id: i,
            customer: ["ann", "bob", "zoë 日本", "dan, \"the\" man"][i as usize % 4].to_owned(),
            amount: (i % 3 != 0).then_some(i128::from(i) * 101),
            day: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(i as u64),
            at: (i % 2 == 0).then(|| Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::seconds(i)),
            paid: i % 2 == 1,
            score: i as f64 / 4.0,
            note: match i % 4 {
                0 => None,
                1 => Some("line one\nline two".to_owned()),
                2 => Some("émoji 🎉, comma".to_owned()),
                _ => Some(String::new()),
            },
        })
        .collect()
}

fn baskets(n: i64) -> Vec<Basket> {
    (0..n)
        .map(|i| Basket {
            id: i,
            lines: (0..i % 3).map(|j| Line { sku: format!("sku-{j}-ü"), qty: j as u32 }).collect(),
            tags: vec![Some("a".into()), None],
            main: (i % 2 == 0).then(|| Line { sku: "main".into(), qty: 1 }),
        })
        .collect()
}

fn sorted(mut rows: Vec<Order>) -> Vec<Order> {
    rows.sort_by_key(|o| o.id);
    rows
}

/// CSV writes an empty string as an empty field, which reads back as null: the one value CSV
/// cannot keep apart.
fn csv_normalized(rows: Vec<Order>) -> Vec<Order> {
    rows.into_iter().map(|o| Order { note: o.note.filter(|n| !n.is_empty()), ..o }).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push(entry.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn csv_typed_round_trip_keeps_nulls_unicode_quotes_and_newlines() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("orders.csv");
    let data = Dataset::from_rows(&orders(40))?;
    let written = CsvWriter::new().write(&data, &path)?;
    assert_eq!(written, vec![path.clone()]);
    let back: Dataset<Order> = CsvReader::new().with_batch_size(7).read_typed(&path)?;
    assert_eq!(back.num_batches(), 6);
    assert_eq!(back.to_rows()?, csv_normalized(orders(40)));
    Ok(())
}

#[test]
fn csv_untyped_read_infers_types() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("plain.csv");
    std::fs::write(&path, "a,b,c,d\n1,x,1.5,true\n2,,2.5,false\n")?;
    let data = CsvReader::new().read(&path)?;
    let types: Vec<String> = data.schema().fields().iter().map(|f| f.data_type().to_string()).collect();
    assert_eq!(types, ["Int64", "Utf8", "Float64", "Boolean"]);
    assert_eq!(data.num_rows(), 2);
    assert_eq!(
        data.to_string(),
        "+---+---+-----+-------+\n| a | b | c   | d     |\n+---+---+-----+-------+\n| 1 | x | 1.5 | true  |\n| 2 |   | 2.5 | false |\n+---+---+-----+-------+"
    );
    Ok(())
}

#[test]
fn csv_options_delimiter_quote_null_strings_and_no_header() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("semi.csv");
    let data = Dataset::from_rows(&orders(9))?;
    CsvWriter::new()
        .with_delimiter(b';')
        .with_quote(b'\'')
        .with_null_value("NA")
        .with_header(false)
        .write(&data, &path)?;
    let text = std::fs::read_to_string(&path)?;
    assert!(text.starts_with("0;ann;NA;2024-01-01;"), "{text}");
    assert!(text.contains("\n3;dan, \"the\" man;"), "{text}");
    assert!(text.contains("'line one\nline two'"), "{text}");
    let back: Dataset<Order> = CsvReader::new()
        .with_delimiter(b';')
        .with_quote(b'\'')
        .with_null_values(["NA"])
        .with_header(false)
        .read_typed(&path)?;
    // With "NA" as the null string, the empty note stays an empty string.
    assert_eq!(back.to_rows()?, orders(9));
    Ok(())
}

#[test]
fn csv_header_in_another_order_is_mapped_by_name() -> TestResult {
    #[derive(Schema, Debug, PartialEq)]
    struct Pair {
        left: i32,
        right: String,
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pair.csv");
    std::fs::write(&path, "right,extra,left\nr1,x,1\nr2,y,2\n")?;
    let back: Dataset<Pair> = CsvReader::new().read_typed(&path)?;
    assert_eq!(back.to_rows()?, vec![Pair { left: 1, right: "r1".into() }, Pair { left: 2, right: "r2".into() }]);
    Ok(())
}

#[test]
fn json_parquet_and_ipc_round_trip_nested_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_rows(&baskets(25))?;
    JsonWriter::new().write(&data, dir.path().join("b.json"))?;
    ParquetWriter::new().write(&data, dir.path().join("b.parquet"))?;
    IpcWriter::new().write(&data, dir.path().join("b.arrow"))?;
    let json: Dataset<Basket> = JsonReader::new().read_typed(dir.path().join("b.json"))?;
    let parquet: Dataset<Basket> = ParquetReader::new().read_typed(dir.path().join("b.parquet"))?;
    let ipc: Dataset<Basket> = IpcReader::new().read_typed(dir.path().join("b.arrow"))?;
    assert_eq!(json.to_rows()?, baskets(25));
    assert_eq!(parquet.to_rows()?, baskets(25));
    assert_eq!(ipc.to_rows()?, baskets(25));
    Ok(())
}

#[test]
fn every_format_round_trips_flat_rows_typed_and_untyped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_rows(&orders(30))?;
    JsonWriter::new().write(&data, dir.path().join("o.json"))?;
    ParquetWriter::new().write(&data, dir.path().join("o.parquet"))?;
    IpcWriter::new().write(&data, dir.path().join("o.arrow"))?;
    let json: Dataset<Order> = JsonReader::new().read_typed(dir.path().join("o.json"))?;
    assert_eq!(json.to_rows()?, orders(30));
    for untyped in
        [ParquetReader::new().read(dir.path().join("o.parquet"))?, IpcReader::new().read(dir.path().join("o.arrow"))?]
    {
        assert_eq!(untyped.schema(), &Order::arrow_schema());
        assert_eq!(untyped.into_typed::<Order>()?.to_rows()?, orders(30));
    }
    let json_untyped = JsonReader::new().read(dir.path().join("o.json"))?;
    assert_eq!(json_untyped.num_rows(), 30);
    assert_eq!(json_untyped.schema().field_with_name("id")?.data_type(), &arrow::datatypes::DataType::Int64);
    Ok(())
}

#[test]
fn empty_datasets_and_empty_files_round_trip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let empty = Dataset::<Order>::from_rows(&[])?;
    CsvWriter::new().write(&empty, dir.path().join("e.csv"))?;
    JsonWriter::new().write(&empty, dir.path().join("e.json"))?;
    ParquetWriter::new().write(&empty, dir.path().join("e.parquet"))?;
    IpcWriter::new().write(&empty, dir.path().join("e.arrow"))?;
    assert_eq!(std::fs::read_to_string(dir.path().join("e.csv"))?, "id,customer,amount,day,at,paid,score,note\n");
    assert_eq!(CsvReader::new().read_typed::<Order>(dir.path().join("e.csv"))?.num_rows(), 0);
    assert_eq!(JsonReader::new().read_typed::<Order>(dir.path().join("e.json"))?.num_rows(), 0);
    assert_eq!(ParquetReader::new().read_typed::<Order>(dir.path().join("e.parquet"))?.num_rows(), 0);
    assert_eq!(IpcReader::new().read_typed::<Order>(dir.path().join("e.arrow"))?.num_rows(), 0);
    // A zero-byte file is an empty dataset too.
    std::fs::write(dir.path().join("zero.csv"), "")?;
    assert_eq!(CsvReader::new().read_typed::<Order>(dir.path().join("zero.csv"))?.num_rows(), 0);
    assert_eq!(CsvReader::new().read(dir.path().join("zero.csv"))?.num_rows(), 0);
    // An empty directory is an empty typed dataset.
    std::fs::create_dir(dir.path().join("nothing"))?;
    assert_eq!(ParquetReader::new().read_typed::<Order>(dir.path().join("nothing"))?.num_rows(), 0);
    Ok(())
}

#[test]
fn many_files_by_append_directory_and_glob() -> TestResult {
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("many");
    let all = orders(60);
    for chunk in all.chunks(3) {
        let data = Dataset::from_rows(chunk)?;
        ParquetWriter::new().with_mode(SaveMode::Append).write(&data, &target)?;
        CsvWriter::new().with_mode(SaveMode::Append).write(&data, dir.path().join("csvs"))?;
    }
    assert_eq!(files_in(&target).len(), 20);
    let back: Dataset<Order> = ParquetReader::new().read_typed(&target)?;
    assert_eq!(sorted(back.to_rows()?), all);
    let glob = format!("{}/*.csv", dir.path().join("csvs").display());
    let back: Dataset<Order> = CsvReader::new().read_typed(&glob)?;
    assert_eq!(sorted(back.to_rows()?), csv_normalized(all.clone()));
    let untyped = CsvReader::new().read(&glob)?;
    assert_eq!(untyped.num_rows(), 60);
    Ok(())
}

#[test]
fn partitioned_writes_restore_partition_columns_on_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("by_customer");
    let data = Dataset::from_rows(&orders(16))?;
    let written = ParquetWriter::new().with_partition_by([Order::CUSTOMER, Order::PAID]).write(&data, &target)?;
    assert_eq!(written.len(), 4);
    let dirs: Vec<String> = files_in(&target).iter().map(|f| f.rsplit_once('/').unwrap().0.to_owned()).collect();
    assert_eq!(
        dirs,
        [
            "customer=ann/paid=false",
            "customer=bob/paid=true",
            "customer=dan, %22the%22 man/paid=true",
            "customer=zoë 日本/paid=false"
        ]
    );
    let back: Dataset<Order> = ParquetReader::new().read_typed(&target)?;
    assert_eq!(sorted(back.to_rows()?), orders(16));
    // Untyped: partition columns come last, typed from their values.
    let untyped = ParquetReader::new().read(&target)?;
    let names = untyped.column_names();
    assert_eq!(names[names.len() - 2..], ["customer", "paid"]);
    assert_eq!(untyped.schema().field_with_name("paid")?.data_type(), &arrow::datatypes::DataType::Utf8);
    // Projection may pick partition columns.
    let projected = ParquetReader::new().with_projection(["paid", "id"]).read(&target)?;
    assert_eq!(projected.column_names(), ["paid", "id"]);
    assert_eq!(projected.num_rows(), 16);
    Ok(())
}

#[test]
fn partition_values_with_slashes_and_nulls_round_trip() -> TestResult {
    #[derive(Schema, Debug, Clone, PartialEq)]
    struct Event {
        id: i32,
        path: Option<String>,
        year: i32,
    }
    let rows = vec![
        Event { id: 1, path: Some("a/b=c".into()), year: 2023 },
        Event { id: 2, path: None, year: 2024 },
        Event { id: 3, path: Some("50%".into()), year: 2024 },
    ];
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("events");
    CsvWriter::new().with_partition_by(["path", "year"]).write(&Dataset::from_rows(&rows)?, &target)?;
    let names: Vec<String> = files_in(&target).iter().map(|f| f.rsplit_once('/').unwrap().0.to_owned()).collect();
    assert_eq!(
        names,
        ["path=50%25/year=2024", "path=__HIVE_DEFAULT_PARTITION__/year=2024", "path=a%2Fb%3Dc/year=2023"]
    );
    let mut back = CsvReader::new().read_typed::<Event>(&target)?.to_rows()?;
    back.sort_by_key(|e| e.id);
    assert_eq!(back, rows);
    let untyped = CsvReader::new().read(&target)?;
    assert_eq!(untyped.schema().field_with_name("year")?.data_type(), &arrow::datatypes::DataType::Int64);
    Ok(())
}

#[test]
fn streaming_reads_batch_by_batch_across_files() -> TestResult {
    fn send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir()?;
    for i in 0..3 {
        let data = Dataset::from_rows(&orders(25))?;
        CsvWriter::new().write(&data, dir.path().join(format!("part-{i}.csv")))?;
    }
    let stream = CsvReader::new().with_batch_size(10).stream_typed::<Order>(dir.path())?;
    send(&stream); // A stream can move to a worker thread.
    assert_eq!(stream.schema(), &Order::arrow_schema());
    let sizes: Vec<usize> = stream.map(|b| b.map(|b| b.num_rows())).collect::<Result<_, _>>()?;
    assert_eq!(sizes, [10, 10, 5, 10, 10, 5, 10, 10, 5]);
    Ok(())
}

#[test]
fn projection_reads_only_the_named_columns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_rows(&orders(5))?;
    CsvWriter::new().write(&data, dir.path().join("o.csv"))?;
    ParquetWriter::new().write(&data, dir.path().join("o.parquet"))?;
    JsonWriter::new().write(&data, dir.path().join("o.json"))?;
    IpcWriter::new().write(&data, dir.path().join("o.arrow"))?;
    for dataset in [
        CsvReader::new().with_projection(["score", "id"]).read(dir.path().join("o.csv"))?,
        ParquetReader::new().with_projection(["score", "id"]).read(dir.path().join("o.parquet"))?,
        JsonReader::new().with_projection(["score", "id"]).read(dir.path().join("o.json"))?,
        IpcReader::new().with_projection(["score", "id"]).read(dir.path().join("o.arrow"))?,
    ] {
        assert_eq!(dataset.column_names(), ["score", "id"]);
        assert_eq!(dataset.num_rows(), 5);
    }
    let error = CsvReader::new().with_projection(["id", "nope", "nada"]).read(dir.path().join("o.csv")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no column named `nope`, `nada` (available: `id`, `customer`, `amount`, `day`, `at`, `paid`, `score`, `note`)"
    );
    Ok(())
}

#[test]
fn parquet_compression_and_row_group_size_apply() -> TestResult {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_rows(&orders(1000))?;
    for (name, compression) in
        [("s", ParquetCompression::Snappy), ("z", ParquetCompression::Zstd(3)), ("u", ParquetCompression::Uncompressed)]
    {
        let path = dir.path().join(format!("{name}.parquet"));
        ParquetWriter::new().with_compression(compression).with_row_group_size(300).write(&data, &path)?;
        let reader = SerializedFileReader::new(std::fs::File::open(&path)?)?;
        assert_eq!(reader.metadata().num_row_groups(), 4);
        // Parquet records the codec, not the level.
        let codec = reader.metadata().row_group(0).column(0).compression().to_string();
        let expected = match name {
            "s" => "SNAPPY",
            "z" => "ZSTD(ZstdLevel(1))",
            _ => "UNCOMPRESSED",
        };
        assert_eq!(codec, expected);
        let back: Dataset<Order> = ParquetReader::new().read_typed(&path)?;
        assert_eq!(back.to_rows()?, orders(1000));
    }
    let error = ParquetWriter::new()
        .with_compression(ParquetCompression::Zstd(99))
        .write(&data, dir.path().join("bad.parquet"))
        .unwrap_err();
    assert!(matches!(error, Error::InvalidOption { option: "compression", .. }), "{error}");
    assert!(!dir.path().join("bad.parquet").exists());
    Ok(())
}

/// Written files get the mode `File::create` would give them, not a temporary file's 0600.
#[cfg(unix)]
#[test]
fn written_files_have_the_mode_of_created_files() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_rows(&orders(3))?;
    let plain = dir.path().join("plain");
    std::fs::File::create(&plain)?;
    let mode = |path: &Path| -> std::io::Result<u32> { Ok(std::fs::metadata(path)?.permissions().mode() & 0o777) };
    let expected = mode(&plain)?;
    ParquetWriter::new().write(&data, dir.path().join("o.parquet"))?;
    CsvWriter::new().write(&data, dir.path().join("o.csv"))?;
    ParquetWriter::new().with_partition_by(["paid"]).write(&data, dir.path().join("parts"))?;
    let part = std::fs::read_dir(dir.path().join("parts/paid=true"))?.next().expect("a part file")?.path();
    for path in [dir.path().join("o.parquet"), dir.path().join("o.csv"), part] {
        assert_eq!(mode(&path)?, expected, "{}", path.display());
    }
    Ok(())
}

#[test]
fn save_modes_error_overwrite_append() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("o.parquet");
    let first = Dataset::from_rows(&orders(3))?;
    let second = Dataset::from_rows(&orders(5))?;
    ParquetWriter::new().write(&first, &path)?;
    let error = ParquetWriter::new().write(&second, &path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("`{}` already exists; choose SaveMode::Overwrite or SaveMode::Append to write there", path.display())
    );
    assert_eq!(ParquetReader::new().read(&path)?.num_rows(), 3);
    ParquetWriter::new().with_mode(SaveMode::Overwrite).write(&second, &path)?;
    assert_eq!(ParquetReader::new().read(&path)?.num_rows(), 5);
    // Append to a file is refused; to a directory it adds files.
    let error = ParquetWriter::new().with_mode(SaveMode::Append).write(&second, &path).unwrap_err();
    assert!(matches!(error, Error::InvalidOption { option: "mode", .. }), "{error}");
    let parts = dir.path().join("parts");
    ParquetWriter::new().with_partition_by(["paid"]).write(&first, &parts)?;
    assert!(matches!(
        ParquetWriter::new().with_partition_by(["paid"]).write(&first, &parts),
        Err(Error::AlreadyExists { .. })
    ));
    ParquetWriter::new().with_partition_by(["paid"]).with_mode(SaveMode::Append).write(&second, &parts)?;
    assert_eq!(ParquetReader::new().read(&parts)?.num_rows(), 8);
    ParquetWriter::new().with_partition_by(["paid"]).with_mode(SaveMode::Overwrite).write(&first, &parts)?;
    assert_eq!(ParquetReader::new().read(&parts)?.num_rows(), 3);
    // No staging or temporary file is left next to the targets.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}
