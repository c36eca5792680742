//! Bad input gets a clear error naming what and where; failed writes leave no file behind.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema as ArrowSchema};
use setl_arrow::io::{
    write_atomically, CsvReader, CsvWriter, IpcReader, JsonReader, ParquetReader, ParquetWriter, SaveMode,
};
use setl_arrow::{ColumnDiff, Dataset, Error, Schema};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Schema, Debug, Clone, PartialEq)]
struct Order {
    id: i64,
    customer: String,
    #[schema(decimal(10, 2))]
    amount: i128,
    note: Option<String>,
}

fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), columns).unwrap()
}

#[test]
fn a_typed_dataset_reports_every_differing_column_at_once() {
    let wrong = batch(
        vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("customer", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("extra", DataType::Int32, false),
        ],
        vec![
            Arc::new(StringArray::from(vec!["1", "2"])),
            Arc::new(StringArray::from(vec![Some("ann"), None])),
            Arc::new(StringArray::from(vec![Some("n"), None])),
            Arc::new(Int32Array::from(vec![1, 2])),
        ],
    );
    let error = Dataset::<Order>::try_from_batches(vec![wrong]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "data does not match schema `Order`: 4 columns differ\n  \
         - column `id` has type Utf8, expected Int64\n  \
         - column `customer` is nullable, expected non-nullable\n  \
         - missing column `amount` (Decimal128(10, 2))\n  \
         - extra column `extra` (Int32)"
    );
    let Error::SchemaMismatch(mismatch) = error else { panic!("not a schema mismatch") };
    assert_eq!(
        mismatch.columns[0],
        ColumnDiff::WrongType { name: "id".into(), expected: DataType::Int64, actual: DataType::Utf8 }
    );
}

#[test]
fn a_typed_dataset_accepts_reordered_columns_and_nullable_columns_without_nulls() -> TestResult {
    let reordered = batch(
        vec![
            Field::new("note", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("customer", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ],
        vec![
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(arrow::array::Decimal128Array::from(vec![1234]).with_precision_and_scale(10, 2)?),
            Arc::new(StringArray::from(vec!["ann"])),
            Arc::new(Int64Array::from(vec![7])),
        ],
    );
    let typed = Dataset::<Order>::try_from_batches(vec![reordered])?;
    assert_eq!(typed.schema(), &Order::arrow_schema());
    assert_eq!(typed.to_rows()?, vec![Order { id: 7, customer: "ann".into(), amount: 1234, note: None }]);
    Ok(())
}

#[test]
fn one_wrong_column_reads_in_the_singular() {
    let error = Dataset::from_batch(batch(
        vec![Field::new("id", DataType::Int64, false)],
        vec![Arc::new(Int64Array::from(vec![1]))],
    ))
    .into_typed::<Order>()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "data does not match schema `Order`: 3 columns differ\n  - missing column `customer` (Utf8)\n  \
         - missing column `amount` (Decimal128(10, 2))\n  - missing column `note` (Utf8)"
    );
    let error = Dataset::<Order>::try_from_batches(vec![batch(
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("customer", DataType::Utf8, false),
            Field::new("amount", DataType::Decimal128(12, 2), false),
            Field::new("note", DataType::Utf8, true),
        ],
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(arrow::array::Decimal128Array::from(vec![1]).with_precision_and_scale(12, 2).unwrap()),
            Arc::new(StringArray::from(vec!["n"])),
        ],
    )])
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "data does not match schema `Order`: 1 column differs\n  - column `amount` has type Decimal128(12, 2), expected Decimal128(10, 2)"
    );
}

