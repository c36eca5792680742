//! [`RunReport`]: everything about one run, as data that serializes to versioned JSON.
//!
//! The JSON form is described by `setl-report/schema/run-report.v2.schema.json` (JSON Schema
//! 2020-12). Times are seconds as floats; offsets (`*_s` fields named `start_s`, `end_s`,
//! `at_s`) count from the pipeline's start. A reader checks [`RunReport::schema_version`]
//! first: a change that removes or renames a field bumps it, adding an optional field does not.

use serde::{Deserialize, Serialize};

/// The version of the JSON form written by this crate.
pub const SCHEMA_VERSION: u32 = 2;

/// The most worker threads a report may say its run had.
const MAX_THREADS: usize = 1 << 16;

/// The most stages a report may say its pipeline had: far more than any pipeline declares (empty
/// stages included), far less than a corrupted count such as `1e15`.
const MAX_STAGES: usize = 1 << 20;

/// The JSON Schema of the report, as committed under `setl-report/schema/`.
pub const JSON_SCHEMA: &str = include_str!("../schema/run-report.v2.schema.json");

/// Everything about one run of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The version of this JSON form ([`SCHEMA_VERSION`] when written by this crate).
    pub schema_version: u32,
    /// The setl-report version that wrote it.
    pub setl_version: String,
    /// When the run started, in seconds since the Unix epoch (absent when unknown).
    pub started_at_unix_s: Option<f64>,
    /// The run's wall time.
    pub elapsed_s: f64,
    /// Whether every factory succeeded.
    pub ok: bool,
    /// The failure, when the run failed.
    pub error: Option<RunError>,
    /// The number of worker threads of the pool.
    pub threads: usize,
    /// Whether the run used SETL's stage barriers.
    pub stage_barrier: bool,
    /// The pipeline's resolved graph.
    pub graph: Graph,
    /// The threads that emitted events: the calling thread (`index` absent) and the workers.
    pub workers: Vec<Worker>,
    /// One entry per factory, in declaration order (the same order as `graph.factories`).
    pub factories: Vec<FactoryRun>,
    /// Every delivery handed to a consumer, in the order they happened.
    pub deliveries: Vec<DeliveryRun>,
    /// The chain of dependent factories with the longest total time.
    pub critical_path: CriticalPath,
    /// Samples of memory over the run (process RSS and the bytes of measured outputs held).
    pub memory: Vec<MemorySample>,
    /// What the run's value store did.
    pub store: StoreStats,
    /// Cache statistics, when the pipeline has a cache that reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
    /// What the cache did to outputs, in order (absent from the JSON when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_events: Vec<CacheEvent>,
}

/// Something the cache did to an output during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEvent {
    /// When, from the pipeline's start.
    pub at_s: f64,
    /// What happened.
    pub kind: CacheEventKind,
    /// The producing factory's index.
    pub factory: usize,
    /// The consumer that needed a reloaded value.
    pub consumer: Option<usize>,
    /// The bytes involved.
    pub bytes: u64,
    /// The worker it happened on.
    pub thread: Option<usize>,
}

/// What the cache did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheEventKind {
    /// A persisted lazy output was computed once for all its consumers.
    Materialized,
    /// An output was written to a spill file and left memory.
    Spilled,
    /// A spilled output was read back for a consumer.
    Reloaded,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The factory that failed, when a factory failed (not for validation errors).
    pub factory: Option<String>,
    /// The phase that failed.
    pub phase: Option<String>,
    /// The error's message.
    pub message: String,
}

/// A pipeline's factories and who feeds whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Graph {
    /// The factories, in declaration order.
    pub factories: Vec<GraphNode>,
    /// The pipeline inputs given with `set_input`.
    pub external_inputs: Vec<GraphExternal>,
    /// The number of stages.
    pub stages: usize,
}

/// A factory in a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The factory's name.
    pub name: String,
    /// The module that declares it.
    pub module: String,
    /// The stage it was added in.
    pub stage: usize,
    /// Its output type.
    pub output: String,
    /// Its output's delivery id (`""` = none).
    pub output_id: String,
    /// Its inputs, in field order.
    pub inputs: Vec<GraphInput>,
}

/// An input slot in a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphInput {
    /// The `Delivery` field.
    pub field: String,
    /// The payload type.
    pub payload: String,
    /// The delivery id asked for (`""` = none).
    pub id: String,
    /// Where the value comes from; absent when unresolved or an empty optional input.
    pub source: Option<Source>,
}

