//! Newline-delimited JSON through arrow-json; errors located by line.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;

use crate::error::{Error, Result};
use crate::io::json_infer;
use crate::io::read::{common_read_options, FileBatches, Format, ReadOptions};
use crate::io::write::{common_write_options, FormatWriter, WriteOptions};

/// Reads newline-delimited JSON (one object per line) from files, directories and globs
/// (arrow-json underneath).
///
/// Types are inferred from the first 1000 lines of each file unless the read is typed or given a
/// schema. Keys not in the schema are ignored. A malformed line is reported with its file and
/// line number, and the field at fault when one is (a value out of its type's range, say).
///
/// Inference keeps every integer exact: a column whose integers go beyond `i64` is `UInt64`
/// when they are all in `0..=u64::MAX`, else `Decimal128(38, 0)`; when they have more than 38
/// digits, or the column also holds numbers with a fraction or exponent, inference fails with an
/// error that says to give a schema.
#[derive(Debug, Clone, Default)]
pub struct JsonReader {
    common: ReadOptions,
}

impl JsonReader {
    /// A reader with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many lines of each file type inference reads (default 1000; `None`: all).
    pub fn with_infer_records(mut self, records: Option<usize>) -> Self {
        self.common.infer_records = records;
        self
    }

    fn format(&self) -> Arc<JsonFormat> {
        Arc::new(JsonFormat)
    }

    common_read_options!();
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonFormat;

/// What is wrong with one line: the top-level field at fault, when one is, and the message.
type LineError = (Option<String>, String);

/// The 1-based line of the first non-blank line, after `skip` of them, that fails `check`.
fn locate(
    path: &Path,
    skip: usize,
    check: impl Fn(&str) -> std::result::Result<(), LineError>,
    cause: &ArrowError,
) -> Error {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return Error::io(path, e),
    };
    let mut values = 0usize;
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => return Error::io(path, e),
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            return Error::Json {
                path: path.to_path_buf(),
                line: Some(index as u64 + 1),
                field: None,
                message: "invalid UTF-8".to_owned(),
            };
        };
        if text.trim().is_empty() {
            continue;
        }
        values += 1;
        if values <= skip {
            continue;
        }
        if let Err((field, message)) = check(text) {
            return Error::Json { path: path.to_path_buf(), line: Some(index as u64 + 1), field, message };
        }
    }
    Error::Json { path: path.to_path_buf(), line: None, field: None, message: cause.to_string() }
}

/// The 1-based line of the value at 0-based `index` (blank lines hold none).
pub(crate) fn line_of_value(path: &Path, index: usize) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut values = 0usize;
    for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
        if line.ok()?.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if values == index {
            return Some(number as u64 + 1);
        }
        values += 1;
    }
    None
}

/// Decodes one line with `schema`.
fn decode_line(line: &str, schema: &SchemaRef) -> std::result::Result<(), ArrowError> {
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone()).build_decoder()?;
    decoder.decode(line.as_bytes())?;
    decoder.flush().map(|_| ())
}

/// The text of top-level field `name` of `line` when it is a number, string or boolean.
pub(crate) fn raw_value(line: &str, name: &str) -> Option<String> {
    let schema = Arc::new(ArrowSchema::new(vec![Field::new(name, DataType::Utf8, true)]));
    let mut decoder = arrow::json::ReaderBuilder::new(schema).with_coerce_primitive(true).build_decoder().ok()?;
    decoder.decode(line.as_bytes()).ok()?;
    let batch = decoder.flush().ok()??;
    let column = batch.column(0).as_string_opt::<i32>()?;
    (batch.num_rows() == 1 && column.is_valid(0)).then(|| column.value(0).to_owned())
}

/// True for a JSON number without a fraction or exponent.
pub(crate) fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Why `line` does not decode with `schema`: the first top-level field that does not, with an
/// integer out of its type's range said so.
fn explain(line: &str, schema: &SchemaRef) -> std::result::Result<(), LineError> {
    let Err(cause) = decode_line(line, schema) else { return Ok(()) };
    if let Err(syntax) = decode_line(line, &Arc::new(ArrowSchema::empty())) {
        return Err((None, syntax.to_string())); // Not JSON at all: no field to blame.
    }
    for field in schema.fields() {
        let Err(error) = decode_line(line, &Arc::new(ArrowSchema::new(vec![field.clone()]))) else { continue };
        let name = field.name();
        let message = match raw_value(line, name) {
            Some(raw) if field.data_type().is_integer() && is_integer_literal(&raw) => format!(
                "integer {raw} is out of range of {}; declare `{name}` in the schema with a type that holds it \
                 (Int64, UInt64 for 0 to {}, Decimal128(38, 0) for up to 38 digits)",
                field.data_type(),
                u64::MAX
            ),
            _ => error.to_string(),
        };
        return Err((Some(name.clone()), message));
    }
    Err((None, cause.to_string()))
}

impl Format for JsonFormat {
    fn self_describing(&self) -> bool {
        false
    }

    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>> {
        let file = options.open(path)?;
        match arrow::json::reader::infer_json_schema_from_seekable(BufReader::new(file), options.infer_records) {
            Ok((schema, _)) if schema.fields().is_empty() => Ok(None),
            Ok((schema, _)) => json_infer::exact_integers(path, schema, options.infer_records).map(Some),
            Err(e) => Err(locate(
                path,
                0,
                |line| {
                    arrow::json::reader::infer_json_schema(Cursor::new(line.as_bytes()), None)
                        .map(|_| ())
                        .map_err(|e| (None, e.to_string()))
                },
                &e,
            )),
        }
    }

    fn schema_for(&self, _: &Path, expected: &SchemaRef, _: &ReadOptions) -> Result<SchemaRef> {
        Ok(expected.clone())
    }

    fn open(
        &self,
        path: &Path,
        schema: &SchemaRef,
        projection: &[usize],
        options: &ReadOptions,
    ) -> Result<FileBatches> {
        let file = options.open(path)?;
        let schema = Arc::new(schema.project(projection).map_err(|e| Error::arrow("projecting", e))?);
        let reader = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(options.batch_size)
            .build(BufReader::new(file))
            .map_err(|e| Error::arrow(format!("opening `{}`", path.display()), e))?;
        let path = path.to_path_buf();
        let mut rows = 0usize;
        Ok(Box::new(reader.map(move |batch| match batch {
            Ok(batch) => {
                rows += batch.num_rows();
                Ok(batch)
            }
            Err(e) => Err(locate(&path, rows, |line| explain(line, &schema), &e)),
        })))
    }
}

/// Writes a dataset as newline-delimited JSON (arrow-json underneath), atomically. Null values
/// are left out of their objects.
#[derive(Debug, Clone, Default)]
pub struct JsonWriter {
    common: WriteOptions,
}

impl JsonWriter {
    /// A writer with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn format_writer(&self) -> &Self {
        self
    }

    common_write_options!();
}

impl FormatWriter for JsonWriter {
    fn extension(&self) -> &'static str {
        "json"
    }

    fn write_file(&self, file: &mut File, path: &Path, _: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let context = || format!("writing JSON `{}`", path.display());
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut *file);
        for batch in batches {
            writer.write(batch).map_err(|e| Error::arrow(context(), e))?;
        }
        writer.finish().map_err(|e| Error::arrow(context(), e))?;
        drop(writer);
        file.flush().map_err(|e| Error::io(path, e))
    }
}
