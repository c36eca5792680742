//! Readers on hostile input: symbolic link loops, ambiguous CSV headers and quotes, partition
//! values that would change on the way in, JSON integers beyond `i64`. Each error names what is
//! wrong, where, and what to do.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use setl_arrow::io::{CsvReader, JsonReader};
use setl_arrow::{Dataset, Error};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn write(path: &Path, text: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Runs `read` on another thread and fails the test if it does not finish within 20 s, so a
/// read that never ends cannot hang the suite.
fn within_deadline<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(read());
    });
    receiver.recv_timeout(Duration::from_secs(20)).expect("the read did not finish within 20 s")
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_in_a_directory_is_an_error_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write(&root.join("part-0.csv"), b"a\n1\n");
    write(&root.join("sub/part-1.csv"), b"a\n2\n");
    std::os::unix::fs::symlink(".", root.join("sub/a")).unwrap();
    let read_root = root.clone();
    let error = within_deadline(move || CsvReader::new().read(&read_root).map(|d| d.num_rows())).unwrap_err();
    assert!(matches!(error, Error::SymlinkLoop { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "symbolic link loop: `{}` leads back to `{}`, which contains it; remove the link, or read a path that \
             does not include it",
            root.join("sub/a").display(),
            root.join("sub").display()
        )
    );
    // Through a glob too.
    let pattern = dir.path().join("da*");
    let error = within_deadline(move || CsvReader::new().read(&pattern).map(|d| d.num_rows())).unwrap_err();
    assert!(matches!(error, Error::SymlinkLoop { .. }), "{error:?}");
}

#[cfg(unix)]
#[test]
fn links_without_a_loop_are_followed_and_hidden_names_skipped_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let elsewhere = dir.path().join("elsewhere");
    write(&root.join("b.csv"), b"a\n2\n");
    write(&root.join("a.csv"), b"a\n1\n");
    write(&root.join(".hidden.csv"), b"a\n99\n");
    write(&root.join("_SUCCESS"), b"");
    write(&elsewhere.join("c.csv"), b"a\n3\n");
    std::os::unix::fs::symlink(&elsewhere, root.join("linked"))?;
    // A dangling link with a hidden name, as an editor's lock file: skipped like any hidden name.
    std::os::unix::fs::symlink(dir.path().join("absent"), root.join(".#lock"))?;
    let read_root = root.clone();
    let data: Dataset = within_deadline(move || CsvReader::new().read(&read_root))?;
    let batch = data.compact()?;
    let column = batch.batches()[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
    assert_eq!(column.values().to_vec(), [1, 2, 3]);
    Ok(())
}

fn csv_error(path: &Path, line: u64, column: usize, name: &str, message: &str) -> String {
    format!("malformed CSV in `{}`, line {line}, column {column} (`{name}`): {message}", path.display())
}

const DUPLICATE: &str =
    "the header names two columns `a` (columns 1 and 3); rename one, or read with_header(false) and a schema";
const OPEN_QUOTE: &str =
    "the quote that opens this field is never closed, so the rest of the file would be read into it; \
                          close the quote, or write a quote inside a quoted field as two (\"\")";

#[test]
fn a_csv_header_naming_a_column_twice_is_an_error_naming_both_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.csv");
    write(&path, b"a,b,a\n1,2,3\n");
    let expected = csv_error(&path, 1, 3, "a", DUPLICATE);
    assert_eq!(CsvReader::new().read(&path).unwrap_err().to_string(), expected);
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    assert_eq!(CsvReader::new().with_schema(schema).read(&path).unwrap_err().to_string(), expected);
    // Without a header there are no names to clash.
    let data = CsvReader::new().with_header(false).read(&path).unwrap();
    assert_eq!(data.column_names(), ["column_1", "column_2", "column_3"]);
}

