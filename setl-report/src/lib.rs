//! Run reports of setl-rs pipelines, built on the core's event stream.
//!
//! Attach a [`RunRecorder`] to a pipeline (or call [`run_with_report`]) and get a
//! [`RunReport`]: every factory's phases with start offsets and threads, output sizes, the
//! deliveries, the critical path, memory over time and the error if the run failed. From it:
//!
//! - JSON with a versioned schema ([`RunReport::to_json`], [`SCHEMA_VERSION`], [`JSON_SCHEMA`]);
//! - a Chrome trace for ui.perfetto.dev and chrome://tracing ([`RunReport::to_chrome_trace`]);
//! - a self-contained HTML report: timeline, graph, sortable table ([`RunReport::to_html`]);
//! - Mermaid flowchart and Graphviz DOT exports ([`Graph::to_mermaid_flowchart`], [`Graph::to_dot`]);
//! - a comparison of two runs that flags regressions ([`compare()`]), also as the `setl-report`
//!   command: `setl-report compare old.json new.json --threshold 10`.
//!
//! ```
//! use setl_core::prelude::*;
//! use setl_report::{run_with_report, RunRecorder};
//!
//! #[factory]
//! #[derive(Default)]
//! struct Numbers { out: Vec<i64> }
//!
//! impl Factory for Numbers {
//!     type Output = Vec<i64>;
//!     fn read(&mut self) -> Result<()> { self.out = (1..=10).collect(); Ok(()) }
//!     fn get(&self) -> Vec<i64> { self.out.clone() }
//! }
//!
//! let setl = Setl::builder().threads(2).build()?;
//! let mut pipeline = setl.new_pipeline();
//! pipeline.add_stage_from_type::<Numbers>();
//! let (result, report) = run_with_report(&mut pipeline, RunRecorder::new());
//! result?;
//! assert!(report.ok);
//! assert!(report.to_html().contains("Numbers"));
//! assert!(report.to_chrome_trace().contains("\"traceEvents\""));
//! # Ok::<(), setl_core::Error>(())
//! ```
//!
//! # Crate layout
//!
//! - [`report`]: the report's types and its JSON form.
//! - [`recorder`]: the observer that records a run and builds the report, and the critical path.
//! - `trace`, `html`, `export`: the Chrome trace, the HTML report and the graph exports, as
//!   methods of [`RunReport`] and [`Graph`].
//! - [`compare`](mod@compare): comparing two reports.
//! - [`testing`]: assertions for a user's tests.
//! - `progress` (feature `progress`): an indicatif progress bar as an observer.
//! - `bench` (feature `criterion`): bench a pipeline or one factory with criterion.

#[cfg(feature = "criterion")]
pub mod bench;
pub mod compare;
mod export;
mod html;
#[cfg(feature = "progress")]
pub mod progress;
pub mod recorder;
pub mod report;
pub mod testing;
mod trace;

pub use compare::{compare, CompareOptions, ComparedTime, Comparison};
pub use recorder::{critical_path, run_with_report, RunRecorder};
pub use report::{
    CacheEvent, CacheEventKind, CacheStats, CriticalPath, DeliveryRun, FactoryRun, Graph, GraphExternal, GraphInput,
    GraphNode, MemorySample, OutputSize, PhaseRun, ReportError, RunError, RunReport, Source, Status, StoreStats,
    Worker, JSON_SCHEMA, SCHEMA_VERSION,
};
pub use trace::track_of;

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so
/// a failed write leaves no partial file behind.
///
/// # Errors
///
/// The I/O error, with the path in its message.
pub fn write_file(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let path = path.as_ref();
    let context = |error: std::io::Error| std::io::Error::new(error.kind(), format!("{}: {error}", path.display()));
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}: not a file path", path.display()))
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = std::fs::write(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(context(error));
    }
    Ok(())
}
