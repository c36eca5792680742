//! `Dataset<S>`: a schema and `RecordBatch`es, cheap to clone (buffers are shared), optionally
//! checked against a Rust schema type `S`.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{Field, SchemaRef};

use crate::error::{ColumnDiff, Error, Result, SchemaMismatch};
use crate::row::Row;
use crate::schema::{schema_name, AnySchema, Schema};

/// A schema plus `RecordBatch`es that all have it. Cloning shares the batches' buffers.
///
/// `S` is the schema type: `Dataset<Orders>` and `Dataset<Customers>` are different delivery
/// types, so they never mix. `Dataset` alone (`Dataset<AnySchema>`) accepts any schema.
///
/// # Examples
///
/// ```
/// use setl_arrow::{Dataset, Schema};
///
/// #[derive(Schema, Debug, PartialEq, Clone)]
/// struct Order { id: i64, customer: String, amount: Option<f64> }
///
/// let rows = vec![
///     Order { id: 1, customer: "ann".into(), amount: Some(9.5) },
///     Order { id: 2, customer: "bob".into(), amount: None },
/// ];
/// let orders: Dataset<Order> = Dataset::from_rows(&rows)?;
/// assert_eq!(orders.num_rows(), 2);
/// assert_eq!(orders.to_rows()?, rows);
/// assert_eq!(Order::CUSTOMER, "customer");
/// # Ok::<(), setl_arrow::Error>(())
/// ```
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
    /// A dataset of `batches`, which must all have `schema` (field names, types and
    /// nullability; metadata is not compared).
    ///
    /// # Errors
    ///
    /// [`Error::BatchSchema`] when a batch's schema differs from `schema`.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        for (index, batch) in batches.iter().enumerate() {
            if !same_fields(&batch.schema(), &schema) {
                return Err(Error::BatchSchema {
                    index,
                    details: format!("batch has {}, dataset has {}", batch.schema(), schema),
                });
            }
        }
        Ok(Dataset { schema, batches: batches.into(), marker: PhantomData })
    }

    /// A dataset of one batch.
    pub fn from_batch(batch: RecordBatch) -> Self {
        Dataset { schema: batch.schema(), batches: Arc::from(vec![batch]), marker: PhantomData }
    }

    /// Checks this dataset against `T` and types it, see [`Dataset::try_from_batches`].
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] listing every column that differs.
    pub fn into_typed<T: Schema>(self) -> Result<Dataset<T>> {
        conform_dataset::<T>(&self.schema, self.batches.to_vec(), None)
    }
}

impl<S: Schema> Dataset<S> {
    /// A typed dataset of `batches`, checked against `S`.
    ///
    /// Columns are matched by name: columns in another order are reordered to `S`'s order, a
    /// non-nullable column is accepted where `S` allows nulls, and a nullable column is accepted
    /// where `S` does not as long as it holds no null. Any other difference is an error.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] listing every column that is missing, extra, of another type,
    /// or holding nulls where `S` forbids them, all in one error.
    pub fn try_from_batches(batches: Vec<RecordBatch>) -> Result<Self> {
        let Some(first) = batches.first() else {
            return Ok(Self::empty());
        };
        let schema = first.schema();
        conform_dataset::<S>(&schema, batches, None)
    }

    /// An empty dataset with `S`'s schema.
    pub fn empty() -> Self {
        Dataset { schema: S::arrow_schema(), batches: Arc::from(Vec::new()), marker: PhantomData }
    }
}

impl<S: Row> Dataset<S> {
    /// A typed dataset of one batch holding `rows`.
    ///
    /// # Errors
    ///
    /// When Arrow rejects the built columns (for example a decimal out of its precision).
    pub fn from_rows(rows: &[S]) -> Result<Self> {
        let batch = S::to_batch(rows)?;
        Ok(Dataset { schema: batch.schema(), batches: Arc::from(vec![batch]), marker: PhantomData })
    }

    /// Every row, as `S` values.
    ///
    /// # Errors
    ///
    /// [`Error::Row`] when a value cannot become a field (a null in a non-`Option` field).
    pub fn to_rows(&self) -> Result<Vec<S>> {
        let mut rows = Vec::with_capacity(self.num_rows());
        let mut offset = 0;
        for batch in self.batches.iter() {
            rows.extend(S::from_batch(batch).map_err(|e| shift_row(e, offset))?);
            offset += batch.num_rows();
        }
        Ok(rows)
    }
}

