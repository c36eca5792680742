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
//! A batch stays in memory until every query has taken it, so the reader waits for the slowest
//! query: it reads on only while every query has fewer than [`LAG_BATCHES`] batches waiting. A
//! query that does not take its batches because it reads another shared scan first (a join that
//! builds its hash table from `orders` before it reads `lineitem`) is waited for too, as long as
//! that other scan's reader is going. When that reader is itself waiting for a slow query, the
//! query is blocked, and readers do not wait for blocked queries: two queries that read two
//! shared scans in opposite orders would otherwise wait for each other forever. A blocked query
//! gets its batches buffered, up to the whole table in the worst case, which is what
//! materializing the table would have held.
//!
//! A query planned outside a group (`frame.dataframe()` run by DataFusion itself) reads the plan
//! directly, as a lazy scan does.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
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
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;

use crate::engine::{Engine, HeldGuard};

/// Batches a query may have waiting before the reader waits for it.
pub const LAG_BATCHES: usize = 4;

/// The plan of a shared frame.
pub(crate) struct SharedSource {
    label: String,
    engine: Engine,
    schema: SchemaRef,
    state: Box<SessionState>,
    plan: LogicalPlan,
}

impl SharedSource {
    pub(crate) fn new(
        label: String,
        engine: Engine,
        schema: SchemaRef,
        state: SessionState,
        plan: LogicalPlan,
    ) -> Self {
        SharedSource { label, engine, schema, state: Box::new(state), plan }
    }

