//! Atomic Parquet and CSV writers for datasets.
//!
//! The data goes to a hidden temporary file in the target's directory, which is renamed onto the
//! target only when complete and synced (setl-arrow's [`write_atomically`]): a reader never finds
//! a partial file, a failed write leaves nothing behind, and a file already there stays intact
//! until the rename replaces it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use datafusion::arrow::csv::WriterBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use setl_arrow::io::{write_atomically, SaveMode};
use setl_arrow::Dataset;

use crate::error::WriteError;

/// Writes `dataset` to `path` as Parquet (snappy), atomically.
///
/// # Errors
///
/// When the directory cannot be created or written to, `path` is a directory, or encoding
/// fails; `path` is then untouched.
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
/// When the directory cannot be created or written to, `path` is a directory, or a column
/// cannot be written as text; `path` is then untouched.
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

/// Runs `write` on a temporary file next to `path`, then renames it onto `path` (replacing a
/// file already there). The directory is created when missing. This is setl-arrow's
/// [`write_atomically`] with its error in this crate's shape.
///
/// # Errors
///
/// Whatever `write` returns, or the I/O error of creating, syncing or renaming the file; the
/// temporary file is removed in every case and a file already at `path` stays as it was.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<(), WriteError> {
    // setl-arrow's Overwrite replaces a directory; an output file never should.
    if path.is_dir() {
        return Err(WriteError::new(path.to_path_buf(), "a directory is in the way; choose a file name"));
    }
    write_atomically(path, SaveMode::Overwrite, write).map_err(|error| match error {
        // The write function's own error, without setl-arrow's wrapper repeating the path.
        setl_arrow::Error::Write { source, .. } => WriteError::new(path.to_path_buf(), source),
        other => WriteError::new(path.to_path_buf(), other),
    })
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
    fn a_directory_at_the_target_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("results");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("kept.txt"), "kept").unwrap();
        let error = write_csv(&sample(), &target).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("writing {}: a directory is in the way; choose a file name", target.display())
        );
        assert_eq!(std::fs::read_to_string(target.join("kept.txt")).unwrap(), "kept");
    }

    #[test]
    fn a_missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        write_csv(&sample(), dir.path().join("results/q1.csv")).unwrap();
        assert_eq!(entries(&dir.path().join("results")), ["q1.csv"]);
    }

    #[test]
    fn a_directory_that_cannot_be_made_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-file"), "").unwrap();
        let target = dir.path().join("a-file/out.csv");
        let error = write_csv(&sample(), &target).unwrap_err();
        assert!(error.to_string().starts_with(&format!("writing {}: ", target.display())), "{error}");
        assert_eq!(error.path(), target);
    }
}
