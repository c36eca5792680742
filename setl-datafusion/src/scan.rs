//! File scans through DataFusion: parallel Parquet and CSV readers with projection and
//! predicate pushdown, as connectors.
//!
//! A scan gives a lazy [`Frame`]. Run on its own it reads the chosen columns and rows; registered
//! in a consumer's session it fuses with the consumer's query, so the consumer's projections and
//! filters reach the file reader as well (Parquet: only the needed column chunks are decoded,
//! row groups whose statistics exclude the filter are skipped).

use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, DataFrame, ParquetReadOptions};

use crate::error::SqlError;
use crate::frame::Frame;
use crate::session::Session;

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
    /// When the file is missing or not Parquet, or a column or the filter is invalid: DataFusion's
    /// message, with the file.
    pub fn read(&self, session: &Session) -> Result<Frame, SqlError> {
        let context = session.context().clone();
        if self.pushdown_filters {
            context.state_ref().write().config_mut().options_mut().execution.parquet.pushdown_filters = true;
        }
        let path = path_text(&self.path);
        let narrowing = self.narrowing.clone();
        let label = "Parquet scan".to_owned();
        let frame = session
            .engine()
            .run(async move {
                let frame = context.read_parquet(path, ParquetReadOptions::default()).await?;
                narrowing.apply(frame)
            })
            .map_err(|error| SqlError::new(label.clone(), vec![self.path.clone()], error))?;
        Ok(Frame::from_dataframe(session.engine().clone(), label, frame, vec![self.path.clone()]))
    }
}

/// A CSV file (or a directory of them) read by DataFusion, split into byte ranges parsed in
/// parallel.
///
/// # Examples
///
/// ```no_run
/// # use setl_datafusion::{Engine, CsvScan};
/// # let engine = Engine::standalone(2, &Default::default())?;
/// let orders = CsvScan::new("data/orders.csv").columns(["o_orderkey", "o_orderdate"]).read(&engine.session())?;
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
}

impl CsvScan {
    /// A scan of `path`, a `.csv` file or a directory of them, with a header row and `,`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvScan { path: path.into(), narrowing: Narrowing::default(), schema: None, has_header: true, delimiter: b',' }
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

    /// The scan as a lazy frame in `session`.
    ///
    /// # Errors
    ///
    /// When the file is missing, or a column or the filter is invalid: DataFusion's message,
    /// with the file. Malformed rows fail when the frame runs.
    pub fn read(&self, session: &Session) -> Result<Frame, SqlError> {
        let context = session.context().clone();
        let path = path_text(&self.path);
        let narrowing = self.narrowing.clone();
        let schema = self.schema.clone();
        let (has_header, delimiter) = (self.has_header, self.delimiter);
        let extension = self.path.extension().and_then(|e| e.to_str()).unwrap_or("csv").to_owned();
        let label = "CSV scan".to_owned();
        let frame = session
            .engine()
            .run(async move {
                let mut options =
                    CsvReadOptions::new().has_header(has_header).delimiter(delimiter).file_extension(&extension);
                if let Some(schema) = &schema {
                    options = options.schema(schema);
                }
                let frame = context.read_csv(path, options).await?;
                narrowing.apply(frame)
            })
            .map_err(|error| SqlError::new(label.clone(), vec![self.path.clone()], error))?;
        Ok(Frame::from_dataframe(session.engine().clone(), label, frame, vec![self.path.clone()]))
    }
}

/// DataFusion takes paths as URLs or plain strings; an absolute path avoids surprises with the
/// working directory.
fn path_text(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
}
