//! The reading machinery shared by every format: files of a path, the schema to read with,
//! projection, partition columns, the typed check, and the stream of batches.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};

use crate::dataset::{Conformer, Dataset};
use crate::error::{Error, Result};
use crate::io::files::{self, DataFile};

/// The batches of one file, in order.
pub(crate) type FileBatches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// What one file format does for the shared reader.
pub(crate) trait Format: Send + Sync + 'static {
    /// True when files store their schema (Parquet, IPC); false when it is inferred (CSV, JSON).
    fn self_describing(&self) -> bool;

    /// The schema stored in or inferred from `path`; `None` for an empty text file.
    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>>;

    /// The schema to open `path` with, given the columns expected of it. Text formats build it
    /// from `expected` (CSV in the order of the file's header); self-describing formats return
    /// their stored schema.
    fn schema_for(&self, path: &Path, expected: &SchemaRef, options: &ReadOptions) -> Result<SchemaRef>;

    /// Opens `path` with `schema`, keeping only the columns at `projection`.
    fn open(&self, path: &Path, schema: &SchemaRef, projection: &[usize], options: &ReadOptions)
        -> Result<FileBatches>;
}

/// Options every reader has.
#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    pub(crate) batch_size: usize,
    pub(crate) projection: Option<Vec<String>>,
    pub(crate) schema: Option<SchemaRef>,
    /// The types of partition columns, from `with_partition_schema`.
    pub(crate) partition_schema: Option<SchemaRef>,
    pub(crate) infer_records: Option<usize>,
    /// The files of this read, opened when it was planned (see [`files::snapshot`]).
    pub(crate) pinned: Option<Arc<files::Pinned>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_size: 8192,
            projection: None,
            schema: None,
            partition_schema: None,
            infer_records: Some(1000),
            pinned: None,
        }
    }
}

impl ReadOptions {
    /// Opens a data file of this read: the handle pinned when the read was planned (so the
    /// version listed, even if a writer replaced it since), else by path.
    pub(crate) fn open(&self, path: &Path) -> Result<std::fs::File> {
        match self.pinned.as_ref().and_then(|pinned| pinned.get(path)) {
            Some(file) => file,
            None => std::fs::File::open(path).map_err(|e| Error::io(path, e)),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidOption { option: "batch_size", reason: "must be at least 1".to_owned() });
        }
        Ok(())
    }
}

/// Generates the reader options every format shares, as `with_*` builder methods.
macro_rules! common_read_options {
    () => {
        /// Rows per batch (default 8192).
        pub fn with_batch_size(mut self, batch_size: usize) -> Self {
            self.common.batch_size = batch_size;
            self
        }

        /// Reads only these columns (data or partition columns), in this order. Unknown names
        /// are an error.
        pub fn with_projection<I, N>(mut self, columns: I) -> Self
        where
            I: IntoIterator<Item = N>,
            N: Into<String>,
        {
            self.common.projection = Some(columns.into_iter().map(Into::into).collect());
            self
        }

        /// Reads with this schema instead of inferring or taking the files' own; each file is
        /// checked against it. Partition columns may be part of it.
        pub fn with_schema(mut self, schema: arrow::datatypes::SchemaRef) -> Self {
            self.common.schema = Some(schema);
            self
        }

        /// The types of partition columns (the `column=value` directories of a hive-style
        /// layout). Without it, a partition column is `Int64` when every value is an integer
        /// written as Rust writes it (`7` and `-3`, but not `007` or `+7`, which would read back
        /// changed) and `Utf8` otherwise. A column's type in [`with_schema`](Self::with_schema)
        /// or a typed read is used as well; the two must agree.
        ///
        /// Every directory's value is parsed as its column's type when the read starts; one that
        /// does not parse is an error naming the directory. A column here that the directories
        /// do not give is an error.
        pub fn with_partition_schema(mut self, schema: arrow::datatypes::SchemaRef) -> Self {
            self.common.partition_schema = Some(schema);
            self
        }

        /// Reads `path` (a file, a directory or a glob) into one dataset.
        ///
        /// # Errors
        ///
        /// When no file matches, a file is malformed (the error names it, and the line and
        /// column where the format allows), or files disagree on the schema.
        pub fn read(&self, path: impl AsRef<std::path::Path>) -> $crate::error::Result<$crate::Dataset> {
            self.stream(path)?.into_dataset()
        }

        /// Reads `path` with `S`'s schema (no inference) into a typed dataset: only `S`'s
        /// columns are read, and each file is checked to have them with `S`'s types.
        ///
        /// # Errors
        ///
        /// As [`read`](Self::read), and [`Error::SchemaMismatch`](crate::Error::SchemaMismatch)
        /// listing every column of a file that differs from `S`.
        pub fn read_typed<S: $crate::Schema>(
            &self,
            path: impl AsRef<std::path::Path>,
        ) -> $crate::error::Result<$crate::Dataset<S>> {
            let stream = self.stream_typed::<S>(path)?;
            let batches = stream.collect::<$crate::error::Result<Vec<_>>>()?;
            Ok($crate::Dataset::from_checked_parts(S::arrow_schema(), batches))
        }

        /// Streams the batches of `path`, one file after another, so that data larger than
        /// memory can be processed batch by batch.
        ///
        /// # Errors
        ///
        /// When no file matches or the schema cannot be determined; later errors come from
        /// the stream's items.
        pub fn stream(&self, path: impl AsRef<std::path::Path>) -> $crate::error::Result<$crate::io::BatchStream> {
            $crate::io::read::stream(self.format(), &self.common, path.as_ref(), None)
        }

        /// Streams the batches of `path` checked against `S`; every batch has `S`'s schema.
        ///
        /// # Errors
        ///
        /// As [`stream`](Self::stream).
        pub fn stream_typed<S: $crate::Schema>(
            &self,
            path: impl AsRef<std::path::Path>,
        ) -> $crate::error::Result<$crate::io::BatchStream> {
            let expected = (S::arrow_schema(), $crate::schema::schema_name::<S>());
            $crate::io::read::stream(self.format(), &self.common, path.as_ref(), Some(expected))
        }
    };
}
pub(crate) use common_read_options;

