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
use crate::error::{ColumnDiff, Error, Result};
use crate::io::files::{escape, NULL_PARTITION};

/// What a write does when its target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// Fail with [`Error::AlreadyExists`] (the default): nothing is overwritten by accident.
    #[default]
    ErrorIfExists,
    /// Replace the target: a file by an atomic rename (never a directory: that is an error), a
    /// partitioned directory by swapping in a complete new one (see the module doc of
    /// [`crate::io`]).
    Overwrite,
    /// Add new files to the target directory, next to those already there, all at once: a
    /// reader sees all of them or none. The data must have the schema of the files there.
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

    /// The schema stored in an existing file of this format, to check an Append against;
    /// `None` for formats whose files store none (CSV, JSON).
    fn stored_schema(&self, _path: &Path) -> Result<Option<SchemaRef>> {
        Ok(None)
    }
}

/// Generates the writer options every format shares.
macro_rules! common_write_options {
    () => {
        /// What to do when the target exists (default [`SaveMode::ErrorIfExists`](crate::io::SaveMode)).
        pub fn with_mode(mut self, mode: $crate::io::SaveMode) -> Self {
            self.common.mode = mode;
            self
        }

        /// Whether each file is flushed to disk (`fsync`) before it is renamed into place, and
        /// each directory changed after it (default true), so that after a power loss the
        /// target holds either the old or the complete new data. Turning it off trades that
        /// for speed; what concurrent readers see stays the same.
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
        /// named `part-<unique>.<extension>`. A file is written to a hidden temporary file
        /// and renamed into place; a directory is staged next to the target and swapped in
        /// whole, so a failed or killed write leaves the target as it was and a concurrent
        /// reader sees the old or the new version (details in the module doc of
        /// [`crate::io`]). Temporaries of dead writers next to the target are removed first.
        ///
        /// # Errors
        ///
        /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) in mode `ErrorIfExists`;
        /// [`Error::AppendSchema`](crate::Error::AppendSchema) for an Append of another schema;
        /// [`Error::InvalidOption`](crate::Error::InvalidOption) for a symbolic link at or in
        /// the target, or a partition column starting with `.` or `_`; an I/O or format error
        /// naming the file.
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

/// Writes a file atomically, through [`setl_core::fs::write_atomic`]: `write` fills an
/// unpredictable temporary file `.setl-<pid>-<random>.tmp`, created exclusively in `path`'s
/// directory; it is flushed to disk (`fsync`), renamed to `path`, and the directory flushed. A
/// concurrent reader of `path` sees the old file or the complete new one. If `write` fails (or
/// panics), the temporary file is removed and `path` is untouched. Temporaries of dead
/// processes in that directory are removed first.
///
/// Useful for a format setl-arrow does not know. `mode` is `ErrorIfExists` (the rename fails if
/// `path` appeared meanwhile) or `Overwrite`; `Append` is for directories and is rejected here.
///
/// # Errors
///
/// [`Error::AlreadyExists`]; [`Error::Io`], also when `path` is a directory or a symbolic link
/// (neither is replaced); or [`Error::Write`] wrapping `write`'s error.
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

/// Refuses partition columns whose directories readers would skip as hidden.
fn check_partition_names(columns: &[String]) -> Result<()> {
    for column in columns {
        if column.is_empty() || column.starts_with(['.', '_']) {
            return Err(Error::InvalidOption {
                option: "partition_by",
                reason: format!(
                    "column `{column}` would name directories `{}=<value>`, which readers skip (hidden names \
                     start with `.` or `_`, and a name needs a column); rename the column before partitioning by it",
                    escape(column)
                ),
            });
        }
    }
    Ok(())
}

/// A symbolic link inside (or at) a target directory: a writer never writes through one.
fn symlink_error(link: &Path, target: &Path) -> Error {
    Error::InvalidOption {
        option: "path",
        reason: format!(
            "`{}` is a symbolic link inside the target `{}`; setl-rs writes only inside its target and does not \
             follow links: replace the link by a directory, or write with SaveMode::Overwrite",
            link.display(),
            target.display()
        ),
    }
}

/// Walks the target `root` (which must not be a link), refusing links; calls `found` with each
/// entry's path relative to `root` and whether it is a directory, parents first, skipping the
/// temporaries of writers (`.setl-*`).
fn walk_target(root: &Path, dir: &Path, found: &mut dyn FnMut(&Path, bool) -> Result<()>) -> Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if setl_core::fs::leftover_pid(&entry.file_name()).is_some() {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_symlink() {
            return Err(symlink_error(&path, root));
        }
        // Relative to `root`, which `path` is under by construction.
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        found(&relative, kind.is_dir())?;
        if kind.is_dir() {
            walk_target(root, &path, found)?;
        }
    }
    Ok(())
}