#[test]
fn a_csv_quote_that_never_closes_is_an_error_where_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quote.csv");
    write(&path, b"a,b\n1,x\n2,\"oops\n3,y\n4,z\n");
    let expected = csv_error(&path, 3, 2, "b", OPEN_QUOTE);
    // Inferred, inferred from records before the quote only, with a schema, typed.
    assert_eq!(CsvReader::new().read(&path).unwrap_err().to_string(), expected);
    assert_eq!(CsvReader::new().with_infer_records(Some(1)).read(&path).unwrap_err().to_string(), expected);
    let schema =
        Arc::new(ArrowSchema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]));
    assert_eq!(CsvReader::new().with_schema(schema.clone()).read(&path).unwrap_err().to_string(), expected);
    assert_eq!(CsvReader::new().with_schema(schema).with_batch_size(1).read(&path).unwrap_err().to_string(), expected);
    // An earlier error in the same batch comes first.
    write(&path, b"a,b\nx,1\n2,\"oops\n");
    let schema =
        Arc::new(ArrowSchema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]));
    assert_eq!(
        CsvReader::new().with_schema(schema).read(&path).unwrap_err().to_string(),
        csv_error(&path, 2, 1, "a", "value \"x\" is not a valid Int64")
    );
    // In a file without a header, and in the header itself.
    write(&path, b"1,x\n2,\"oops\n");
    assert_eq!(
        CsvReader::new().with_header(false).read(&path).unwrap_err().to_string(),
        csv_error(&path, 2, 2, "column_2", OPEN_QUOTE)
    );
    write(&path, b"\"a,b\n1,2\n");
    assert_eq!(CsvReader::new().read(&path).unwrap_err().to_string(), csv_error(&path, 1, 1, "column_1", OPEN_QUOTE));
}

#[test]
fn closed_csv_quotes_still_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("fine.csv");
    write(&path, b"a,b\n1,\"say \"\"hi\"\"\"\n2,\"two\nlines\"\n3,ab\"c\n");
    let data = CsvReader::new().read(&path)?.compact()?;
    let b = data.batches()[0].column(1).as_any().downcast_ref::<StringArray>().unwrap().clone();
    assert_eq!(b.iter().flatten().collect::<Vec<_>>(), ["say \"hi\"", "two\nlines", "ab\"c"]);
    write(&path, b"a,b\n1,\"x\\\"y\"\n");
    let data = CsvReader::new().with_escape(b'\\').read(&path)?.compact()?;
    let b = data.batches()[0].column(1).as_any().downcast_ref::<StringArray>().unwrap().clone();
    assert_eq!(b.value(0), "x\"y");
    Ok(())
}

fn strings(data: &Dataset, column: &str) -> Vec<Option<String>> {
    let index = data.schema().index_of(column).unwrap();
    let mut out = Vec::new();
    for batch in data.batches() {
        let array = arrow::compute::cast(batch.column(index), &DataType::Utf8).unwrap();
        let array = array.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend(array.iter().map(|v| v.map(str::to_owned)));
    }
    out
}

#[test]
fn partition_values_read_back_exactly_as_the_directories_spell_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("parts");
    write(&root.join("code=007/part-0.csv"), b"n\n1\n");
    write(&root.join("code=7/part-0.csv"), b"n\n2\n");
    let data = CsvReader::new().read(&root)?;
    assert_eq!(data.schema().field_with_name("code")?.data_type(), &DataType::Utf8);
    assert_eq!(strings(&data, "code"), [Some("007".to_owned()), Some("7".to_owned())]);
    // Canonical integers (and nulls) are still numbers.
    let root = dir.path().join("years");
    write(&root.join("year=2024/part-0.csv"), b"n\n1\n");
    write(&root.join("year=-3/part-0.csv"), b"n\n2\n");
    write(&root.join("year=__HIVE_DEFAULT_PARTITION__/part-0.csv"), b"n\n3\n");
    let data = CsvReader::new().read(&root)?;
    assert_eq!(data.schema().field_with_name("year")?.data_type(), &DataType::Int64);
    // `+7` and `-0` would read back changed too.
    for odd in ["+7", "-0"] {
        let root = dir.path().join(format!("odd{odd}"));
        write(&root.join(format!("k={odd}/part-0.csv")), b"n\n1\n");
        write(&root.join("k=1/part-0.csv"), b"n\n2\n");
        let data = CsvReader::new().read(&root)?;
        assert_eq!(data.schema().field_with_name("k")?.data_type(), &DataType::Utf8, "{odd}");
    }
    Ok(())
}

