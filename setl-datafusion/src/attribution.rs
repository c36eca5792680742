//! The cost of lazy plans, charged to the factories that defined them.
//!
//! A frame's plan usually runs in another factory's phase, fused into its consumer's plan: a
//! reader hands on a scan, a query factory hands on a query, and `Load` collects six of them.
//! Each part of the consumer's plan that a registered frame brought in is marked with a
//! [`DefinedBy`] node, which the physical planner turns into a [`DefinedExec`]: a pass-through
//! node that forwards every optimization (filters, projections, limits, sort and partitioning
//! requests reach the scan below it as if it were not there) and only marks where one
//! factory's operators end and another's begin.
//!
//! The mark also gives the operators below it (down to the next mark) a task context of their
//! own, whose memory pool is the engine's seen through a [`PeakRecordingPool`]: operators
//! reserve memory through the pool of the context they are given, also in the tasks DataFusion
//! spawns, so each factory's part has its own peak of memory reserved in DataFusion's pool.
//!
//! After an execution, when the running pipeline records attributed work
//! ([`setl_core::attribution_wanted`]), the executed plan's operators are walked with their
//! DataFusion metrics: each operator belongs to the nearest mark above it (the plan a frame
//! runs is marked at its root too), and each factory's part becomes one
//! [`setl_core::Attribution`]. A shared source's read (run once for a group of queries) is
//! charged once, to the factory that defined it, and says how it was shared; each consumer
//! keeps its own operators.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, Statistics};
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryPool, PeakRecordingPool};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricValue, MetricsSet, Time};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use setl_core::{Attribution, FactoryPhase, OperatorMetrics, Phase};

/// The factory phase that defined a part of a plan, and what that part is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Hash)]
pub(crate) struct Definer {
    factory: String,
    phase: Phase,
    /// The frame's label: "query `q1`", "CSV scan defined in ...".
    what: String,
}

impl Definer {
    /// The factory phase running on this thread, as the definer of `what`; `None` outside a
    /// pipeline's phases.
    pub(crate) fn here(what: &str) -> Option<Self> {
        setl_core::running().map(|running| Definer {
            factory: running.factory.to_string(),
            phase: running.phase,
            what: what.to_owned(),
        })
    }

    /// The factory's name.
    pub(crate) fn factory(&self) -> &str {
        &self.factory
    }

    fn phase(&self) -> FactoryPhase {
        FactoryPhase { factory: self.factory.clone(), phase: self.phase }
    }
}

/// `plan`, marked as defined by `definer` (the logical node the physical planner turns into a
/// [`DefinedExec`]).
pub(crate) fn mark(plan: LogicalPlan, definer: Definer) -> LogicalPlan {
    LogicalPlan::Extension(Extension { node: Arc::new(DefinedBy { definer, input: plan }) })
}

/// The logical mark: its input, unchanged, defined by `definer`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Hash)]
struct DefinedBy {
    definer: Definer,
    input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for DefinedBy {
    fn name(&self) -> &str {
        "DefinedBy"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DefinedBy: {}.{} ({})", self.definer.factory, self.definer.phase.as_str(), self.definer.what)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        match inputs.pop() {
            Some(input) if inputs.is_empty() => Ok(DefinedBy { definer: self.definer.clone(), input }),
            _ => Err(datafusion::error::DataFusionError::Internal("DefinedBy takes one input".into())),
        }
    }

    /// Every column the parent needs, from the input at the same position: projections reach
    /// the scan below.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![output_columns.to_vec()])
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }
}

/// The query planner of every engine session: DataFusion's, which also plans [`DefinedBy`].
#[derive(Debug)]
pub(crate) struct MarkingQueryPlanner;

#[async_trait]
impl QueryPlanner for MarkingQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(MarkPlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

struct MarkPlanner;

#[async_trait]
impl ExtensionPlanner for MarkPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn datafusion::catalog::Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(mark) = node.as_any().downcast_ref::<DefinedBy>() else { return Ok(None) };
        match physical_inputs {
            [input] => Ok(Some(DefinedExec::over_plan(
                mark.definer.clone(),
                input.clone(),
                &session.runtime_env().memory_pool,
            ))),
            _ => Err(datafusion::error::DataFusionError::Internal("DefinedBy takes one input".into())),
        }
    }
}

/// The physical mark: executes its input as is, timing its polls (a file scan reports no CPU
/// time of its own, see [`operator_metrics`]) and recording what the input reserves in the
/// memory pool. Its properties are the input's, and every optimizer request goes through it to
/// the input.
#[derive(Debug, Clone)]
pub(crate) struct DefinedExec {
    definer: Definer,
    input: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
    memory: Arc<PartMemory>,
}

