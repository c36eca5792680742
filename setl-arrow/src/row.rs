//! Typed rows: how a Rust field type maps to an Arrow column ([`ArrowField`]) and how a
//! `#[derive(Schema)]` struct turns into a `RecordBatch` and back ([`Row`]).
//!
//! | Rust type | Arrow type |
//! |---|---|
//! | `i8`..`i64`, `u8`..`u64` | `Int8`..`Int64`, `UInt8`..`UInt64` |
//! | `f32`, `f64` | `Float32`, `Float64` |
//! | `bool` | `Boolean` |
//! | `String` | `Utf8` |
//! | `i128` | `Decimal128(38, 0)`, or `Decimal128(p, s)` with `#[schema(decimal(p, s))]` |
//! | `chrono::NaiveDate` | `Date32` |
//! | `chrono::NaiveTime` | `Time64(Microsecond)` |
//! | `chrono::NaiveDateTime` | `Timestamp(Microsecond, None)` |
//! | `chrono::DateTime<Utc>` | `Timestamp(Microsecond, "+00:00")` |
//! | `Option<T>` | `T`'s type, nullable |
//! | `Vec<T>` | `List(T)` |
//! | a `#[derive(Schema)]` struct | `Struct(..)` of its fields |
//!
//! Row conversion is generated code over this trait rather than serde (`serde_arrow`): the
//! schema and the conversion come from one trait so they cannot disagree, user structs need no
//! serde derives, and an unsupported field type is a compile error on that field.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, ListArray, PrimitiveArray, RecordBatch, StringArray,
    StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::error::ArrowError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use crate::error::{Error, Result};
use crate::schema::{schema_name, Schema};

/// Per-field settings written as `#[schema(..)]` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FieldOptions {
    /// `Some((precision, scale))` for `#[schema(decimal(precision, scale))]`.
    pub decimal: Option<(u8, i8)>,
}

impl FieldOptions {
    /// No attribute.
    pub const NONE: FieldOptions = FieldOptions { decimal: None };

    /// `#[schema(decimal(precision, scale))]`.
    pub const fn with_decimal(mut self, precision: u8, scale: i8) -> Self {
        self.decimal = Some((precision, scale));
        self
    }
}

/// Why a column could not be read into a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, outermost first (`address.city`).
    pub path: Vec<String>,
    /// The row (index in the array being read), when one row is at fault.
    pub row: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    /// An error about the whole column.
    pub fn column(reason: impl Into<String>) -> Self {
        FieldError { path: Vec::new(), row: None, reason: reason.into() }
    }

    /// Prefixes the path with `field`.
    pub fn in_field(mut self, field: &str) -> Self {
        self.path.insert(0, field.to_owned());
        self
    }
}

/// A Rust type that can be a field of a `#[derive(Schema)]` struct: it knows its Arrow type and
/// converts a column of values to an Arrow array and back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a #[derive(Schema)] struct",
    label = "unsupported field type",
    note = "supported: integers, f32, f64, bool, String, i128 (decimal), chrono dates and timestamps, Option<T>, Vec<T> and #[derive(Schema)] structs"
)]
pub trait ArrowField: Sized {
    /// True for `Option<T>`: the column may hold nulls.
    const NULLABLE: bool = false;

    /// The Arrow type of the column.
    fn data_type(options: &FieldOptions) -> DataType;

    /// An array of `values`; `None` is a null slot (an absent optional value, or a position
    /// under a null parent).
    ///
    /// # Errors
    ///
    /// When Arrow rejects the array (for example a decimal beyond its precision).
    fn to_array(values: &[Option<&Self>], options: &FieldOptions) -> Result<ArrayRef, ArrowError>;

    /// Every slot of `array`, `None` where it is null.
    ///
    /// # Errors
    ///
    /// When the array has another type, or holds a null where a nested field cannot take one.
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError>;
}