/// Where an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "index", rename_all = "snake_case")]
pub enum Source {
    /// The factory at this index of `graph.factories`.
    Factory(usize),
    /// The pipeline input at this index of `graph.external_inputs`.
    External(usize),
}

/// A pipeline input in a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphExternal {
    /// Its type.
    pub payload: String,
    /// Its delivery id (`""` = none).
    pub id: String,
}

impl From<&setl_core::PipelineGraph> for Graph {
    fn from(graph: &setl_core::PipelineGraph) -> Self {
        Graph {
            factories: graph
                .factories
                .iter()
                .map(|factory| GraphNode {
                    name: factory.name.clone(),
                    module: factory.module.clone(),
                    stage: factory.stage,
                    output: factory.output.clone(),
                    output_id: factory.output_id.clone(),
                    inputs: factory
                        .inputs
                        .iter()
                        .map(|input| GraphInput {
                            field: input.field.clone(),
                            payload: input.payload.clone(),
                            id: input.id.clone(),
                            source: input.source.map(|source| match source {
                                setl_core::GraphSource::FactoryOutput(index) => Source::Factory(index),
                                setl_core::GraphSource::ExternalInput(index) => Source::External(index),
                            }),
                        })
                        .collect(),
                })
                .collect(),
            external_inputs: graph
                .external_inputs
                .iter()
                .map(|input| GraphExternal { payload: input.payload.clone(), id: input.id.clone() })
                .collect(),
            stages: graph.stages,
        }
    }
}

impl Graph {
    /// The edges producer → consumer between factories, in consumer-then-field order.
    pub fn factory_edges(&self) -> Vec<(usize, usize, &str)> {
        let mut edges = Vec::new();
        for (consumer, node) in self.factories.iter().enumerate() {
            for input in &node.inputs {
                if let Some(Source::Factory(producer)) = input.source {
                    edges.push((producer, consumer, input.field.as_str()));
                }
            }
        }
        edges
    }
}

/// A thread that took part in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    /// The Rayon worker index; absent for the thread that called `run()`.
    pub index: Option<usize>,
    /// The thread's name (`setl-worker-N` for the pool's threads).
    pub name: String,
}

/// How a factory's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// All its phases ran and its output was handed on.
    Finished,
    /// A phase returned an error or panicked.
    Failed,
    /// It never started (an earlier failure stopped the run).
    NotStarted,
}

/// One factory in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactoryRun {
    /// Its index in declaration order.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its stage.
    pub stage: usize,
    /// How it ended.
    pub status: Status,
    /// How many times it started (1 in a correct run; a report check flags anything else).
    pub starts: usize,
    /// The Rayon worker it ran on.
    pub thread: Option<usize>,
    /// That worker's name.
    pub thread_name: Option<String>,
    /// When it started, from the pipeline's start.
    pub start_s: Option<f64>,
    /// When it finished or failed, from the pipeline's start.
    pub end_s: Option<f64>,
    /// Its wall time (includes injecting inputs and `get`).
    pub total_s: Option<f64>,
    /// The phases that ran, in the order they ran.
    pub phases: Vec<PhaseRun>,
    /// The phases that were skipped (`write` of a non-writable factory or stage).
    pub skipped: Vec<String>,
    /// The size of its output, when a measure knows its type.
    pub output: Option<OutputSize>,
    /// When the store released its output after the last consumer took it.
    pub released_s: Option<f64>,
    /// Whether it is on the critical path.
    pub critical: bool,
    /// Work of the plans it defined, wherever they executed (a reader's scan run inside a
    /// consumer's query). Version 2; empty in older reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executed: Vec<ExecutedRun>,
}

/// Work of one factory's part of one executed plan (see `setl_core::ExecutedWork`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutedRun {
    /// The factory phase that defined it, as `Factory.phase`.
    pub defined_in: String,
    /// The factory phase during which it executed, as `Factory.phase`; `None` outside the
    /// run's phases.
    pub executed_in: Option<String>,
    /// What ran: a query, a scan, a shared read.
    pub what: String,
    /// How the work was shared, when it was.
    pub shared: Option<String>,
    /// When the execution started, from the pipeline's start.
    pub start_s: f64,
    /// The execution's wall time (of the whole plan it was part of).
    pub elapsed_s: f64,
    /// CPU time of this factory's operators, over all partitions.
    pub compute_s: f64,
    /// Rows this factory's part produced.
    pub rows: u64,
    /// Bytes its operators spilled.
    pub spilled_bytes: u64,
    /// The most memory its operators held reserved at once in the engine's memory pool.
    pub peak_memory_bytes: u64,
    /// The Rayon worker that waited for the execution.
    pub thread: Option<usize>,
    /// Its operators, depth first.
    pub operators: Vec<OperatorRun>,
}