/// Hard-links every file of the target `root` into `staging` (same relative paths), so that
/// the staging directory holds the target's files plus the new ones without copying data.
fn link_target(root: &Path, staging: &Path) -> Result<()> {
    walk_target(root, root, &mut |relative, is_dir| {
        let to = staging.join(relative);
        if is_dir {
            return std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e));
        }
        match std::fs::hard_link(root.join(relative), &to) {
            Ok(()) => Ok(()),
            // Linked by an earlier attempt of this commit.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io(&to, e)),
        }
    })
}

/// Checks an Append's data schema against a file already in the target.
fn check_append_schema(format: &dyn FormatWriter, root: &Path, schema: &SchemaRef) -> Result<()> {
    let mut existing = None;
    let extension = format!(".{}", format.extension());
    walk_target(root, root, &mut |relative, is_dir| {
        let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hidden = relative.components().any(|c| c.as_os_str().to_string_lossy().starts_with(['.', '_']));
        if existing.is_none() && !is_dir && !hidden && name.ends_with(&extension) {
            existing = Some(root.join(relative));
        }
        Ok(())
    })?;
    let Some(existing) = existing else { return Ok(()) };
    let Some(stored) = format.stored_schema(&existing)? else { return Ok(()) };
    let mut columns = Vec::new();
    for field in stored.fields() {
        match schema.field_with_name(field.name()) {
            Err(_) => {
                columns.push(ColumnDiff::Missing { name: field.name().clone(), data_type: field.data_type().clone() })
            }
            Ok(new) if new.data_type() != field.data_type() => columns.push(ColumnDiff::WrongType {
                name: field.name().clone(),
                expected: field.data_type().clone(),
                actual: new.data_type().clone(),
            }),
            Ok(new) if new.is_nullable() && !field.is_nullable() => {
                columns.push(ColumnDiff::Nullable { name: field.name().clone() })
            }
            Ok(_) => {}
        }
    }
    for field in schema.fields() {
        if stored.field_with_name(field.name()).is_err() {
            columns.push(ColumnDiff::Extra { name: field.name().clone(), data_type: field.data_type().clone() });
        }
    }
    if columns.is_empty() {
        return Ok(());
    }
    Err(Error::AppendSchema { target: root.to_path_buf(), existing, columns })
}

/// How a staged directory takes the target's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// The staged directory replaces the target (or fails if there is one, with `ErrorIfExists`).
    Replace { error_if_exists: bool },
    /// The staged directory gets the target's files too, then replaces it.
    Append,
}

