//! Which files a path, directory or glob stands for, and the hive-style partition values in their
//! directory names (`country=fr/year=2024/part-0.parquet`).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The directory name of a null partition value (Hive's and Spark's).
pub(crate) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A data file and the partition values its directories give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataFile {
    pub(crate) path: PathBuf,
    /// Outermost directory first.
    pub(crate) partitions: Vec<Partition>,
}

/// One `column=value` directory above a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    /// The column, unescaped.
    pub(crate) column: String,
    /// The value, unescaped, exactly as the directory spells it; `None` is a null value.
    pub(crate) value: Option<String>,
    /// The directory, for errors about its value.
    pub(crate) dir: PathBuf,
}

/// True for names readers skip: hidden files, temporary files of a write in progress, `_SUCCESS`.
pub(crate) fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name.starts_with('_')
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The data files of `pattern`: a file, a directory (recursively) or a glob, sorted by path.
///
/// # Errors
///
/// [`Error::NoFiles`] when nothing matches; [`Error::Io`] when a directory cannot be listed.
pub(crate) fn list(pattern: &Path) -> Result<Vec<DataFile>> {
    let text = pattern.to_string_lossy();
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new(); // (file, partition root)
    if has_glob_meta(&text) {
        let root: PathBuf =
            pattern.components().take_while(|c| !has_glob_meta(&c.as_os_str().to_string_lossy())).collect();
        let paths = glob::glob(&text).map_err(|e| Error::InvalidOption {
            option: "path",
            reason: format!("`{text}` is not a valid glob: {e}"),
        })?;
        for entry in paths {
            let path = entry.map_err(|e| Error::io(e.path().to_path_buf(), e.into()))?;
            // A hidden name anywhere below the glob's literal root (`t/*/x.csv` matching
            // `t/.setl-staging-1-a/x.csv`) is a writer's temporary, not data.
            let relative = path.strip_prefix(&root).unwrap_or(&path);
            if relative.components().any(|c| matches!(c, Component::Normal(name) if is_hidden(name))) {
                continue;
            }
            if path.is_dir() {
                walk(&path, &mut |file| found.push((file, path.clone())))?;
            } else {
                found.push((path, root.clone()));
            }
        }
    } else if pattern.is_dir() {
        walk(pattern, &mut |file| found.push((file, pattern.to_path_buf())))?;
    } else if pattern.is_file() {
        // A single file named directly carries no partition values.
        let path = pattern.to_path_buf();
        return Ok(vec![DataFile { path, partitions: Vec::new() }]);
    } else if !pattern.exists() {
        return Err(Error::NoFiles { pattern: text.into_owned() });
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        return Err(Error::NoFiles { pattern: text.into_owned() });
    }
    let files: Vec<DataFile> = found
        .into_iter()
        .map(|(path, root)| {
            let partitions = partitions_of(&path, &root);
            DataFile { path, partitions }
        })
        .collect();
    check_partitions(&files)?;
    Ok(files)
}

/// The data files of a read, opened when it was planned: reading them gives the version that
/// was listed, even after a writer replaced or removed them.
pub(crate) struct Pinned(std::collections::HashMap<PathBuf, File>);

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned").field("files", &self.0.len()).finish()
    }
}

impl Pinned {
    /// A new handle on the pinned file at `path`, read from its start.
    pub(crate) fn get(&self, path: &Path) -> Option<Result<File>> {
        let file = self.0.get(path)?;
        // The clone shares the file offset with the pinned handle: rewound here, and the
        // formats use the handles of one read one after another, never two at once.
        Some(file.try_clone().and_then(|mut f| f.seek(SeekFrom::Start(0)).map(|_| f)).map_err(|e| Error::io(path, e)))
    }
}

/// Most files a read keeps open; a larger listing is read by path, without the isolation.
const MAX_PINNED: usize = 512;

/// How many times a read lists its path again when a writer replaced it meanwhile.
const ATTEMPTS: u64 = 50;

/// Lists `pattern` as [`list`] does and opens every file, so that the read sees one version:
///
/// - a directory that a setl-rs writer replaces (Overwrite, Append, both swap in a new
///   directory) is listed and opened again when it was replaced while being listed and opened,
///   or a listed file vanished: the files are those of exactly one version;
/// - a glob gets the files it matched, listed again only when one vanished;
/// - past [`MAX_PINNED`] files, files are opened by path as they are read.
///
/// # Errors
///
/// As [`list`]; [`Error::Io`] when the path was replaced during each of [`ATTEMPTS`] attempts.
pub(crate) fn snapshot(pattern: &Path) -> Result<(Vec<DataFile>, Pinned)> {
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(attempt.min(10)));
        }
        // Held open for the attempt: its inode cannot be reused by a later version.
        let root = dir_identity(pattern);
        let files = match list(pattern) {
            Ok(files) => files,
            // A directory replaced mid-listing may give a mix of two versions, inconsistent.
            Err(error) if vanished(&error) || changed(pattern, &root) => {
                last_error = Some(error);
                continue;
            }
            Err(error) => return Err(error),
        };
        let mut pinned = std::collections::HashMap::new();
        if files.len() <= MAX_PINNED {
            for file in &files {
                match File::open(&file.path) {
                    Ok(handle) => {
                        pinned.insert(file.path.clone(), handle);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        last_error = Some(Error::io(&file.path, e));
                        break;
                    }
                    Err(e) => return Err(Error::io(&file.path, e)),
                }
            }
            if pinned.len() < files.len() {
                continue;
            }
        }
        if changed(pattern, &root) {
            continue;
        }
        return Ok((files, Pinned(pinned)));
    }
    Err(last_error.unwrap_or_else(|| {
        Error::io(
            pattern,
            std::io::Error::other(format!("it was replaced during each of {ATTEMPTS} attempts to read it; try again")),
        )
    }))
}

