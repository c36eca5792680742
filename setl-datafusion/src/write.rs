//! Atomic Parquet and CSV writers for datasets.
//!
//! The data goes to a hidden temporary file in the target's directory, which is renamed onto the
//! target only when complete and flushed: a reader never finds a partial file, a failed write
//! leaves nothing behind, and a file already there stays intact until the rename replaces it.
//! (setl-arrow's connectors, which also write atomically, had not landed when this was written;
//! these writers are the small part of them the DataFusion work needs.)

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use datafusion::arrow::csv::WriterBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use setl_arrow::Dataset;

use crate::error::WriteError;

/// Writes `dataset` to `path` as Parquet (snappy), atomically.
///
/// # Errors
///
/// When the directory is missing or not writable, or encoding fails; `path` is then untouched.
pub fn write_parquet<S>(dataset: &Dataset<S>, path: impl AsRef<Path>) -> Result<(), WriteError> {
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    write_atomic(path.as_ref(), |file| {
        let mut writer = ArrowWriter::try_new(file, dataset.schema().clone(), Some(properties))?;
        for batch in dataset.batches() {
            writer.write(batch)?;
        }
        writer.close()?;
        Ok(())
    })
}

/// Writes `dataset` to `path` as CSV with a header row, atomically.
///
/// # Errors
///
/// When the directory is missing or not writable, or a column cannot be written as text;
/// `path` is then untouched.
pub fn write_csv<S>(dataset: &Dataset<S>, path: impl AsRef<Path>) -> Result<(), WriteError> {
    write_atomic(path.as_ref(), |file| {
        let mut writer = WriterBuilder::new().with_header(true).build(BufWriter::with_capacity(1 << 20, file));
        for batch in dataset.batches() {
            writer.write(batch)?;
        }
        writer.into_inner().flush()?;
        Ok(())
    })
}

/// Runs `write` on a temporary file next to `path`, then renames it onto `path`.
///
/// # Errors
///
/// Whatever `write` returns, or the I/O error of creating, syncing or renaming the file; the
/// temporary file is removed in every case.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<(), WriteError> {
    let fail = |error: Box<dyn std::error::Error + Send + Sync>| WriteError::new(path.to_path_buf(), error);
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The mode a plain `File::create` gives (0666 less the umask), not a temporary file's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temporary = builder.tempfile_in(directory).map_err(|error| fail(error.into()))?;
    write(temporary.as_file_mut()).map_err(fail)?;
    temporary.as_file().sync_data().map_err(|error| fail(error.into()))?;
    temporary.persist(path).map_err(|error| fail(error.error.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn sample() -> Dataset {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("a,b"), None]))],
        )
        .unwrap();
        Dataset::try_new(schema, vec![batch]).unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn writes_csv_and_parquet_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_csv(&sample(), dir.path().join("out.csv")).unwrap();
        write_parquet(&sample(), dir.path().join("out.parquet")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("out.csv")).unwrap(), "id,name\n1,\"a,b\"\n2,\n");
        let file = File::open(dir.path().join("out.parquet")).unwrap();
        let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
            .unwrap()
            .map(|batch| batch.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 2);
        assert_eq!(entries(dir.path()), ["out.csv", "out.parquet"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        let error = write_atomic(&target, |file| {
            file.write_all(b"half a file")?;
            Err("disk full".into())
        })
        .unwrap_err();
        assert_eq!(error.to_string(), format!("writing {}: disk full", target.display()));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(entries(dir.path()), ["out.csv"]);
    }

    #[cfg(unix)]
    #[test]
    fn written_files_have_the_mode_of_created_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        File::create(dir.path().join("plain")).unwrap();
        write_csv(&sample(), dir.path().join("out.csv")).unwrap();
        assert_eq!(mode("out.csv"), mode("plain"));
    }

    #[test]
    fn a_missing_directory_names_the_file() {
        let error = write_csv(&sample(), "/nonexistent-setl-dir/out.csv").unwrap_err();
        assert!(error.to_string().starts_with("writing /nonexistent-setl-dir/out.csv: "), "{error}");
    }
}
