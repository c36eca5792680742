//! Errors of setl-datafusion: DataFusion's message, plus what was being done and on which files.
//!
//! Inside a factory phase, `?` turns these into setl's error, and the pipeline adds the factory
//! and the phase: `factory `Q1` failed in process: query `q1` over lineitem.parquet: <DataFusion's
//! message>`.

use std::fmt;
use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// A DataFusion operation failed.
///
/// Displays as `<operation>[ over <files>]: <message>`, the message being DataFusion's, or for a
/// malformed CSV row, where it is: `CSV scan defined in `ReadOrders.read` (run by query `q1`)
/// over orders.csv: malformed CSV in `orders.csv`, line 168026, column 3 (`o_totalprice`): ...`.
/// `source()` is the [`DataFusionError`] itself, so it can be matched on.
#[derive(Debug)]
pub struct SqlError {
    operation: String,
    files: Vec<PathBuf>,
    /// Shown instead of DataFusion's message, which it locates better.
    detail: Option<String>,
    source: DataFusionError,
}

impl SqlError {
    pub(crate) fn new(operation: impl Into<String>, files: Vec<PathBuf>, source: DataFusionError) -> Self {
        SqlError { operation: operation.into(), files, detail: None, source }
    }

    pub(crate) fn with_detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }

    /// What was being done, e.g. "query `q1`" or "Parquet scan defined in `ReadOrders.read`".
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The files the operation read (empty for in-memory data); for a malformed row, its file.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// DataFusion's error.
    pub fn datafusion(&self) -> &DataFusionError {
        &self.source
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.operation)?;
        if !self.files.is_empty() {
            f.write_str(" over ")?;
            for (index, file) in self.files.iter().enumerate() {
                if index > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", file.display())?;
            }
        }
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => write!(f, ": {}", self.source),
        }
    }
}

impl std::error::Error for SqlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Writing an output file failed; nothing was left at `path` (the data went to a temporary
/// file in the same directory, removed on failure).
#[derive(Debug)]
pub struct WriteError {
    path: PathBuf,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl WriteError {
    pub(crate) fn new(path: PathBuf, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        WriteError { path, source: source.into() }
    }

    /// The file that was being written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
