//! CSV through arrow-csv; errors located with the `csv` crate (file, line, column).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use arrow::error::ArrowError;
use regex::Regex;

use crate::error::{Error, Result};
use crate::io::csv_quotes::{Dialect, OpenQuote, QuoteCheck};
use crate::io::read::{common_read_options, FileBatches, Format, ReadOptions};
use crate::io::write::{common_write_options, FormatWriter, WriteOptions};

/// The CSV dialect shared by reading and diagnostics.
#[derive(Debug, Clone)]
pub(crate) struct CsvFormat {
    header: bool,
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    null_regex: Option<Regex>,
}

/// Reads CSV files, directories and globs (arrow-csv underneath).
///
/// Defaults: a header row, `,` delimiter, `"` quote, empty fields are null, 8192 rows per
/// batch, types inferred from the first 1000 records of each file (or taken from a typed read).
///
/// A malformed record is reported with its file, line and column:
/// `malformed CSV in `orders.csv`, line 3, column 2 (`amount`): value "x" is not a valid Int64`.
#[derive(Debug, Clone)]
pub struct CsvReader {
    common: ReadOptions,
    header: bool,
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    null_values: Option<Vec<String>>,
}

impl Default for CsvReader {
    fn default() -> Self {
        CsvReader {
            common: ReadOptions::default(),
            header: true,
            delimiter: b',',
            quote: b'"',
            escape: None,
            comment: None,
            null_values: None,
        }
    }
}

impl CsvReader {
    /// A reader with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first row holds the column names (default true). Without a header, inferred
    /// columns are named `column_1`, `column_2`, ...
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The field delimiter (default `,`).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The quote character (default `"`).
    pub fn with_quote(mut self, quote: u8) -> Self {
        self.quote = quote;
        self
    }

    /// An escape character inside quoted fields (default none: quotes are doubled).
    pub fn with_escape(mut self, escape: u8) -> Self {
        self.escape = Some(escape);
        self
    }

    /// Lines starting with this byte are skipped.
    pub fn with_comment(mut self, comment: u8) -> Self {
        self.comment = Some(comment);
        self
    }

    /// The exact field values read as null, replacing the default (the empty field); include
    /// `""` to keep it.
    pub fn with_null_values<I, N>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        self.null_values = Some(values.into_iter().map(Into::into).collect());
        self
    }

    /// How many records of each file type inference reads (default 1000; `None`: all).
    pub fn with_infer_records(mut self, records: Option<usize>) -> Self {
        self.common.infer_records = records;
        self
    }

    fn format(&self) -> Arc<CsvFormat> {
        let null_regex = self.null_values.as_ref().map(|values| {
            let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
            // Escaped literals joined by `|` always form a valid pattern.
            Regex::new(&format!("^(?:{})$", alternatives.join("|"))).unwrap_or_else(|_| unreachable!())
        });
        Arc::new(CsvFormat {
            header: self.header,
            delimiter: self.delimiter,
            quote: self.quote,
            escape: self.escape,
            comment: self.comment,
            null_regex,
        })
    }

    common_read_options!();
}

impl CsvFormat {
    fn dialect(&self) -> Dialect {
        Dialect { delimiter: self.delimiter, quote: self.quote, escape: self.escape, comment: self.comment }
    }

    /// `file` behind a [`QuoteCheck`], and the cell where it records a quote never closed.
    fn quote_checked(&self, file: File) -> (QuoteCheck<File>, Arc<OnceLock<OpenQuote>>) {
        let found = Arc::new(OnceLock::new());
        (QuoteCheck::new(file, self.dialect(), found.clone()), found)
    }

    /// The error for a quoted field that opens at `quote` and is never closed; `names` are the
    /// file's columns when known.
    fn open_quote_error(&self, path: &Path, quote: OpenQuote, names: &[String]) -> Error {
        let in_header = self.header && quote.record == 0;
        let name = match names.get(quote.field - 1) {
            Some(name) if !in_header => name.clone(),
            _ => format!("column_{}", quote.field),
        };
        Error::Csv {
            path: path.to_path_buf(),
            line: quote.line,
            column: Some((quote.field, name)),
            message: format!(
                "the quote that opens this field is never closed, so the rest of the file would be read into \
                 it; close the quote, or write a quote inside a quoted field as two ({q}{q})",
                q = char::from(self.quote)
            ),
        }
    }