/// An open handle on the directory `path` and its identity, or `None` if it is not one.
fn dir_identity(path: &Path) -> Option<(File, (u64, u64))> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dir = File::open(path).ok()?;
        let meta = dir.metadata().ok()?;
        meta.is_dir().then(|| (dir, (meta.dev(), meta.ino())))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Whether the directory `path` is no longer the one held in `root`.
fn changed(path: &Path, root: &Option<(File, (u64, u64))>) -> bool {
    match root {
        Some((_held, id)) => dir_identity(path).map(|(_, now)| now) != Some(*id),
        None => false,
    }
}

/// True for the error of a file or directory that disappeared while being listed.
fn vanished(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Every file under `dir`, following symbolic links, skipping hidden names, each directory's
/// entries in name order.
///
/// # Errors
///
/// [`Error::SymlinkLoop`] when a link leads back to a directory above it (the walk would never
/// end); [`Error::Io`] when an entry cannot be read.
fn walk(dir: &Path, found: &mut dyn FnMut(PathBuf)) -> Result<()> {
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        // The directory named by the caller is read whatever its name.
        .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                // Errors skip `filter_entry`: a hidden name is skipped here, so that a dangling
                // link such as an editor's `.#lock` file does not fail the read.
                if error.path().and_then(Path::file_name).is_some_and(is_hidden) && error.depth() > 0 {
                    continue;
                }
                return Err(walk_error(dir, error));
            }
        };
        if !entry.file_type().is_dir() {
            found(entry.into_path());
        }
    }
    Ok(())
}

fn walk_error(dir: &Path, error: walkdir::Error) -> Error {
    let path = error.path().unwrap_or(dir).to_path_buf();
    if let Some(ancestor) = error.loop_ancestor() {
        return Error::SymlinkLoop { path, ancestor: ancestor.to_path_buf() };
    }
    match error.into_io_error() {
        Some(source) => Error::io(path, source),
        // Only loops carry no I/O error, and they returned above.
        None => Error::io(path, std::io::Error::other("the directory walk failed")),
    }
}

fn partitions_of(file: &Path, root: &Path) -> Vec<Partition> {
    let Some(parent) = file.parent() else { return Vec::new() };
    let Ok(relative) = parent.strip_prefix(root) else { return Vec::new() };
    let mut dir = root.to_path_buf();
    let mut partitions = Vec::new();
    for component in relative.components() {
        dir.push(component);
        let Component::Normal(name) = component else { continue };
        let name = name.to_string_lossy();
        let Some((key, value)) = name.split_once('=') else { continue };
        let value = if value == NULL_PARTITION { None } else { Some(unescape(value)) };
        partitions.push(Partition { column: unescape(key), value, dir: dir.clone() });
    }
    partitions
}

/// Every file must have the same partition columns, in the same order.
fn check_partitions(files: &[DataFile]) -> Result<()> {
    let Some(first) = files.first() else { return Ok(()) };
    let keys = |f: &DataFile| f.partitions.iter().map(|p| p.column.clone()).collect::<Vec<_>>();
    let expected = keys(first);
    for file in files {
        let actual = keys(file);
        if actual != expected {
            return Err(Error::Partition {
                path: file.path.clone(),
                reason: format!(
                    "its directories give partition columns [{}], but `{}` has [{}]",
                    actual.join(", "),
                    first.path.display(),
                    expected.join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn needs_escape(c: char) -> bool {
    c.is_ascii_control()
        || matches!(c, '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^')
}

/// Escapes a partition value or column for a directory name, as Hive does (`a/b` -> `a%2Fb`).
/// The empty string is written as a null value by the caller, as Spark does.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if needs_escape(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    if out == "." || out == ".." {
        // Not a valid directory name on its own.
        return out.replace('.', "%2E");
    }
    out
}

/// Reverses [`escape`].
pub(crate) fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(hex) = value.get(i + 1..i + 3) {
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        for value in ["plain", "a/b", "x=y", "50%", "%zz", ".", "..", "日本", "a:b?c*"] {
            let escaped = escape(value);
            assert!(
                !escaped.contains('/') && !escaped.is_empty() && escaped != "." && escaped != "..",
                "{value} -> {escaped}"
            );
            assert_eq!(unescape(&escaped), value, "{value} -> {escaped}");
        }
    }
}
