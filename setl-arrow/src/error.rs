//! The error type of setl-arrow: what went wrong, and where (file, line, column, schema).
//!
//! [`Error`] is a plain `std::error::Error`, so `?` turns it into a `setl_core::Error` inside a
//! factory phase.

use std::fmt;
use std::path::PathBuf;

use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// `Result` with setl-arrow's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with datasets and connectors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Batches or a file do not have the schema a typed dataset expects; every column that differs
    /// is listed.
    #[error("{0}")]
    SchemaMismatch(Box<SchemaMismatch>),
    /// Batches given to one dataset do not share one schema.
    #[error("batch {index} has a different schema than the dataset: {details}")]
    BatchSchema {
        /// Index of the first batch whose schema differs.
        index: usize,
        /// How it differs.
        details: String,
    },
    /// Columns named in a projection, a partitioning or a key do not exist.
    #[error("no column named {} (available: {})", quoted(.missing), quoted(.available))]
    ColumnNotFound {
        /// The names that do not exist.
        missing: Vec<String>,
        /// The columns that exist.
        available: Vec<String>,
    },
    /// A malformed CSV record.
    #[error("malformed CSV in `{}`, line {line}{}: {message}", .path.display(), column_suffix(.column))]
    Csv {
        /// The file.
        path: PathBuf,
        /// The 1-based line where the record starts.
        line: u64,
        /// The 1-based column number and its name, when one column is at fault.
        column: Option<(usize, String)>,
        /// What is wrong.
        message: String,
    },
    /// A malformed line of newline-delimited JSON.
    #[error("malformed JSON in `{}`{}{}: {message}", .path.display(), line_suffix(.line), field_suffix(.field))]
    Json {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when it could be located.
        line: Option<u64>,
        /// The top-level field at fault, when one is.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A Parquet file could not be read or written (truncated, not Parquet, corrupt).
    #[error("`{}` is not a readable Parquet file: {source}", .path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Parquet crate's error.
        #[source]
        source: ParquetError,
    },
    /// An Arrow IPC file could not be read or written.
    #[error("`{}` is not a readable Arrow IPC file: {source}", .path.display())]
    Ipc {
        /// The file.
        path: PathBuf,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// An I/O error on a file or directory.
    #[error("I/O error on `{}`: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link under a directory being read leads back to a directory that contains it,
    /// so the directory walk would never end.
    #[error(
        "symbolic link loop: `{}` leads back to `{}`, which contains it; remove the link, or read a \
         path that does not include it",
        .path.display(),
        .ancestor.display()
    )]
    SymlinkLoop {
        /// The link (as reached by the walk).
        path: PathBuf,
        /// The directory it leads back to.
        ancestor: PathBuf,
    },
    /// An Arrow error, with what setl-arrow was doing when it happened.
    #[error("{context}: {source}")]
    Arrow {
        /// What was being done (and on which file, if any).
        context: String,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// A path, directory or glob matched no data file.
    #[error("no data file matches `{pattern}`")]
    NoFiles {
        /// The path or glob.
        pattern: String,
    },
    /// A user-supplied write function failed; the target was left untouched.
    #[error("writing `{}` failed: {source}", .path.display())]
    Write {
        /// The target file.
        path: PathBuf,
        /// The write function's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The partition directories of a dataset are inconsistent.
    #[error("partition layout of `{}`: {reason}", .path.display())]
    Partition {
        /// The file whose directories disagree.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The write target exists and the save mode is `ErrorIfExists`.
    #[error("`{}` already exists; choose SaveMode::Overwrite or SaveMode::Append to write there", .path.display())]
    AlreadyExists {
        /// The target.
        path: PathBuf,
    },
    /// A value cannot become a field of a typed row: a null in a non-`Option` field, or a column
    /// of an unexpected type.
    #[error("cannot read `{schema}` rows: column `{column}`{}: {reason}", row_suffix(.row))]
    Row {
        /// The schema type.
        schema: String,
        /// The column.
        column: String,
        /// The 0-based row within the dataset, when one row is at fault.
        row: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// An Append's data does not have the schema of the files already in the target; every
    /// column that differs is listed (the existing file's view is the expected one).
    #[error(
        "cannot append to `{}`: the data's schema differs from that of `{}` ({} column{} differ{}){}\n\
         append data of the same schema, or write with SaveMode::Overwrite to replace the directory",
        .target.display(), .existing.display(), .columns.len(), plural(.columns.len()), verb_s(.columns.len()),
        diff_lines(.columns)
    )]
    AppendSchema {
        /// The target directory.
        target: PathBuf,
        /// The existing file compared with.
        existing: PathBuf,
        /// Every column that differs.
        columns: Vec<ColumnDiff>,
    },
    /// An option has a value that cannot work.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it cannot work.
        reason: String,
    },
}