#[test]
fn partition_columns_take_a_declared_type_and_a_value_that_does_not_parse_names_its_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("parts");
    write(&root.join("code=007/part-0.csv"), b"n\n1\n");
    write(&root.join("code=12/part-0.csv"), b"n\n2\n");
    let int32 = Arc::new(ArrowSchema::new(vec![Field::new("code", DataType::Int32, true)]));
    let data = CsvReader::new().with_partition_schema(int32.clone()).read(&root)?;
    assert_eq!(data.schema().field_with_name("code")?.data_type(), &DataType::Int32);
    assert_eq!(strings(&data, "code"), [Some("7".to_owned()), Some("12".to_owned())]);
    // As part of the read's schema too.
    let full = Arc::new(ArrowSchema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("code", DataType::Int32, true),
    ]));
    let data = CsvReader::new().with_schema(full).read(&root)?;
    assert_eq!(data.schema().field_with_name("code")?.data_type(), &DataType::Int32);

    write(&root.join("code=x1/part-0.csv"), b"n\n3\n");
    let error = CsvReader::new().with_partition_schema(int32).read(&root).unwrap_err();
    assert!(matches!(error, Error::Partition { .. }), "{error:?}");
    let text = error.to_string();
    let start = format!(
        "partition layout of `{}`: value `x1` of partition column `code` is not a valid Int32 (",
        root.join("code=x1").display()
    );
    assert!(text.starts_with(&start), "{text}");
    assert!(text.ends_with("); rename the directory, or read the column as Utf8 (with_partition_schema)"), "{text}");

    let unknown = Arc::new(ArrowSchema::new(vec![Field::new("kode", DataType::Int32, true)]));
    assert_eq!(
        CsvReader::new().with_partition_schema(unknown).read(&root).unwrap_err().to_string(),
        "invalid option `partition_schema`: `kode` is not a partition column of this read (its directories give: \
         `code`)"
    );
    let utf8 = Arc::new(ArrowSchema::new(vec![Field::new("code", DataType::Utf8, true)]));
    let int64 = Arc::new(ArrowSchema::new(vec![Field::new("code", DataType::Int64, true)]));
    assert_eq!(
        CsvReader::new().with_schema(int64).with_partition_schema(utf8).read(&root).unwrap_err().to_string(),
        "invalid option `partition_schema`: partition column `code` is Utf8 there but Int64 in the read's schema; \
         give it one type"
    );
    Ok(())
}

#[test]
fn json_integers_beyond_i64_are_inferred_as_types_that_hold_them_exactly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.json");
    write(
        &path,
        b"{\"u\": 1, \"d\": 5, \"f\": 1.5}\n\n{\"u\": 18446744073709551615, \"d\": -9223372036854775809, \"f\": 2}\n",
    );
    let data = JsonReader::new().read(&path)?;
    let types: Vec<(String, DataType)> =
        data.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    assert_eq!(
        types,
        [
            ("d".to_owned(), DataType::Decimal128(38, 0)),
            ("f".to_owned(), DataType::Float64),
            ("u".to_owned(), DataType::UInt64)
        ]
    );
    assert_eq!(strings(&data, "u"), [Some("1".to_owned()), Some("18446744073709551615".to_owned())]);
    assert_eq!(strings(&data, "d"), [Some("5".to_owned()), Some("-9223372036854775809".to_owned())]);

    // No inferred type holds these exactly: the error says to give a schema.
    write(&path, b"{\"x\": 1.5}\n{\"x\": 18446744073709551616}\n");
    assert_eq!(
        JsonReader::new().read(&path).unwrap_err().to_string(),
        format!(
            "malformed JSON in `{}`, line 2, field `x`: integer 18446744073709551616 does not fit Int64, and `x` also \
             holds numbers with a fraction or exponent (line 1), so no inferred type holds every value exactly; give \
             a schema (with_schema) that declares `x`, as Float64 if approximate values will do",
            path.display()
        )
    );
    let long = "1".repeat(39);
    write(&path, format!("{{\"x\": 1}}\n{{\"x\": {long}}}\n").as_bytes());
    assert_eq!(
        JsonReader::new().read(&path).unwrap_err().to_string(),
        format!(
            "malformed JSON in `{}`, line 2, field `x`: integer {long} has more than 38 digits, more than an inferred \
             type holds; give a schema (with_schema) that declares `x`, as Decimal256(76, 0), or as Float64 if an \
             approximate value will do",
            path.display()
        )
    );
    // A schema that holds it reads it exactly.
    let schema = Arc::new(ArrowSchema::new(vec![Field::new("x", DataType::Decimal256(76, 0), true)]));
    let data = JsonReader::new().with_schema(schema).read(&path)?;
    assert_eq!(strings(&data, "x"), [Some("1".to_owned()), Some(long)]);
    Ok(())
}