/// A `#[derive(Schema)]` struct: a row of a typed dataset.
pub trait Row: Schema + ArrowField {
    /// The column names, in order. Each is also an associated constant (`Orders::CUSTOMER_ID`).
    const COLUMNS: &'static [&'static str];

    /// One batch holding `rows`.
    ///
    /// # Errors
    ///
    /// When Arrow rejects a built column (for example a decimal beyond its precision).
    fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
        let values: Vec<Option<&Self>> = rows.iter().map(Some).collect();
        let array = Self::to_array(&values, &FieldOptions::NONE)
            .map_err(|e| Error::arrow(format!("building a batch of `{}` rows", schema_name::<Self>()), e))?;
        let batch = RecordBatch::from(array.as_struct().clone());
        batch
            .with_schema(Self::arrow_schema())
            .map_err(|e| Error::arrow(format!("building a batch of `{}` rows", schema_name::<Self>()), e))
    }

    /// The rows of `batch`, whose columns are found by name.
    ///
    /// # Errors
    ///
    /// [`Error::Row`] when a column is missing or of another type, or a null meets a
    /// non-`Option` field.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>> {
        let array = StructArray::from(batch.clone());
        let rows = Self::from_array(&array, &FieldOptions::NONE).map_err(|e| Error::Row {
            schema: schema_name::<Self>(),
            column: e.path.join("."),
            row: e.row,
            reason: e.reason,
        })?;
        // A batch has no row-level nulls, so every row is present.
        Ok(rows.into_iter().flatten().collect())
    }
}

fn type_error(expected: &DataType, array: &dyn Array) -> FieldError {
    FieldError::column(format!("expected type {expected}, found {}", array.data_type()))
}

fn primitive<'a, T: ArrowPrimitiveType>(
    array: &'a dyn Array,
    expected: &DataType,
) -> Result<&'a PrimitiveArray<T>, FieldError> {
    array.as_primitive_opt::<T>().ok_or_else(|| type_error(expected, array))
}

macro_rules! primitive_field {
    ($($rust:ty => $arrow:ty, $data_type:expr;)*) => {$(
        impl ArrowField for $rust {
            fn data_type(_: &FieldOptions) -> DataType {
                $data_type
            }
            fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
                Ok(Arc::new(values.iter().map(|v| v.copied()).collect::<PrimitiveArray<$arrow>>()))
            }
            fn from_array(array: &dyn Array, _: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
                Ok(primitive::<$arrow>(array, &$data_type)?.iter().collect())
            }
        }
    )*};
}

primitive_field! {
    i8 => Int8Type, DataType::Int8;
    i16 => Int16Type, DataType::Int16;
    i32 => Int32Type, DataType::Int32;
    i64 => Int64Type, DataType::Int64;
    u8 => UInt8Type, DataType::UInt8;
    u16 => UInt16Type, DataType::UInt16;
    u32 => UInt32Type, DataType::UInt32;
    u64 => UInt64Type, DataType::UInt64;
    f32 => Float32Type, DataType::Float32;
    f64 => Float64Type, DataType::Float64;
}

impl ArrowField for bool {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Boolean
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(values.iter().map(|v| v.copied()).collect::<BooleanArray>()))
    }
    fn from_array(array: &dyn Array, _: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let array = array.as_boolean_opt().ok_or_else(|| type_error(&DataType::Boolean, array))?;
        Ok(array.iter().collect())
    }
}

impl ArrowField for String {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Utf8
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(values.iter().map(|v| v.map(String::as_str)).collect::<StringArray>()))
    }
    fn from_array(array: &dyn Array, _: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        match array.data_type() {
            DataType::Utf8 => Ok(array.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()),
            DataType::LargeUtf8 => Ok(array.as_string::<i64>().iter().map(|v| v.map(str::to_owned)).collect()),
            DataType::Utf8View => Ok(array.as_string_view().iter().map(|v| v.map(str::to_owned)).collect()),
            _ => Err(type_error(&DataType::Utf8, array)),
        }
    }
}

/// The decimal of an `i128` field: `#[schema(decimal(p, s))]`, or `(38, 0)`.
fn decimal_of(options: &FieldOptions) -> (u8, i8) {
    options.decimal.unwrap_or((38, 0))
}

impl ArrowField for i128 {
    fn data_type(options: &FieldOptions) -> DataType {
        let (precision, scale) = decimal_of(options);
        DataType::Decimal128(precision, scale)
    }
    fn to_array(values: &[Option<&Self>], options: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        let (precision, scale) = decimal_of(options);
        let array = values
            .iter()
            .map(|v| v.copied())
            .collect::<Decimal128Array>()
            .with_precision_and_scale(precision, scale)?;
        array.validate_decimal_precision(precision)?;
        Ok(Arc::new(array))
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let expected = Self::data_type(options);
        if array.data_type() != &expected {
            return Err(type_error(&expected, array));
        }
        Ok(primitive::<arrow::datatypes::Decimal128Type>(array, &expected)?.iter().collect())
    }
}

