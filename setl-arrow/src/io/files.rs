//! Which files a path, directory or glob stands for, and the hive-style partition values in their
//! directory names (`country=fr/year=2024/part-0.parquet`).

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
            if path.file_name().is_some_and(is_hidden) {
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