fn shift_row(error: Error, offset: usize) -> Error {
    match error {
        Error::Row { schema, column, row, reason } => {
            Error::Row { schema, column, row: row.map(|r| r + offset), reason }
        }
        other => other,
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

    /// The number of batches.
    pub fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// The number of rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// True when the dataset has no row.
    pub fn is_empty(&self) -> bool {
        self.num_rows() == 0
    }

    /// The memory held by the batches' buffers, as Arrow accounts it.
    pub fn byte_size(&self) -> usize {
        self.batches.iter().map(RecordBatch::get_array_memory_size).sum()
    }

    /// The same batches without the schema type.
    pub fn into_untyped(self) -> Dataset<AnySchema> {
        Dataset { schema: self.schema, batches: self.batches, marker: PhantomData }
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    /// This dataset's rows followed by `other`'s, sharing both's buffers.
    ///
    /// # Errors
    ///
    /// [`Error::BatchSchema`] when the schemas differ (only possible for untyped datasets).
    pub fn concat(&self, other: &Dataset<S>) -> Result<Self> {
        if !same_fields(&self.schema, &other.schema) {
            return Err(Error::BatchSchema {
                index: self.batches.len(),
                details: format!("concatenated dataset has {}, dataset has {}", other.schema, self.schema),
            });
        }
        let batches: Vec<RecordBatch> = self.batches.iter().chain(other.batches.iter()).cloned().collect();
        Ok(Dataset { schema: self.schema.clone(), batches: batches.into(), marker: PhantomData })
    }

    /// The same rows in a single batch (copies the buffers once); handy before row-wise work.
    ///
    /// # Errors
    ///
    /// When Arrow cannot concatenate the columns (offset overflow of very large strings).
    pub fn compact(&self) -> Result<Self> {
        if self.batches.len() <= 1 {
            return Ok(self.clone());
        }
        let batch = arrow::compute::concat_batches(&self.schema, self.batches.iter())
            .map_err(|e| Error::arrow("concatenating batches", e))?;
        Ok(Dataset { schema: self.schema.clone(), batches: Arc::from(vec![batch]), marker: PhantomData })
    }

    /// Rows `offset..offset + len`, without copying. Ranges past the end are clipped.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        let mut out = Vec::new();
        let mut skip = offset;
        let mut remaining = len;
        for batch in self.batches.iter() {
            if remaining == 0 {
                break;
            }
            let rows = batch.num_rows();
            if skip >= rows {
                skip -= rows;
                continue;
            }
            let take = (rows - skip).min(remaining);
            out.push(batch.slice(skip, take));
            remaining -= take;
            skip = 0;
        }
        Dataset { schema: self.schema.clone(), batches: out.into(), marker: PhantomData }
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Self {
        self.slice(0, n)
    }

    /// Only the named columns, in the given order. The result is untyped: its schema is no
    /// longer `S`.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`] naming every unknown column.
    pub fn project(&self, columns: &[&str]) -> Result<Dataset<AnySchema>> {
        let indices = column_indices(&self.schema, columns)?;
        let schema = Arc::new(self.schema.project(&indices).map_err(|e| Error::arrow("projecting", e))?);
        let batches = self
            .batches
            .iter()
            .map(|b| b.project(&indices).map_err(|e| Error::arrow("projecting", e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Dataset { schema, batches: batches.into(), marker: PhantomData })
    }

    /// The values of one column, one array per batch.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`] when no column has that name.
    pub fn column(&self, name: &str) -> Result<Vec<ArrayRef>> {
        let index = column_indices(&self.schema, &[name])?[0];
        Ok(self.batches.iter().map(|b| b.column(index).clone()).collect())
    }
}

/// The indices of `columns` in `schema`, or an error naming every unknown one.
pub(crate) fn column_indices(schema: &arrow::datatypes::Schema, columns: &[&str]) -> Result<Vec<usize>> {
    let mut indices = Vec::with_capacity(columns.len());
    let mut missing = Vec::new();
    for column in columns {
        match schema.index_of(column) {
            Ok(index) => indices.push(index),
            Err(_) => missing.push((*column).to_owned()),
        }
    }
    if missing.is_empty() {
        Ok(indices)
    } else {
        Err(Error::ColumnNotFound { missing, available: schema.fields().iter().map(|f| f.name().clone()).collect() })
    }
}

/// Field names, types and nullability equal (metadata ignored).
pub(crate) fn same_fields(a: &arrow::datatypes::Schema, b: &arrow::datatypes::Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields().iter()).all(|(x, y)| {
            x.name() == y.name() && x.is_nullable() == y.is_nullable() && x.data_type().equals_datatype(y.data_type())
        })
}

/// How to turn batches of one actual schema into batches of an expected schema: for each
/// expected column, the index of the actual column.
#[derive(Debug, Clone)]
pub(crate) struct Conformer {
    expected: SchemaRef,
    indices: Vec<usize>,
    /// Expected columns that are non-nullable but nullable in the data: checked per batch.
    check_nulls: Vec<usize>,
    name: String,
    source: Option<std::path::PathBuf>,
}

impl Conformer {
    /// Plans the conversion, or reports every column that differs. `has_nulls(i)` says whether
    /// actual column `i` holds a null, for columns that are nullable where `expected` is not.
    pub(crate) fn new(
        expected: &SchemaRef,
        actual: &arrow::datatypes::Schema,
        name: &str,
        source: Option<&Path>,
        has_nulls: impl Fn(usize) -> bool,
    ) -> Result<Self> {
        let mut diffs = Vec::new();
        let mut indices = Vec::with_capacity(expected.fields().len());
        let mut check_nulls = Vec::new();
        for (position, field) in expected.fields().iter().enumerate() {
            match actual.index_of(field.name()) {
                Err(_) => {
                    diffs.push(ColumnDiff::Missing { name: field.name().clone(), data_type: field.data_type().clone() })
                }
                Ok(index) => {
                    let found: &Field = actual.field(index);
                    if !found.data_type().equals_datatype(field.data_type()) {
                        diffs.push(ColumnDiff::WrongType {
                            name: field.name().clone(),
                            expected: field.data_type().clone(),
                            actual: found.data_type().clone(),
                        });
                    } else if found.is_nullable() && !field.is_nullable() {
                        if has_nulls(index) {
                            diffs.push(ColumnDiff::Nullable { name: field.name().clone() });
                        }
                        check_nulls.push(position);
                    }
                    indices.push(index);
                }
            }
        }
        for field in actual.fields() {
            if expected.index_of(field.name()).is_err() {
                diffs.push(ColumnDiff::Extra { name: field.name().clone(), data_type: field.data_type().clone() });
            }
        }
        if !diffs.is_empty() {
            return Err(mismatch(name, source, diffs));
        }
        Ok(Conformer {
            expected: expected.clone(),
            indices,
            check_nulls,
            name: name.to_owned(),
            source: source.map(Path::to_path_buf),
        })
    }

    /// Converts one batch of the planned actual schema.
    pub(crate) fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.indices.iter().map(|&i| batch.column(i).clone()).collect();
        let with_nulls: Vec<ColumnDiff> = self
            .check_nulls
            .iter()
            .filter(|&&position| columns[position].null_count() > 0)
            .map(|&position| ColumnDiff::Nullable { name: self.expected.field(position).name().clone() })
            .collect();
        if !with_nulls.is_empty() {
            return Err(mismatch(&self.name, self.source.as_deref(), with_nulls));
        }
        RecordBatch::try_new(self.expected.clone(), columns)
            .map_err(|e| Error::arrow(format!("conforming batch to schema `{}`", self.name), e))
    }
}

fn mismatch(name: &str, source: Option<&Path>, columns: Vec<ColumnDiff>) -> Error {
    Error::SchemaMismatch(Box::new(SchemaMismatch {
        expected: name.to_owned(),
        source: source.map(Path::to_path_buf),
        columns,
    }))
}

fn conform_dataset<S: Schema>(
    actual: &SchemaRef,
    batches: Vec<RecordBatch>,
    source: Option<&Path>,
) -> Result<Dataset<S>> {
    let expected = S::arrow_schema();
    let has_nulls = |i: usize| batches.iter().any(|b| same_fields(&b.schema(), actual) && b.column(i).null_count() > 0);
    let conformer = Conformer::new(&expected, actual, &schema_name::<S>(), source, has_nulls)?;
    let mut out = Vec::with_capacity(batches.len());
    for batch in &batches {
        if !same_fields(&batch.schema(), actual) {
            // Each batch is checked against the expectation on its own.
            let own = Conformer::new(&expected, &batch.schema(), &schema_name::<S>(), source, |i| {
                batch.column(i).null_count() > 0
            })?;
            out.push(own.apply(batch)?);
        } else {
            out.push(conformer.apply(batch)?);
        }
    }
    Ok(Dataset::from_checked_parts(expected, out))
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

/// Prints the rows as a table (Arrow's pretty printer); an empty dataset prints its header. A
/// dataset the printer cannot show (a time zone name such as `UTC`, which it reads only as an
/// offset) prints a line saying why, never an error: `to_string` would panic on one.
impl<S> fmt::Display for Dataset<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batches: Vec<RecordBatch> = if self.batches.is_empty() {
            vec![RecordBatch::new_empty(self.schema.clone())]
        } else {
            self.batches.to_vec()
        };
        match arrow::util::pretty::pretty_format_batches(&batches) {
            Ok(table) => write!(f, "{table}"),
            // `fmt::Error` would make `to_string` panic: say why instead.
            Err(error) => write!(
                f,
                "<a dataset of {} rows and {} columns that cannot be shown as a table: {error}>",
                self.num_rows(),
                self.schema.fields().len()
            ),
        }
    }
}

impl<S> Dataset<S> {
    /// A dataset of `S` from batches known to have `schema` and to match `S` (read back from a
    /// spill file written from a `Dataset<S>`, or produced by a recipe checked against `schema`).
    pub(crate) fn from_checked_parts(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Dataset { schema, batches: batches.into(), marker: PhantomData }
    }
}
