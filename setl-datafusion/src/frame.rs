//! `Frame`: a dataset that is either data or a DataFusion plan that produces it.
//!
//! A factory outputs a `Frame`; consumers either collect it (the plan runs then, once per
//! consumer) or register it in their own session (the plan becomes part of their query: one
//! query, no materialization in between). Three ways let several consumers read one plan:
//!
//! - `persist`: the first collect materializes it once for every consumer (the seed's caching);
//! - `materialize`: the producer runs it now and hands on the data;
//! - `shared`: consumers that run together ([`Frame::collect_all`]) read it in one pass, each
//!   batch streamed to all of them and dropped after the last (see [`shared`](crate::shared)).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use setl_arrow::Dataset;

use crate::attribution::{charge, Definer, Execution};
use crate::engine::Engine;
use crate::error::SqlError;
use crate::held::HeldGuard;
use crate::origin::Lineage;
use crate::shared::{claim_readers, explain_sources, run_plans, ReaderClaim, SharedSource};

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
    /// The factory phase that made the frame, charged with the work of its plan wherever it
    /// runs (see [`attribution`](crate::attribution)); `None` outside a pipeline.
    definer: Option<Definer>,
    engine: Engine,
    schema: SchemaRef,
    /// The files and scans the data comes from, for errors.
    lineage: Lineage,
    /// The shared sources the plan reads, which count it among their readers while it lives.
    _claims: Arc<[ReaderClaim]>,
    body: Body,
}

enum Body {
    /// Data, already there.
    Data(Held),
    /// A plan; with `persist`, the data of its first run, shared by every later one.
    Plan { state: Box<SessionState>, plan: LogicalPlan, persisted: Option<Mutex<Option<Held>>> },
    /// A plan read once for all the queries that run together.
    Shared(Arc<SharedSource>),
}

/// Materialized data, counted in the engine's held bytes while it lives.
#[derive(Clone)]
struct Held {
    dataset: Dataset,
    _guard: Arc<HeldGuard>,
}

impl Frame {
    /// The shared source, for a consumer's session.
    pub(crate) fn shared_source(&self) -> Option<&Arc<SharedSource>> {
        match &self.inner.body {
            Body::Shared(source) => Some(source),
            _ => None,
        }
    }

    pub(crate) fn from_dataframe(engine: Engine, label: String, frame: DataFrame, lineage: Lineage) -> Self {
        let schema = frame.schema().inner().clone();
        let claims = claim_readers(frame.logical_plan()).into();
        let (state, plan) = frame.into_parts();
        Frame {
            inner: Arc::new(Inner {
                definer: Definer::here(&label),
                label,
                engine,
                schema,
                lineage,
                _claims: claims,
                body: Body::Plan { state: Box::new(state), plan, persisted: None },
            }),
        }
    }

    /// A frame holding `dataset`, typed or not (counted in the engine's held bytes while the
    /// frame lives).
    pub fn from_dataset<S>(engine: &Engine, label: impl Into<String>, dataset: Dataset<S>) -> Self {
        Frame::data(engine.clone(), label.into(), dataset.into_untyped(), Lineage::default())
    }