#[test]
fn untyped_dataset_operations() -> TestResult {
    let data = Dataset::<Order>::from_rows(&[
        Order { id: 1, customer: "a".into(), amount: 1, note: None },
        Order { id: 2, customer: "b".into(), amount: 2, note: Some("x".into()) },
    ])?;
    let twice = data.concat(&data)?;
    assert_eq!((twice.num_rows(), twice.num_batches()), (4, 2));
    assert_eq!(twice.slice(1, 2).to_rows()?.iter().map(|o| o.id).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(twice.slice(3, 100).num_rows(), 1);
    assert_eq!(twice.slice(10, 1).num_rows(), 0);
    assert_eq!(twice.compact()?.num_batches(), 1);
    assert!(twice.byte_size() >= data.byte_size());
    let projected = twice.project(&["note", "id"])?;
    assert_eq!(projected.column_names(), ["note", "id"]);
    assert_eq!(
        projected.head(2).to_string(),
        "+------+----+\n| note | id |\n+------+----+\n|      | 1  |\n| x    | 2  |\n+------+----+"
    );
    let other = Dataset::from_batch(batch(
        vec![Field::new("id", DataType::Int64, false)],
        vec![Arc::new(Int64Array::from(vec![1]))],
    ));
    assert!(matches!(data.clone().into_untyped().concat(&other), Err(Error::BatchSchema { .. })));
    Ok(())
}

#[test]
fn setl_arrow_errors_convert_into_setl_core_errors_with_question_mark() {
    fn phase() -> setl_core::Result<usize> {
        let data = Dataset::from_batch(batch(
            vec![Field::new("id", DataType::Int64, false)],
            vec![Arc::new(Int64Array::from(vec![1]))],
        ));
        let typed = data.into_typed::<Order>()?;
        Ok(typed.num_rows())
    }
    let error = phase().unwrap_err();
    assert!(error.to_string().starts_with("data does not match schema `Order`: 3 columns differ"), "{error}");
}

fn write(path: &Path, text: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(text).unwrap();
}

#[test]
fn a_malformed_csv_value_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    // The quoted newline makes record 3 start on line 5.
    write(&path, b"id,customer,amount,note\n1,ann,1.50,\"two\nlines\"\n2,bob,2.00,\n3,cy,x.5,\n");
    let error = CsvReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "malformed CSV in `{}`, line 5, column 3 (`amount`): value \"x.5\" is not a valid Decimal128(10, 2)",
            path.display()
        )
    );
    // Untyped: the type comes from inference over the first records only.
    let mut text = String::from("n,s\n");
    for i in 0..30 {
        text.push_str(&format!("{i},s{i}\n"));
    }
    text.push_str("oops,late\n");
    write(&path, text.as_bytes());
    let error = CsvReader::new().with_infer_records(Some(10)).with_batch_size(8).read(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("malformed CSV in `{}`, line 32, column 1 (`n`): value \"oops\" is not a valid Int64", path.display())
    );
}

#[test]
fn a_csv_record_with_the_wrong_field_count_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.csv");
    write(&path, b"id,customer,amount,note\n1,ann,1.50,x\n2,bob\n");
    let error = CsvReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(error.to_string(), format!("malformed CSV in `{}`, line 3: expected 4 fields, found 2", path.display()));
    let error = CsvReader::new().read(&path).unwrap_err();
    assert_eq!(error.to_string(), format!("malformed CSV in `{}`, line 3: expected 4 fields, found 2", path.display()));
}

#[test]
fn a_null_in_a_required_csv_column_and_invalid_utf8_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.csv");
    write(&path, b"id,customer,amount,note\n1,,1.50,x\n");
    let error = CsvReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "malformed CSV in `{}`, line 2, column 2 (`customer`): null value in a non-nullable column",
            path.display()
        )
    );
    write(&path, b"id,customer,amount,note\n1,\xff\xfe,1.50,x\n");
    let error = CsvReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("malformed CSV in `{}`, line 2, column 2 (`customer`): invalid UTF-8", path.display())
    );
}

#[test]
fn a_csv_header_missing_typed_columns_lists_them_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.csv");
    write(&path, b"id,note\n1,x\n");
    let error = CsvReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "data does not match schema `Order` in `{}`: 2 columns differ\n  - missing column `customer` (Utf8)\n  \
             - missing column `amount` (Decimal128(10, 2))",
            path.display()
        )
    );
}

#[test]
fn malformed_json_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.json");
    write(&path, b"{\"id\": 1, \"customer\": \"a\", \"amount\": \"1.00\"}\n\n{\"id\": 2, \"customer\": \"b\", \"amount\": \"2\"\n");
    let error = JsonReader::new().read_typed::<Order>(&path).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("malformed JSON in `{}`, line 3: ", path.display())), "{text}");
    write(&path, b"{\"id\": 1}\n{\"id\": \"x\"}\n");
    let error = JsonReader::new().with_infer_records(Some(1)).read(&path).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("malformed JSON in `{}`, line 2, field `id`: ", path.display())), "{text}");
    write(&path, b"{\"id\": 1}\nnot json at all\n");
    let error = JsonReader::new().read(&path).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("malformed JSON in `{}`, line 2: ", path.display())), "{text}");
}