impl ArrowField for NaiveDate {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Date32
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(
            values.iter().map(|v| v.map(|d| Date32Type::from_naive_date(*d))).collect::<PrimitiveArray<Date32Type>>(),
        ))
    }
    fn from_array(array: &dyn Array, _: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let array = primitive::<Date32Type>(array, &DataType::Date32)?;
        Ok((0..array.len()).map(|i| if array.is_null(i) { None } else { array.value_as_date(i) }).collect())
    }
}

fn time_micros(time: &NaiveTime) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000)
}

impl ArrowField for NaiveTime {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Time64(TimeUnit::Microsecond)
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(values.iter().map(|v| v.map(time_micros)).collect::<PrimitiveArray<Time64MicrosecondType>>()))
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let array = primitive::<Time64MicrosecondType>(array, &Self::data_type(options))?;
        Ok((0..array.len()).map(|i| if array.is_null(i) { None } else { array.value_as_time(i) }).collect())
    }
}

fn timestamp_array(values: impl Iterator<Item = Option<i64>>, tz: Option<&str>) -> ArrayRef {
    let array = values.collect::<PrimitiveArray<TimestampMicrosecondType>>();
    Arc::new(match tz {
        Some(tz) => array.with_timezone(tz),
        None => array,
    })
}

impl ArrowField for NaiveDateTime {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(timestamp_array(values.iter().map(|v| v.map(|t| t.and_utc().timestamp_micros())), None))
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let expected = Self::data_type(options);
        if array.data_type() != &expected {
            return Err(type_error(&expected, array));
        }
        let array = primitive::<TimestampMicrosecondType>(array, &expected)?;
        Ok((0..array.len()).map(|i| if array.is_null(i) { None } else { array.value_as_datetime(i) }).collect())
    }
}

impl ArrowField for DateTime<Utc> {
    fn data_type(_: &FieldOptions) -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
    }
    fn to_array(values: &[Option<&Self>], _: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        Ok(timestamp_array(values.iter().map(|v| v.map(DateTime::timestamp_micros)), Some("+00:00")))
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let expected = Self::data_type(options);
        if !matches!(array.data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some(_))) {
            return Err(type_error(&expected, array));
        }
        let array = primitive::<TimestampMicrosecondType>(array, &expected)?;
        Ok((0..array.len())
            .map(|i| if array.is_null(i) { None } else { DateTime::from_timestamp_micros(array.value(i)) })
            .collect())
    }
}

impl<T: ArrowField> ArrowField for Option<T> {
    const NULLABLE: bool = true;

    fn data_type(options: &FieldOptions) -> DataType {
        T::data_type(options)
    }
    fn to_array(values: &[Option<&Self>], options: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        let inner: Vec<Option<&T>> = values.iter().map(|v| v.and_then(Option::as_ref)).collect();
        T::to_array(&inner, options)
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        Ok(T::from_array(array, options)?.into_iter().map(Some).collect())
    }
}

/// The item field of a `Vec<T>` column.
fn list_item<T: ArrowField>(options: &FieldOptions) -> Arc<Field> {
    Arc::new(Field::new("item", T::data_type(options), T::NULLABLE))
}

impl<T: ArrowField> ArrowField for Vec<T> {
    fn data_type(options: &FieldOptions) -> DataType {
        DataType::List(list_item::<T>(options))
    }
    fn to_array(values: &[Option<&Self>], options: &FieldOptions) -> Result<ArrayRef, ArrowError> {
        let lengths = values.iter().map(|v| v.map_or(0, |list| list.len()));
        let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
        let items: Vec<Option<&T>> = values.iter().flatten().flat_map(|list| list.iter().map(Some)).collect();
        let child = T::to_array(&items, options)?;
        let nulls = NullBuffer::from_iter(values.iter().map(Option::is_some));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        Ok(Arc::new(ListArray::try_new(list_item::<T>(options), offsets, child, nulls)?))
    }
    fn from_array(array: &dyn Array, options: &FieldOptions) -> Result<Vec<Option<Self>>, FieldError> {
        let list = array.as_list_opt::<i32>().ok_or_else(|| type_error(&Self::data_type(options), array))?;
        let mut items = T::from_array(list.values().as_ref(), options)?;
        let offsets = list.value_offsets();
        let mut out = Vec::with_capacity(list.len());
        for row in 0..list.len() {
            if list.is_null(row) {
                out.push(None);
                continue;
            }
            // Offsets of a valid list array are within the child and non-decreasing.
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            let mut values = Vec::with_capacity(end - start);
            for item in &mut items[start..end] {
                match item.take() {
                    Some(value) => values.push(value),
                    None => {
                        return Err(FieldError {
                            path: Vec::new(),
                            row: Some(row),
                            reason: "list holds a null item, but the item type is not an Option".to_owned(),
                        })
                    }
                }
            }
            out.push(Some(values));
        }
        Ok(out)
    }
}