/// Opens one file of a read.
type Opener = Box<dyn FnMut(&DataFile) -> Result<FileBatches> + Send>;

/// The batches of a read, file after file; every batch has [`schema`](Self::schema).
///
/// After an error the stream ends.
pub struct BatchStream {
    schema: SchemaRef,
    files: std::vec::IntoIter<DataFile>,
    current: Option<(FileBatches, Option<Conformer>, DataFile)>,
    open: Opener,
    expected_name: String,
    /// The partition columns the output keeps, with their index among the file's partitions.
    partition_fields: Vec<(usize, Field)>,
    done: bool,
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").field("schema", &self.schema).field("files_left", &self.files.len()).finish()
    }
}

impl BatchStream {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Collects the remaining batches into a dataset.
    ///
    /// # Errors
    ///
    /// The first error of the stream.
    pub fn into_dataset(self) -> Result<Dataset> {
        let schema = self.schema.clone();
        let batches = self.collect::<Result<Vec<_>>>()?;
        Ok(Dataset::from_checked_parts(schema, batches))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some((batches, conformer, file)) = &mut self.current {
                match batches.next() {
                    Some(batch) => {
                        let batch = with_partitions(batch?, file, &self.partition_fields)?;
                        if conformer.is_none() {
                            let has_nulls = |i: usize| batch.column(i).null_count() > 0;
                            *conformer = Some(Conformer::new(
                                &self.schema,
                                &batch.schema(),
                                &self.expected_name,
                                Some(&file.path),
                                has_nulls,
                            )?);
                        }
                        // Set just above.
                        let Some(conformer) = conformer else { unreachable!() };
                        return conformer.apply(&batch).map(Some);
                    }
                    None => self.current = None,
                }
            }
            let Some(file) = self.files.next() else { return Ok(None) };
            let batches = (self.open)(&file)?;
            self.current = Some((batches, None, file));
        }
    }
}

impl Iterator for BatchStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Appends the partition columns of `file` as constant columns.
fn with_partitions(batch: RecordBatch, file: &DataFile, fields: &[(usize, Field)]) -> Result<RecordBatch> {
    if fields.is_empty() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let (schema, mut columns, _) = batch.into_parts();
    let mut all_fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (index, field) in fields {
        let value = &file.partitions[*index].value;
        if all_fields.iter().any(|f| f.name() == field.name()) {
            continue; // The file itself has the column: its values win.
        }
        let column: ArrayRef = match value {
            None => new_null_array(field.data_type(), rows),
            Some(value) => {
                let strings: ArrayRef = Arc::new(StringArray::from(vec![value.as_str(); rows]));
                let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
                arrow::compute::cast_with_options(&strings, field.data_type(), &options).map_err(|e| {
                    Error::Partition {
                        path: file.path.clone(),
                        reason: format!(
                            "value `{value}` of partition column `{}` is not a {}: {e}",
                            field.name(),
                            field.data_type()
                        ),
                    }
                })?
            }
        };
        all_fields.push(field.clone());
        columns.push(column);
    }
    let schema = Arc::new(ArrowSchema::new(all_fields));
    RecordBatch::try_new_with_options(schema, columns, &RecordBatchOptions::new().with_row_count(Some(rows)))
        .map_err(|e| Error::arrow(format!("adding partition columns to `{}`", file.path.display()), e))
}

