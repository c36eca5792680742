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
//! For a job's last lines, [`summary`] has the compact benchmark table, readable byte counts and
//! the process's CPU time and peak resident memory.
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
//! Public modules are namespaces of their own ([`summary`], [`testing`], `progress`, `bench`);
//! the other modules are private, their items re-exported at the root, so each has one path.
//!
//! - `report`: the report's types and its JSON form.
//! - `recorder`: the observer that records a run and builds the report, and the critical path.
//! - `trace`, `html`, `export`: the Chrome trace, the HTML report and the graph exports, as
//!   methods of [`RunReport`] and [`Graph`].
//! - `compare`: comparing two reports ([`compare()`]).
//! - [`testing`]: assertions for a user's tests.
//! - `progress` (feature `progress`): an indicatif progress bar as an observer.
//! - `bench` (feature `criterion`): bench a pipeline or one factory with criterion.

// Library code needs no `unsafe`; tests that must (a counting allocator) say why with `expect`.
#![forbid(unsafe_code)]

#[cfg(feature = "criterion")]
pub mod bench;
mod compare;
mod export;
mod html;
#[cfg(feature = "progress")]
pub mod progress;
mod recorder;
mod report;
pub mod summary;
pub mod testing;
mod trace;

pub use compare::{compare, CompareOptions, ComparedTime, Comparison};
pub use recorder::{critical_path, run_with_report, RunRecorder};
pub use report::{
    CacheEvent, CacheEventKind, CacheStats, CriticalPath, DeliveryRun, ExecutedRun, FactoryRun, Graph, GraphExternal,
    GraphInput, GraphNode, MemorySample, OperatorRun, OutputSize, PhaseRun, ReportError, RunError, RunReport, Source,
    Status, StoreStats, Worker, JSON_SCHEMA, SCHEMA_VERSION,
};
pub use trace::track_of;

/// Writes `contents` to `path` atomically through [`setl_core::fs::write_atomic`]: an
/// unpredictable temporary file `.setl-<pid>-<random>.tmp`, created exclusively in `path`'s
/// directory, is filled, flushed to disk, renamed over `path`, and the directory flushed. A
/// reader sees the old file or the complete new one; a failed write leaves no file behind.
/// Temporaries of dead processes in that directory are removed first.
///
/// # Errors
///
/// The I/O error, with the path in its message; also when `path` is a directory or a
/// symbolic link, which are never replaced.
pub fn write_file(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    if path.file_name().is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        ));
    }
    let context = |error: std::io::Error| std::io::Error::new(error.kind(), format!("{}: {error}", path.display()));
    let parent = setl_core::fs::parent_of(path);
    // The directory must exist: a report is not written into a directory made by a typo.
    std::fs::metadata(&parent).map_err(context)?;
    setl_core::fs::sweep_dead(&parent).map_err(|e| context(e.into()))?;
    let contents = contents.as_ref();
    setl_core::fs::write_atomic(path, setl_core::fs::WriteMode::Replace, |file| Ok(file.write_all(contents)?))
        .map_err(|e| context(e.into()))
}

#[cfg(test)]
mod tests {
    use super::write_file;

    #[test]
    fn write_file_replaces_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_file(&path, "{}").unwrap();
        write_file(&path, "{\"ok\":true}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"ok\":true}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["report.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn write_file_does_not_follow_a_planted_link_or_use_a_predictable_name() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // The temporary name the old implementation would use, planted as a link.
        let path = dir.path().join("report.html");
        let predictable = dir.path().join(format!(".report.html.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &predictable).unwrap();
        write_file(&path, "<html>").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<html>");
        // A link at the target itself is refused, naming it.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let error = write_file(&path, "evil").unwrap_err();
        assert!(error.to_string().contains("report.html` is a symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn write_file_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_file(dir.path(), "x").unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
    }
}

/// The guide's page "Run reports": its Rust blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide/reports.md")]
pub struct GuideReports;
