//! Property tests: any rows survive a round trip through every connector, and any bytes given to
//! the text readers give a dataset or an error, never a panic.

use proptest::prelude::*;
use setl_arrow::io::{
    CsvReader, CsvWriter, IpcReader, IpcWriter, JsonReader, JsonWriter, ParquetReader, ParquetWriter,
};
use setl_arrow::{Dataset, Schema};

#[derive(Schema, Debug, Clone, PartialEq)]
struct Row {
    id: i64,
    text: Option<String>,
    value: Option<f64>,
    flag: bool,
    #[schema(decimal(18, 4))]
    amount: Option<i128>,
}

fn row() -> impl Strategy<Value = Row> {
    (
        any::<i64>(),
        proptest::option::of("[a-z,;\"' \n\té日]{0,12}"),
        proptest::option::of(-1e12f64..1e12),
        any::<bool>(),
        proptest::option::of(-999_999_999_999_999_999i128..999_999_999_999_999_999),
    )
        .prop_map(|(id, text, value, flag, amount)| Row { id, text, value, flag, amount })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rows_round_trip_through_every_connector(rows in proptest::collection::vec(row(), 0..40), batch in 1usize..16) {
        let dir = tempfile::tempdir().unwrap();
        let data = Dataset::from_rows(&rows).unwrap();
        // `\N` marks nulls so that empty strings stay empty strings.
        CsvWriter::new().with_null_value("\\N").write(&data, dir.path().join("r.csv")).unwrap();
        JsonWriter::new().write(&data, dir.path().join("r.json")).unwrap();
        ParquetWriter::new().write(&data, dir.path().join("r.parquet")).unwrap();
        IpcWriter::new().write(&data, dir.path().join("r.arrow")).unwrap();
        let csv: Dataset<Row> = CsvReader::new().with_null_values(["\\N"]).with_batch_size(batch).read_typed(dir.path().join("r.csv")).unwrap();
        let json: Dataset<Row> = JsonReader::new().with_batch_size(batch).read_typed(dir.path().join("r.json")).unwrap();
        let parquet: Dataset<Row> = ParquetReader::new().with_batch_size(batch).read_typed(dir.path().join("r.parquet")).unwrap();
        let ipc: Dataset<Row> = IpcReader::new().read_typed(dir.path().join("r.arrow")).unwrap();
        prop_assert_eq!(&csv.to_rows().unwrap(), &rows);
        prop_assert_eq!(&json.to_rows().unwrap(), &rows);
        prop_assert_eq!(&parquet.to_rows().unwrap(), &rows);
        prop_assert_eq!(&ipc.to_rows().unwrap(), &rows);
    }

    #[test]
    fn any_bytes_read_as_csv_or_json_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), header in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("any.csv");
        std::fs::write(&path, &bytes).unwrap();
        let _ = CsvReader::new().with_header(header).read(&path);
        let _ = CsvReader::new().with_header(header).read_typed::<Row>(&path);
        let path = dir.path().join("any.json");
        std::fs::write(&path, &bytes).unwrap();
        let _ = JsonReader::new().read(&path);
        let _ = JsonReader::new().read_typed::<Row>(&path);
    }
}