    /// A physical plan of the source for one scan. Each scan gets its own: operators keep state
    /// from their one execution (a repartition's channels), so a plan cannot be run twice.
    async fn physical(&self) -> Result<Arc<dyn ExecutionPlan>> {
        self.state.create_physical_plan(&self.plan).await
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
        let project = move |item: Result<RecordBatch>| match &projection {
            Some(indices) => item.and_then(|batch| Ok(batch.project(indices)?)),
            None => item,
        };
        Ok(match self.subscription.get() {
            Some(subscription) => {
                let queue = subscription.group.attach(subscription.broadcast, partition, subscription.node)?;
                Box::pin(RecordBatchStreamAdapter::new(schema, queue.map(project)))
            }
            // Outside a group: a plain scan of the source.
            None => {
                Box::pin(RecordBatchStreamAdapter::new(schema, self.input.execute(partition, context)?.map(project)))
            }
        })
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

/// The output of one plan: its schema and batches.
pub(crate) type Output = (SchemaRef, Vec<RecordBatch>);

/// Plans and runs `frames` together: each a task on the runtime, every shared scan's
/// partitions read once by a task of their own. Stops at the first failure, with the index of
/// the frame that failed; a panic in a plan is resumed.
pub(crate) async fn run_plans(frames: Vec<DataFrame>) -> Result<Vec<Output>, (usize, DataFusionError)> {
    let mut plans = Vec::with_capacity(frames.len());
    for (index, frame) in frames.into_iter().enumerate() {
        let context = Arc::new(frame.task_ctx());
        let plan = frame.create_physical_plan().await.map_err(|error| (index, error))?;
        plans.push((plan, context));
    }
    let physical: Vec<_> = plans.iter().map(|(plan, _)| plan.clone()).collect();
    let group = Group::arm(&physical).map_err(|error| (0, error))?;
    // Dropping a JoinSet aborts its tasks: a failure stops the others, readers included.
    let mut readers = JoinSet::new();
    let group = group.map(|(group, to_start)| {
        for reader in to_start {
            readers.spawn(reader.run());
        }
        group
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
    // counted as held) after the run returns.
    queries.shutdown().await;
    readers.shutdown().await;
    match ended {
        Ok(()) => {
            Ok(outputs.into_iter().map(|output| output.unwrap_or_else(|| unreachable!("every query ended"))).collect())
        }
        Err(Ended::Failed(index, error)) => Err((index, error)),
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
    finished: bool,
    /// The reader, when it waits for the slowest queue.
    reader: Option<Waker>,
    /// Whether the reader waits for a slow query (from when it starts waiting until it goes on).
    stuck: bool,
}

struct Pending {
    item: std::result::Result<RecordBatch, Arc<DataFusionError>>,
    takers: usize,
    _held: Option<HeldGuard>,
}

#[derive(Default)]
struct Queue {
    /// The next batch this queue takes.
    next: u64,
    attached: bool,
    closed: bool,
    /// The query's waker while it waits on this queue.
    waiting: Option<Waker>,
}

impl Channel {
    fn end(&self) -> u64 {
        self.first + self.batches.len() as u64
    }

    /// Forgets the batches every queue has taken.
    fn trim(&mut self) {
        while self.batches.front().is_some_and(|pending| pending.takers == 0) {
            self.batches.pop_front();
            self.first += 1;
        }
    }

    /// Closes queue `node`: it takes none of the batches it has not taken yet.
    fn close(&mut self, node: usize) {
        let queue = &mut self.queues[node];
        if queue.closed {
            return;
        }
        queue.closed = true;
        let from = (queue.next - self.first) as usize;
        queue.next = self.first + self.batches.len() as u64;
        for pending in self.batches.iter_mut().skip(from) {
            pending.takers -= 1;
        }
        self.trim();
    }
}

impl GroupState {
    /// Whether query `consumer` waits for a partition whose reader waits for a slow query: a
    /// reader that waited for it in turn could wait forever.
    fn blocked(&self, consumer: usize) -> bool {
        self.broadcasts.iter().any(|broadcast| {
            broadcast.channels.iter().any(|channel| {
                channel.stuck
                    && channel
                        .queues
                        .iter()
                        .enumerate()
                        .any(|(node, queue)| broadcast.consumers[node] == consumer && queue.waiting.is_some())
            })
        })
    }
}

impl Group {
    /// Arms every shared scan in `plans` (one plan per consumer query) and returns the group and
    /// the readers to start, or `None` when no plan reads a shared source.
    pub(crate) fn arm(plans: &[Arc<dyn ExecutionPlan>]) -> Result<Option<(Arc<Group>, Vec<Reader>)>> {
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
        if sources.is_empty() {
            return Ok(None);
        }
        let broadcasts = sources
            .iter()
            .map(|nodes| Broadcast {
                consumers: nodes.iter().map(|(consumer, _)| *consumer).collect(),
                channels: (0..nodes[0].1.partitions())
                    .map(|_| Channel {
                        batches: VecDeque::new(),
                        first: 0,
                        queues: nodes.iter().map(|_| Queue::default()).collect(),
                        finished: false,
                        reader: None,
                        stuck: false,
                    })
                    .collect(),
            })
            .collect();
        let group = Arc::new(Group { state: Mutex::new(GroupState { broadcasts }) });
        let mut readers = Vec::new();
        for (broadcast, nodes) in sources.into_iter().enumerate() {
            let first = nodes[0].1;
            let source = &first.source;
            for (node, (_, scan)) in nodes.iter().enumerate() {
                let subscription = Subscription { group: group.clone(), broadcast, node };
                if scan.subscription.set(subscription).is_err() {
                    return Err(DataFusionError::Internal(format!(
                        "a shared scan of {} was already run in another group",
                        source.label
                    )));
                }
            }
            for partition in 0..first.partitions() {
                readers.push(Reader {
                    group: group.clone(),
                    broadcast,
                    partition,
                    input: first.input.clone(),
                    context: Arc::new(TaskContext::from(source.state.as_ref())),
                    engine: source.engine.clone(),
                });
            }
            source.engine.count_shared_read();
        }
        Ok(Some((group, readers)))
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
        Ok(QueueStream { group: self.clone(), broadcast, partition, node, done: false })
    }

    /// Closes every queue of `consumer` (its query ended, or never ran some partition).
    pub(crate) fn finish_consumer(&self, consumer: usize) {
        let mut wake = Vec::new();
        let mut state = self.lock();
        for broadcast in state.broadcasts.iter_mut() {
            for (node, _) in broadcast.consumers.iter().enumerate().filter(|(_, c)| **c == consumer) {
                for channel in &mut broadcast.channels {
                    channel.queues[node].waiting = None;
                    channel.close(node);
                    wake.extend(channel.reader.take());
                }
            }
        }
        drop(state);
        wake.into_iter().for_each(Waker::wake);
    }
}

/// The one reader of one partition of a shared source in a group.
pub(crate) struct Reader {
    group: Arc<Group>,
    broadcast: usize,
    partition: usize,
    input: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    engine: Engine,
}

impl Reader {
    /// Reads the partition and hands every batch to every queue, paced by the slowest query.
    pub(crate) async fn run(self) {
        let mut stream = match self.input.execute(self.partition, self.context.clone()) {
            Ok(stream) => stream,
            Err(error) => return self.push(Err(Arc::new(error))),
        };
        loop {
            let item = match stream.next().await {
                Some(Ok(batch)) => Ok(batch),
                Some(Err(error)) => Err(Arc::new(error)),
                None => break,
            };
            let failed = item.is_err();
            if !futures::future::poll_fn(|cx| self.wait_for_room(cx)).await {
                return; // every query has closed its queue
            }
            self.push(item);
            if failed {
                return;
            }
        }
        self.finish();
    }

    /// Ready(true) when the next batch may go out, Ready(false) when nobody wants it.
    fn wait_for_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = self.group.lock();
        let broadcast = &state.broadcasts[self.broadcast];
        let channel = &broadcast.channels[self.partition];
        let end = channel.end();
        let open = channel.queues.iter().any(|queue| !queue.closed);
        let waits_for_someone = channel.queues.iter().enumerate().any(|(node, queue)| {
            !queue.closed && end - queue.next >= LAG_BATCHES as u64 && !state.blocked(broadcast.consumers[node])
        });
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        if !waits_for_someone {
            channel.stuck = false;
            return Poll::Ready(open);
        }
        channel.reader = Some(cx.waker().clone());
        if !channel.stuck {
            channel.stuck = true;
            // The queries waiting on this partition are blocked now: the other waiting readers
            // look again, as one of them may wait for such a query (module docs).
            let mut wake = Vec::new();
            for (broadcast, other) in state.broadcasts.iter_mut().enumerate() {
                for (partition, channel) in other.channels.iter_mut().enumerate() {
                    if (broadcast, partition) != (self.broadcast, self.partition) {
                        wake.extend(channel.reader.take());
                    }
                }
            }
            drop(state);
            wake.into_iter().for_each(Waker::wake);
        }
        Poll::Pending
    }

    /// Hands `item` to every open queue (an error ends the partition).
    fn push(&self, item: std::result::Result<RecordBatch, Arc<DataFusionError>>) {
        let failed = item.is_err();
        let held = item.as_ref().ok().map(|batch| self.engine.hold(batch.get_array_memory_size()));
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        let takers = channel.queues.iter().filter(|queue| !queue.closed).count();
        if takers > 0 {
            channel.batches.push_back(Pending { item, takers, _held: held });
        }
        wake.extend(channel.queues.iter_mut().filter_map(|queue| queue.waiting.take()));
        if failed {
            channel.finished = true;
        }
        drop(state);
        wake.into_iter().for_each(Waker::wake);
    }

    fn finish(&self) {
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        channel.finished = true;
        wake.extend(channel.queues.iter_mut().filter_map(|queue| queue.waiting.take()));
        drop(state);
        wake.into_iter().for_each(Waker::wake);
    }
}

/// The batches of one partition for one scan node.
struct QueueStream {
    group: Arc<Group>,
    broadcast: usize,
    partition: usize,
    node: usize,
    done: bool,
}

impl Stream for QueueStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut wake = Vec::new();
        let mut state = self.group.lock();
        let channel = &mut state.broadcasts[self.broadcast].channels[self.partition];
        let queue = &mut channel.queues[self.node];
        if queue.closed {
            // The query ended (`Group::finish_consumer`); a stream it left behind reads nothing.
            return Poll::Ready(None);
        }
        let was_waiting = queue.waiting.take().is_some();
        let poll = if queue.next < channel.first + channel.batches.len() as u64 {
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
            if !was_waiting && channel.stuck {
                // The query is blocked now: readers that wait for it may go on without it.
                for broadcast in state.broadcasts.iter_mut() {
                    for channel in &mut broadcast.channels {
                        wake.extend(channel.reader.take());
                    }
                }
            }
            Poll::Pending
        };
        drop(state);
        wake.into_iter().for_each(Waker::wake);
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
        channel.queues[self.node].waiting = None;
        channel.close(self.node);
        let reader = channel.reader.take();
        drop(state);
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}
