//! `Frame`: a dataset that is either data or a DataFusion plan that produces it.
//!
//! This is the plan-backed lazy dataset of issue 4 (setl-arrow's own lazy datasets had not
//! landed when it was written). A factory outputs a `Frame`; consumers either collect it (the
//! plan runs then, once per consumer) or register it in their own session (the plan becomes part
//! of their query: one query, no materialization in between). `persist` makes the first
//! collect materialize it once for every consumer, which is the seed's caching.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use setl_arrow::Dataset;

use crate::engine::{Engine, HeldGuard};
use crate::error::SqlError;

/// A dataset, or the DataFusion plan that computes it. Cheap to clone (clones share the plan
/// and, once persisted and run, the data).
///
/// # Examples
///
/// ```
/// # use setl_datafusion::Engine;
/// let engine = Engine::standalone(2, &Default::default())?;
/// let session = engine.session();
/// let lazy = session.sql("numbers", "SELECT * FROM (VALUES (1), (2), (3)) AS t(x)")?;
/// assert!(!lazy.is_materialized());
/// let cached = lazy.persist();
/// assert_eq!(cached.collect()?.num_rows(), 3);
/// assert_eq!(cached.collect()?.num_rows(), 3); // the plan ran once
/// assert_eq!(engine.executions(), 1);
/// # Ok::<(), setl_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Frame {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    engine: Engine,
    schema: SchemaRef,
    sources: Vec<PathBuf>,
    body: Body,
}

enum Body {
    /// Data, already there.
    Data(Held),
    /// A plan; with `persist`, the data of its first run, shared by every later one.
    Plan { state: Box<SessionState>, plan: LogicalPlan, persisted: Option<Mutex<Option<Held>>> },
}

/// Materialized data, counted in the engine's held bytes while it lives.
#[derive(Clone)]
struct Held {
    dataset: Dataset,
    _guard: Arc<HeldGuard>,
}

impl Frame {
    pub(crate) fn from_dataframe(engine: Engine, label: String, frame: DataFrame, sources: Vec<PathBuf>) -> Self {
        let schema = frame.schema().inner().clone();
        let (state, plan) = frame.into_parts();
        Frame {
            inner: Arc::new(Inner {
                label,
                engine,
                schema,
                sources,
                body: Body::Plan { state: Box::new(state), plan, persisted: None },
            }),
        }
    }

    /// A frame holding `dataset` (counted in the engine's held bytes while the frame lives).
    pub fn from_dataset(engine: &Engine, label: impl Into<String>, dataset: Dataset) -> Self {
        Frame::data(engine.clone(), label.into(), dataset, Vec::new())
    }

    fn data(engine: Engine, label: String, dataset: Dataset, sources: Vec<PathBuf>) -> Self {
        let held = Held { _guard: Arc::new(engine.hold(dataset.byte_size())), dataset };
        Frame {
            inner: Arc::new(Inner {
                label,
                schema: held.dataset.schema().clone(),
                engine,
                sources,
                body: Body::Data(held),
            }),
        }
    }

    /// What the frame is, for errors: e.g. "query `q1`" or "Parquet scan".
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The files the frame's data comes from.
    pub fn sources(&self) -> &[PathBuf] {
        &self.inner.sources
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.inner.schema
    }

    /// The engine the frame runs on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Whether the data is there (built from data, or persisted and already run).
    pub fn is_materialized(&self) -> bool {
        self.materialized().is_some()
    }

    /// Whether the plan's first run is kept for every later consumer.
    pub fn is_persisted(&self) -> bool {
        matches!(&self.inner.body, Body::Plan { persisted: Some(_), .. })
    }

    /// The data, when it is there.
    pub fn materialized(&self) -> Option<Dataset> {
        match &self.inner.body {
            Body::Data(held) => Some(held.dataset.clone()),
            Body::Plan { persisted: Some(slot), .. } => lock(slot).as_ref().map(|held: &Held| held.dataset.clone()),
            Body::Plan { persisted: None, .. } => None,
        }
    }

    /// The same plan, marked to keep its first run for every consumer (Spark's `persist`): the
    /// first [`collect`](Self::collect) runs it, later ones (from any clone) reuse the data.
    /// A frame that already holds data is returned as is.
    pub fn persist(&self) -> Frame {
        match &self.inner.body {
            Body::Data(_) | Body::Plan { persisted: Some(_), .. } => self.clone(),
            Body::Plan { state, plan, persisted: None } => Frame {
                inner: Arc::new(Inner {
                    label: self.inner.label.clone(),
                    engine: self.inner.engine.clone(),
                    schema: self.inner.schema.clone(),
                    sources: self.inner.sources.clone(),
                    body: Body::Plan { state: state.clone(), plan: plan.clone(), persisted: Some(Mutex::new(None)) },
                }),
            },
        }
    }

