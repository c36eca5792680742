//! `Session`: DataFusion's `SessionContext` on the context's engine, with setl's inputs as tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use setl_arrow::Dataset;

use crate::attribution::mark;
use crate::engine::Engine;
use crate::error::SqlError;
use crate::frame::Frame;
use crate::origin::Lineage;

/// A DataFusion session on the [`Engine`]: register delivered datasets and frames as tables, run
/// SQL or DataFrame operations over them, get [`Frame`]s back.
///
/// Registering never copies data: a dataset becomes a `MemTable` over the same `RecordBatch`es
/// (their buffers are shared), and a lazy frame becomes a view of its plan, so the consumer's
/// query and the producer's plan run as one query.
///
/// # Examples
///
/// ```
/// use setl_datafusion::{Engine, arrow::array::{Int64Array, RecordBatch}};
/// # use std::sync::Arc;
/// # use setl_datafusion::arrow::datatypes::{DataType, Field, Schema};
/// let setl = setl_core::Setl::builder().threads(2).build()?;
/// let engine = Engine::of(&setl)?;
/// # let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
/// # let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// let numbers = setl_arrow::Dataset::try_new(schema, vec![batch])?;
/// let session = engine.session();
/// session.register_dataset("numbers", &numbers)?;
/// let total = session.sql("total", "SELECT sum(x) AS total FROM numbers")?.collect()?;
/// assert_eq!(total.num_rows(), 1);
/// # Ok::<(), setl_core::Error>(())
/// ```
pub struct Session {
    engine: Engine,
    context: SessionContext,
    /// Per registered table name: the files and scans its data comes from, for errors.
    sources: Mutex<HashMap<String, Lineage>>,
}

/// Sessions are made here, where they are defined: the engine module stays below this one.
impl Engine {
    /// A new session: its own table names, this engine's runtime and settings. One per factory
    /// phase is the usual use; sessions are cheap.
    pub fn session(&self) -> Session {
        Session::new(self.clone(), SessionContext::new_with_state(self.session_state()))
    }