#[test]
fn a_json_integer_out_of_range_of_the_schema_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    write(&path, b"{\"id\": 1, \"n\": 5}\n{\"id\": 2, \"n\": 9223372036854775808}\n");
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let error = JsonReader::new().with_schema(schema).read(&path).unwrap_err();
    assert!(matches!(&error, Error::Json { field: Some(field), line: Some(2), .. } if field == "n"), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "malformed JSON in `{}`, line 2, field `n`: integer 9223372036854775808 is out of range of Int64; declare \
             `n` in the schema with a type that holds it (Int64, UInt64 for 0 to 18446744073709551615, \
             Decimal128(38, 0) for up to 38 digits)",
            path.display()
        )
    );
    // Inferred from the first line only, the later value is out of range of the inferred Int64.
    let error = JsonReader::new().with_infer_records(Some(1)).read(&path).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "malformed JSON in `{}`, line 2, field `n`: integer 9223372036854775808",
            path.display()
        )),
        "{error}"
    );
    // A value of another kind still names its field.
    write(&path, b"{\"id\": 1, \"n\": [1]}\n");
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let error = JsonReader::new().with_schema(schema).read(&path).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("malformed JSON in `{}`, line 1, field `n`: ", path.display())),
        "{error}"
    );
}

/// Found by the `parquet_reader` fuzz target: a Parquet file whose embedded Arrow schema
/// (`ARROW:schema`) has a field of flatbuffer type NONE, on which arrow-ipc 59 panics.
const NONE_TYPE_PARQUET: &[u8] = include_bytes!("../data/arrow-schema-with-a-none-type.parquet");

#[test]
fn a_file_that_makes_the_parquet_crate_panic_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.parquet");
    write(&path, NONE_TYPE_PARQUET);
    let error = setl_arrow::io::ParquetReader::new().read(&path).unwrap_err();
    assert!(matches!(error, Error::Parquet { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "`{}` is not a readable Parquet file: Parquet error: the parquet crate panicked on it (",
            path.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("); the file is corrupt, or uses a feature the crate does not support"), "{text}");
}

/// Found by the `parquet_reader` fuzz target: `to_string` on a dataset read from a file with a
/// `Timestamp(Microsecond, "UTC")` column panicked, since Arrow's printer (without chrono-tz)
/// fails on a named time zone and `Display` passed that on as `fmt::Error`. A zone no time
/// zone database knows fails the printer with chrono-tz too (which DataFusion's features enable
/// in a workspace build).
#[test]
fn a_dataset_the_printer_cannot_show_says_why_instead_of_panicking() {
    use arrow::array::TimestampMicrosecondArray;
    let column = TimestampMicrosecondArray::from(vec![0, 1]).with_timezone("Mars/Olympus_Mons");
    let schema = Arc::new(ArrowSchema::new(vec![Field::new("at", column.data_type().clone(), false)]));
    let batch = arrow::array::RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap();
    let text = Dataset::from_batch(batch).to_string();
    assert!(text.starts_with("<a dataset of 2 rows and 1 columns that cannot be shown as a table: "), "{text}");
    assert!(text.contains("Mars/Olympus_Mons"), "{text}");
}

/// Found by the `ipc_reader` fuzz target: an IPC file whose footer states a record batch of
/// about 4 EiB. arrow-ipc allocates a block's stated length before reading it, which aborts the
/// process (an allocation failure, not a panic); the footer is now checked first.
const HUGE_BLOCK_IPC: &[u8] = include_bytes!("../data/footer-block-past-the-end.arrow");

#[test]
fn an_ipc_footer_block_past_the_end_of_the_file_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.arrow");
    write(&path, HUGE_BLOCK_IPC);
    let error = setl_arrow::io::IpcReader::new().read(&path).unwrap_err();
    assert!(matches!(error, Error::Ipc { .. }), "{error:?}");
    let text = error.to_string();
    let start = format!(
        "`{}` is not a readable Arrow IPC file: Ipc error: record batch 0 of its footer (offset ",
        path.display()
    );
    assert!(text.starts_with(&start), "{text}");
    assert!(
        text.ends_with(&format!(
            ") does not lie within the file ({} bytes); the file is truncated or corrupt",
            HUGE_BLOCK_IPC.len()
        )),
        "{text}"
    );
}

/// Found by the `ipc_reader` fuzz target: an IPC file stating a column of type
/// `Decimal128(0, 3)`. arrow-ipc reads it; Arrow's printer then overflows on it (a panic in
/// `to_string`). The type is now rejected when the file's schema is read.
const DECIMAL_OF_PRECISION_0_IPC: &[u8] = include_bytes!("../data/decimal-of-precision-0.arrow");

#[test]
fn a_file_stating_a_type_no_arrow_array_may_have_is_an_error_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.arrow");
    write(&path, DECIMAL_OF_PRECISION_0_IPC);
    let error = setl_arrow::io::IpcReader::new().read(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` is not a readable Arrow IPC file: Schema error: column `amount` has type Decimal128(0, 3), which no \
             Arrow array may have (Invalid argument error: precision cannot be 0, has to be between [1, 38]); the file \
             is corrupt",
            path.display()
        )
    );
}