impl Error {
    /// Wraps an Arrow error with what was being done.
    pub(crate) fn arrow(context: impl Into<String>, source: ArrowError) -> Self {
        Error::Arrow { context: context.into(), source }
    }

    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

fn verb_s(count: usize) -> &'static str {
    if count == 1 {
        "s"
    } else {
        ""
    }
}

fn diff_lines(columns: &[ColumnDiff]) -> String {
    columns.iter().map(|c| format!("\n  - {c}")).collect()
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn column_suffix(column: &Option<(usize, String)>) -> String {
    match column {
        Some((index, name)) => format!(", column {index} (`{name}`)"),
        None => String::new(),
    }
}

fn row_suffix(row: &Option<usize>) -> String {
    match row {
        Some(row) => format!(", row {row}"),
        None => String::new(),
    }
}

fn field_suffix(field: &Option<String>) -> String {
    match field {
        Some(field) => format!(", field `{field}`"),
        None => String::new(),
    }
}

fn line_suffix(line: &Option<u64>) -> String {
    match line {
        Some(line) => format!(", line {line}"),
        None => String::new(),
    }
}

/// The report of a schema check: which schema was expected, where the data came from, and every
/// column that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaMismatch {
    /// The schema type's name (`Orders`), or `schema` for an untyped expectation.
    pub expected: String,
    /// Where the data came from (a file), when known.
    pub source: Option<PathBuf>,
    /// Every column that differs, in the expected schema's order, then extra columns.
    pub columns: Vec<ColumnDiff>,
}

impl fmt::Display for SchemaMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.columns.len();
        write!(f, "data does not match schema `{}`", self.expected)?;
        if let Some(source) = &self.source {
            write!(f, " in `{}`", source.display())?;
        }
        write!(f, ": {count} column{} differ{}", if count == 1 { "" } else { "s" }, if count == 1 { "s" } else { "" })?;
        for column in &self.columns {
            write!(f, "\n  - {column}")?;
        }
        Ok(())
    }
}

/// One column that differs between the expected and the actual schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnDiff {
    /// The expected column is absent.
    Missing {
        /// Column name.
        name: String,
        /// Its expected type.
        data_type: DataType,
    },
    /// The data has a column the schema does not.
    Extra {
        /// Column name.
        name: String,
        /// Its type in the data.
        data_type: DataType,
    },
    /// The column exists with another type.
    WrongType {
        /// Column name.
        name: String,
        /// The schema's type.
        expected: DataType,
        /// The data's type.
        actual: DataType,
    },
    /// The column may hold nulls but the schema says it may not.
    Nullable {
        /// Column name.
        name: String,
    },
}

impl fmt::Display for ColumnDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnDiff::Missing { name, data_type } => write!(f, "missing column `{name}` ({data_type})"),
            ColumnDiff::Extra { name, data_type } => write!(f, "extra column `{name}` ({data_type})"),
            ColumnDiff::WrongType { name, expected, actual } => {
                write!(f, "column `{name}` has type {actual}, expected {expected}")
            }
            ColumnDiff::Nullable { name } => write!(f, "column `{name}` is nullable, expected non-nullable"),
        }
    }
}
