//! Panics of the format crates on corrupt files, turned into errors.
//!
//! The parquet and arrow-ipc crates fail on most corrupt input with an error, but not all: the
//! fuzz targets found arrow-ipc 59 reaching `unimplemented!("Type NONE not supported")` for a
//! flatbuffer schema with a field of type NONE, which a Parquet file can embed in its footer
//! (`ARROW:schema`) and an IPC file holds in its own. A reader must not panic on a user's file,
//! so the calls into those crates on file contents go through [`guarded`] and [`Guarded`]: a
//! panic becomes an error naming the file. The panic message is still printed by the panic
//! hook; the read goes on as an error.
//!
//! Some file contents make no panic at once but later: arrow-ipc accepts a stated type of
//! `Decimal128(0, 3)`, on which Arrow's printer overflows. [`check_types`] rejects, when a file's
//! schema is read, the types no Arrow array may have.

use std::panic::{catch_unwind, AssertUnwindSafe};

use arrow::datatypes::{
    validate_decimal_precision_and_scale, DataType, Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type,
    Schema,
};
use arrow::error::ArrowError;

use crate::error::Result;

/// Checks that no column of `schema`, at any depth, has a type no Arrow array may have (a
/// decimal of precision 0 or above its maximum, or a scale above its precision).
///
/// # Errors
///
/// The first such column, its type and why, as an [`ArrowError::SchemaError`] for the caller to
/// name the file with.
pub(crate) fn check_types(schema: &Schema) -> std::result::Result<(), ArrowError> {
    for field in schema.fields() {
        check_type(field.data_type()).map_err(|e| {
            ArrowError::SchemaError(format!(
                "column `{}` has type {}, which no Arrow array may have ({e}); the file is corrupt",
                field.name(),
                field.data_type()
            ))
        })?;
    }
    Ok(())
}

fn check_type(data_type: &DataType) -> std::result::Result<(), ArrowError> {
    match data_type {
        DataType::Decimal32(p, s) => validate_decimal_precision_and_scale::<Decimal32Type>(*p, *s),
        DataType::Decimal64(p, s) => validate_decimal_precision_and_scale::<Decimal64Type>(*p, *s),
        DataType::Decimal128(p, s) => validate_decimal_precision_and_scale::<Decimal128Type>(*p, *s),
        DataType::Decimal256(p, s) => validate_decimal_precision_and_scale::<Decimal256Type>(*p, *s),
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _)
        | DataType::Map(field, _) => check_type(field.data_type()),
        DataType::Struct(fields) => fields.iter().try_for_each(|f| check_type(f.data_type())),
        DataType::Union(fields, _) => fields.iter().try_for_each(|(_, f)| check_type(f.data_type())),
        DataType::Dictionary(_, values) => check_type(values),
        DataType::RunEndEncoded(_, values) => check_type(values.data_type()),
        _ => Ok(()),
    }
}

/// The message of a caught panic.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_owned()
    }
}

/// Runs `read`; a panic inside it becomes `on_panic(its message)`.
///
/// Only for calls into the format crates, whose state is dropped with the error.
pub(crate) fn guarded<T>(read: impl FnOnce() -> Result<T>, on_panic: impl FnOnce(String) -> crate::Error) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(result) => result,
        Err(payload) => Err(on_panic(message(payload.as_ref()))),
    }
}

/// An iterator of a format crate's batches whose panics become an error item, after which it
/// ends (the crate's reader may be left in any state).
pub(crate) struct Guarded<I, F> {
    inner: Option<I>,
    on_panic: F,
}

impl<I, F> Guarded<I, F> {
    /// Guards `inner`; `on_panic` makes the error from a panic's message.
    pub(crate) fn new(inner: I, on_panic: F) -> Self {
        Guarded { inner: Some(inner), on_panic }
    }
}

impl<T, I, F> Iterator for Guarded<I, F>
where
    I: Iterator<Item = Result<T>>,
    F: FnMut(String) -> crate::Error,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        match catch_unwind(AssertUnwindSafe(|| inner.next())) {
            Ok(item) => item,
            Err(payload) => {
                self.inner = None;
                Some(Err((self.on_panic)(message(payload.as_ref()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn panicked(message: String) -> Error {
        Error::InvalidOption { option: "test", reason: message }
    }

    #[test]
    fn a_panic_becomes_an_error_and_ends_the_iteration() {
        let error = guarded(|| -> Result<()> { panic!("boom") }, panicked).unwrap_err();
        assert_eq!(error.to_string(), "invalid option `test`: boom");
        let mut items = Guarded::new((0..3).map(|i| if i == 1 { panic!("at {i}") } else { Ok(i) }), panicked);
        assert_eq!(items.next().unwrap().unwrap(), 0);
        assert_eq!(items.next().unwrap().unwrap_err().to_string(), "invalid option `test`: at 1");
        assert!(items.next().is_none());
    }
}