/// One operator of an executed plan, with its metrics summed over partitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorRun {
    /// Its depth in the factory's part of the plan (0 for the top).
    pub depth: usize,
    /// The operator, as one line of `EXPLAIN`.
    pub name: String,
    /// CPU time it spent (its children's not included).
    pub compute_s: f64,
    /// Rows it produced.
    pub rows: u64,
    /// Bytes it spilled.
    pub spilled_bytes: u64,
    /// The most memory it reserved, where it reports it.
    pub peak_memory_bytes: u64,
}

impl From<&setl_core::ExecutedWork> for ExecutedRun {
    fn from(work: &setl_core::ExecutedWork) -> Self {
        ExecutedRun {
            defined_in: work.defined_in.to_string(),
            executed_in: work.executed_in.as_ref().map(ToString::to_string),
            what: work.what.clone(),
            shared: work.shared.clone(),
            start_s: work.start.as_secs_f64(),
            elapsed_s: work.elapsed.as_secs_f64(),
            compute_s: work.compute.as_secs_f64(),
            rows: work.rows,
            spilled_bytes: work.spilled_bytes,
            peak_memory_bytes: work.peak_memory,
            thread: work.thread,
            operators: work
                .operators
                .iter()
                .map(|operator| OperatorRun {
                    depth: operator.depth,
                    name: operator.name.clone(),
                    compute_s: operator.compute.as_secs_f64(),
                    rows: operator.rows,
                    spilled_bytes: operator.spilled_bytes,
                    peak_memory_bytes: operator.peak_memory,
                })
                .collect(),
        }
    }
}

impl FactoryRun {
    /// The time of `phase` (`"read"`, `"process"`, `"write"`), if it ran.
    pub fn phase_s(&self, phase: &str) -> Option<f64> {
        self.phases.iter().find(|run| run.phase == phase).map(|run| run.elapsed_s)
    }
}

/// One phase of one factory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRun {
    /// `read`, `process` or `write`.
    pub phase: String,
    /// When it started, from the pipeline's start.
    pub start_s: f64,
    /// How long it ran.
    pub elapsed_s: f64,
    /// Whether it returned `Ok`.
    pub ok: bool,
}

/// The size of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OutputSize {
    /// Rows, for tabular outputs.
    pub rows: Option<u64>,
    /// Bytes held in memory.
    pub bytes: Option<u64>,
}

/// A delivery handed to a consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRun {
    /// The producing factory's index, absent for a pipeline input.
    pub producer: Option<usize>,
    /// The consuming factory's index.
    pub consumer: usize,
    /// The consumer's field.
    pub field: String,
    /// When it was handed over, from the pipeline's start.
    pub at_s: f64,
    /// The worker it happened on (the consumer's).
    pub thread: Option<usize>,
}

/// The chain of dependent factories whose times add up to the most: no run on any number of
/// threads can be shorter than its `elapsed_s` (with these factory times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CriticalPath {
    /// The factories' indices, producer first.
    pub factories: Vec<usize>,
    /// The sum of their wall times.
    pub elapsed_s: f64,
}

/// Memory at one moment of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    /// When, from the pipeline's start.
    pub at_s: f64,
    /// The process's resident set size, where the platform tells it (Linux).
    pub rss_bytes: Option<u64>,
    /// The bytes of measured outputs the store held then.
    pub outputs_bytes: Option<u64>,
}

/// What the run's value store did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoreStats {
    /// Outputs released after their last consumer took them.
    pub outputs_released: u64,
    /// The most bytes of measured outputs held at once (absent when no output was measured).
    pub peak_output_bytes: Option<u64>,
}

