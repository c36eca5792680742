//! `LazyDataset<S>`: a dataset given as a recipe that produces its batches on demand.
//!
//! This is what the seed's "without caching" case is: each consumer of a lazy dataset runs the
//! recipe again. Persisting the producing factory (`pipeline.persist::<F>(level)` or
//! `#[factory(storage = ..)]`) materializes it once, right after the factory, and every consumer
//! then shares the batches.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use setl_core::LazyCounter;

use crate::dataset::Dataset;
use crate::schema::AnySchema;

/// The batches a recipe yields, one at a time.
pub type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

type Recipe = dyn Fn() -> Result<BatchIter, ArrowError> + Send + Sync;

/// A dataset that may still be a recipe. Cloning shares the recipe, its run counter and any
/// materialized batches.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use setl_arrow::arrow::array::{Int64Array, RecordBatch};
/// use setl_arrow::arrow::datatypes::{DataType, Field, Schema};
/// use setl_arrow::LazyDataset;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
/// let recipe_schema = schema.clone();
/// let lazy: LazyDataset = LazyDataset::new(schema, move || {
///     let column = Arc::new(Int64Array::from_iter_values(0..1000));
///     Ok(vec![RecordBatch::try_new(recipe_schema.clone(), vec![column])?])
/// });
/// assert_eq!(lazy.collect()?.num_rows(), 1000);
/// assert_eq!(lazy.collect()?.num_rows(), 1000);
/// assert_eq!(lazy.runs(), 2); // no cache: the recipe ran for each call
/// # Ok::<(), setl_arrow::arrow::error::ArrowError>(())
/// ```
pub struct LazyDataset<S = AnySchema> {
    schema: SchemaRef,
    recipe: Option<Arc<Recipe>>,
    materialized: Option<Dataset<S>>,
    counter: LazyCounter,
}

impl<S> Clone for LazyDataset<S> {
    fn clone(&self) -> Self {
        LazyDataset {
            schema: self.schema.clone(),
            recipe: self.recipe.clone(),
            materialized: self.materialized.clone(),
            counter: self.counter.clone(),
        }
    }
}

impl<S> LazyDataset<S> {
    /// A dataset of `schema` whose batches `recipe` computes, again on every use until the
    /// dataset is materialized.
    pub fn new(
        schema: SchemaRef,
        recipe: impl Fn() -> Result<Vec<RecordBatch>, ArrowError> + Send + Sync + 'static,
    ) -> Self {
        Self::streaming(schema, move || Ok(Box::new(recipe()?.into_iter().map(Ok)) as BatchIter))
    }

    /// A dataset of `schema` whose batches `recipe` yields one at a time, so that a consumer can
    /// process data larger than memory batch by batch with [`batches`](Self::batches).
    pub fn streaming(
        schema: SchemaRef,
        recipe: impl Fn() -> Result<BatchIter, ArrowError> + Send + Sync + 'static,
    ) -> Self {
        LazyDataset { schema, recipe: Some(Arc::new(recipe)), materialized: None, counter: LazyCounter::new() }
    }

    /// A lazy dataset that is already data.
    pub fn from_dataset(dataset: Dataset<S>) -> Self {
        LazyDataset {
            schema: dataset.schema().clone(),
            recipe: None,
            materialized: Some(dataset),
            counter: LazyCounter::new(),
        }
    }

    /// The schema every batch has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether the batches are computed already (persisted, or made from data).
    pub fn is_materialized(&self) -> bool {
        self.materialized.is_some()
    }

    /// The materialized batches, if any.
    pub fn materialized(&self) -> Option<&Dataset<S>> {
        self.materialized.as_ref()
    }

    /// How many times the recipe ran, over every clone.
    pub fn runs(&self) -> u64 {
        self.counter.count()
    }

    /// The batches, one at a time: the materialized ones, or a new run of the recipe. Each
    /// batch is checked against the schema.
    ///
    /// # Errors
    ///
    /// The recipe's error, or a `SchemaError` for a batch whose schema is not the dataset's.
    pub fn batches(&self) -> Result<BatchIter, ArrowError> {
        if let Some(dataset) = &self.materialized {
            let batches: Vec<RecordBatch> = dataset.batches().to_vec();
            return Ok(Box::new(batches.into_iter().map(Ok)));
        }
        let Some(recipe) = &self.recipe else {
            return Err(ArrowError::InvalidArgumentError("a lazy dataset has neither batches nor a recipe".into()));
        };
        self.counter.record();
        let schema = self.schema.clone();
        let mut index = 0;
        Ok(Box::new(recipe()?.map(move |batch| {
            let batch = batch?;
            index += 1;
            if batch.schema() != schema {
                return Err(ArrowError::SchemaError(format!(
                    "lazy dataset: batch {} of the recipe has schema {:?}, not the declared {:?}",
                    index - 1,
                    batch.schema(),
                    schema
                )));
            }
            Ok(batch)
        })))
    }

    /// All batches as a dataset: the materialized one (shared, no copy), or a new run of the
    /// recipe.
    ///
    /// # Errors
    ///
    /// As [`batches`](Self::batches).
    pub fn collect(&self) -> Result<Dataset<S>, ArrowError> {
        if let Some(dataset) = &self.materialized {
            return Ok(dataset.clone());
        }
        let batches = self.batches()?.collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset::from_checked_parts(self.schema.clone(), batches))
    }

    /// The same recipe and counter, with `dataset` as its computed batches.
    pub(crate) fn with_materialized(&self, dataset: Dataset<S>) -> Self {
        LazyDataset {
            schema: self.schema.clone(),
            recipe: self.recipe.clone(),
            materialized: Some(dataset),
            counter: self.counter.clone(),
        }
    }

    /// The run counter, when there is a recipe.
    pub(crate) fn counter(&self) -> Option<&LazyCounter> {
        self.recipe.as_ref().map(|_| &self.counter)
    }
}

impl<S> From<Dataset<S>> for LazyDataset<S> {
    fn from(dataset: Dataset<S>) -> Self {
        LazyDataset::from_dataset(dataset)
    }
}

impl<S> fmt::Debug for LazyDataset<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyDataset")
            .field("schema", &self.schema)
            .field("materialized", &self.materialized.is_some())
            .field("runs", &self.runs())
            .finish_non_exhaustive()
    }
}