impl DefinedExec {
    /// `input` marked as defined by `definer`; `pool` is the engine's memory pool (never a
    /// mark's view of it, so that a part's peak leaves out the parts marked below it).
    pub(crate) fn over_plan(
        definer: Definer,
        input: Arc<dyn ExecutionPlan>,
        pool: &Arc<dyn MemoryPool>,
    ) -> Arc<dyn ExecutionPlan> {
        let memory =
            Arc::new(PartMemory { pool: Arc::new(PeakRecordingPool::new(pool.clone())), context: OnceLock::new() });
        Arc::new(DefinedExec { definer, input, metrics: ExecutionPlanMetricsSet::new(), memory })
    }

    /// `plan` marked at its root when a factory phase defined it (the plan a frame runs, a
    /// shared source's plan), else as is.
    pub(crate) fn over_root(
        definer: Option<&Definer>,
        plan: Arc<dyn ExecutionPlan>,
        pool: &Arc<dyn MemoryPool>,
    ) -> Arc<dyn ExecutionPlan> {
        match definer {
            Some(definer) => DefinedExec::over_plan(definer.clone(), plan, pool),
            None => plan,
        }
    }

    /// Time spent polling the input, over all partitions (everything below that runs inside
    /// those polls).
    fn poll_time(&self) -> Duration {
        Duration::from_nanos(self.metrics.clone_inner().elapsed_compute().unwrap_or(0) as u64)
    }

    /// This mark over another input (after an optimizer rewrote it): the same part.
    fn over(&self, input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(DefinedExec {
            definer: self.definer.clone(),
            input,
            metrics: ExecutionPlanMetricsSet::new(),
            memory: self.memory.clone(),
        })
    }
}

/// The memory pool one marked part reserves through.
#[derive(Debug)]
struct PartMemory {
    /// The engine's pool, recording the part's peak.
    pool: Arc<PeakRecordingPool>,
    /// The task context given to the part's operators: the first one the mark was given, with
    /// `pool` (the same for every partition).
    context: OnceLock<Arc<TaskContext>>,
}

impl PartMemory {
    fn context(&self, given: &TaskContext) -> Arc<TaskContext> {
        let context = self.context.get_or_init(|| {
            let pool: Arc<dyn MemoryPool> = self.pool.clone();
            let runtime = RuntimeEnv { memory_pool: pool, ..given.runtime_env().as_ref().clone() };
            Arc::new(TaskContext::new(
                given.task_id(),
                given.session_id(),
                given.session_config().clone(),
                given.scalar_functions().clone(),
                given.higher_order_functions().clone(),
                given.aggregate_functions().clone(),
                given.window_functions().clone(),
                Arc::new(runtime),
            ))
        });
        context.clone()
    }

    /// The most the part's operators held reserved at once.
    fn peak(&self) -> usize {
        self.pool.max_reserved()
    }
}

impl DisplayAs for DefinedExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DefinedExec: {}.{} ({})", self.definer.factory, self.definer.phase.as_str(), self.definer.what)
    }
}

impl ExecutionPlan for DefinedExec {
    fn name(&self) -> &str {
        "DefinedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(self.over(input)),
            _ => Err(datafusion::error::DataFusionError::Internal("DefinedExec takes one child".into())),
        }
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self.input.repartitioned(target_partitions, config)?.map(|input| self.over(input)))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let time = MetricBuilder::new(&self.metrics).elapsed_compute(partition);
        Ok(timed(self.input.execute(partition, self.memory.context(&context))?, time))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        match input_stats.first() {
            Some(statistics) => Ok(statistics.clone()),
            None => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn try_swapping_with_projection(&self, projection: &ProjectionExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self.input.try_swapping_with_projection(projection)?.map(|input| self.over(input)))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

/// `stream`, with the time spent in its polls added to `time`.
fn timed(stream: SendableRecordBatchStream, time: Time) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let mut stream = stream;
    let polled = futures::stream::poll_fn(move |cx| {
        let _timer = time.timer();
        stream.poll_next_unpin(cx)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, polled))
}

/// One execution, as [`charge`] reports it.
pub(crate) struct Execution<'a> {
    /// The executed plan, with its metrics (marked at its root by the frame that ran, unless
    /// that frame was made outside a pipeline).
    pub(crate) plan: &'a Arc<dyn ExecutionPlan>,
    /// How the work was shared, for a shared source's read.
    pub(crate) shared: Option<String>,
    pub(crate) started: Instant,
    pub(crate) elapsed: Duration,
}

