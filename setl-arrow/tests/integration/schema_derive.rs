//! `#[derive(Schema)]`: the Arrow schema of every supported field type, column constants, and
//! rows to batches and back.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use setl_arrow::{Dataset, Row, Schema};

#[derive(Schema, Debug, Clone, PartialEq)]
struct Address {
    city: String,
    zip: Option<u32>,
}

#[derive(Schema, Debug, Clone, PartialEq)]
struct Everything {
    i8: i8,
    i16: i16,
    i32: i32,
    i64: i64,
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    f32: f32,
    f64: f64,
    flag: bool,
    name: String,
    #[schema(decimal(10, 2))]
    price: i128,
    plain_decimal: i128,
    day: NaiveDate,
    time: NaiveTime,
    local: NaiveDateTime,
    utc: DateTime<Utc>,
    maybe: Option<i64>,
    #[schema(decimal(5, 1))]
    maybe_price: Option<i128>,
    tags: Vec<String>,
    scores: Vec<Option<f64>>,
    maybe_list: Option<Vec<i32>>,
    address: Address,
    previous: Option<Address>,
    history: Vec<Address>,
    #[schema(rename = "type")]
    kind: String,
}

fn item(name: &str, nullable: bool) -> Arc<Field> {
    let _ = name;
    Arc::new(Field::new("item", DataType::Utf8, nullable))
}

fn address_fields() -> Fields {
    Fields::from(vec![Field::new("city", DataType::Utf8, false), Field::new("zip", DataType::UInt32, true)])
}

#[test]
fn every_supported_type_has_its_arrow_type() {
    let schema = Everything::arrow_schema();
    let expected = vec![
        Field::new("i8", DataType::Int8, false),
        Field::new("i16", DataType::Int16, false),
        Field::new("i32", DataType::Int32, false),
        Field::new("i64", DataType::Int64, false),
        Field::new("u8", DataType::UInt8, false),
        Field::new("u16", DataType::UInt16, false),
        Field::new("u32", DataType::UInt32, false),
        Field::new("u64", DataType::UInt64, false),
        Field::new("f32", DataType::Float32, false),
        Field::new("f64", DataType::Float64, false),
        Field::new("flag", DataType::Boolean, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("price", DataType::Decimal128(10, 2), false),
        Field::new("plain_decimal", DataType::Decimal128(38, 0), false),
        Field::new("day", DataType::Date32, false),
        Field::new("time", DataType::Time64(TimeUnit::Microsecond), false),
        Field::new("local", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("utc", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
        Field::new("maybe", DataType::Int64, true),
        Field::new("maybe_price", DataType::Decimal128(5, 1), true),
        Field::new("tags", DataType::List(item("tags", false)), false),
        Field::new("scores", DataType::List(Arc::new(Field::new("item", DataType::Float64, true))), false),
        Field::new("maybe_list", DataType::List(Arc::new(Field::new("item", DataType::Int32, false))), true),
        Field::new("address", DataType::Struct(address_fields()), false),
        Field::new("previous", DataType::Struct(address_fields()), true),
        Field::new(
            "history",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(address_fields()), false))),
            false,
        ),
        Field::new("type", DataType::Utf8, false),
    ];
    assert_eq!(schema.fields().len(), expected.len());
    for (actual, expected) in schema.fields().iter().zip(&expected) {
        assert_eq!(actual.as_ref(), expected, "field {}", expected.name());
    }
}

#[test]
fn column_names_are_constants() {
    assert_eq!(Everything::I64, "i64");
    assert_eq!(Everything::PLAIN_DECIMAL, "plain_decimal");
    assert_eq!(Everything::KIND, "type");
    assert_eq!(Address::CITY, "city");
    assert_eq!(Address::COLUMNS, &["city", "zip"]);
    assert_eq!(Everything::COLUMNS.len(), 27);
}

fn sample(n: i64) -> Everything {
    let day = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    Everything {
        i8: -(n as i8),
        i16: 300 + n as i16,
        i32: -70_000,
        i64: n * 1_000_000_000_000,
        u8: 255,
        u16: 65_535,
        u32: 4_000_000_000,
        u64: u64::MAX - n as u64,
        f32: 1.5,
        f64: -0.25 * n as f64,
        flag: n % 2 == 0,
        name: format!("名前 {n} ✓"),
        price: 12_345_678,
        plain_decimal: -42,
        day,
        time: NaiveTime::from_hms_micro_opt(23, 59, 58, 123_456).unwrap(),
        local: day.and_hms_micro_opt(1, 2, 3, 4).unwrap(),
        utc: Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
        maybe: (n % 2 == 0).then_some(n),
        maybe_price: (n % 3 == 0).then_some(-9_999),
        tags: (0..n).map(|i| format!("t{i}")).collect(),
        scores: vec![Some(1.0), None, Some(f64::MAX)],
        maybe_list: (n % 2 == 1).then(|| vec![1, 2, 3]),
        address: Address { city: "Zürich".into(), zip: Some(8000) },
        previous: (n % 2 == 0).then(|| Address { city: "Paris".into(), zip: None }),
        history: vec![Address { city: "A".into(), zip: None }; n as usize % 3],
        kind: "k".into(),
    }
}

#[test]
fn rows_round_trip_through_a_batch() -> Result<(), setl_arrow::Error> {
    let rows: Vec<Everything> = (0..7).map(sample).collect();
    let dataset = Dataset::<Everything>::from_rows(&rows)?;
    assert_eq!(dataset.num_rows(), 7);
    assert_eq!(dataset.schema(), &Everything::arrow_schema());
    assert_eq!(dataset.to_rows()?, rows);
    // Sliced batches read back from their offset.
    assert_eq!(dataset.slice(2, 3).to_rows()?, rows[2..5].to_vec());
    Ok(())
}

#[test]
fn empty_rows_give_an_empty_typed_dataset() -> Result<(), setl_arrow::Error> {
    let dataset = Dataset::<Address>::from_rows(&[])?;
    assert_eq!(dataset.num_rows(), 0);
    assert_eq!(dataset.to_rows()?, Vec::<Address>::new());
    Ok(())
}

#[test]
fn a_decimal_beyond_its_precision_is_an_error() {
    #[derive(Schema, Debug)]
    struct Price {
        #[schema(decimal(3, 1))]
        value: i128,
    }
    let error = Dataset::<Price>::from_rows(&[Price { value: 12_345 }]).unwrap_err();
    assert!(error.to_string().contains("1234.5 is too large to store in a Decimal128 of precision 3"), "{error}");
}

#[test]
fn a_null_in_a_required_field_names_column_and_row() {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("zip", DataType::UInt32, true),
    ]));
    let _ = Int64Array::from(vec![1]);
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("a"), None])),
            Arc::new(arrow::array::UInt32Array::from(vec![Some(1), None])),
        ],
    )
    .unwrap();
    let error = Address::from_batch(&batch).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot read `Address` rows: column `city`, row 1: value is null, but the field is not an Option"
    );
}