    /// Runs the plan now and returns a frame holding its data (for a producer that wants its
    /// errors in its own phase, and its consumers to share one run).
    ///
    /// # Errors
    ///
    /// As [`collect`](Self::collect).
    pub fn materialize(&self) -> Result<Frame, SqlError> {
        if let Body::Data(_) = self.inner.body {
            return Ok(self.clone());
        }
        let dataset = self.collect()?;
        Ok(Frame::data(self.inner.engine.clone(), self.inner.label.clone(), dataset, self.inner.sources.clone()))
    }

    /// The data: the frame's own, the persisted run, or a fresh run of the plan.
    ///
    /// # Errors
    ///
    /// When the plan fails (unreadable file, arithmetic overflow, memory limit...): DataFusion's
    /// message, the frame's label and its files.
    pub fn collect(&self) -> Result<Dataset, SqlError> {
        match &self.inner.body {
            Body::Data(held) => Ok(held.dataset.clone()),
            Body::Plan { persisted: None, .. } => self.execute(),
            Body::Plan { persisted: Some(slot), .. } => {
                // Held while running, so concurrent consumers wait for the one run.
                let mut cached = lock(slot);
                if let Some(held) = cached.as_ref() {
                    return Ok(held.dataset.clone());
                }
                let dataset = self.execute()?;
                let guard = Arc::new(self.inner.engine.hold(dataset.byte_size()));
                *cached = Some(Held { dataset: dataset.clone(), _guard: guard });
                Ok(dataset)
            }
        }
    }

    /// The frame as a DataFusion `DataFrame`, for the DataFrame API: a scan of the data when it
    /// is there, else the plan itself (so what is added to it fuses with it).
    pub fn dataframe(&self) -> DataFrame {
        match (&self.inner.body, self.materialized()) {
            (_, Some(dataset)) => {
                let session = self.inner.engine.session();
                // Registering a dataset under a fixed name in a fresh session cannot clash.
                if let Err(error) = session.register_dataset("data", &dataset) {
                    unreachable!("registering into a fresh session failed: {error}");
                }
                match session.table("data") {
                    Ok(frame) => frame,
                    Err(error) => unreachable!("reading a just-registered table failed: {error}"),
                }
            }
            (Body::Plan { state, plan, .. }, None) => DataFrame::new((**state).clone(), plan.clone()),
            (Body::Data(_), None) => unreachable!("a data frame is always materialized"),
        }
    }

    /// The physical plan DataFusion would run, as text (to check what a scan pushes down).
    ///
    /// # Errors
    ///
    /// When the plan cannot be turned into a physical plan.
    pub fn explain(&self) -> Result<String, SqlError> {
        let frame = self.dataframe();
        let plan = self
            .inner
            .engine
            .run(async move { frame.create_physical_plan().await })
            .map_err(|error| self.error(error))?;
        let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
        Ok(text)
    }

    /// Runs the plan (never the cached data: `collect` holds the cache's lock while calling it).
    fn execute(&self) -> Result<Dataset, SqlError> {
        let frame = match &self.inner.body {
            Body::Plan { state, plan, .. } => DataFrame::new((**state).clone(), plan.clone()),
            Body::Data(held) => return Ok(held.dataset.clone()),
        };
        self.inner.engine.count_execution();
        let batches = self
            .inner
            .engine
            .run(async move {
                let plan = frame.clone().create_physical_plan().await?;
                let schema = plan.schema();
                let batches = datafusion::physical_plan::collect(plan, Arc::new(frame.task_ctx())).await?;
                Ok((schema, batches))
            })
            .map_err(|error| self.error(error))?;
        let (schema, batches) = batches;
        Dataset::try_new(schema, batches)
            .map_err(|error| self.error(datafusion::error::DataFusionError::External(Box::new(error))))
    }

    fn error(&self, error: datafusion::error::DataFusionError) -> SqlError {
        SqlError::new(self.inner.label.clone(), self.inner.sources.clone(), error)
    }
}

fn lock(slot: &Mutex<Option<Held>>) -> std::sync::MutexGuard<'_, Option<Held>> {
    // A panic while running a plan leaves the slot empty, which is a valid state.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("label", &self.inner.label)
            .field("materialized", &self.is_materialized())
            .field("persisted", &self.is_persisted())
            .field("sources", &self.inner.sources)
            .finish()
    }
}