/// Charges each factory's part of `execution` to it (see the module docs). Plans of shared
/// sources read by the plan are not walked: their read is charged once, on its own.
pub(crate) fn charge(execution: &Execution<'_>) {
    let mut parts: Vec<Part> = Vec::new();
    walk(execution.plan, 0, &mut parts, None, None);
    for part in parts {
        let Some(definer) = part.definer else { continue };
        let compute: Duration = part.operators.iter().map(|operator| operator.compute).sum();
        let rows = part.operators.first().map_or(0, |top| top.rows);
        if compute.is_zero() && rows == 0 && part.peak_memory == 0 {
            continue; // it never ran (another plan of the run failed first)
        }
        let spilled_bytes = part.operators.iter().map(|operator| operator.spilled_bytes).sum();
        setl_core::attribute(Attribution {
            defined_in: definer.phase(),
            what: definer.what.clone(),
            shared: execution.shared.clone(),
            started: execution.started,
            elapsed: execution.elapsed,
            compute,
            rows,
            spilled_bytes,
            peak_memory: part.peak_memory as u64,
            operators: part.operators,
        });
    }
}

/// The operators of one factory's part of a plan.
struct Part {
    /// `None` for the operators above the plan's first mark (of a frame made outside a pipeline).
    definer: Option<Definer>,
    operators: Vec<OperatorMetrics>,
    /// The most its operators held reserved at once in the memory pool.
    peak_memory: usize,
}

/// Adds `node` and what is below it to the part `current` (an index in `parts`, or a new
/// unmarked part when `None`). `polled` is the time spent polling `node`, when the mark above it
/// measured it.
fn walk(
    node: &Arc<dyn ExecutionPlan>,
    depth: usize,
    parts: &mut Vec<Part>,
    current: Option<usize>,
    polled: Option<Duration>,
) {
    if let Some(mark) = node.downcast_ref::<DefinedExec>() {
        parts.push(Part {
            definer: Some(mark.definer.clone()),
            operators: Vec::new(),
            peak_memory: mark.memory.peak(),
        });
        let part = parts.len() - 1;
        walk(&mark.input, 0, parts, Some(part), Some(mark.poll_time()));
        return;
    }
    let part = match current {
        Some(part) => part,
        None => {
            parts.push(Part { definer: None, operators: Vec::new(), peak_memory: 0 });
            parts.len() - 1
        }
    };
    parts[part].operators.push(operator_metrics(node, depth, polled));
    for child in node.children() {
        walk(child, depth + 1, parts, Some(part), None);
    }
}

/// What `node` spent, from its DataFusion metrics summed over partitions. A file scan's own
/// metrics miss its decoding (`elapsed_compute` is absent or tiny, `time_elapsed_scanning_total`
/// includes its parent's time): for a leaf, the time spent polling it is used when the mark or
/// shared read above it measured it (`polled`: its polls are where it decodes), else its
/// `elapsed_compute`, else its `time_elapsed_processing`.
fn operator_metrics(node: &Arc<dyn ExecutionPlan>, depth: usize, polled: Option<Duration>) -> OperatorMetrics {
    let metrics = node.metrics().map(|metrics| metrics.aggregate_by_name());
    let sum =
        |name: &str| metrics.as_ref().and_then(|metrics| metrics.sum_by_name(name)).map_or(0, |value| value.as_usize());
    let compute = polled
        .filter(|_| node.children().is_empty())
        .map(|time| time.as_nanos() as usize)
        .or_else(|| metrics.as_ref().and_then(|metrics| metrics.elapsed_compute()).filter(|nanos| *nanos > 0))
        .unwrap_or_else(|| sum("time_elapsed_processing"));
    let peak_memory = metrics.as_ref().map_or(0, |metrics| {
        metrics
            .iter()
            .filter_map(|metric| match metric.value() {
                MetricValue::PeakMemoryUsage { gauge, .. } => Some(gauge.value()),
                _ => None,
            })
            .sum()
    });
    let name = datafusion::physical_plan::displayable(node.as_ref()).one_line().to_string();
    OperatorMetrics {
        depth,
        name: name.trim_end().to_owned(),
        compute: Duration::from_nanos(compute as u64),
        rows: metrics.as_ref().and_then(|metrics| metrics.output_rows()).unwrap_or(0) as u64,
        spilled_bytes: metrics.as_ref().and_then(|metrics| metrics.spilled_bytes()).unwrap_or(0) as u64,
        peak_memory: peak_memory as u64,
    }
}