    /// The header record of `path` (`None` for an empty file).
    ///
    /// # Errors
    ///
    /// [`Error::Csv`] when the header is malformed, its quote never closes, or two columns have
    /// the same name (both named, with their positions).
    fn read_header(&self, path: &Path, options: &ReadOptions) -> Result<Option<csv::StringRecord>> {
        let file = options.open(path)?;
        let (input, found) = self.quote_checked(file);
        let mut reader = self.csv_reader(input);
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                if let Some(quote) = found.get() {
                    return Err(self.open_quote_error(path, *quote, &[]));
                }
                let line = e.position().map_or(1, csv::Position::line);
                return Err(Error::Csv { path: path.to_path_buf(), line, column: None, message: e.to_string() });
            }
        }
        let line = header.position().map_or(1, csv::Position::line);
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(header.len());
        for (index, name) in header.iter().enumerate() {
            if let Some(first) = seen.insert(name, index) {
                return Err(Error::Csv {
                    path: path.to_path_buf(),
                    line,
                    column: Some((index + 1, name.to_owned())),
                    message: format!(
                        "the header names two columns `{name}` (columns {} and {}); rename one, or read \
                         with_header(false) and a schema",
                        first + 1,
                        index + 1
                    ),
                });
            }
        }
        Ok(Some(header))
    }

    fn csv_reader<R: Read>(&self, input: R) -> csv::Reader<R> {
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .escape(self.escape)
            .comment(self.comment);
        builder.from_reader(input)
    }

    fn is_null(&self, value: &str) -> bool {
        match &self.null_regex {
            Some(regex) => regex.is_match(value),
            None => value.is_empty(),
        }
    }

    /// Finds the record and column behind an arrow-csv error, reading the file again with the
    /// `csv` crate from record `skip` (records before it were decoded fine).
    fn diagnose(
        &self,
        path: &Path,
        schema: &SchemaRef,
        projection: Option<&[usize]>,
        skip: usize,
        quote: Option<OpenQuote>,
        cause: &ArrowError,
    ) -> Error {
        let located = |line: u64, column: Option<(usize, String)>, message: String| Error::Csv {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => return Error::io(path, e),
        };
        let mut reader = self.csv_reader(file);
        let mut record = csv::ByteRecord::new();
        let mut index = 0usize;
        let mut last_line = 1;
        let first_data = usize::from(self.header);
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map_or(last_line, csv::Position::line);
                    return located(line, None, e.to_string());
                }
            }
            let line = record.position().map_or(last_line, csv::Position::line);
            last_line = line;
            if quote.is_some_and(|quote| line >= quote.record_line) {
                break; // Reported below: the record that runs to the end of the file.
            }
            let data_index = index.checked_sub(first_data);
            index += 1;
            let Some(data_index) = data_index else { continue };
            if data_index < skip {
                continue;
            }
            if record.len() != schema.fields().len() {
                return located(
                    line,
                    None,
                    format!("expected {} fields, found {}", schema.fields().len(), record.len()),
                );
            }
            let all: Vec<usize> = (0..record.len()).collect();
            for &i in projection.unwrap_or(&all) {
                let field = schema.field(i);
                let column = Some((i + 1, field.name().clone()));
                let Ok(text) = std::str::from_utf8(&record[i]) else {
                    return located(line, column, "invalid UTF-8".to_owned());
                };
                if let Err(message) = self.check_value(text, field) {
                    return located(line, column, message);
                }
            }
        }
        if let Some(quote) = quote {
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            return self.open_quote_error(path, quote, &names);
        }
        located(last_line, None, cause.to_string())
    }

    /// Whether arrow-csv accepts `text` as a value of `field`, decoding it alone.
    fn check_value(&self, text: &str, field: &Field) -> Result<(), String> {
        if self.is_null(text) {
            return if field.is_nullable() { Ok(()) } else { Err("null value in a non-nullable column".to_owned()) };
        }
        let mut line = Vec::new();
        {
            let mut writer = csv::WriterBuilder::new().from_writer(&mut line);
            writer.write_record([text]).map_err(|e| e.to_string())?;
            writer.flush().map_err(|e| e.to_string())?;
        }
        let schema = Arc::new(ArrowSchema::new(vec![field.clone().with_nullable(true)]));
        let mut decoder = arrow::csv::ReaderBuilder::new(schema).with_header(false).build_decoder();
        let parsed = decoder.decode(&line).and_then(|_| decoder.decode(&[])).and_then(|_| decoder.flush());
        match parsed {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("value {text:?} is not a valid {}", field.data_type())),
        }
    }
}