/// Statistics of the cache of intermediates (setl-core's value store), when it reports them.
/// Bytes count only values whose size the store knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CacheStats {
    /// The memory budget the run had, if any.
    pub budget: Option<u64>,
    /// Bytes held in memory at the end of the run.
    pub bytes_held: u64,
    /// The most bytes held at once.
    pub peak_bytes: u64,
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
    /// Spill files deleted during the run (after their last consumer).
    pub spill_files_deleted: u64,
    /// Values read back from spill files.
    pub reloads: u64,
    /// Bytes read back from spill files.
    pub reloaded_bytes: u64,
    /// Outputs released after their last consumer.
    pub releases: u64,
    /// Outputs materialized once because they were persisted.
    pub materializations: u64,
    /// Runs of lazy recipes, over every lazy output.
    pub lazy_runs: u64,
    /// Runs of lazy recipes beyond the first per lazy output: work a cache would have saved.
    pub lazy_recomputations: u64,
}

impl From<&setl_core::CacheStats> for CacheStats {
    fn from(stats: &setl_core::CacheStats) -> Self {
        CacheStats {
            budget: stats.budget,
            bytes_held: stats.bytes_held,
            peak_bytes: stats.peak_bytes,
            spilled_bytes: stats.spilled_bytes,
            spill_files: stats.spill_files,
            spill_files_deleted: stats.spill_files_deleted,
            reloads: stats.reloads,
            reloaded_bytes: stats.reloaded_bytes,
            releases: stats.releases,
            materializations: stats.materializations,
            lazy_runs: stats.lazy_runs,
            lazy_recomputations: stats.lazy_recomputations,
        }
    }
}

impl RunReport {
    /// The run of the factory named `name`.
    pub fn factory(&self, name: &str) -> Option<&FactoryRun> {
        self.factories.iter().find(|factory| factory.name == name)
    }

