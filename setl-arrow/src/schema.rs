//! Schemas as types: a Rust type that stands for an Arrow schema, so that datasets of
//! different schemas are different delivery types.

use arrow::datatypes::SchemaRef;

/// A Rust type that stands for an Arrow schema, so that datasets of different schemas are
/// different types. `#[derive(Schema)]` implements it for a plain struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dataset schema",
    label = "add `#[derive(setl_arrow::Schema)]` to `{Self}`"
)]
pub trait Schema: Send + Sync + 'static {
    /// The Arrow schema.
    fn arrow_schema() -> SchemaRef;
}

/// The schema marker of a dataset whose schema is only known at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnySchema;

/// The short name of a schema type, for messages.
pub(crate) fn schema_name<S: 'static>() -> String {
    setl_core::__private::short_type_name(std::any::type_name::<S>())
}
