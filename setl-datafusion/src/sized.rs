//! A file format that tells the planner how big each file is.
//!
//! DataFusion's CSV format gives no statistics, so a join of two CSV scans builds its hash table
//! on whichever side the SQL names first (a user's `orders JOIN customers` built 2 M rows and
//! took 0.60 s and 269 MiB, `customers JOIN orders` 0.40 s and 74 MiB). Wrapped in [`Sized`], each
//! file reports its size on disk as an inexact byte count, which is all the join selection
//! compares when row counts are unknown, so the smaller input goes to the build side whatever
//! the order in the query.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::Statistics;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::object_store::{ObjectMeta, ObjectStore};
use datafusion::physical_plan::ExecutionPlan;

/// `format`, with each file's size as its statistics' byte count.
#[derive(Debug)]
pub(crate) struct Sized(pub(crate) Arc<dyn FileFormat>);

#[async_trait]
impl FileFormat for Sized {
    fn get_ext(&self) -> String {
        self.0.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.0.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.0.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.0.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        let mut statistics = self.0.infer_stats(state, store, table_schema, object).await?;
        if statistics.total_byte_size.get_value().is_none() {
            statistics.total_byte_size = Precision::Inexact(usize::try_from(object.size).unwrap_or(usize::MAX));
        }
        Ok(statistics)
    }

    async fn create_physical_plan(&self, state: &dyn Session, conf: FileScanConfig) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.create_physical_plan(state, conf).await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.0.file_source(table_schema)
    }
}