impl Format for CsvFormat {
    fn self_describing(&self) -> bool {
        false
    }

    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>> {
        // The header is read first, for its duplicate names and for the names in errors.
        let mut names: Vec<String> = Vec::new();
        if self.header {
            let Some(header) = self.read_header(path, options)? else { return Ok(None) };
            names = header.iter().map(str::to_owned).collect();
        }
        let file = options.open(path)?;
        let (input, found) = self.quote_checked(file);
        let mut format = arrow::csv::reader::Format::default()
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote);
        if let Some(escape) = self.escape {
            format = format.with_escape(escape);
        }
        if let Some(comment) = self.comment {
            format = format.with_comment(comment);
        }
        if let Some(regex) = &self.null_regex {
            format = format.with_null_regex(regex.clone());
        }
        match format.infer_schema(BufReader::new(input), options.infer_records) {
            Ok((schema, _)) if schema.fields().is_empty() => Ok(None),
            Ok((schema, _)) => Ok(Some(schema)),
            Err(e) => match found.get() {
                Some(quote) => Err(self.open_quote_error(path, *quote, &names)),
                None => Err(self.diagnose_structure(path, &Arc::new(ArrowSchema::empty()), &e)),
            },
        }
    }

    fn schema_for(&self, path: &Path, expected: &SchemaRef, options: &ReadOptions) -> Result<SchemaRef> {
        if !self.header {
            return Ok(expected.clone());
        }
        let Some(header) = self.read_header(path, options)? else {
            return Ok(expected.clone()); // An empty file: no rows to read.
        };
        let fields: Vec<Field> = header
            .iter()
            .map(|name| match expected.field_with_name(name) {
                Ok(field) => field.clone(),
                Err(_) => Field::new(name, DataType::Utf8, true),
            })
            .collect();
        Ok(Arc::new(ArrowSchema::new(fields)))
    }

    fn open(
        &self,
        path: &Path,
        schema: &SchemaRef,
        projection: &[usize],
        options: &ReadOptions,
    ) -> Result<FileBatches> {
        let file = options.open(path)?;
        let (input, found) = self.quote_checked(file);
        let mut builder = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote)
            .with_batch_size(options.batch_size)
            .with_projection(projection.to_vec());
        if let Some(escape) = self.escape {
            builder = builder.with_escape(escape);
        }
        if let Some(comment) = self.comment {
            builder = builder.with_comment(comment);
        }
        if let Some(regex) = &self.null_regex {
            builder = builder.with_null_regex(regex.clone());
        }
        let reader = builder
            .build(BufReader::new(input))
            .map_err(|e| Error::arrow(format!("opening `{}`", path.display()), e))?;
        let format = self.clone();
        let path = path.to_path_buf();
        let schema = schema.clone();
        let projection = projection.to_vec();
        let mut rows = 0usize;
        Ok(Box::new(reader.map(move |batch| match batch {
            Ok(batch) => {
                rows += batch.num_rows();
                Ok(batch)
            }
            Err(e) => Err(format.diagnose(&path, &schema, Some(&projection), rows, found.get().copied(), &e)),
        })))
    }
}

impl CsvFormat {
    /// Locates a structural error (field count, quoting, UTF-8) found while inferring.
    fn diagnose_structure(&self, path: &Path, _: &SchemaRef, cause: &ArrowError) -> Error {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => return Error::io(path, e),
        };
        let mut reader = self.csv_reader(file);
        let mut record = csv::ByteRecord::new();
        let mut width = None;
        let mut last_line = 1;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map_or(last_line, csv::Position::line);
                    return Error::Csv { path: path.to_path_buf(), line, column: None, message: e.to_string() };
                }
            }
            let line = record.position().map_or(last_line, csv::Position::line);
            last_line = line;
            let expected = *width.get_or_insert(record.len());
            if record.len() != expected {
                return Error::Csv {
                    path: path.to_path_buf(),
                    line,
                    column: None,
                    message: format!("expected {expected} fields, found {}", record.len()),
                };
            }
            if let Some(i) = record.iter().position(|field| std::str::from_utf8(field).is_err()) {
                return Error::Csv {
                    path: path.to_path_buf(),
                    line,
                    column: Some((i + 1, format!("column_{}", i + 1))),
                    message: "invalid UTF-8".to_owned(),
                };
            }
        }
        Error::Csv { path: path.to_path_buf(), line: last_line, column: None, message: cause.to_string() }
    }
}

/// Writes a dataset as CSV (arrow-csv underneath), atomically.
///
/// Defaults: a header row, `,` delimiter, `"` quote, nulls as empty fields, error if the target
/// exists.
#[derive(Debug, Clone)]
pub struct CsvWriter {
    common: WriteOptions,
    header: bool,
    delimiter: u8,
    quote: u8,
    null_value: String,
}

impl Default for CsvWriter {
    fn default() -> Self {
        CsvWriter {
            common: WriteOptions::default(),
            header: true,
            delimiter: b',',
            quote: b'"',
            null_value: String::new(),
        }
    }
}

impl CsvWriter {
    /// A writer with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to write a header row (default true).
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The field delimiter (default `,`).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The quote character (default `"`).
    pub fn with_quote(mut self, quote: u8) -> Self {
        self.quote = quote;
        self
    }

    /// How nulls are written (default: an empty field).
    pub fn with_null_value(mut self, null: impl Into<String>) -> Self {
        self.null_value = null.into();
        self
    }

    fn format_writer(&self) -> &Self {
        self
    }

    common_write_options!();
}

impl FormatWriter for CsvWriter {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn write_file(&self, file: &mut File, path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let context = || format!("writing CSV `{}`", path.display());
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote)
            .with_null(self.null_value.clone())
            .build(&mut *file);
        if batches.is_empty() {
            // Writes the header of an empty dataset.
            writer.write(&RecordBatch::new_empty(schema.clone())).map_err(|e| Error::arrow(context(), e))?;
        }
        for batch in batches {
            writer.write(batch).map_err(|e| Error::arrow(context(), e))?;
        }
        drop(writer);
        file.flush().map_err(|e| Error::io(path, e))
    }
}
