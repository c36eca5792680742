//! File scans through DataFusion: parallel Parquet and CSV readers with projection and
//! predicate pushdown, as connectors.
//!
//! A scan gives a lazy [`Frame`]. Run on its own it reads the chosen columns and rows; registered
//! in a consumer's session it fuses with the consumer's query, so the consumer's projections and
//! filters reach the file reader as well (Parquet: only the needed column chunks are decoded,
//! row groups whose statistics exclude the filter are skipped).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{cast, ident, lit, when, Expr};
use datafusion::prelude::{CsvReadOptions, DataFrame, ParquetReadOptions, SessionContext};
use futures::StreamExt;
use setl_arrow::io::CsvReader;

use crate::error::SqlError;
use crate::frame::Frame;
use crate::origin::{Lineage, ScanOrigin};
use crate::session::Session;
use crate::sized::Sized;

/// What every scan can narrow: columns and rows.
#[derive(Debug, Clone, Default)]
struct Narrowing {
    columns: Option<Vec<String>>,
    filter: Option<String>,
}

impl Narrowing {
    fn apply(&self, mut frame: DataFrame) -> Result<DataFrame, DataFusionError> {
        if let Some(filter) = &self.filter {
            let predicate = frame.parse_sql_expr(filter)?;
            frame = frame.filter(predicate)?;
        }
        if let Some(columns) = &self.columns {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            frame = frame.select_columns(&columns)?;
        }
        Ok(frame)
    }
}

/// A Parquet file (or a directory of them) read by DataFusion.
///
/// # Examples
///
/// ```no_run
/// # use setl_datafusion::{Engine, ParquetScan};
/// # let engine = Engine::standalone(2, &Default::default())?;
/// let session = engine.session();
/// let shipped = ParquetScan::new("data/lineitem.parquet")
///     .columns(["l_orderkey", "l_extendedprice"])
///     .filter("l_shipdate >= DATE '1995-01-01'")
///     .read(&session)?;
/// # Ok::<(), setl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ParquetScan {
    path: PathBuf,
    narrowing: Narrowing,
    pushdown_filters: bool,
}

impl ParquetScan {
    /// A scan of `path`: a `.parquet` file or a directory of them.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ParquetScan { path: path.into(), narrowing: Narrowing::default(), pushdown_filters: false }
    }

    /// Reads only these columns, in this order.
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.narrowing.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps only the rows where the SQL expression `predicate` holds; row groups whose
    /// statistics exclude it are not read.
    pub fn filter(mut self, predicate: impl Into<String>) -> Self {
        self.narrowing.filter = Some(predicate.into());
        self
    }

    /// Also evaluates filters while decoding, skipping the other columns' values for rows that
    /// fail them (DataFusion's `pushdown_filters`, switched on for the whole session; pays off
    /// on selective filters).
    pub fn pushdown_filters(mut self, enabled: bool) -> Self {
        self.pushdown_filters = enabled;
        self
    }

    /// The scan as a lazy frame in `session`.
    ///
    /// # Errors
    ///
    /// When no `.parquet` file matches the path (a misspelt file or a missing directory would
    /// otherwise read as no rows), a file is not Parquet, or a column or the filter is invalid: DataFusion's
    /// message, with the file.
    pub fn read(&self, session: &Session) -> Result<Frame, SqlError> {
        let context = session.context().clone();
        if self.pushdown_filters {
            context.state_ref().write().config_mut().options_mut().execution.parquet.pushdown_filters = true;
        }
        let path = path_text(&self.path);
        let narrowing = self.narrowing.clone();
        let origin = ScanOrigin::here("Parquet scan", self.path.clone());
        let frame = session
            .engine()
            .run(async move {
                if !has_files(&context, &path, ".parquet").await? {
                    return Err(no_files(&path, ".parquet", "read an empty dataset instead if no input is expected"));
                }
                let frame = context.read_parquet(path, ParquetReadOptions::default()).await?;
                narrowing.apply(frame)
            })
            .map_err(|error| SqlError::new(origin.label(), vec![self.path.clone()], error))?;
        let label = origin.label().to_owned();
        Ok(Frame::from_dataframe(session.engine().clone(), label, frame, Lineage::of_scan(origin)))
    }
}

/// A CSV file (or a directory of them) read by DataFusion, split into byte ranges parsed in
/// parallel.
///
/// A malformed value fails the query that reads the scan; the error names the factory that
/// defined the scan, the file, the 1-based line and the column (the scan's files are read again,
/// row by row, to find it: see the [crate docs](crate#errors)).
///
/// # Examples
///
/// ```no_run
/// # use setl_datafusion::{Engine, CsvScan};
/// # let engine = Engine::standalone(2, &Default::default())?;
/// let orders = CsvScan::new("data/orders.csv")
///     .null_values(["NA", "null"])
///     .columns(["o_orderkey", "o_orderdate"])
///     .read(&engine.session())?;
/// # Ok::<(), setl_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CsvScan {
    path: PathBuf,
    narrowing: Narrowing,
    schema: Option<SchemaRef>,
    has_header: bool,
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    null_values: Vec<String>,
    allow_empty: bool,
}

