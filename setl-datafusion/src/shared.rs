//! Shared scans: one plan read once and streamed to every query of a group that uses it.
//!
//! Materializing a table that several queries read (`Frame::materialize`) decodes it once but
//! holds all of it at once, and on a big table the first touches of that fresh memory cost about
//! what the decoding saved. A shared frame ([`Frame::shared`](crate::Frame::shared)) is a plan that
//! is never held: when queries that read it run together
//! ([`Frame::collect_all`](crate::Frame::collect_all)), each partition of the plan runs once and
//! every batch it makes goes to every query, which drops it when it has used it.
//!
//! # Pacing
//!
//! A batch stays in memory until every query has taken it. The reader of a partition waits
//! while a query has [`LAG_BATCHES`] batches or more waiting, so that the table is streamed at
//! the pace of the slowest query rather than held. It never waits for a *blocked* query: one
//! that waits on this reader, directly or through other parked readers and the queries they
//! wait for. Such a query cannot take its batches before this reader goes on, so waiting for
//! it would last forever: a self-join that builds its hash table from one scan of a table
//! before it reads the other, a union of the same table read one branch after the other, two
//! queries that read two shared scans in opposite orders. Every change that can block or
//! unblock a query (a query starts waiting, a reader parks) wakes the parked readers, which look
//! again; all of it happens under one lock.
//!
//! # Bounded buffering
//!
//! A blocked query gets its batches buffered, but only up to a bound: the group's
//! [`EngineSettings::shared_buffer_bytes`](crate::EngineSettings::shared_buffer_bytes), for all
//! its shared sources together (a small table's partitions leave their room to a big one's).
//! When the group's batches in memory pass it, the reader that pushes moves the query furthest
//! behind on its partition to disk: the batches it has not taken and every later one go to a
//! spill of its own (DataFusion's spill files, in its disk manager's directories), which it
//! reads in order. Once its query has read that far and the group's buffer is below half the
//! bound, the queue comes back to memory, so that a burst of lag costs a spill of the burst
//! only; it may move to disk again later, each spill read in turn. Results are the same
//! either way. With the disk manager disabled, batches stay in memory.
//!
//! # Readers that do not run together
//!
//! A group that reads a source without all the live queries planned over it (each consumer
//! factory collecting its own query, as in PySetl's layout), or with a single query, keeps what
//! it reads: the source's output, whole, for the readers still to come, which then read it
//! instead of running the plan again. The readers of such a group never wait and never spill,
//! since everything is kept anyway; the data stays until the shared frame is dropped, and
//! [`Engine::shared_kept`](crate::Engine::shared_kept) counts it. A group that holds every
//! such query ([`Frame::collect_all`](crate::Frame::collect_all)) streams and keeps nothing.
//!
//! A query planned outside a group (`frame.dataframe()` run by DataFusion itself) reads the kept
//! output when there is one, else the plan directly, as a lazy scan does.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Statistics;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, SpillMetrics};
use datafusion::physical_plan::spill::spill_pool::{spsc_channel, SpillPoolSink};
use datafusion::physical_plan::spill::SpillManager;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;

use crate::attribution::{DefinedExec, Definer};
use crate::engine::Engine;
use crate::held::HeldGuard;

/// Batches a query may have waiting before the reader waits for it.
pub(crate) const LAG_BATCHES: usize = 4;

/// The plan of a shared frame.
pub(crate) struct SharedSource {
    label: String,
    /// The factory phase that defined the shared frame, charged with its reads.
    definer: Option<Definer>,
    engine: Engine,
    schema: SchemaRef,
    state: Box<SessionState>,
    plan: LogicalPlan,
    /// How many live queries were planned over the source ([`ReaderClaim`]s): the readers it
    /// is known to have.
    readers: AtomicUsize,
    /// The output kept for later readers (module docs), or being read to be kept.
    kept: Mutex<Kept>,
    /// Wakes the scans waiting for a read in progress to be kept.
    kept_changed: tokio::sync::Notify,
}

/// Whether a source's output is kept for later readers.
enum Kept {
    Nothing,
    /// A group is reading it to keep it.
    Reading,
    Data(Arc<KeptData>),
}

/// A source's output, partition by partition, counted in the engine's held bytes while it lives.
struct KeptData {
    partitions: Vec<Vec<RecordBatch>>,
    _held: HeldGuard,
}

impl SharedSource {
    pub(crate) fn new(
        label: String,
        definer: Option<Definer>,
        engine: Engine,
        schema: SchemaRef,
        state: SessionState,
        plan: LogicalPlan,
    ) -> Self {
        SharedSource {
            label,
            definer,
            engine,
            schema,
            state: Box::new(state),
            plan,
            readers: AtomicUsize::new(0),
            kept: Mutex::new(Kept::Nothing),
            kept_changed: tokio::sync::Notify::new(),
        }
    }

    fn lock_kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kept output: at once if there is one, after the read in progress if one is being
    /// kept, `None` if there is none (or the read in progress ended without keeping it).
    async fn kept_output(&self) -> Option<Arc<KeptData>> {
        loop {
            let notified = self.kept_changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so that a change right after cannot be missed.
            notified.as_mut().enable();
            match &*self.lock_kept() {
                Kept::Data(data) => return Some(data.clone()),
                Kept::Nothing => return None,
                Kept::Reading => {}
            }
            notified.await;
        }
    }