    /// Parses a report from its JSON form.
    ///
    /// # Errors
    ///
    /// When the text is not JSON of this form, or its `schema_version` is newer than this
    /// crate's (the message says which).
    pub fn from_json(text: &str) -> Result<Self, ReportError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(ReportError::Json)?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(version) if version > u64::from(SCHEMA_VERSION) => {
                return Err(ReportError::Version { found: version, supported: SCHEMA_VERSION })
            }
            Some(_) => {}
            None => return Err(ReportError::Version { found: 0, supported: SCHEMA_VERSION }),
        }
        let report: RunReport = serde_json::from_value(value).map_err(ReportError::Json)?;
        report.validate()?;
        Ok(report)
    }

    /// Checks what the JSON schema cannot: every index refers to an existing factory, stage,
    /// pipeline input or worker thread, and every time is a finite, non-negative number. A report
    /// this crate wrote always passes; a hand-edited or damaged one fails here, rather than
    /// making a renderer panic or loop.
    ///
    /// # Errors
    ///
    /// [`ReportError::Invalid`] naming the first bad field by its JSON path, with its value.
    pub fn validate(&self) -> Result<(), ReportError> {
        let invalid = |path: String, value: String, reason: String| Err(ReportError::Invalid { path, value, reason });
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return invalid(
                "schema_version".into(),
                self.schema_version.to_string(),
                format!("this setl-report reads versions 1 to {SCHEMA_VERSION}"),
            );
        }
        let time = |path: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                invalid(path.to_owned(), value.to_string(), "expected a finite, non-negative number of seconds".into())
            }
        };
        let optional_time = |path: &str, value: Option<f64>| value.map_or(Ok(()), |value| time(path, value));
        let graph_factories = self.graph.factories.len();
        let factories = self.factories.len();
        let index = |path: String, value: usize, count: usize, what: &str| {
            if value < count {
                Ok(())
            } else {
                invalid(path, value.to_string(), format!("not the index of {what} (the report has {count})"))
            }
        };
        let thread = |path: String, value: Option<usize>| match value {
            Some(value) => index(path, value, self.threads, "a worker thread"),
            None => Ok(()),
        };
        time("elapsed_s", self.elapsed_s)?;
        optional_time("started_at_unix_s", self.started_at_unix_s)?;
        if self.threads == 0 || self.threads > MAX_THREADS {
            return invalid("threads".into(), self.threads.to_string(), format!("expected 1 to {MAX_THREADS} threads"));
        }
        // Stages without factories are possible (empty `Stage`s), so the count is not bounded by
        // the factories; renderers walk only the stages that hold one.
        if self.graph.stages > MAX_STAGES {
            return invalid(
                "graph.stages".into(),
                self.graph.stages.to_string(),
                format!("expected at most {MAX_STAGES} stages"),
            );
        }
        for (at, node) in self.graph.factories.iter().enumerate() {
            index(format!("graph.factories[{at}].stage"), node.stage, self.graph.stages, "a stage")?;
            for (slot, input) in node.inputs.iter().enumerate() {
                let path = format!("graph.factories[{at}].inputs[{slot}].source.index");
                match input.source {
                    Some(Source::Factory(producer)) => index(path, producer, graph_factories, "a factory")?,
                    Some(Source::External(input)) => {
                        index(path, input, self.graph.external_inputs.len(), "a pipeline input")?
                    }
                    None => {}
                }
            }
        }
        for (at, worker) in self.workers.iter().enumerate() {
            thread(format!("workers[{at}].index"), worker.index)?;
        }
        for (at, factory) in self.factories.iter().enumerate() {
            index(format!("factories[{at}].index"), factory.index, factories, "a factory")?;
            index(format!("factories[{at}].stage"), factory.stage, self.graph.stages.max(1), "a stage")?;
            thread(format!("factories[{at}].thread"), factory.thread)?;
            optional_time(&format!("factories[{at}].start_s"), factory.start_s)?;
            optional_time(&format!("factories[{at}].end_s"), factory.end_s)?;
            optional_time(&format!("factories[{at}].total_s"), factory.total_s)?;
            optional_time(&format!("factories[{at}].released_s"), factory.released_s)?;
            for (number, phase) in factory.phases.iter().enumerate() {
                time(&format!("factories[{at}].phases[{number}].start_s"), phase.start_s)?;
                time(&format!("factories[{at}].phases[{number}].elapsed_s"), phase.elapsed_s)?;
            }
        }
        for (at, delivery) in self.deliveries.iter().enumerate() {
            if let Some(producer) = delivery.producer {
                index(format!("deliveries[{at}].producer"), producer, factories, "a factory")?;
            }
            index(format!("deliveries[{at}].consumer"), delivery.consumer, factories, "a factory")?;
            time(&format!("deliveries[{at}].at_s"), delivery.at_s)?;
            thread(format!("deliveries[{at}].thread"), delivery.thread)?;
        }
        for (at, &factory) in self.critical_path.factories.iter().enumerate() {
            index(format!("critical_path.factories[{at}]"), factory, factories, "a factory")?;
        }
        time("critical_path.elapsed_s", self.critical_path.elapsed_s)?;
        for (at, sample) in self.memory.iter().enumerate() {
            time(&format!("memory[{at}].at_s"), sample.at_s)?;
        }
        for (at, event) in self.cache_events.iter().enumerate() {
            index(format!("cache_events[{at}].factory"), event.factory, factories, "a factory")?;
            if let Some(consumer) = event.consumer {
                index(format!("cache_events[{at}].consumer"), consumer, factories, "a factory")?;
            }
            time(&format!("cache_events[{at}].at_s"), event.at_s)?;
            thread(format!("cache_events[{at}].thread"), event.thread)?;
        }
        Ok(())
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail; non-finite floats
        // become null, which the schema allows nowhere, so they are never produced.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A report could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReportError {
    /// Not JSON, or not a report of this form; serde_json's message gives line and column.
    Json(serde_json::Error),
    /// The report has no `schema_version`, or a newer one than this crate reads.
    Version {
        /// The version found (0 when absent).
        found: u64,
        /// The newest version this crate reads.
        supported: u32,
    },
    /// The report parsed but a field's value cannot be right: an index that refers to nothing,
    /// a count its own arrays contradict, a time that is not a finite non-negative number.
    Invalid {
        /// The field, as a JSON path (`factories[3].thread`).
        path: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Json(error) => write!(f, "not a setl run report: {error}"),
            ReportError::Version { found: 0, supported } => {
                write!(f, "not a setl run report: no `schema_version` (this version reads up to {supported})")
            }
            ReportError::Version { found, supported } => write!(
                f,
                "run report schema_version {found} is newer than this setl-report reads ({supported}); upgrade setl-report"
            ),
            ReportError::Invalid { path, value, reason } => {
                write!(f, "invalid run report: `{path}` is {value}: {reason}")
            }
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Json(error) => Some(error),
            ReportError::Version { .. } | ReportError::Invalid { .. } => None,
        }
    }
}