/// Writes `groups` into a staging directory next to `path` and makes it `path` in one step; see
/// the module doc of `crate::io` for what readers see.
fn commit_dir(
    format: &dyn FormatWriter,
    sync: bool,
    schema: &SchemaRef,
    path: &Path,
    groups: Vec<(PathBuf, Vec<RecordBatch>)>,
    commit: Commit,
) -> Result<Vec<PathBuf>> {
    let parent = setl_core::fs::parent_of(path);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let prefix = setl_core::fs::temp_prefix(Some("staging"));
    // Dropped on every return: removes the staging directory, or the replaced data it holds.
    let staging = tempfile::Builder::new().prefix(&prefix).tempdir_in(&parent).map_err(|e| Error::io(&parent, e))?;
    let groups = groups
        .into_iter()
        .map(|(dir, batches)| (staging.path().join(dir.strip_prefix(path).unwrap_or(&dir)), batches))
        .collect();
    let staged = write_files(format, sync, schema, groups)?;
    let sync_dirs = |root: &Path| -> Result<()> {
        if sync {
            let mut dirs: Vec<PathBuf> = staged.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
            dirs.sort();
            dirs.dedup();
            dirs.push(root.to_path_buf());
            for dir in dirs {
                setl_core::fs::sync_dir(&dir).map_err(|e| from_write_error(&dir, e))?;
            }
        }
        Ok(())
    };
    for _ in 0..100 {
        // Held until the commit: no other setl-rs writer replaces `path` meanwhile.
        let lock = setl_core::fs::DirLock::lock(path).map_err(|e| from_write_error(path, e))?;
        let exists = std::fs::symlink_metadata(path).is_ok();
        if exists && commit == Commit::Append {
            check_append_schema(format, path, schema)?;
            link_target(path, staging.path())?;
        }
        sync_dirs(staging.path())?;
        if !exists {
            match setl_core::fs::rename_noreplace(staging.path(), path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if commit == (Commit::Replace { error_if_exists: true }) {
                        return Err(Error::AlreadyExists { path: path.to_path_buf() });
                    }
                    continue; // Another writer created it meanwhile: build on it.
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        } else if commit == (Commit::Replace { error_if_exists: true }) {
            return Err(Error::AlreadyExists { path: path.to_path_buf() });
        } else {
            match setl_core::fs::exchange(staging.path(), path) {
                Ok(()) => {
                    // `staging` now holds the replaced data; a replaced file is removed here,
                    // a directory when `staging` is dropped.
                    if std::fs::symlink_metadata(staging.path()).is_ok_and(|m| !m.is_dir()) {
                        let _ = std::fs::remove_file(staging.path());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => two_renames(staging.path(), path, &parent)?,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        drop(lock);
        if sync {
            setl_core::fs::sync_dir(&parent).map_err(|e| from_write_error(&parent, e))?;
        }
        return Ok(staged
            .into_iter()
            .filter_map(|f| f.strip_prefix(staging.path()).ok().map(|rel| path.join(rel)))
            .collect());
    }
    Err(Error::io(path, std::io::Error::other("other writers kept creating and replacing it; try again")))
}

/// Where names cannot be exchanged: the target moves aside, then the staging directory takes its
/// place. A reader between the two renames finds no target; a crash between them leaves the
/// old data in `.setl-old-<pid>-*/<target's name>` next to it, which [`restore_interrupted`]
/// puts back.
fn two_renames(staging: &Path, path: &Path, parent: &Path) -> Result<()> {
    let prefix = setl_core::fs::temp_prefix(Some("old"));
    let old = tempfile::Builder::new().prefix(&prefix).tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let old_path = old.path().join(path.file_name().unwrap_or(std::ffi::OsStr::new("old")));
    std::fs::rename(path, &old_path).map_err(|e| Error::io(path, e))?;
    if let Err(e) = std::fs::rename(staging, path) {
        let _ = std::fs::rename(&old_path, path);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Puts back a target that a dead writer moved aside (in [`two_renames`]) and could not replace:
/// the sweep would otherwise remove the only copy of its data.
fn restore_interrupted(path: &Path) {
    let (Some(name), Err(_)) = (path.file_name(), std::fs::symlink_metadata(path)) else { return };
    let Ok(entries) = std::fs::read_dir(setl_core::fs::parent_of(path)) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let dead = file_name.to_string_lossy().starts_with(".setl-old-")
            && setl_core::fs::leftover_pid(&file_name).and_then(setl_core::fs::process_is_gone) == Some(true);
        if dead && std::fs::rename(entry.path().join(name), path).is_ok() {
            return;
        }
    }
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
    check_partition_names(&options.partition_by)?;
    restore_interrupted(path);
    sweep(&setl_core::fs::parent_of(path));
    if !partitioned && options.mode != SaveMode::Append {
        atomic_file(path, options.mode, options.sync, |file| format.write_file(file, path, schema, batches))?;
        return Ok(vec![path.to_path_buf()]);
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlink_error(path, path));
    }
    let (file_schema, groups) = if partitioned {
        let (data_schema, groups) = group_by_partitions(schema, batches, &options.partition_by)?;
        let groups: Vec<(Vec<Option<String>>, Vec<RecordBatch>)> = groups.into_iter().collect();
        (data_schema, groups)
    } else {
        (schema.clone(), vec![(Vec::new(), batches.to_vec())])
    };
    let layout: Vec<(PathBuf, Vec<RecordBatch>)> = groups
        .iter()
        .map(|(key, batches)| (partition_dir(path, &options.partition_by, key), batches.clone()))
        .collect();
    match options.mode {
        SaveMode::Append => {
            if path.is_file() {
                return Err(Error::InvalidOption {
                    option: "mode",
                    reason: format!("Append adds files to a directory, but `{}` is a file", path.display()),
                });
            }
            commit_dir(format, options.sync, &file_schema, path, layout, Commit::Append)
        }
        SaveMode::ErrorIfExists | SaveMode::Overwrite => {
            let error_if_exists = options.mode == SaveMode::ErrorIfExists;
            if error_if_exists && path.exists() {
                return Err(Error::AlreadyExists { path: path.to_path_buf() });
            }
            commit_dir(format, options.sync, &file_schema, path, layout, Commit::Replace { error_if_exists })
        }
    }
}