/// The type of an undeclared partition column: `Int64` when every value is an integer that
/// formats back to the directory's text (`7`, not `007`), so that reading changes no value;
/// else `Utf8`.
fn infer_partition_type(files: &[DataFile], index: usize) -> DataType {
    let mut values = files.iter().filter_map(|f| f.partitions[index].value.as_deref()).peekable();
    let any = values.peek().is_some();
    let round_trips = values.all(|v| v.parse::<i64>().is_ok_and(|n| n.to_string() == v));
    if any && round_trips {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

/// The field of partition column `key`: its type in the given schema, else in the partition
/// schema, else inferred (without a given schema) or `Utf8` (with one).
fn partition_field(
    key: &str,
    index: usize,
    files: &[DataFile],
    given: Option<&SchemaRef>,
    declared: Option<&SchemaRef>,
) -> Result<Field> {
    let from_given = given.and_then(|schema| schema.field_with_name(key).ok());
    let from_declared = declared.and_then(|schema| schema.field_with_name(key).ok());
    match (from_given, from_declared) {
        (Some(given), Some(declared)) if given.data_type() != declared.data_type() => Err(Error::InvalidOption {
            option: "partition_schema",
            reason: format!(
                "partition column `{key}` is {} there but {} in the read's schema; give it one type",
                declared.data_type(),
                given.data_type()
            ),
        }),
        (Some(field), _) | (None, Some(field)) => Ok(field.clone()),
        (None, None) if given.is_some() => Ok(Field::new(key, DataType::Utf8, true)),
        (None, None) => Ok(Field::new(key, infer_partition_type(files, index), true)),
    }
}

/// Every partition value of `files` parses as its column's type.
///
/// # Errors
///
/// [`Error::Partition`] naming the first directory whose value does not.
fn check_partition_values(files: &[DataFile], fields: &[Field]) -> Result<()> {
    let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
    for (index, field) in fields.iter().enumerate() {
        if field.data_type() == &DataType::Utf8 {
            continue;
        }
        let mut checked = std::collections::HashSet::new();
        for partition in files.iter().map(|f| &f.partitions[index]) {
            let Some(value) = partition.value.as_deref() else { continue };
            if !checked.insert(value) {
                continue;
            }
            let text: ArrayRef = Arc::new(StringArray::from(vec![value]));
            if let Err(e) = arrow::compute::cast_with_options(&text, field.data_type(), &options) {
                return Err(Error::Partition {
                    path: partition.dir.clone(),
                    reason: format!(
                        "value `{value}` of partition column `{}` is not a valid {} ({e}); rename the directory, \
                         or read the column as Utf8 (with_partition_schema)",
                        field.name(),
                        field.data_type()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A partition schema naming columns the directories do not give is a mistake.
fn check_partition_schema(declared: Option<&SchemaRef>, keys: &[String], files: &[DataFile]) -> Result<()> {
    let Some(declared) = declared else { return Ok(()) };
    if files.is_empty() {
        return Ok(()); // An empty directory gives no columns to compare with.
    }
    let unknown: Vec<String> =
        declared.fields().iter().map(|f| f.name().clone()).filter(|name| !keys.contains(name)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let quoted = |names: &[String]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    Err(Error::InvalidOption {
        option: "partition_schema",
        reason: format!(
            "{} {} not a partition column of this read (its directories give: {})",
            quoted(&unknown),
            if unknown.len() == 1 { "is" } else { "are" },
            if keys.is_empty() { "none".to_owned() } else { quoted(keys) }
        ),
    })
}

/// Plans a read of `path` and returns its stream.
pub(crate) fn stream<F: Format>(
    format: Arc<F>,
    options: &ReadOptions,
    path: &Path,
    typed: Option<(SchemaRef, String)>,
) -> Result<BatchStream> {
    options.check()?;
    let given = typed.clone().or_else(|| options.schema.clone().map(|s| (s, "given".to_owned())));
    let mut options = options.clone();
    let files = match files::snapshot(path) {
        Ok((files, pinned)) => {
            options.pinned = Some(Arc::new(pinned));
            files
        }
        // An empty directory is an empty dataset when the schema is known.
        Err(Error::NoFiles { .. }) if given.is_some() && path.is_dir() => Vec::new(),
        Err(error) => return Err(error),
    };
    let options = &options;
    let keys: Vec<String> =
        files.first().map(|f| f.partitions.iter().map(|p| p.column.clone()).collect()).unwrap_or_default();
    let declared = options.partition_schema.as_ref();
    check_partition_schema(declared, &keys, &files)?;

    // The schema of the data in the files (without partition columns), and of the partitions.
    let (data_schema, partition_fields, expected_name): (SchemaRef, Vec<Field>, String) = match &given {
        Some((schema, name)) => {
            let data: Vec<Field> =
                schema.fields().iter().filter(|f| !keys.contains(f.name())).map(|f| f.as_ref().clone()).collect();
            let partitions = keys
                .iter()
                .enumerate()
                .map(|(i, k)| partition_field(k, i, &files, Some(schema), declared))
                .collect::<Result<_>>()?;
            (Arc::new(ArrowSchema::new(data)), partitions, name.clone())
        }
        None => {
            let first = files.first().map(|f| f.path.display().to_string()).unwrap_or_default();
            let schema = if format.self_describing() {
                format.file_schema(&files[0].path, options)?.unwrap_or_else(ArrowSchema::empty)
            } else {
                let mut merged = ArrowSchema::empty();
                let mut merged_from = first.clone();
                for file in &files {
                    if let Some(schema) = format.file_schema(&file.path, options)? {
                        merged = ArrowSchema::try_merge([merged, schema]).map_err(|e| Error::Arrow {
                            context: format!(
                                "inferred schemas of `{}` and `{merged_from}` disagree",
                                file.path.display()
                            ),
                            source: e,
                        })?;
                        merged_from = file.path.display().to_string();
                    }
                }
                merged
            };
            let data: Vec<Field> =
                schema.fields().iter().filter(|f| !keys.contains(f.name())).map(|f| f.as_ref().clone()).collect();
            let partitions = keys
                .iter()
                .enumerate()
                .map(|(i, k)| partition_field(k, i, &files, None, declared))
                .collect::<Result<_>>()?;
            (Arc::new(ArrowSchema::new(data)), partitions, format!("inferred from `{first}`"))
        }
    };

    check_partition_values(&files, &partition_fields)?;

    // The output schema and the data columns each file is read for.
    let full: Vec<Field> =
        data_schema.fields().iter().map(|f| f.as_ref().clone()).chain(partition_fields.iter().cloned()).collect();
    let full = ArrowSchema::new(full);
    let (output, wanted): (SchemaRef, Vec<String>) = match (&typed, &options.projection) {
        (Some((schema, _)), None) => (schema.clone(), data_schema.fields().iter().map(|f| f.name().clone()).collect()),
        (Some((schema, _)), Some(projection)) => (schema.clone(), projection.clone()),
        (None, projection) => {
            let names: Vec<String> = match projection {
                Some(p) => p.clone(),
                None => full.fields().iter().map(|f| f.name().clone()).collect(),
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let indices = crate::dataset::column_indices(&full, &refs)?;
            let output = full.project(&indices).map_err(|e| Error::arrow("projecting", e))?;
            (Arc::new(output), names)
        }
    };
    let wanted: Vec<String> = wanted.into_iter().filter(|n| !keys.contains(n)).collect();
    let output_partitions: Vec<(usize, Field)> = partition_fields
        .iter()
        .enumerate()
        .filter(|(_, field)| output.index_of(field.name()).is_ok())
        .map(|(index, field)| (index, field.clone()))
        .collect();

    let open_format = format.clone();
    let open_options = options.clone();
    let open = Box::new(move |file: &DataFile| -> Result<FileBatches> {
        let schema = open_format.schema_for(&file.path, &data_schema, &open_options)?;
        let projection: Vec<usize> = wanted.iter().filter_map(|name| schema.index_of(name).ok()).collect();
        open_format.open(&file.path, &schema, &projection, &open_options)
    });
    Ok(BatchStream {
        schema: output,
        files: files.into_iter(),
        current: None,
        open,
        expected_name,
        partition_fields: output_partitions,
        done: false,
    })
}