    /// A physical plan of the source for one scan. Each scan gets its own: operators keep state
    /// from their one execution (a repartition's channels), so a plan cannot be run twice.
    async fn physical(&self) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.state.create_physical_plan(&self.plan).await?;
        // Marked, for its reads to be charged to the factory that defined it.
        Ok(DefinedExec::over_root(self.definer.as_ref(), plan, &self.state.runtime_env().memory_pool))
    }

    pub(crate) fn state(&self) -> &SessionState {
        &self.state
    }

    pub(crate) fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// A DataFrame that scans the source (in the source's own session).
    pub(crate) fn dataframe(self: &Arc<Self>) -> DataFrame {
        let context = SessionContext::new_with_state((*self.state).clone());
        match context.read_table(self.table()) {
            Ok(frame) => frame,
            Err(error) => unreachable!("scanning a table provider cannot fail to plan: {error}"),
        }
    }

    /// The source as a table, for a consumer's session.
    pub(crate) fn table(self: &Arc<Self>) -> Arc<dyn TableProvider> {
        Arc::new(SharedTable { source: self.clone() })
    }
}

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSource").field("label", &self.label).finish_non_exhaustive()
    }
}

/// A query planned over a shared source, counted among the source's known readers while the
/// query's frame lives.
pub(crate) struct ReaderClaim(Arc<SharedSource>);

impl Drop for ReaderClaim {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for ReaderClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReaderClaim").field(&self.0.label).finish()
    }
}