#[test]
fn truncated_or_foreign_parquet_and_ipc_files_are_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let good = dir.path().join("good.parquet");
    let data = Dataset::from_rows(&[Order { id: 1, customer: "a".into(), amount: 1, note: None }])?;
    ParquetWriter::new().write(&data, &good)?;
    let bytes = std::fs::read(&good)?;
    let truncated = dir.path().join("truncated.parquet");
    write(&truncated, &bytes[..bytes.len() / 2]);
    let error = ParquetReader::new().read(&truncated).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("`{}` is not a readable Parquet file: ", truncated.display())),
        "{error}"
    );
    let foreign = dir.path().join("notes.parquet");
    write(&foreign, b"id,name\n1,a\n");
    let error = ParquetReader::new().read_typed::<Order>(&foreign).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("`{}` is not a readable Parquet file: ", foreign.display())),
        "{error}"
    );
    let error = IpcReader::new().read(&foreign).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("`{}` is not a readable Arrow IPC file: ", foreign.display())),
        "{error}"
    );
    let missing = dir.path().join("absent.parquet");
    assert_eq!(
        ParquetReader::new().read(&missing).unwrap_err().to_string(),
        format!("no data file matches `{}`", missing.display())
    );
    Ok(())
}

#[test]
fn a_parquet_file_of_another_schema_lists_the_differing_columns() -> TestResult {
    #[derive(Schema)]
    struct Other {
        id: i32,
        customer: String,
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("other.parquet");
    let other = Dataset::<Other>::try_from_batches(vec![batch(
        vec![Field::new("id", DataType::Int32, false), Field::new("customer", DataType::Utf8, false)],
        vec![Arc::new(Int32Array::from(vec![1])), Arc::new(StringArray::from(vec!["a"]))],
    )])?;
    ParquetWriter::new().write(&other, &path)?;
    let error = ParquetReader::new().read_typed::<Order>(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "data does not match schema `Order` in `{}`: 3 columns differ\n  - column `id` has type Int32, expected Int64\n  \
             - missing column `amount` (Decimal128(10, 2))\n  - missing column `note` (Utf8)",
            path.display()
        )
    );
    Ok(())
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_failed_write_leaves_no_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A write function that fails half-way.
    let target = dir.path().join("out.bin");
    let error = write_atomically(&target, SaveMode::ErrorIfExists, |file| {
        file.write_all(b"partial data")?;
        Err("injected failure".into())
    })
    .unwrap_err();
    assert_eq!(error.to_string(), format!("writing `{}` failed: injected failure", target.display()));
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // A panicking write function: the temporary file goes when the panic unwinds.
    let result = std::panic::catch_unwind(|| {
        let _ = write_atomically(&target, SaveMode::ErrorIfExists, |file| {
            file.write_all(b"partial").unwrap();
            panic!("injected panic")
        });
    });
    assert!(result.is_err());
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // A real connector failing after it wrote the header: CSV cannot hold a list column.
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let listy = Dataset::from_batch(batch(
        vec![Field::new("id", DataType::Int64, false), Field::new("xs", list.data_type().clone(), true)],
        vec![Arc::new(Int64Array::from(vec![1])), Arc::new(list)],
    ));
    let error = CsvWriter::new().write(&listy, dir.path().join("lists.csv")).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("writing CSV `{}`", dir.path().join("lists.csv").display())),
        "{error}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // Over an existing file, a failed overwrite keeps the old content.
    let keep = dir.path().join("keep.csv");
    std::fs::write(&keep, "old")?;
    assert!(CsvWriter::new().with_mode(SaveMode::Overwrite).write(&listy, &keep).is_err());
    assert_eq!(std::fs::read_to_string(&keep)?, "old");
    // A failed partitioned write leaves neither the target nor a staging directory.
    assert!(CsvWriter::new().with_partition_by(["id"]).write(&listy, dir.path().join("parts")).is_err());
    assert_eq!(entries(dir.path()), ["keep.csv"]);
    Ok(())
}

#[test]
fn bad_options_are_errors_not_panics() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.csv");
    write(&path, b"a\n1\n");
    let error = CsvReader::new().with_batch_size(0).read(&path).unwrap_err();
    assert_eq!(error.to_string(), "invalid option `batch_size`: must be at least 1");
    let data = CsvReader::new().read(&path)?;
    let error = ParquetWriter::new().with_row_group_size(0).write(&data, dir.path().join("x.parquet")).unwrap_err();
    assert_eq!(error.to_string(), "invalid option `row_group_size`: must be at least 1");
    let error = CsvWriter::new().with_partition_by(["a"]).write(&data, dir.path().join("p")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid option `partition_by`: cannot partition by every column: the files would have no column left"
    );
    let error = CsvWriter::new().with_partition_by(["zz"]).write(&data, dir.path().join("p")).unwrap_err();
    assert_eq!(error.to_string(), "no column named `zz` (available: `a`)");
    Ok(())
}
