//! Atomic writes, save modes and hive-style partitioned writes, shared by every format.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use setl_core::fs::{AtomicWrite, WriteError, WriteMode};
use setl_core::BoxError;

use crate::dataset::column_indices;
use crate::error::{Error, Result};
use crate::io::files::{escape, NULL_PARTITION};

/// What a write does when its target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// Fail with [`Error::AlreadyExists`] (the default): nothing is overwritten by accident.
    #[default]
    ErrorIfExists,
    /// Replace the target (a file is replaced atomically by a rename).
    Overwrite,
    /// Add new files to the target directory, next to those already there.
    Append,
}

/// Options every writer has.
#[derive(Debug, Clone)]
pub(crate) struct WriteOptions {
    pub(crate) mode: SaveMode,
    pub(crate) partition_by: Vec<String>,
    pub(crate) sync: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { mode: SaveMode::default(), partition_by: Vec::new(), sync: true }
    }
}

/// What a format does for the shared writer.
pub(crate) trait FormatWriter {
    /// The file extension, without the dot.
    fn extension(&self) -> &'static str;

    /// Writes `batches` (all of `schema`) to `file`, which will become `path`.
    fn write_file(&self, file: &mut File, path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()>;
}

/// Generates the writer options every format shares.
macro_rules! common_write_options {
    () => {
        /// What to do when the target exists (default [`SaveMode::ErrorIfExists`](crate::io::SaveMode)).
        pub fn with_mode(mut self, mode: $crate::io::SaveMode) -> Self {
            self.common.mode = mode;
            self
        }

        /// Whether each file is flushed to disk (`fsync`) before it is renamed into place
        /// (default true), so that after a crash the target holds either the old or the
        /// complete new data. Turning it off trades that for speed; the rename stays atomic.
        pub fn with_sync(mut self, sync: bool) -> Self {
            self.common.sync = sync;
            self
        }

        /// Writes one directory per distinct value of these columns (`col=value/`, nested in
        /// this order), as SETL's `partitionBy`; the columns are not stored in the files and
        /// come back from the directory names on read. The target is then a directory.
        pub fn with_partition_by<I, N>(mut self, columns: I) -> Self
        where
            I: IntoIterator<Item = N>,
            N: Into<String>,
        {
            self.common.partition_by = columns.into_iter().map(Into::into).collect();
            self
        }

        /// Writes `dataset` to `path` and returns the files written.
        ///
        /// Without partitioning and in modes `ErrorIfExists` and `Overwrite`, `path` is one
        /// file. With partitioning, or in mode `Append`, `path` is a directory and files are
        /// named `part-<unique>.<extension>`. Every file is written to a hidden temporary file
        /// in its directory and renamed into place, so a failed write leaves nothing behind.
        ///
        /// # Errors
        ///
        /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) in mode `ErrorIfExists`;
        /// an I/O or format error naming the file.
        pub fn write<S>(
            &self,
            dataset: &$crate::Dataset<S>,
            path: impl AsRef<std::path::Path>,
        ) -> $crate::error::Result<Vec<std::path::PathBuf>> {
            $crate::io::write::write_dataset(
                self.format_writer(),
                &self.common,
                dataset.schema(),
                dataset.batches(),
                path.as_ref(),
            )
        }
    };
}
pub(crate) use common_write_options;

/// Writes a file atomically: `write` fills a hidden temporary file in `path`'s directory, which is
/// then renamed to `path`. If `write` fails (or panics), the temporary file is removed and `path`
/// is untouched.
///
/// Useful for a format setl-arrow does not know. `mode` is `ErrorIfExists` (the rename fails if
/// `path` appeared meanwhile) or `Overwrite`; `Append` is for directories and is rejected here.
///
/// # Errors
///
/// [`Error::AlreadyExists`], [`Error::Io`], or [`Error::Write`] wrapping `write`'s error.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use setl_arrow::io::{write_atomically, SaveMode};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("hello.txt");
/// write_atomically(&path, SaveMode::ErrorIfExists, |file| Ok(file.write_all(b"hello")?))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "hello");
///
/// let failed = write_atomically(&dir.path().join("broken.txt"), SaveMode::ErrorIfExists, |file| {
///     file.write_all(b"half")?;
///     Err("disk on fire".into())
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1); // only hello.txt
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub fn write_atomically<F>(path: &Path, mode: SaveMode, write: F) -> Result<()>
where
    F: FnOnce(&mut File) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    if mode == SaveMode::Append {
        return Err(Error::InvalidOption {
            option: "mode",
            reason: "write_atomically writes one file; Append adds files to a directory".to_owned(),
        });
    }
    sweep(&setl_core::fs::parent_of(path));
    atomic_file(path, mode, true, |file| {
        write(file).map_err(|source| Error::Write { path: path.to_path_buf(), source })
    })
}