/// A claim on every shared source that the logical `plan` scans, once per source.
pub(crate) fn claim_readers(plan: &LogicalPlan) -> Vec<ReaderClaim> {
    let mut sources: Vec<Arc<SharedSource>> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source) {
                if let Some(table) = provider.downcast_ref::<SharedTable>() {
                    if !sources.iter().any(|known| Arc::ptr_eq(known, &table.source)) {
                        sources.push(table.source.clone());
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    sources
        .into_iter()
        .map(|source| {
            source.readers.fetch_add(1, Ordering::Relaxed);
            ReaderClaim(source)
        })
        .collect()
}

/// A shared source as a table: each scan of it is a [`SharedScanExec`].
#[derive(Debug)]
struct SharedTable {
    source: Arc<SharedSource>,
}

#[async_trait::async_trait]
impl TableProvider for SharedTable {
    fn schema(&self) -> SchemaRef {
        self.source.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self.source.physical().await?;
        Ok(Arc::new(SharedScanExec::new(self.source.clone(), input, projection.cloned())?))
    }
}

/// One consumer's scan of a shared source: the source's partitions, projected. Armed by a group
/// it reads its batches from the group's broadcast (the group runs the input of one of its scans);
/// unarmed it runs its own input.
pub(crate) struct SharedScanExec {
    source: Arc<SharedSource>,
    /// A physical plan of the source, this node's own (not a child: optimizing the consumer must
    /// not change it, and a group runs it for every consumer).
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
    /// Statistics of the whole output, then of each partition.
    statistics: Vec<Arc<Statistics>>,
    subscription: OnceLock<Subscription>,
    /// The rows this consumer took (its reads are the reader's, charged to the source).
    metrics: ExecutionPlanMetricsSet,
}

/// Where an armed scan reads: its group, its broadcast in the group, its own queues.
#[derive(Clone)]
struct Subscription {
    group: Arc<Group>,
    broadcast: usize,
    node: usize,
}

impl SharedScanExec {
    fn new(source: Arc<SharedSource>, input: Arc<dyn ExecutionPlan>, projection: Option<Vec<usize>>) -> Result<Self> {
        let schema = match &projection {
            Some(indices) => Arc::new(input.schema().project(indices)?),
            None => input.schema(),
        };
        let partitions = input.properties().partitioning.partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let context = StatisticsContext::new();
        let statistics = std::iter::once(None)
            .chain((0..partitions).map(Some))
            .map(|partition| {
                let whole = context.compute(input.as_ref(), &StatisticsArgs::new().with_partition(partition))?;
                Ok(Arc::new(whole.as_ref().clone().project(projection.as_ref())))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SharedScanExec {
            source,
            input,
            projection,
            properties: Arc::new(properties),
            statistics,
            subscription: OnceLock::new(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn partitions(&self) -> usize {
        self.input.properties().partitioning.partition_count()
    }
}

impl fmt::Debug for SharedScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedScanExec")
            .field("source", &self.source.label)
            .field("projection", &self.projection)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for SharedScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedScanExec: {}, partitions={}", self.source.label, self.partitions())?;
        if let Some(projection) = &self.projection {
            let schema = self.input.schema();
            let names: Vec<&str> = projection.iter().map(|&i| schema.field(i).name().as_str()).collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for SharedScanExec {
    fn name(&self) -> &str {
        "SharedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        // A leaf: the same node, so that a group's subscription stays with it.
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.properties.eq_properties.schema().clone();
        let projection = self.projection.clone();
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let project = move |item: Result<RecordBatch>| {
            let item = match &projection {
                Some(indices) => item.and_then(|batch| Ok(batch.project(indices)?)),
                None => item,
            };
            if let Ok(batch) = &item {
                rows.add(batch.num_rows());
            }
            item
        };
        Ok(match self.subscription.get() {
            Some(subscription) => {
                let queue = subscription.group.attach(subscription.broadcast, partition, subscription.node)?;
                Box::pin(RecordBatchStreamAdapter::new(schema, queue.map(project)))
            }
            // Outside a group: the kept output, else a plain scan of the source.
            None => {
                let (source, input) = (self.source.clone(), self.input.clone());
                let batches = futures::stream::once(async move {
                    match source.kept_output().await {
                        Some(kept) if partition < kept.partitions.len() => {
                            let batches = kept.partitions[partition].clone();
                            Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
                        }
                        _ => input.execute(partition, context).map(|stream| stream.boxed()),
                    }
                })
                .map(|stream| match stream {
                    Ok(stream) => stream,
                    Err(error) => futures::stream::once(async move { Err(error) }).boxed(),
                })
                .flatten();
                Box::pin(RecordBatchStreamAdapter::new(schema, batches.map(project)))
            }
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let index = args.partition().map_or(0, |partition| partition + 1);
        self.statistics.get(index).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("SharedScanExec: no partition {index} of {}", self.partitions()))
        })
    }
}

/// The plans behind the shared scans in `plan`, one per shared source, for `Frame::explain`:
/// a shared scan is a leaf of its consumer's plan, its source's plan runs beside it.
pub(crate) fn explain_sources(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut seen: Vec<&Arc<SharedSource>> = Vec::new();
    let mut text = String::new();
    let _ = plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<SharedScanExec>() {
            if !seen.iter().any(|known| Arc::ptr_eq(known, &scan.source)) {
                seen.push(&scan.source);
                let input = datafusion::physical_plan::displayable(scan.input.as_ref()).indent(true);
                text.push_str(&format!(
                    "\nshared source {} (read once for every query of its group):\n",
                    scan.source.label
                ));
                for line in input.to_string().lines() {
                    text.push_str("  ");
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    text
}

/// The output of one plan: its schema and batches.
pub(crate) type Output = (SchemaRef, Vec<RecordBatch>);

/// What ran in [`run_plans`], with its metrics: for [`charge`](crate::attribution::charge).
#[derive(Default)]
pub(crate) struct Ran {
    /// The physical plan of each frame, in order.
    pub(crate) plans: Vec<Arc<dyn ExecutionPlan>>,
    /// The group's reads of shared sources.
    reads: Vec<SharedRead>,
}

impl Ran {
    /// Charges each shared source's read of the run to the factory that defined it, and a
    /// source read outside a group (by a plan that ran alone) likewise.
    pub(crate) fn charge_shared_reads(&self, started: std::time::Instant, elapsed: std::time::Duration) {
        for read in &self.reads {
            crate::attribution::charge(&crate::attribution::Execution {
                plan: &read.input,
                shared: Some(read.how.clone()),
                started,
                elapsed,
            });
        }
        for plan in &self.plans {
            let _ = plan.apply(|node| {
                if let Some(scan) = node.downcast_ref::<SharedScanExec>() {
                    let alone = scan.subscription.get().is_none();
                    let ran =
                        scan.input.metrics().and_then(|metrics| metrics.output_rows()).is_some_and(|rows| rows > 0);
                    if alone && ran {
                        crate::attribution::charge(&crate::attribution::Execution {
                            plan: &scan.input,
                            shared: Some("read on its own (no kept output to read)".to_owned()),
                            started,
                            elapsed,
                        });
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
    }
}

/// Plans and runs `frames` (each with the factory phase that made it) together: each a task on
/// the runtime, every shared scan's partitions read once by a task of their own. Stops at the
/// first failure, with the index of the frame that failed; a panic in a plan is resumed. What
/// ran is returned either way, with the metrics of what it did.
pub(crate) async fn run_plans(
    frames: Vec<(DataFrame, Option<Definer>)>,
) -> (Result<Vec<Output>, (usize, DataFusionError)>, Ran) {
    let mut plans = Vec::with_capacity(frames.len());
    for (index, (frame, definer)) in frames.into_iter().enumerate() {
        let context = Arc::new(frame.task_ctx());
        let plan = match frame.create_physical_plan().await {
            Ok(plan) => DefinedExec::over_root(definer.as_ref(), plan, context.memory_pool()),
            Err(error) => return (Err((index, error)), Ran::default()),
        };
        plans.push((plan, context));
    }
    let physical: Vec<_> = plans.iter().map(|(plan, _)| plan.clone()).collect();
    let armed = match Group::arm(&physical) {
        Ok(armed) => armed,
        Err(error) => return (Err((0, error)), Ran::default()),
    };
    // Dropping a JoinSet aborts its tasks: a failure stops the others, readers included.
    let mut readers = JoinSet::new();
    let mut reads = Vec::new();
    let group = armed.map(|armed| {
        for reader in armed.readers {
            readers.spawn(reader.run());
        }
        reads = armed.reads;
        armed.group
    });
    let mut queries = JoinSet::new();
    for (index, (plan, context)) in plans.into_iter().enumerate() {
        let group = group.clone();
        queries.spawn(async move {
            let schema = plan.schema();
            let batches = datafusion::physical_plan::collect(plan, context).await;
            if let Some(group) = &group {
                group.finish_consumer(index);
            }
            (index, batches.map(|batches| (schema, batches)))
        });
    }
    let mut outputs: Vec<Option<Output>> = (0..physical.len()).map(|_| None).collect();
    let ended = loop {
        // A reader that panicked would leave its queries waiting: its panic ends the run.
        let joined = std::future::poll_fn(|cx| {
            while let Poll::Ready(Some(reader)) = readers.poll_join_next(cx) {
                if let Err(error) = reader {
                    if error.is_panic() {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
            queries.poll_join_next(cx)
        })
        .await;
        match joined {
            None => break Ok(()),
            Some(Ok((index, Ok(output)))) => outputs[index] = Some(output),
            Some(Ok((index, Err(error)))) => break Err(Ended::Failed(index, error)),
            Some(Err(error)) if error.is_panic() => break Err(Ended::Panicked(error.into_panic())),
            Some(Err(error)) => break Err(Ended::Failed(0, DataFusionError::External(Box::new(error)))),
        }
    };
    // Stop what still runs and wait until it is gone, so that no batch stays buffered (or
    // counted as held) after the run returns. After a success, readers are let finish: those
    // of a kept source read to its end for the readers to come, the others end by themselves
    // now that every queue is closed.
    queries.shutdown().await;
    if ended.is_ok() {
        while let Some(reader) = readers.join_next().await {
            if let Err(error) = reader {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    } else {
        readers.shutdown().await;
    }
    // Operators DataFusion spawned may hold the plans, and so the group, a little longer while
    // their tasks are cancelled: what the group buffered goes now.
    if let Some(group) = &group {
        group.release_all();
    }
    let ran = Ran { plans: physical, reads };
    match ended {
        Ok(()) => {
            let outputs =
                outputs.into_iter().map(|output| output.unwrap_or_else(|| unreachable!("every query ended"))).collect();
            (Ok(outputs), ran)
        }
        Err(Ended::Failed(index, error)) => (Err((index, error)), ran),
        Err(Ended::Panicked(payload)) => std::panic::resume_unwind(payload),
    }
}

/// Why a run of plans stopped before every plan ended.
enum Ended {
    Failed(usize, DataFusionError),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Queries that run together, and the shared sources they read.
pub(crate) struct Group {
    state: Mutex<GroupState>,
}

struct GroupState {
    broadcasts: Vec<Broadcast>,
}

/// One shared source in a group: a channel per partition, a queue per consuming scan node.
struct Broadcast {
    /// The consumer query of each scan node.
    consumers: Vec<usize>,
    channels: Vec<Channel>,
}

/// The batches of one partition of a source not yet taken by every scan node.
struct Channel {
    /// Batch `first + i` is `batches[i]`; each with the number of queues that have yet to take it.
    batches: VecDeque<Pending>,
    first: u64,
    queues: Vec<Queue>,
    /// Bytes of `batches`.
    buffered: usize,
    /// Bytes the group's channels may hold together before the queues furthest behind move to
    /// disk.
    buffer_limit: usize,
    finished: bool,
    /// The reader's waker while it is parked.
    reader: Option<Waker>,
    /// Whether the reader is parked, waiting for a lagging query (from when it parks until it
    /// goes on): a query waiting on this channel is then blocked.
    parked: bool,
}

struct Pending {
    item: std::result::Result<RecordBatch, Arc<DataFusionError>>,
    takers: usize,
    bytes: usize,
    _held: Option<HeldGuard>,
}

#[derive(Default)]
struct Queue {
    /// The next batch this queue takes from memory.
    next: u64,
    attached: bool,
    closed: bool,
    /// The query's waker while it waits on this queue (from memory or from its spill).
    waiting: Option<Waker>,
    /// Whether the queue's batches go to disk: it lagged while the group's buffer was full.
    /// Its batches from `next` on are all in its spill, in order, until it comes back to memory.
    spilled: bool,
    /// The reading end of the spill, until the queue's stream takes it.
    spill: Option<SendableRecordBatchStream>,
    /// The error that ends a spilled queue, once its spill is read.
    error: Option<Arc<DataFusionError>>,
}

impl Channel {
    fn new(queues: usize, buffer_limit: usize) -> Self {
        Channel {
            batches: VecDeque::new(),
            first: 0,
            queues: (0..queues).map(|_| Queue::default()).collect(),
            buffered: 0,
            buffer_limit,
            finished: false,
            reader: None,
            parked: false,
        }
    }

    fn end(&self) -> u64 {
        self.first + self.batches.len() as u64
    }

    /// Batches in memory that queue `node` has yet to take.
    fn lag(&self, node: usize) -> u64 {
        self.end() - self.queues[node].next
    }

    /// Forgets the batches every queue has taken.
    fn trim(&mut self) {
        while self.batches.front().is_some_and(|pending| pending.takers == 0) {
            if let Some(pending) = self.batches.pop_front() {
                self.buffered -= pending.bytes;
            }
            self.first += 1;
        }
    }

    /// Gives up queue `node`'s claim on the batches in memory it has not taken (they are its
    /// no longer) and returns them.
    fn release(&mut self, node: usize) -> Vec<std::result::Result<RecordBatch, Arc<DataFusionError>>> {
        let from = (self.queues[node].next - self.first) as usize;
        self.queues[node].next = self.end();
        let released = self
            .batches
            .iter_mut()
            .skip(from)
            .map(|pending| {
                pending.takers -= 1;
                pending.item.clone()
            })
            .collect();
        self.trim();
        released
    }

    /// Closes queue `node`: it takes none of the batches it has not taken yet.
    fn close(&mut self, node: usize) {
        if self.queues[node].closed {
            return;
        }
        if !self.queues[node].spilled {
            self.release(node);
        }
        let queue = &mut self.queues[node];
        queue.closed = true;
        queue.waiting = None;
        queue.spill = None;
    }
}

impl GroupState {
    /// Whether query `consumer` waits on channel `me`, directly or through parked readers and
    /// the queries they wait for: a reader at `me` that waited for it would wait forever. A
    /// query that waits on a reader parked for a query that is busy computing is not blocked:
    /// that query goes on, and so will the reader.
    fn blocked(&self, consumer: usize, me: (usize, usize)) -> bool {
        let mut seen = vec![consumer];
        let mut to_visit = vec![consumer];
        while let Some(query) = to_visit.pop() {
            for (b, broadcast) in self.broadcasts.iter().enumerate() {
                for (p, channel) in broadcast.channels.iter().enumerate() {
                    let waits_here = channel
                        .queues
                        .iter()
                        .zip(&broadcast.consumers)
                        .any(|(queue, owner)| *owner == query && queue.waiting.is_some());
                    if !waits_here {
                        continue;
                    }
                    if (b, p) == me {
                        return true;
                    }
                    if !channel.parked {
                        continue;
                    }
                    // The queries this parked reader may be waiting for.
                    for (node, queue) in channel.queues.iter().enumerate() {
                        let owner = broadcast.consumers[node];
                        if !queue.closed
                            && !queue.spilled
                            && channel.lag(node) >= LAG_BATCHES as u64
                            && !seen.contains(&owner)
                        {
                            seen.push(owner);
                            to_visit.push(owner);
                        }
                    }
                }
            }
        }
        false
    }

    /// The wakers of every parked reader but `except`'s: they look again whether they must
    /// wait, since a query may just have become blocked.
    fn parked_readers(&mut self, except: Option<(usize, usize)>) -> Vec<Waker> {
        let mut wake = Vec::new();
        for (b, broadcast) in self.broadcasts.iter_mut().enumerate() {
            for (p, channel) in broadcast.channels.iter_mut().enumerate() {
                if Some((b, p)) != except {
                    wake.extend(channel.reader.take());
                }
            }
        }
        wake
    }
}

impl Group {
    /// Arms every shared scan in `plans` (one plan per consumer query) and returns the group and
    /// the readers to start, or `None` when no plan reads a shared source.
    pub(crate) fn arm(plans: &[Arc<dyn ExecutionPlan>]) -> Result<Option<Armed>> {
        // The scan nodes of each source (with their consumer query), in plan order; the first
        // node's input is the plan the group runs.
        let mut sources: Vec<Vec<(usize, &SharedScanExec)>> = Vec::new();
        for (consumer, plan) in plans.iter().enumerate() {
            plan.apply(|node| {
                if let Some(scan) = node.downcast_ref::<SharedScanExec>() {
                    match sources.iter_mut().find(|nodes| Arc::ptr_eq(&nodes[0].1.source, &scan.source)) {
                        Some(nodes) => {
                            let partitions = nodes[0].1.partitions();
                            if scan.partitions() != partitions {
                                return Err(DataFusionError::Internal(format!(
                                    "two scans of {} were planned with {} and {partitions} partitions",
                                    scan.source.label,
                                    scan.partitions()
                                )));
                            }
                            nodes.push((consumer, scan))
                        }
                        None => sources.push(vec![(consumer, scan)]),
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        // A source kept, or being read to be kept, is read from what is kept: not armed here. A
        // source this group reads without every live query planned over it is kept (module docs).
        let mut keeping: Vec<bool> = Vec::new();
        sources.retain(|nodes| {
            let source = &nodes[0].1.source;
            let mut kept = source.lock_kept();
            if !matches!(*kept, Kept::Nothing) {
                return false;
            }
            let mut queries: Vec<usize> = nodes.iter().map(|(consumer, _)| *consumer).collect();
            queries.dedup();
            let keep = queries.len() < source.readers.load(Ordering::Relaxed).max(2);
            if keep {
                *kept = Kept::Reading;
            }
            keeping.push(keep);
            true
        });
        if sources.is_empty() {
            return Ok(None);
        }
        let broadcasts = sources
            .iter()
            .zip(&keeping)
            .map(|(nodes, &keep)| {
                // The group's buffer; a kept source is held whole anyway and never spills.
                let limit = if keep { usize::MAX } else { nodes[0].1.source.engine.shared_buffer_bytes() };
                Broadcast {
                    consumers: nodes.iter().map(|(consumer, _)| *consumer).collect(),
                    channels: (0..nodes[0].1.partitions()).map(|_| Channel::new(nodes.len(), limit)).collect(),
                }
            })
            .collect();
        let group = Arc::new(Group { state: Mutex::new(GroupState { broadcasts }) });
        let mut readers = Vec::new();
        let mut reads = Vec::new();
        for (broadcast, (nodes, keep)) in sources.into_iter().zip(keeping).enumerate() {
            let first = nodes[0].1;
            let source = &first.source;
            let mut queries: Vec<usize> = nodes.iter().map(|(consumer, _)| *consumer).collect();
            queries.dedup();
            reads.push(SharedRead {
                input: first.input.clone(),
                how: if keep {
                    format!("read for {} of its readers, kept whole for the others", queries.len())
                } else {
                    format!("read once, streamed to {} queries", queries.len())
                },
            });
            let keep = keep.then(|| {
                Arc::new(KeepRun {
                    source: source.clone(),
                    partitions: Mutex::new((0..first.partitions()).map(|_| None).collect()),
                })
            });
            for (node, (_, scan)) in nodes.iter().enumerate() {
                let subscription = Subscription { group: group.clone(), broadcast, node };
                if scan.subscription.set(subscription).is_err() {
                    return Err(DataFusionError::Internal(format!(
                        "a shared scan of {} was already run in another group",
                        source.label
                    )));
                }
            }
            let metrics = ExecutionPlanMetricsSet::new();
            for partition in 0..first.partitions() {
                let context = Arc::new(TaskContext::from(source.state.as_ref()));
                readers.push(Reader {
                    group: group.clone(),
                    broadcast,
                    partition,
                    input: first.input.clone(),
                    spill: Arc::new(SpillManager::new(
                        context.runtime_env(),
                        SpillMetrics::new(&metrics, partition),
                        first.input.schema(),
                    )),
                    sinks: nodes.iter().map(|_| None).collect(),
                    context,
                    engine: source.engine.clone(),
                    keep: keep.clone(),
                    kept: Vec::new(),
                });
            }
            source.engine.count_shared_read();
        }
        Ok(Some(Armed { group, readers, reads }))
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // Every update leaves the state consistent before it can panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stream of batches of `partition` for scan node `node` of `broadcast`.
    fn attach(self: &Arc<Self>, broadcast: usize, partition: usize, node: usize) -> Result<QueueStream> {
        let mut state = self.lock();
        let channel = state.broadcasts[broadcast]
            .channels
            .get_mut(partition)
            .ok_or_else(|| DataFusionError::Internal(format!("a shared scan has no partition {partition}")))?;
        let queue = &mut channel.queues[node];
        if queue.attached {
            return Err(DataFusionError::Internal(format!(
                "partition {partition} of a shared scan was run twice in one group"
            )));
        }
        queue.attached = true;
        Ok(QueueStream { group: self.clone(), broadcast, partition, node, spill: None, done: false })
    }

    /// Drops every buffered batch and closes every queue: the run is over.
    fn release_all(&self) {
        let mut state = self.lock();
        for channel in state.broadcasts.iter_mut().flat_map(|broadcast| broadcast.channels.iter_mut()) {
            for queue in &mut channel.queues {
                queue.closed = true;
                queue.waiting = None;
                queue.spill = None;
            }
            channel.first = channel.end();
            channel.batches.clear();
            channel.buffered = 0;
        }
    }

    /// Closes every queue of `consumer` (its query ended, or never ran some partition).
    pub(crate) fn finish_consumer(&self, consumer: usize) {
        let mut wake = Vec::new();
        let mut state = self.lock();
        for broadcast in state.broadcasts.iter_mut() {
            for (node, _) in broadcast.consumers.iter().enumerate().filter(|(_, c)| **c == consumer) {
                for channel in &mut broadcast.channels {
                    channel.close(node);
                    wake.extend(channel.reader.take());
                }
            }
        }
        drop(state);
        wake.into_iter().for_each(Waker::wake);
    }
}

/// A group ready to run: the group, the readers to start, and what each source's read is.
pub(crate) struct Armed {
    group: Arc<Group>,
    readers: Vec<Reader>,
    reads: Vec<SharedRead>,
}

/// One read of a shared source for a group, to charge to the factory that defined the source.
pub(crate) struct SharedRead {
    /// The plan the group's readers ran (with its metrics once they are done).
    input: Arc<dyn ExecutionPlan>,
    /// How the read was shared, in words.
    how: String,
}

/// The one reader of one partition of a shared source in a group.
pub(crate) struct Reader {
    group: Arc<Group>,
    broadcast: usize,
    partition: usize,
    input: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    engine: Engine,
    /// Makes the spill files of the queues that move to disk.
    spill: Arc<SpillManager>,
    /// The writing end of each spilled queue's spill. Only this reader writes them, in order;
    /// dropping one ends its spill for the reading end.
    sinks: Vec<Option<SpillPoolSink>>,
    /// Where the partition goes when its source is kept for later readers.
    keep: Option<Arc<KeepRun>>,
    /// The partition's batches so far, when it is kept.
    kept: Vec<RecordBatch>,
}

/// A source's output being read to be kept, filled by its readers. When the last of them is
/// gone, the output is kept if every partition was read to its end, else nothing is (and later
/// readers run the plan).
struct KeepRun {
    source: Arc<SharedSource>,
    partitions: Mutex<Vec<Option<Vec<RecordBatch>>>>,
}

impl Drop for KeepRun {
    fn drop(&mut self) {
        let partitions = std::mem::take(self.partitions.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let whole: Option<Vec<Vec<RecordBatch>>> = partitions.into_iter().collect();
        let source = &self.source;
        let now = match whole {
            Some(partitions) => {
                let bytes = partitions.iter().flatten().map(RecordBatch::get_array_memory_size).sum();
                source.engine.count_shared_kept();
                setl_core::tracing::info!(
                    source = %source.label,
                    bytes,
                    "shared frame read without all its readers: kept for the others"
                );
                Kept::Data(Arc::new(KeptData { partitions, _held: source.engine.hold(bytes) }))
            }
            None => Kept::Nothing,
        };
        *source.lock_kept() = now;
        source.kept_changed.notify_waiters();
    }
}

/// Batches to write to the spills of the nodes they belong to, after the lock is released.
type ToSpill = Vec<(usize, RecordBatch)>;

impl Reader {
    /// Reads the partition and hands every batch to every queue, paced by the slowest query.
    pub(crate) async fn run(mut self) {
        let mut stream = match self.input.execute(self.partition, self.context.clone()) {
            Ok(stream) => stream,
            Err(error) => return self.push(Err(Arc::new(error))),
        };
        while let Some(item) = stream.next().await {
            let item = item.map_err(Arc::new);
            let failed = item.is_err();
            if let (Some(_), Ok(batch)) = (&self.keep, &item) {
                self.kept.push(batch.clone());
            }
            if !futures::future::poll_fn(|cx| self.wait_for_room(cx)).await {
                return; // every query has closed its queue
            }
            self.push(item);
            if failed {
                return;
            }
        }
        if let Some(keep) = &self.keep {
            let mut partitions = keep.partitions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            partitions[self.partition] = Some(std::mem::take(&mut self.kept));
        }
        self.finish();
    }

    /// Ready(true) when the next batch may go out, Ready(false) when nobody wants it.
    ///
    /// The reader waits while a query lags [`LAG_BATCHES`] batches behind in memory, unless
    /// that query is blocked: its waits lead back to this reader ([`GroupState::blocked`]).
    fn wait_for_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.keep.is_some() {
            // Kept whole anyway: read on, to the end even when no query of the group is left.
            return Poll::Ready(true);
        }
        let me = (self.broadcast, self.partition);
        let mut state = self.group.lock();
        let broadcast = &state.broadcasts[self.broadcast];
        let channel = &broadcast.channels[self.partition];
        let open = channel.queues.iter().any(|queue| !queue.closed);
        let must_wait = channel.queues.iter().enumerate().any(|(node, queue)| {
            !queue.closed
                && !queue.spilled
                && channel.lag(node) >= LAG_BATCHES as u64
                && !state.blocked(broadcast.consumers[node], me)
        });
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        if !open || !must_wait {
            channel.parked = false;
            return Poll::Ready(open);
        }
        channel.reader = Some(cx.waker().clone());
        if !channel.parked {
            channel.parked = true;
            // The queries waiting on this channel are blocked now: parked readers that wait for
            // one of them look again.
            let wake = state.parked_readers(Some(me));
            drop(state);
            wake.into_iter().for_each(Waker::wake);
        }
        Poll::Pending
    }

    /// Hands `item` to every open queue, in memory or in its spill (an error ends the partition).
    /// When the channel holds more than its share of the buffer, the queues furthest behind move
    /// to disk with the batches they have not taken.
    fn push(&mut self, item: std::result::Result<RecordBatch, Arc<DataFusionError>>) {
        let can_spill = self.context.runtime_env().disk_manager.tmp_files_enabled();
        let spill_file_bytes = self.spill_file_bytes();
        let mut to_spill: ToSpill = Vec::new();
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let me = (self.broadcast, self.partition);
        // What the group's other channels hold in memory: they share the buffer with this one.
        let others: usize = state
            .broadcasts
            .iter()
            .enumerate()
            .flat_map(|(b, broadcast)| broadcast.channels.iter().enumerate().map(move |(p, channel)| ((b, p), channel)))
            .filter(|(at, _)| *at != me)
            .map(|(_, channel)| channel.buffered)
            .sum();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        let bytes = item.as_ref().map_or(0, RecordBatch::get_array_memory_size);
        // Below half the buffer, a queue on disk whose query has taken its spill comes back to
        // memory from this batch on: a burst of lag costs a spill of the burst, not of the rest
        // of the table.
        let room = others.saturating_add(channel.buffered).saturating_add(bytes) <= channel.buffer_limit / 2;
        let end = channel.end();
        for (node, queue) in channel.queues.iter_mut().enumerate() {
            if room && item.is_ok() && queue.spilled && !queue.closed && queue.spill.is_none() {
                self.sinks[node] = None; // ends the spill for its reading end
                queue.spilled = false;
                queue.next = end;
            }
        }
        for (node, queue) in channel.queues.iter_mut().enumerate() {
            if queue.closed {
                self.sinks[node] = None;
            } else if queue.spilled {
                match &item {
                    Ok(batch) => to_spill.push((node, batch.clone())),
                    Err(error) => queue.error = Some(error.clone()),
                }
            }
        }
        let takers = channel.queues.iter().filter(|queue| !queue.closed && !queue.spilled).count();
        if takers > 0 {
            let held = item.as_ref().ok().map(|_| self.engine.hold(bytes));
            channel.buffered += bytes;
            channel.batches.push_back(Pending { item: item.clone(), takers, bytes, _held: held });
        }
        let end = channel.end();
        for queue in channel.queues.iter_mut().filter(|queue| queue.spilled) {
            queue.next = end;
        }
        if item.is_err() {
            channel.finished = true;
        } else if can_spill {
            while others.saturating_add(channel.buffered) > channel.buffer_limit {
                // The open queue furthest behind (one that has taken everything is never chosen).
                let behind = (0..channel.queues.len())
                    .filter(|&node| !channel.queues[node].closed && !channel.queues[node].spilled)
                    // A queue whose last spill its query has not taken yet waits for that first.
                    .filter(|&node| channel.queues[node].spill.is_none())
                    .filter(|&node| channel.lag(node) > 0)
                    .max_by_key(|&node| channel.lag(node));
                let Some(node) = behind else { break };
                let (sink, stream) = spsc_channel(spill_file_bytes, self.spill.clone());
                self.sinks[node] = Some(sink);
                let queue = &mut channel.queues[node];
                queue.spilled = true;
                queue.spill = Some(stream);
                to_spill.extend(channel.release(node).into_iter().filter_map(|item| item.ok()).map(|b| (node, b)));
            }
        }
        wake.extend(channel.queues.iter_mut().filter_map(|queue| queue.waiting.take()));
        drop(state);
        wake.into_iter().for_each(Waker::wake);
        self.spill_out(to_spill);
        if item.is_err() {
            // Ends every spill: its queue then reads the error.
            self.sinks.iter_mut().for_each(|sink| *sink = None);
        }
    }

    /// Writes batches to their queues' spills. A spill that fails ends with that error.
    fn spill_out(&mut self, to_spill: ToSpill) {
        for (node, batch) in to_spill {
            let Some(sink) = &self.sinks[node] else { continue };
            self.engine.count_shared_spill(batch.get_array_memory_size());
            if let Err(error) = sink.push_batch(&batch) {
                let mut state = self.group.lock();
                let queue = &mut state.broadcasts[self.broadcast].channels[self.partition].queues[node];
                queue.error = Some(Arc::new(error));
                drop(state);
                self.sinks[node] = None;
            }
        }
    }

    /// The size at which a spill starts a new file (DataFusion's `max_spill_file_size_bytes`).
    fn spill_file_bytes(&self) -> usize {
        self.context.session_config().options().execution.max_spill_file_size_bytes.into()
    }

    fn finish(&mut self) {
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        channel.finished = true;
        wake.extend(channel.queues.iter_mut().filter_map(|queue| queue.waiting.take()));
        drop(state);
        wake.into_iter().for_each(Waker::wake);
        // Spilled queues read to the end of their spills, then stop.
        self.sinks.iter_mut().for_each(|sink| *sink = None);
    }
}

/// The batches of one partition for one scan node.
struct QueueStream {
    group: Arc<Group>,
    broadcast: usize,
    partition: usize,
    node: usize,
    /// The queue's spill, once it moved to disk.
    spill: Option<SendableRecordBatchStream>,
    done: bool,
}

impl QueueStream {
    /// The next batch from memory.
    fn poll_memory(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RecordBatch>>> {
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        let queue = &mut channel.queues[self.node];
        if queue.closed {
            // The query ended (`Group::finish_consumer`); a stream it left behind reads nothing.
            return Poll::Ready(None);
        }
        if queue.spilled || queue.spill.is_some() {
            // Its spill first (after the queue came back to memory, the memory batches follow it).
            self.spill = queue.spill.take();
            drop(state);
            return self.poll_spill(cx);
        }
        let was_waiting = queue.waiting.take().is_some();
        let end = channel.first + channel.batches.len() as u64;
        let queue = &mut channel.queues[self.node];
        let poll = if queue.next < end {
            let index = (queue.next - channel.first) as usize;
            queue.next += 1;
            let pending = &mut channel.batches[index];
            pending.takers -= 1;
            let item = pending.item.clone().map_err(DataFusionError::Shared);
            channel.trim();
            wake.extend(channel.reader.take());
            Poll::Ready(Some(item))
        } else if channel.finished {
            Poll::Ready(None)
        } else {
            queue.waiting = Some(cx.waker().clone());
            if !was_waiting {
                // The query may be blocked now: parked readers that wait for it look again.
                wake = state.parked_readers(None);
            }
            Poll::Pending
        };
        drop(state);
        wake.into_iter().for_each(Waker::wake);
        poll
    }

    /// The next batch from the queue's spill, then the error that ended it, if any.
    fn poll_spill(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RecordBatch>>> {
        let polled = match &mut self.spill {
            Some(spill) => spill.poll_next_unpin(cx),
            None => Poll::Ready(None),
        };
        let mut state = self.group.lock();
        let queue = &mut state.broadcasts[self.broadcast].channels[self.partition].queues[self.node];
        let was_waiting = queue.waiting.take().is_some();
        match polled {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                let error = queue.error.take();
                // The queue came back to memory, or moved to disk again meanwhile: what follows
                // is there (module docs).
                let goes_on = !queue.closed && (!queue.spilled || queue.spill.is_some());
                drop(state);
                self.spill = None;
                match error {
                    Some(error) => Poll::Ready(Some(Err(DataFusionError::Shared(error)))),
                    None if goes_on => self.poll_memory(cx),
                    None => Poll::Ready(None),
                }
            }
            Poll::Pending => {
                // Marked as waiting, so that no reader waits for this query while it waits for
                // the reader that fills its spill; the spill itself wakes it.
                queue.waiting = Some(cx.waker().clone());
                let wake = if was_waiting { Vec::new() } else { state.parked_readers(None) };
                drop(state);
                wake.into_iter().for_each(Waker::wake);
                Poll::Pending
            }
        }
    }
}

impl Stream for QueueStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let poll = if self.spill.is_some() { self.poll_spill(cx) } else { self.poll_memory(cx) };
        if matches!(poll, Poll::Ready(None)) {
            self.done = true;
        }
        poll
    }
}

impl Drop for QueueStream {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        channel.close(self.node);
        let reader = channel.reader.take();
        drop(state);
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}
