//! Where a frame's data comes from: the files, and the scans that read them, with the factory
//! phase that defined each scan.
//!
//! A scan is usually defined in one factory (a reader) and run in another's query, fused into
//! it. DataFusion's parse errors then name neither: no file, a line counted from the start of
//! the byte range one task parsed, a 0-based column. When a query fails with such an error, the
//! CSV scans it read are read again, one row after another with setl-arrow's reader, to find
//! the first malformed row: its file, its real 1-based line and its column's name, reported
//! under the factory that defined the scan. This costs a second read, up to the bad row, and
//! only when a query failed.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use setl_arrow::io::CsvReader;

use crate::error::SqlError;

/// One file scan, as every frame built on it remembers it.
#[derive(Debug)]
pub(crate) struct ScanOrigin {
    /// What the scan is and where it was defined: "CSV scan defined in `ReadOrders.read`".
    label: String,
    path: PathBuf,
    /// For a CSV scan: a reader with the scan's dialect and the typed schema the scan reads
    /// with, to find the first malformed row when a query over it failed.
    recheck: Option<(CsvReader, SchemaRef)>,
}

impl ScanOrigin {
    /// A scan of `path`, labelled `kind` ("CSV scan") and the factory phase running now.
    pub(crate) fn here(kind: &str, path: PathBuf) -> Self {
        let label = match setl_core::running() {
            Some(running) => format!("{kind} defined in `{}.{}`", running.factory, running.phase.as_str()),
            None => kind.to_owned(),
        };
        ScanOrigin { label, path, recheck: None }
    }

    /// The same scan, read again by `reader` with `schema` to locate a malformed row.
    pub(crate) fn with_recheck(self, reader: CsvReader, schema: SchemaRef) -> Self {
        ScanOrigin { recheck: Some((reader, schema)), ..self }
    }

    /// What the scan is and where it was defined.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The first malformed row of the scan's files, when it is a CSV scan and has one.
    fn first_malformed_row(&self) -> Option<setl_arrow::Error> {
        let (reader, schema) = self.recheck.as_ref()?;
        match reader.clone().with_schema(schema.clone()).stream(&self.path) {
            Ok(mut batches) => batches.find_map(Result::err),
            Err(error) => Some(error),
        }
    }
}

/// The files a frame's data comes from and the scans that read them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) scans: Vec<Arc<ScanOrigin>>,
}

impl Lineage {
    pub(crate) fn of_scan(scan: ScanOrigin) -> Self {
        Lineage { files: vec![scan.path.clone()], scans: vec![Arc::new(scan)] }
    }

    /// Adds what `other` holds and this one does not.
    pub(crate) fn extend(&mut self, other: &Lineage) {
        for file in &other.files {
            if !self.files.contains(file) {
                self.files.push(file.clone());
            }
        }
        for scan in &other.scans {
            if !self.scans.iter().any(|known| Arc::ptr_eq(known, scan)) {
                self.scans.push(scan.clone());
            }
        }
    }

    /// The error of `operation` (a frame's label) failing with `error`: for a parse or cast
    /// error, located at the first malformed row of a CSV scan when one has it.
    pub(crate) fn error(&self, operation: &str, error: DataFusionError) -> SqlError {
        if may_be_malformed_data(&error) {
            for scan in &self.scans {
                if let Some(found) = scan.first_malformed_row() {
                    let files = match &found {
                        setl_arrow::Error::Csv { path, .. } => vec![path.clone()],
                        _ => vec![scan.path.clone()],
                    };
                    return SqlError::new(format!("{} (run by {operation})", scan.label), files, error)
                        .with_detail(found.to_string());
                }
            }
        }
        SqlError::new(operation, self.files.clone(), error)
    }
}

/// Whether `error` is of the kinds a malformed CSV value gives (a parse error while decoding,
/// a failed cast of a value read as text).
fn may_be_malformed_data(error: &DataFusionError) -> bool {
    let of_a_value = |error: &ArrowError| {
        matches!(error, ArrowError::CsvError(_) | ArrowError::ParseError(_) | ArrowError::CastError(_))
    };
    match error {
        DataFusionError::ArrowError(error, _) => of_a_value(error),
        DataFusionError::Shared(error) => may_be_malformed_data(error),
        DataFusionError::Context(_, error) => may_be_malformed_data(error),
        DataFusionError::External(error) => {
            error.downcast_ref::<ArrowError>().is_some_and(of_a_value)
                || error.downcast_ref::<DataFusionError>().is_some_and(may_be_malformed_data)
        }
        _ => false,
    }
}