    fn data(engine: Engine, label: String, dataset: Dataset, lineage: Lineage) -> Self {
        let held = Held { _guard: Arc::new(engine.hold(dataset.byte_size())), dataset };
        Frame {
            inner: Arc::new(Inner {
                definer: Definer::here(&label),
                label,
                schema: held.dataset.schema().clone(),
                engine,
                lineage,
                _claims: Arc::new([]),
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
        &self.inner.lineage.files
    }

    /// The factory phase that made the frame.
    pub(crate) fn definer(&self) -> Option<&Definer> {
        self.inner.definer.as_ref()
    }

    pub(crate) fn lineage(&self) -> &Lineage {
        &self.inner.lineage
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

    /// Whether the plan is read once for all the consumers that run together.
    pub fn is_shared(&self) -> bool {
        matches!(&self.inner.body, Body::Shared(_))
    }

    /// The same plan, read once for all the queries that read it and run together
    /// ([`Frame::collect_all`]): each partition runs once and every batch goes to every query,
    /// which drops it when done, so the plan's output is never held whole (unlike
    /// [`materialize`](Self::materialize)). A query run on its own reads it as a lazy frame
    /// would. A frame that holds data is returned as is.
    ///
    /// # Examples
    ///
    /// ```
    /// # use setl_datafusion::{Engine, Frame};
    /// let engine = Engine::standalone(2, &Default::default())?;
    /// let numbers = engine.session().sql("numbers", "SELECT * FROM generate_series(1, 1000) AS t(x)")?.shared();
    /// let (even, odd) = (engine.session(), engine.session());
    /// even.register("numbers", &numbers)?;
    /// odd.register("numbers", &numbers)?;
    /// let even = even.sql("even", "SELECT count(*) AS n FROM numbers WHERE x % 2 = 0")?;
    /// let odd = odd.sql("odd", "SELECT sum(x) AS s FROM numbers WHERE x % 2 = 1")?;
    /// let results = Frame::collect_all(&[&even, &odd])?;
    /// assert_eq!((results[0].num_rows(), results[1].num_rows()), (1, 1));
    /// assert_eq!(engine.shared_reads(), 1); // one pass over `numbers` for both
    /// # Ok::<(), setl_core::Error>(())
    /// ```
    pub fn shared(&self) -> Frame {
        match &self.inner.body {
            Body::Data(_) | Body::Shared(_) => self.clone(),
            Body::Plan { state, plan, .. } => self.with_body(Body::Shared(Arc::new(SharedSource::new(
                self.inner.label.clone(),
                self.inner.definer.clone(),
                self.inner.engine.clone(),
                self.inner.schema.clone(),
                (**state).clone(),
                plan.clone(),
            )))),
        }
    }

    fn with_body(&self, body: Body) -> Frame {
        Frame {
            inner: Arc::new(Inner {
                label: self.inner.label.clone(),
                definer: self.inner.definer.clone(),
                engine: self.inner.engine.clone(),
                schema: self.inner.schema.clone(),
                lineage: self.inner.lineage.clone(),
                _claims: self.inner._claims.clone(),
                body,
            }),
        }
    }

    /// The data, when it is there.
    pub fn materialized(&self) -> Option<Dataset> {
        match &self.inner.body {
            Body::Data(held) => Some(held.dataset.clone()),
            Body::Plan { persisted: Some(slot), .. } => lock(slot).as_ref().map(|held: &Held| held.dataset.clone()),
            Body::Plan { persisted: None, .. } | Body::Shared(_) => None,
        }
    }

    /// The same plan, marked to keep its first run for every consumer (Spark's `persist`): the
    /// first [`collect`](Self::collect) runs it, later ones (from any clone) reuse the data.
    /// A frame that already holds data is returned as is.
    pub fn persist(&self) -> Frame {
        match &self.inner.body {
            Body::Data(_) | Body::Plan { persisted: Some(_), .. } => self.clone(),
            Body::Plan { state, plan, persisted: None } => self.with_body(Body::Plan {
                state: state.clone(),
                plan: plan.clone(),
                persisted: Some(Mutex::new(None)),
            }),
            Body::Shared(source) => self.with_body(Body::Plan {
                state: Box::new(source.state().clone()),
                plan: source.plan().clone(),
                persisted: Some(Mutex::new(None)),
            }),
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
        Ok(Frame::data(self.inner.engine.clone(), self.inner.label.clone(), dataset, self.inner.lineage.clone()))
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
            Body::Plan { persisted: None, .. } | Body::Shared(_) => self.execute(),
            Body::Plan { persisted: Some(slot), .. } => {
                // Held while running, so concurrent consumers wait for the one run.
                let mut cached = lock(slot);
                if let Some(held) = cached.as_ref() {
                    return Ok(held.dataset.clone());
                }
                let dataset = self.execute()?;
                *cached = Some(self.held(&dataset));
                Ok(dataset)
            }
        }
    }

    /// The data of every frame in `frames`, in order. The plans that must run run at once, on
    /// the engine of the first frame, and a [shared](Self::shared) frame that several of them
    /// read is read once for all. Persisted frames keep their data for later collects.
    ///
    /// This is how queries over the same big tables should run: started one by one, each
    /// would read the tables again (or the tables would have to be held whole in memory).
    ///
    /// # Errors
    ///
    /// The first failure: DataFusion's message with the failing frame's label and files. The
    /// other plans are stopped.
    pub fn collect_all(frames: &[&Frame]) -> Result<Vec<Dataset>, SqlError> {
        // Persisted frames' slots stay locked while their plans run (as in `collect`), taken in
        // one order so that two overlapping calls cannot wait for each other.
        let mut slots: Vec<(usize, &Mutex<Option<Held>>)> = frames
            .iter()
            .enumerate()
            .filter_map(|(index, frame)| match &frame.inner.body {
                Body::Plan { persisted: Some(slot), .. } => Some((index, slot)),
                _ => None,
            })
            .collect();
        slots.sort_by_key(|(_, slot)| std::ptr::from_ref(*slot) as usize);
        let mut guards: Vec<(usize, std::sync::MutexGuard<'_, Option<Held>>)> = Vec::new();
        for (index, slot) in slots {
            match guards.iter().position(|(other, _)| std::ptr::eq(&*frames[*other].inner, &*frames[index].inner)) {
                Some(_) => {} // the same frame twice: locked once
                None => guards.push((index, lock(slot))),
            }
        }
        // Not `materialized()`: it would lock the slots held above.
        let mut datasets: Vec<Option<Dataset>> = frames
            .iter()
            .map(|frame| match &frame.inner.body {
                Body::Data(held) => Some(held.dataset.clone()),
                _ => None,
            })
            .collect();
        for (index, guard) in &guards {
            datasets[*index] = guard.as_ref().map(|held| held.dataset.clone());
        }
        let to_run: Vec<usize> = (0..frames.len()).filter(|index| datasets[*index].is_none()).collect();
        let ran = Frame::run_together(&to_run.iter().map(|index| frames[*index]).collect::<Vec<_>>())?;
        for (index, dataset) in to_run.into_iter().zip(ran) {
            datasets[index] = Some(dataset);
        }
        for (index, guard) in &mut guards {
            if guard.is_none() {
                let dataset = datasets[*index].as_ref().unwrap_or_else(|| unreachable!("every frame has run"));
                **guard = Some(frames[*index].held(dataset));
            }
        }
        Ok(datasets.into_iter().map(|dataset| dataset.unwrap_or_else(|| unreachable!("every frame has run"))).collect())
    }

    fn held(&self, dataset: &Dataset) -> Held {
        Held { dataset: dataset.clone(), _guard: Arc::new(self.inner.engine.hold(dataset.byte_size())) }
    }

    /// The frame as a DataFusion `DataFrame`, for the DataFrame API: a scan of the data when it
    /// is there, else the plan itself (so what is added to it fuses with it).
    pub fn dataframe(&self) -> DataFrame {
        match self.materialized() {
            Some(dataset) => {
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
            None => self.plan_dataframe(),
        }
    }

    /// The physical plan DataFusion would run, as text (to check what a scan pushes down),
    /// followed by the plan of each shared source it reads.
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
        Ok(text + &explain_sources(&plan))
    }

    /// The plan as a DataFrame, never the cached data (unlike [`dataframe`](Self::dataframe), it
    /// takes no lock: `collect` holds a persisted frame's lock while its plan runs).
    fn plan_dataframe(&self) -> DataFrame {
        match &self.inner.body {
            Body::Plan { state, plan, .. } => DataFrame::new((**state).clone(), plan.clone()),
            Body::Shared(source) => source.dataframe(),
            // Always materialized: `dataframe` scans the data.
            Body::Data(_) => self.dataframe(),
        }
    }

    /// Runs the plan (never the cached data: `collect` holds the cache's lock while calling it).
    fn execute(&self) -> Result<Dataset, SqlError> {
        let mut datasets = Frame::run_together(&[self])?;
        Ok(datasets.pop().unwrap_or_else(|| unreachable!("one frame, one dataset")))
    }

    /// Runs the plans of `frames` at once on the first frame's engine, shared scans read once
    /// for all of them; their data in order.
    fn run_together(frames: &[&Frame]) -> Result<Vec<Dataset>, SqlError> {
        let Some(first) = frames.first() else { return Ok(Vec::new()) };
        let engine = first.inner.engine.clone();
        let dataframes = frames.iter().map(|frame| (frame.plan_dataframe(), frame.definer().cloned())).collect();
        frames.iter().for_each(|frame| frame.inner.engine.count_execution());
        let started = Instant::now();
        let (outputs, ran) = engine.run(run_plans(dataframes));
        if setl_core::attribution_wanted() {
            let elapsed = started.elapsed();
            for plan in &ran.plans {
                charge(&Execution { plan, shared: None, started, elapsed });
            }
            ran.charge_shared_reads(started, elapsed);
        }
        // What ran is charged even when a plan failed halfway.
        let outputs = outputs.map_err(|(index, error)| frames[index].error(error))?;
        outputs
            .into_iter()
            .zip(frames)
            .map(|((schema, batches), frame)| {
                Dataset::try_new(schema, batches)
                    .map_err(|error| frame.error(datafusion::error::DataFusionError::External(Box::new(error))))
            })
            .collect()
    }

    fn error(&self, error: datafusion::error::DataFusionError) -> SqlError {
        self.inner.lineage.error(&self.inner.label, error)
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
            .field("shared", &self.is_shared())
            .field("sources", &self.inner.lineage.files)
            .finish()
    }
}