impl CsvScan {
    /// A scan of `path`, a `.csv` file or a directory of them, with a header row, `,` and `"`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvScan {
            path: path.into(),
            narrowing: Narrowing::default(),
            schema: None,
            has_header: true,
            delimiter: b',',
            quote: b'"',
            escape: None,
            comment: None,
            null_values: Vec::new(),
            allow_empty: false,
        }
    }

    /// The file's schema; without it DataFusion infers one from the first rows.
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Whether the first row holds column names (default: yes).
    pub fn has_header(mut self, has_header: bool) -> Self {
        self.has_header = has_header;
        self
    }

    /// The field separator (default: `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The quote character (default: `"`).
    pub fn quote(mut self, quote: u8) -> Self {
        self.quote = quote;
        self
    }

    /// The character that escapes a quote inside a quoted field (default: none, a quote is
    /// escaped by doubling it).
    pub fn escape(mut self, escape: u8) -> Self {
        self.escape = Some(escape);
        self
    }

    /// Lines starting with this character are skipped (default: none).
    pub fn comment(mut self, comment: u8) -> Self {
        self.comment = Some(comment);
        self
    }

    /// Field values read as null in every column, whatever its type (`NA`, `null`, `-`...), as
    /// well as the empty field. The columns are parsed as text and converted to their types
    /// after the nulls are set, in parallel as the rest of the scan; a value that is neither a
    /// null value nor of its column's type is an error with its file, line and column.
    pub fn null_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.null_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// Reads only these columns, in this order (the others are not parsed).
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.narrowing.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps only the rows where the SQL expression `predicate` holds.
    pub fn filter(mut self, predicate: impl Into<String>) -> Self {
        self.narrowing.filter = Some(predicate.into());
        self
    }

    /// Reads a path that matches no file of the scan's extension as no rows (with the
    /// [`schema`](Self::schema) given; without one the read fails, there is nothing to infer it
    /// from). By default such a scan fails, naming the path: a misspelt file or a missing
    /// directory is far more common than a wanted empty input.
    pub fn allow_empty(mut self, allowed: bool) -> Self {
        self.allow_empty = allowed;
        self
    }

    /// The scan as a lazy frame in `session`.
    ///
    /// # Errors
    ///
    /// When no file with the path's extension (`.csv` for a directory) matches the path
    /// (unless [`allow_empty`](Self::allow_empty)), the schema cannot be inferred, or a column
    /// or the filter is invalid: DataFusion's message, with the file. Malformed rows fail when
    /// the frame runs.
    pub fn read(&self, session: &Session) -> Result<Frame, SqlError> {
        let context = session.context().clone();
        let path = path_text(&self.path);
        let scan = self.clone();
        let extension = self.path.extension().and_then(|e| e.to_str()).unwrap_or("csv").to_owned();
        let planned = session.engine().run(async move {
            if !has_files(&context, &path, &extension).await? {
                match (&scan.schema, scan.allow_empty) {
                    (Some(schema), true) => {
                        let empty = context.read_batch(RecordBatch::new_empty(schema.clone()))?;
                        return Ok((scan.narrowing.apply(empty)?, schema.clone()));
                    }
                    (None, _) => {
                        return Err(no_files(
                            &path,
                            &extension,
                            "give the scan a `.schema(..)` and `.allow_empty(true)` if an empty input is expected",
                        ));
                    }
                    (Some(_), false) => {
                        return Err(no_files(
                            &path,
                            &extension,
                            "call `.allow_empty(true)` on the scan if an empty input is expected",
                        ));
                    }
                }
            }
            let options = || scan.options(&extension);
            let schema = match &scan.schema {
                Some(schema) => schema.clone(),
                None => {
                    // Inferred with the null values known, so that `NA` does not make a column text.
                    let nulls = (!scan.null_values.is_empty()).then(|| null_pattern(&scan.null_values));
                    let inferred = context.read_csv(path.clone(), options().null_regex(nulls)).await?;
                    inferred.schema().inner().clone()
                }
            };
            let frame = if scan.null_values.is_empty() {
                read_sized(&context, &path, &options(), &schema)?
            } else {
                let text = text_schema(&schema);
                let frame = read_sized(&context, &path, &options(), &text)?;
                frame.select(typed_columns(&schema, &scan.null_values)?)?
            };
            Ok::<_, DataFusionError>((scan.narrowing.apply(frame)?, schema))
        });
        let origin = ScanOrigin::here("CSV scan", self.path.clone());
        let (frame, schema) = planned.map_err(|error| SqlError::new(origin.label(), vec![self.path.clone()], error))?;
        let origin = origin.with_recheck(self.recheck(), schema);
        let label = origin.label().to_owned();
        Ok(Frame::from_dataframe(session.engine().clone(), label, frame, Lineage::of_scan(origin)))
    }
}

