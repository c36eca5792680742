//! `Dataset<S>`: a schema and `RecordBatch`es, cheap to clone (buffers are shared).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// A Rust type that stands for an Arrow schema, so that datasets of different schemas are
/// different types. `#[derive(Schema)]` implements it for a plain struct.
pub trait Schema: Send + Sync + 'static {
    /// The Arrow schema.
    fn arrow_schema() -> SchemaRef;
}

/// The schema marker of a dataset whose schema is only known at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnySchema;

/// A schema plus `RecordBatch`es that all have it. Cloning shares the batches' buffers.
///
/// `S` is the schema type: `Dataset<Orders>` and `Dataset<Customers>` are different delivery
/// types, so they never mix. `Dataset` alone (`Dataset<AnySchema>`) accepts any schema.
pub struct Dataset<S = AnySchema> {
    schema: SchemaRef,
    batches: Arc<[RecordBatch]>,
    marker: PhantomData<fn() -> S>,
}

impl<S> Clone for Dataset<S> {
    fn clone(&self) -> Self {
        Dataset { schema: self.schema.clone(), batches: self.batches.clone(), marker: PhantomData }
    }
}

impl Dataset<AnySchema> {
    /// A dataset of `batches`, which must all have `schema`.
    ///
    /// # Errors
    ///
    /// When a batch's schema differs from `schema`.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, arrow::error::ArrowError> {
        for (index, batch) in batches.iter().enumerate() {
            if batch.schema() != schema {
                return Err(arrow::error::ArrowError::SchemaError(format!(
                    "batch {index} has schema {:?}, not the dataset's {:?}",
                    batch.schema(),
                    schema
                )));
            }
        }
        Ok(Dataset { schema, batches: batches.into(), marker: PhantomData })
    }
}

impl<S> Dataset<S> {
    /// The Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The number of rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The memory held by the batches' buffers, as Arrow accounts it.
    pub fn byte_size(&self) -> usize {
        self.batches.iter().map(RecordBatch::get_array_memory_size).sum()
    }

    /// The same batches without the schema type.
    pub fn into_untyped(self) -> Dataset<AnySchema> {
        Dataset { schema: self.schema, batches: self.batches, marker: PhantomData }
    }
}

impl<S> fmt::Debug for Dataset<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("schema", &self.schema)
            .field("batches", &self.batches.len())
            .field("rows", &self.num_rows())
            .finish()
    }
}

impl<S> Dataset<S> {
    /// A dataset of `S` from batches known to have `schema` and to match `S` (read back from a
    /// spill file written from a `Dataset<S>`, or produced by a recipe checked against `schema`).
    pub(crate) fn from_checked_parts(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Dataset { schema, batches: batches.into(), marker: PhantomData }
    }
}
