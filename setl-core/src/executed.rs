//! Work a factory defined and something else executed: the cost of lazy plans, charged back to
//! the factory whose code defined them.
//!
//! A factory that hands on a lazy plan (a DataFusion scan or query) reports a few milliseconds:
//! its plan runs later, in a consumer's phase, fused into the consumer's own plan. The engine
//! that executes such a plan knows which factory defined each part of it; after each execution
//! it tells the run with [`attribute`](crate::attribute), and the work appears in the defining factory's
//! [`BenchmarkResult::executed`](crate::BenchmarkResult::executed), on the event stream
//! ([`EventKind::WorkExecuted`](crate::EventKind::WorkExecuted)) and so in run reports, with
//! where and when it ran.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Phase;

/// A factory phase, as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactoryPhase {
    /// The factory's name (`Type` or `Type[id]`).
    pub factory: String,
    /// The phase.
    pub phase: Phase,
}

impl std::fmt::Display for FactoryPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.factory, self.phase.as_str())
    }
}

/// One operator of an executed plan, with what it spent (as DataFusion's `EXPLAIN ANALYZE`
/// shows it, summed over its partitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorMetrics {
    /// Its depth in the tree of the factory's part of the plan (0 for the top).
    pub depth: usize,
    /// The operator, as one line (`HashJoinExec: mode=Partitioned, join_type=Inner, ...`).
    pub name: String,
    /// CPU time it spent, over all its partitions (its children's time not included).
    #[serde(serialize_with = "seconds")]
    pub compute: Duration,
    /// Rows it produced.
    pub rows: u64,
    /// Bytes it wrote to spill files.
    pub spilled_bytes: u64,
    /// The most memory it reserved at once, where the operator reports it.
    pub peak_memory: u64,
}

/// Work of one factory's plan in one execution, as an engine measured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutedWork {
    /// The factory phase whose code defined the work (the `read` that built a scan).
    pub defined_in: FactoryPhase,
    /// The factory phase during which it executed; `None` when it ran outside the run's
    /// phases (after `run()`, by a caller).
    pub executed_in: Option<FactoryPhase>,
    /// What ran: "query `q1`", "CSV scan of lineitem.csv", "shared read of `lineitem`".
    pub what: String,
    /// How the work was shared, when it was: "streamed to 6 queries", "kept whole for 2 later
    /// readers".
    pub shared: Option<String>,
    /// When the execution started, from the pipeline's start.
    #[serde(serialize_with = "seconds")]
    pub start: Duration,
    /// The execution's wall time (of the whole plan it was part of).
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// CPU time this factory's operators spent, over all partitions.
    #[serde(serialize_with = "seconds")]
    pub compute: Duration,
    /// Rows this factory's part of the plan produced.
    pub rows: u64,
    /// Bytes its operators wrote to spill files.
    pub spilled_bytes: u64,
    /// The most memory its operators held reserved at once in the engine's memory pool (what
    /// the pool accounts for: hash tables, sort buffers; not the batches passed on).
    pub peak_memory: u64,
    /// The Rayon worker that waited for the execution.
    pub thread: Option<usize>,
    /// Its operators, depth first.
    pub operators: Vec<OperatorMetrics>,
}

/// What an engine reports of one execution: [`ExecutedWork`] but for what the run fills in
/// (when, relative to the run's start, and where).
#[derive(Debug, Clone)]
pub struct Attribution {
    /// The factory phase that defined the work (as [`running`](crate::running) gave it then).
    pub defined_in: FactoryPhase,
    /// What ran.
    pub what: String,
    /// How it was shared, if it was.
    pub shared: Option<String>,
    /// When the execution started.
    pub started: Instant,
    /// Its wall time.
    pub elapsed: Duration,
    /// CPU time of the factory's operators.
    pub compute: Duration,
    /// Rows its part produced.
    pub rows: u64,
    /// Bytes spilled by its operators.
    pub spilled_bytes: u64,
    /// The most memory its operators held reserved at once in the engine's memory pool.
    pub peak_memory: u64,
    /// Its operators, depth first.
    pub operators: Vec<OperatorMetrics>,
}

/// Durations as seconds in JSON, as the rest of the report.
pub(crate) fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}