/// Implemented for types that `#[schema(decimal(p, s))]` may annotate: `i128`, and `Option`s
/// and `Vec`s of it.
#[diagnostic::on_unimplemented(
    message = "#[schema(decimal(..))] needs an `i128` field (or `Option<i128>`, `Vec<i128>`), not `{Self}`",
    label = "not an i128"
)]
pub trait DecimalField {}
impl DecimalField for i128 {}
impl<T: DecimalField> DecimalField for Option<T> {}
impl<T: DecimalField> DecimalField for Vec<T> {}

/// Support for the code `#[derive(Schema)]` generates. Not public API.
#[doc(hidden)]
pub(crate) mod derive_support {
    use super::*;

    /// A field of a derived struct.
    pub fn field<T: ArrowField>(name: &str, options: &FieldOptions) -> Field {
        Field::new(name, T::data_type(options), T::NULLABLE)
    }

    /// Checks at compile time that a `#[schema(decimal)]` field is an `i128`.
    pub fn assert_decimal<T: DecimalField>() {}

    /// The values of a column read into a field type.
    pub type Column<T> = Result<Vec<Option<T>>, FieldError>;

    /// A field type's conversions as plain functions. Generated code reaches every use of a
    /// field type through this one bound, so an unsupported type gives one error.
    pub struct Codec<T> {
        /// The Arrow field of a column of `T`.
        pub field: fn(&str, &FieldOptions) -> Field,
        /// [`ArrowField::to_array`].
        pub to_array: fn(&[Option<&T>], &FieldOptions) -> Result<ArrayRef, ArrowError>,
        /// [`ArrowField::from_array`].
        pub from_array: fn(&dyn Array, &FieldOptions) -> Column<T>,
    }

    /// The codec of a supported field type.
    pub fn codec<T: ArrowField>() -> Codec<T> {
        Codec { field: field::<T>, to_array: T::to_array, from_array: T::from_array }
    }

    /// The child column `name` of a struct array.
    pub fn child<'a>(array: &'a StructArray, name: &str) -> Result<&'a ArrayRef, FieldError> {
        array.column_by_name(name).ok_or_else(|| FieldError::column("column is missing").in_field(name))
    }

    /// The values of `parent`'s field, `None` under null parents.
    pub fn project<'a, P, T>(parent: &[Option<&'a P>], get: impl Fn(&'a P) -> &'a T) -> Vec<Option<&'a T>> {
        parent.iter().map(|p| p.map(&get)).collect()
    }

    /// Builds a struct array of children; rows where `parent` is `None` are null.
    pub fn struct_array<P>(
        fields: Fields,
        children: Vec<ArrayRef>,
        parent: &[Option<&P>],
    ) -> Result<ArrayRef, ArrowError> {
        let nulls = NullBuffer::from_iter(parent.iter().map(Option::is_some));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        Ok(Arc::new(StructArray::try_new_with_length(fields, children, nulls, parent.len())?))
    }

    /// Downcasts to a struct array.
    pub fn as_struct<'a>(array: &'a dyn Array, fields: &Fields) -> Result<&'a StructArray, FieldError> {
        array.as_struct_opt().ok_or_else(|| type_error(&DataType::Struct(fields.clone()), array))
    }

    /// The value of a field at `row`, or an error when it is null but the field is required.
    pub fn required<T>(value: Option<Option<T>>, name: &str, row: usize) -> Result<T, FieldError> {
        match value.flatten() {
            Some(value) => Ok(value),
            None => Err(FieldError {
                path: vec![name.to_owned()],
                row: Some(row),
                reason: "value is null, but the field is not an Option".to_owned(),
            }),
        }
    }

    pub use arrow::array::{Array, ArrayRef, StructArray};
    pub use arrow::datatypes::{DataType, Field, Fields, SchemaRef};
    pub use arrow::error::ArrowError;
    pub use std::sync::{Arc, OnceLock};
}