impl CsvScan {
    /// DataFusion's options for the scan's dialect.
    fn options<'a>(&self, extension: &'a str) -> CsvReadOptions<'a> {
        let options = CsvReadOptions::new()
            .has_header(self.has_header)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .file_extension(extension);
        let options = match self.escape {
            Some(escape) => options.escape(escape),
            None => options,
        };
        match self.comment {
            Some(comment) => options.comment(comment),
            None => options,
        }
    }

    /// setl-arrow's reader for the same dialect, nulls and columns: it reads the files again,
    /// row by row, to locate a malformed row when a query over the scan fails.
    fn recheck(&self) -> CsvReader {
        let mut reader =
            CsvReader::new().with_header(self.has_header).with_delimiter(self.delimiter).with_quote(self.quote);
        if let Some(escape) = self.escape {
            reader = reader.with_escape(escape);
        }
        if let Some(comment) = self.comment {
            reader = reader.with_comment(comment);
        }
        if !self.null_values.is_empty() {
            reader = reader.with_null_values(self.null_values.iter().cloned().chain([String::new()]));
        }
        if let Some(columns) = &self.narrowing.columns {
            reader = reader.with_projection(columns.iter().cloned());
        }
        reader
    }
}

/// A CSV read of `path` with `schema`, as `SessionContext::read_csv` plans it but with each
/// file's size in its statistics, so that joins build on the smaller input ([`Sized`]).
fn read_sized(
    context: &SessionContext,
    path: &str,
    options: &CsvReadOptions<'_>,
    schema: &SchemaRef,
) -> Result<DataFrame, DataFusionError> {
    let mut listing = options.to_listing_options(&context.copied_config(), context.copied_table_options());
    listing.format = Arc::new(Sized(listing.format));
    let config = ListingTableConfig::new(ListingTableUrl::parse(path)?)
        .with_listing_options(listing)
        .with_schema(schema.clone());
    let table =
        ListingTable::try_new(config)?.with_cache(context.runtime_env().cache_manager.get_file_statistic_cache());
    context.read_table(Arc::new(table))
}

/// A regular expression matching exactly the strings of `values` and the empty string (which it
/// replaces as the null of inference).
fn null_pattern(values: &[String]) -> String {
    let alternatives: Vec<String> = values.iter().map(|value| regex::escape(value)).chain([String::new()]).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// `schema` with every column as nullable text: how a scan with null values parses the file.
fn text_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> =
        schema.fields().iter().map(|field| Field::new(field.name(), DataType::Utf8, true)).collect();
    Arc::new(Schema::new(fields))
}

/// Each column of `schema` from its text: null when it is one of `nulls`, else cast to its type.
fn typed_columns(schema: &SchemaRef, nulls: &[String]) -> Result<Vec<Expr>, DataFusionError> {
    let values: Vec<Expr> = nulls.iter().map(|value| lit(value.as_str())).collect();
    schema
        .fields()
        .iter()
        .map(|field| {
            let text = ident(field.name());
            // The null values become nulls first, so that the cast never sees them.
            let nulled =
                when(text.clone().in_list(values.clone(), false), lit(ScalarValue::Utf8(None))).otherwise(text)?;
            let typed = match field.data_type() {
                DataType::Utf8 => nulled,
                other => cast(nulled, other.clone()),
            };
            Ok(typed.alias(field.name()))
        })
        .collect()
}

/// DataFusion takes paths as URLs or plain strings; an absolute path avoids surprises with the
/// working directory.
fn path_text(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
}

/// Whether `path` lists at least one file ending in `extension`, listed as DataFusion's reader
/// will list it (a file, a directory and what is below it, or a glob). With an explicit schema
/// DataFusion reads nothing from a path that matches nothing and succeeds, so a misspelt path
/// would give an empty result.
async fn has_files(context: &SessionContext, path: &str, extension: &str) -> Result<bool, DataFusionError> {
    let url = ListingTableUrl::parse(path)?;
    let store = context.runtime_env().object_store(url.object_store())?;
    let state = context.state();
    let mut files = url.list_all_files(&state, store.as_ref(), extension).await?;
    files.next().await.transpose().map(|first| first.is_some())
}

fn no_files(path: &str, extension: &str, what_to_do: &str) -> DataFusionError {
    DataFusionError::Plan(format!("no file ending in `{extension}` matches `{path}`: check the path, or {what_to_do}"))
}