/// [`write_atomically`] with a closure returning setl-arrow's error, through
/// [`setl_core::fs::AtomicWrite`]. `mode` `Overwrite` replaces a file, never a directory.
pub(crate) fn atomic_file(
    path: &Path,
    mode: SaveMode,
    sync: bool,
    write: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let fs_mode = match mode {
        SaveMode::Overwrite => WriteMode::Replace,
        _ => WriteMode::CreateNew,
    };
    let written = AtomicWrite::new(fs_mode).sync(sync).write(path, |file| write(file).map_err(BoxError::from));
    written.map_err(|error| from_write_error(path, error))
}

/// setl-arrow's error for an error of the atomic write: the closure's own error comes back
/// as it was.
pub(crate) fn from_write_error(path: &Path, error: WriteError) -> Error {
    match error {
        WriteError::AlreadyExists { path } => Error::AlreadyExists { path },
        WriteError::Write { source, path } => match source.downcast::<Error>() {
            Ok(error) => *error,
            Err(source) => Error::Write { path, source },
        },
        other => Error::io(path, other.into()),
    }
}

/// Removes the temporaries of dead writers from `dir`; a failure only leaves them there.
pub(crate) fn sweep(dir: &Path) -> Vec<PathBuf> {
    setl_core::fs::sweep_dead(dir).map(|swept| swept.removed).unwrap_or_default()
}

/// A file name no other write of this process or another one uses.
fn unique_part_name(extension: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("part-{:05}-{:x}-{:x}.{extension}", count, std::process::id(), nanos)
}

/// Rows of a dataset grouped by partition values, in order of first appearance per key.
type Groups = BTreeMap<Vec<Option<String>>, Vec<RecordBatch>>;

fn group_by_partitions(schema: &SchemaRef, batches: &[RecordBatch], columns: &[String]) -> Result<(SchemaRef, Groups)> {
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let key_indices = column_indices(schema, &names)?;
    let data_indices: Vec<usize> = (0..schema.fields().len()).filter(|i| !key_indices.contains(i)).collect();
    if data_indices.is_empty() {
        return Err(Error::InvalidOption {
            option: "partition_by",
            reason: "cannot partition by every column: the files would have no column left".to_owned(),
        });
    }
    let data_schema = Arc::new(schema.project(&data_indices).map_err(|e| Error::arrow("partitioning", e))?);
    let mut groups: Groups = BTreeMap::new();
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = key_indices
            .iter()
            .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::arrow("formatting partition values", e))?;
        let mut rows: BTreeMap<Vec<Option<String>>, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let key: Vec<Option<String>> = key_indices
                .iter()
                .zip(&formatters)
                .map(|(&i, formatter)| {
                    if batch.column(i).is_null(row) {
                        None
                    } else {
                        Some(formatter.value(row).to_string()).filter(|v| !v.is_empty())
                    }
                })
                .collect();
            // Row indices of a batch fit in u32: Arrow arrays are limited to i32 offsets.
            rows.entry(key).or_default().push(row as u32);
        }
        let data = batch.project(&data_indices).map_err(|e| Error::arrow("partitioning", e))?;
        for (key, indices) in rows {
            let part = arrow::compute::take_record_batch(&data, &UInt32Array::from(indices))
                .map_err(|e| Error::arrow("partitioning", e))?;
            groups.entry(key).or_default().push(part);
        }
    }
    Ok((data_schema, groups))
}