    /// Plans the SQL `query` over `tables` (each a name and a frame, registered as
    /// [`Session::register`] does) in a fresh session: the whole `process` of a SQL factory.
    /// The result is lazy, as [`Session::sql`]'s; `label` names it in errors and reports.
    ///
    /// ```
    /// # use setl_datafusion::Engine;
    /// let engine = Engine::standalone(2, &Default::default())?;
    /// let sales = engine.session().sql("sales", "SELECT * FROM (VALUES ('fr', 3.0), ('de', 4.5), ('fr', 1.0)) AS t(country, amount)")?;
    /// let totals = engine.query("totals", "SELECT country, sum(amount) AS total FROM sales GROUP BY country", [("sales", &sales)])?;
    /// assert_eq!(totals.collect()?.num_rows(), 2);
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Session::register`] and [`Session::sql`]: a table name given twice, a persisted
    /// frame whose plan fails, a query that does not parse or plan.
    pub fn query<'a>(
        &self,
        label: &str,
        query: &str,
        tables: impl IntoIterator<Item = (&'a str, &'a Frame)>,
    ) -> Result<Frame, SqlError> {
        let session = self.session();
        for (name, frame) in tables {
            session.register(name, frame)?;
        }
        session.sql(label, query)
    }
}

impl Session {
    fn new(engine: Engine, context: SessionContext) -> Self {
        Session { engine, context, sources: Mutex::new(HashMap::new()) }
    }

    /// The engine the session runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// DataFusion's context, for anything this wrapper does not cover (UDFs, options...).
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Plans this session's queries for `partitions` partitions instead of the engine's
    /// threads (at least 1).
    ///
    /// The engine's default, one partition per thread, suits one query at a time. When
    /// independent factories run their queries at once, fewer partitions per query keep the
    /// threads just as busy without the cost of splitting every query (hash repartitioning of
    /// joins and aggregates): with 2 threads and two queries at a time, 1 partition each.
    /// Results do not depend on it.
    #[must_use]
    pub fn with_target_partitions(self, partitions: usize) -> Self {
        self.context.state_ref().write().config_mut().options_mut().execution.target_partitions = partitions.max(1);
        self
    }

    /// The number of partitions this session's queries are planned for.
    pub fn target_partitions(&self) -> usize {
        self.context.state_ref().read().config().target_partitions()
    }

    /// Registers `dataset` as table `name`, without copying: its batches are dealt over the
    /// session's partitions so scans of it run in parallel.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid table name or already registered.
    pub fn register_dataset<S>(&self, name: &str, dataset: &Dataset<S>) -> Result<(), SqlError> {
        let partitions = self.target_partitions().clamp(1, dataset.batches().len().max(1));
        let mut split: Vec<Vec<_>> = vec![Vec::new(); partitions];
        for (index, batch) in dataset.batches().iter().enumerate() {
            split[index % partitions].push(batch.clone());
        }
        let table = MemTable::try_new(dataset.schema().clone(), split)
            .map_err(|error| SqlError::new(format!("registering table `{name}`"), Vec::new(), error))?;
        self.context
            .register_table(name, Arc::new(table))
            .map_err(|error| SqlError::new(format!("registering table `{name}`"), Vec::new(), error))?;
        Ok(())
    }

    /// Registers `frame` as table `name`: its data when materialized, else a view of its plan
    /// (which then runs inside the queries that read the table: projections and filters reach
    /// the producer's scan). A [persisted](Frame::persist) frame that has not run yet runs now,
    /// once for every consumer, and its data is registered: a view would run its plan again in
    /// each consumer's query.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid table name or already registered, or a persisted frame's plan
    /// fails (the frame's error).
    pub fn register(&self, name: &str, frame: &Frame) -> Result<(), SqlError> {
        let data = match frame.materialized() {
            None if frame.is_persisted() => Some(frame.collect()?),
            data => data,
        };
        match data {
            Some(dataset) => self.register_dataset(name, &dataset)?,
            None => {
                // A shared frame is a table of its own (its scans read the shared pass); a plan
                // is a view, so that it fuses into the query.
                let table = match frame.shared_source() {
                    Some(source) => source.table(),
                    None => marked(frame).into_view(),
                };
                self.context
                    .register_table(name, table)
                    .map_err(|error| SqlError::new(format!("registering table `{name}`"), Vec::new(), error))?;
            }
        }
        self.lock_sources().insert(name.to_owned(), frame.lineage().clone());
        Ok(())
    }

    /// Plans the SQL `query` over the registered tables; the result is lazy (run it with
    /// [`Frame::collect`], or register it in the next factory's session to fuse the two).
    /// `label` names the query in errors.
    ///
    /// # Errors
    ///
    /// When the query does not parse or plan (unknown table or column, type error), with
    /// DataFusion's message.
    pub fn sql(&self, label: &str, query: &str) -> Result<Frame, SqlError> {
        let context = self.context.clone();
        let text = query.to_owned();
        let planned = self.engine.run(async move { context.sql(&text).await });
        let frame = match planned {
            Ok(frame) => frame,
            // Planning reads no data, so no file is to blame.
            Err(error) => return Err(SqlError::new(format!("query `{label}`"), Vec::new(), error)),
        };
        let lineage = self.lineage_of(frame.logical_plan());
        Ok(Frame::from_dataframe(self.engine.clone(), format!("query `{label}`"), frame, lineage))
    }

    /// The registered table `name` as a DataFusion `DataFrame`, for the DataFrame API; turn the
    /// result into a frame with [`Session::frame`].
    ///
    /// # Errors
    ///
    /// When no table has that name.
    pub fn table(&self, name: &str) -> Result<DataFrame, SqlError> {
        let context = self.context.clone();
        let table = name.to_owned();
        self.engine
            .run(async move { context.table(table.as_str()).await })
            .map_err(|error| SqlError::new(format!("reading table `{name}`"), Vec::new(), error))
    }

    /// Wraps a `DataFrame` built with DataFusion's API as a lazy frame; `label` names it in
    /// errors, and the files it reads are found from the tables it scans.
    pub fn frame(&self, label: &str, frame: DataFrame) -> Frame {
        let lineage = self.lineage_of(frame.logical_plan());
        Frame::from_dataframe(self.engine.clone(), label.to_owned(), frame, lineage)
    }

    /// The files and scans behind the tables `plan` scans.
    fn lineage_of(&self, plan: &LogicalPlan) -> Lineage {
        let sources = self.lock_sources();
        let mut lineage = Lineage::default();
        let _ = plan.apply_with_subqueries(|node| {
            // A registered frame shows as a scan of its name, or (a view, inlined by the SQL
            // planner) as its plan under an alias of its name.
            let name = match node {
                LogicalPlan::TableScan(scan) => Some(scan.table_name.table()),
                LogicalPlan::SubqueryAlias(alias) => Some(alias.alias.table()),
                _ => None,
            };
            if let Some(name) = name {
                if let Some(found) = sources.get(name) {
                    lineage.extend(found);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        lineage
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lineage>> {
        self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The frame's plan, marked with the factory that defined it when another factory's query
/// takes it in (so that the work of its operators is charged to its definer, see
/// [`attribution`](crate::attribution)).
fn marked(frame: &Frame) -> DataFrame {
    let dataframe = frame.dataframe();
    let Some(definer) = frame.definer() else { return dataframe };
    let here = setl_core::running();
    if here.is_some_and(|running| running.factory.as_ref() == definer.factory()) {
        return dataframe;
    }
    let (state, plan) = dataframe.into_parts();
    DataFrame::new(state, mark(plan, definer.clone()))
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tables: Vec<String> = self.lock_sources().keys().cloned().collect();
        tables.sort();
        f.debug_struct("Session").field("tables", &tables).finish_non_exhaustive()
    }
}
