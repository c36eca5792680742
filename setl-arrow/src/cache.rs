//! Datasets in setl-rs's cache: [`Storable`] for [`Dataset`] and [`LazyDataset`], weighed with
//! Arrow's own buffer accounting and spilled as Arrow IPC files.
//!
//! With these impls, `#[factory]` sees that a factory's output is a dataset and the pipeline's
//! store can weigh it against `Setl::builder().memory_budget(..)`, spill it when over budget, read
//! it back for the next consumer, and persist it (`pipeline.persist::<F>(level)`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use setl_core::fs::{AtomicWrite, WriteMode};
use setl_core::{BoxError, LazyCounter, Storable};

use crate::dataset::Dataset;
use crate::lazy::LazyDataset;

/// Writes `batches` to an Arrow IPC file at `path`, atomically (through
/// [`setl_core::fs::AtomicWrite`]): a reload never finds half a file. Not synced to disk: a
/// spill file does not outlive its process.
fn write_ipc(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(), BoxError> {
    AtomicWrite::new(WriteMode::Replace).sync(false).write(path, |file| {
        let mut writer = FileWriter::try_new(BufWriter::new(file), schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        writer.into_inner()?.flush()?;
        Ok(())
    })?;
    Ok(())
}

/// Reads back an Arrow IPC file written by [`write_ipc`].
fn read_ipc(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>), BoxError> {
    let reader = FileReader::try_new_buffered(File::open(path)?, None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// A dataset weighs what its buffers hold and spills as one Arrow IPC file.
impl<S: 'static> Storable for Dataset<S> {
    const FILE_EXTENSION: &'static str = "arrow";

    fn byte_size(&self) -> usize {
        Dataset::byte_size(self)
    }

    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        write_ipc(path, self.schema(), self.batches())
    }

    fn reload(path: &Path) -> Result<Self, BoxError> {
        let (schema, batches) = read_ipc(path)?;
        // The file was written from a `Dataset<S>`: its schema is the one `S` checked.
        Ok(Dataset::from_checked_parts(schema, batches))
    }
}

/// A lazy dataset weighs nothing until materialized; persisting it runs its recipe once.
impl<S: 'static> Storable for LazyDataset<S> {
    const FILE_EXTENSION: &'static str = "arrow";

    fn byte_size(&self) -> usize {
        self.materialized().map_or(0, Dataset::byte_size)
    }

    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        let dataset = self.collect()?;
        write_ipc(path, dataset.schema(), dataset.batches())
    }

    fn reload(path: &Path) -> Result<Self, BoxError> {
        let (schema, batches) = read_ipc(path)?;
        Ok(LazyDataset::from_dataset(Dataset::from_checked_parts(schema, batches)))
    }

    fn materialize(&self) -> Result<Option<Self>, BoxError> {
        if self.is_materialized() {
            return Ok(None);
        }
        Ok(Some(self.with_materialized(self.collect()?)))
    }

    fn lazy_counter(&self) -> Option<LazyCounter> {
        self.counter().cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn sample() -> Dataset {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = |ids: Vec<i64>, names: Vec<Option<&str>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
            )
            .unwrap()
        };
        let batches = vec![batch(vec![1, 2], vec![Some("zoë"), None]), batch(vec![3], vec![Some("東京")])];
        Dataset::try_new(schema, batches).unwrap()
    }

    #[test]
    fn a_dataset_spills_and_reloads_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.arrow");
        let dataset = sample();
        dataset.spill(&path).unwrap();
        let back = <Dataset as Storable>::reload(&path).unwrap();
        assert_eq!(back.schema(), dataset.schema());
        assert_eq!(back.batches(), dataset.batches());
    }

    #[test]
    fn a_missing_or_truncated_spill_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = <Dataset as Storable>::reload(&dir.path().join("missing.arrow")).unwrap_err();
        assert!(missing.to_string().contains("No such file"), "{missing}");
        let path = dir.path().join("cut.arrow");
        sample().spill(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(<Dataset as Storable>::reload(&path).is_err());
    }

    #[test]
    fn a_spill_leaves_no_temporary_and_does_not_follow_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0000-Sample.arrow");
        sample().spill(&path).unwrap();
        sample().spill(&path).unwrap(); // again, replacing it
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["0000-Sample.arrow"]);
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            let victim = outside.path().join("victim");
            std::fs::write(&victim, "precious").unwrap();
            let linked = dir.path().join("0001-Sample.arrow");
            std::os::unix::fs::symlink(&victim, &linked).unwrap();
            let error = sample().spill(&linked).unwrap_err();
            assert!(error.to_string().contains("is a symbolic link"), "{error}");
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        }
    }
}
