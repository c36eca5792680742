//! Newline-delimited JSON through arrow-json; errors located by line.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;

use crate::error::{Error, Result};
use crate::io::read::{common_read_options, FileBatches, Format, ReadOptions};
use crate::io::write::{common_write_options, FormatWriter, WriteOptions};

/// Reads newline-delimited JSON (one object per line) from files, directories and globs
/// (arrow-json underneath).
///
/// Types are inferred from the first 1000 lines of each file unless the read is typed or given a
/// schema. Keys not in the schema are ignored. A malformed line is reported with its file and
/// line number.
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

/// The 1-based line of the first non-blank line, after `skip` of them, that fails `check`.
fn locate(
    path: &Path,
    skip: usize,
    check: impl Fn(&str) -> std::result::Result<(), ArrowError>,
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
        if let Err(e) = check(text) {
            return Error::Json { path: path.to_path_buf(), line: Some(index as u64 + 1), message: e.to_string() };
        }
    }
    Error::Json { path: path.to_path_buf(), line: None, message: cause.to_string() }
}

impl Format for JsonFormat {
    fn self_describing(&self) -> bool {
        false
    }

    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>> {
        let file = options.open(path)?;
        match arrow::json::reader::infer_json_schema_from_seekable(BufReader::new(file), options.infer_records) {
            Ok((schema, _)) if schema.fields().is_empty() => Ok(None),
            Ok((schema, _)) => Ok(Some(schema)),
            Err(e) => Err(locate(
                path,
                0,
                |line| arrow::json::reader::infer_json_schema(Cursor::new(line.as_bytes()), None).map(|_| ()),
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
            Err(e) => {
                let check = |line: &str| {
                    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone()).build_decoder()?;
                    decoder.decode(line.as_bytes())?;
                    decoder.flush().map(|_| ())
                };
                Err(locate(&path, rows, check, &e))
            }
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
