//! Inferred JSON schemas that keep every integer exact.
//!
//! arrow-json infers `Float64` for any number that is not an `i64`, so `18446744073709551615`
//! would read back as `1.8446744073709552e19`. [`exact_integers`] looks again at each top-level
//! column inferred as `Float64`, reading the same records with the numbers' text:
//!
//! - integers only, some beyond `i64`, all in `0..=u64::MAX`: `UInt64`;
//! - integers only, some beyond `u64` or negative beyond `i64`, at most 38 digits:
//!   `Decimal128(38, 0)`;
//! - an integer beyond `i64` beside numbers with a fraction or exponent, or an integer of more than
//!   38 digits: an error that says to give a schema, since no inferred type holds every value
//!   exactly.
//!
//! A column without integers beyond `i64` keeps arrow-json's type, `Float64` included (its values
//! were written as decimals). Nested fields are not looked at.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};

use crate::error::{Error, Result};
use crate::io::json::{is_integer_literal, line_of_value};

/// Digits a `Decimal128` holds.
const DECIMAL128_DIGITS: usize = 38;

/// What one column's numbers need, from the values seen so far (by 0-based value index).
#[derive(Debug, Default)]
struct Numbers {
    /// The first integer outside `i64`.
    beyond_i64: Option<(usize, String)>,
    /// The first integer of more than 38 digits.
    too_long: Option<(usize, String)>,
    /// The first number with a fraction or exponent.
    fraction: Option<usize>,
    /// Whether some integer is negative or above `u64::MAX`.
    beyond_u64: bool,
}

impl Numbers {
    fn observe(&mut self, text: &str, index: usize) {
        if !is_integer_literal(text) {
            self.fraction.get_or_insert(index);
            return;
        }
        if text.parse::<i64>().is_err() && self.beyond_i64.is_none() {
            self.beyond_i64 = Some((index, text.to_owned()));
        }
        if text.parse::<u64>().is_err() {
            self.beyond_u64 = true;
        }
        let digits = text.trim_start_matches('-').trim_start_matches('0').len();
        if digits > DECIMAL128_DIGITS && self.too_long.is_none() {
            self.too_long = Some((index, text.to_owned()));
        }
    }
}

/// `schema`, inferred by arrow-json from the first `records` values of `path`, with the
/// `Float64` columns that hold integers beyond `i64` given a type that holds them exactly.
///
/// # Errors
///
/// [`Error::Json`] naming file, line and field when no inferred type holds a column's values
/// exactly; [`Error::Io`] when the file cannot be read again.
pub(crate) fn exact_integers(path: &Path, schema: ArrowSchema, records: Option<usize>) -> Result<ArrowSchema> {
    let candidates: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| field.data_type() == &DataType::Float64)
        .map(|(index, _)| index)
        .collect();
    if candidates.is_empty() {
        return Ok(schema);
    }
    let text: Vec<Field> =
        candidates.iter().map(|&i| Field::new(schema.field(i).name(), DataType::Utf8, true)).collect();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = arrow::json::ReaderBuilder::new(Arc::new(ArrowSchema::new(text)))
        .with_coerce_primitive(true)
        .with_batch_size(1024)
        .build(BufReader::new(file))
        .map_err(|e| Error::arrow(format!("reading `{}` again for its numbers", path.display()), e))?;
    let mut numbers: Vec<Numbers> = candidates.iter().map(|_| Numbers::default()).collect();
    let mut index = 0usize;
    'batches: for batch in reader {
        // A line that does not decode is reported by the read, at its line.
        let Ok(batch) = batch else { break };
        for row in 0..batch.num_rows() {
            if records.is_some_and(|records| index >= records) {
                break 'batches;
            }
            for (column, numbers) in numbers.iter_mut().enumerate() {
                let Some(values) = batch.column(column).as_string_opt::<i32>() else { continue };
                if values.is_valid(row) {
                    numbers.observe(values.value(row), index);
                }
            }
            index += 1;
        }
    }

    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (&position, numbers) in candidates.iter().zip(&numbers) {
        let Some((first, big)) = &numbers.beyond_i64 else { continue };
        let name = fields[position].name().clone();
        let error = |index: usize, message: String| Error::Json {
            path: path.to_path_buf(),
            line: line_of_value(path, index),
            field: Some(name.clone()),
            message,
        };
        if let Some(fraction) = numbers.fraction {
            let at = line_of_value(path, fraction).map_or_else(String::new, |line| format!(" (line {line})"));
            return Err(error(
                *first,
                format!(
                    "integer {big} does not fit Int64, and `{name}` also holds numbers with a fraction or exponent{at}, \
                     so no inferred type holds every value exactly; give a schema (with_schema) that declares \
                     `{name}`, as Float64 if approximate values will do"
                ),
            ));
        }
        if let Some((index, long)) = &numbers.too_long {
            return Err(error(
                *index,
                format!(
                    "integer {long} has more than {DECIMAL128_DIGITS} digits, more than an inferred type holds; give \
                     a schema (with_schema) that declares `{name}`, as Decimal256(76, 0), or as Float64 if an \
                     approximate value will do"
                ),
            ));
        }
        let exact = if numbers.beyond_u64 { DataType::Decimal128(38, 0) } else { DataType::UInt64 };
        fields[position] = fields[position].clone().with_data_type(exact);
    }
    Ok(ArrowSchema::new_with_metadata(fields, schema.metadata().clone()))
}