fn partition_dir(root: &Path, columns: &[String], key: &[Option<String>]) -> PathBuf {
    let mut dir = root.to_path_buf();
    for (column, value) in columns.iter().zip(key) {
        let value = value.as_deref().map_or_else(|| NULL_PARTITION.to_owned(), escape);
        dir.push(format!("{}={value}", escape(column)));
    }
    dir
}

/// Writes every group of a partitioned (or appended) write, each file atomically.
/// On failure the files this call already wrote are removed.
fn write_files(
    format: &dyn FormatWriter,
    sync: bool,
    schema: &SchemaRef,
    groups: Vec<(PathBuf, Vec<RecordBatch>)>,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (dir, batches) in groups {
        let path = dir.join(unique_part_name(format.extension()));
        let result =
            atomic_file(&path, SaveMode::ErrorIfExists, sync, |file| format.write_file(file, &path, schema, &batches));
        if let Err(error) = result {
            for file in &written {
                let _ = std::fs::remove_file(file);
            }
            return Err(error);
        }
        written.push(path);
    }
    Ok(written)
}

/// Writes a dataset as the options say; see the writers' `write`.
pub(crate) fn write_dataset(
    format: &dyn FormatWriter,
    options: &WriteOptions,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: &Path,
) -> Result<Vec<PathBuf>> {
    let partitioned = !options.partition_by.is_empty();
    if !partitioned && options.mode != SaveMode::Append {
        atomic_file(path, options.mode, options.sync, |file| format.write_file(file, path, schema, batches))?;
        return Ok(vec![path.to_path_buf()]);
    }
    let (file_schema, groups) = if partitioned {
        let (data_schema, groups) = group_by_partitions(schema, batches, &options.partition_by)?;
        let groups: Vec<(Vec<Option<String>>, Vec<RecordBatch>)> = groups.into_iter().collect();
        (data_schema, groups)
    } else {
        (schema.clone(), vec![(Vec::new(), batches.to_vec())])
    };
    let layout = |root: &Path| -> Vec<(PathBuf, Vec<RecordBatch>)> {
        groups.iter().map(|(key, batches)| (partition_dir(root, &options.partition_by, key), batches.clone())).collect()
    };
    match options.mode {
        SaveMode::Append => {
            if path.is_file() {
                return Err(Error::InvalidOption {
                    option: "mode",
                    reason: format!("Append adds files to a directory, but `{}` is a file", path.display()),
                });
            }
            std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
            write_files(format, options.sync, &file_schema, layout(path))
        }
        SaveMode::ErrorIfExists | SaveMode::Overwrite => {
            if options.mode == SaveMode::ErrorIfExists && path.exists() {
                return Err(Error::AlreadyExists { path: path.to_path_buf() });
            }
            // Everything is written to a hidden staging directory next to the target, which
            // then takes the target's place.
            let parent = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
            let staging = tempfile::Builder::new()
                .prefix(".setl-staging-")
                .tempdir_in(&parent)
                .map_err(|e| Error::io(&parent, e))?;
            let staged = write_files(format, options.sync, &file_schema, layout(staging.path()))?;
            let old = if path.exists() {
                let old = tempfile::Builder::new()
                    .prefix(".setl-old-")
                    .tempdir_in(&parent)
                    .map_err(|e| Error::io(&parent, e))?;
                let old_path = old.path().join("old");
                std::fs::rename(path, &old_path).map_err(|e| Error::io(path, e))?;
                Some(old)
            } else {
                None
            };
            let staging_path = staging.keep();
            if let Err(e) = std::fs::rename(&staging_path, path) {
                let _ = std::fs::remove_dir_all(&staging_path);
                if let Some(old) = &old {
                    let _ = std::fs::rename(old.path().join("old"), path);
                }
                return Err(Error::io(path, e));
            }
            drop(old); // Removes the replaced data.
            Ok(staged
                .into_iter()
                .filter_map(|f| f.strip_prefix(&staging_path).ok().map(|rel| path.join(rel)))
                .collect())
        }
    }
}
