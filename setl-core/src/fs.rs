//! Atomic file writes, and the removal of what dead writers left behind. Every setl-rs crate
//! writes its files through here.
//!
//! [`write_atomic`] fills an unpredictable temporary file, created exclusively in the target's
//! own directory, then renames it over the target: a reader of the target sees the old file or
//! the complete new one, never a part, and two writers of one path never tear it (the last
//! rename wins). With [`AtomicWrite::sync`] on (the default) the file is flushed to disk before
//! the rename and the directory after it, so after a power loss the target too holds the old or
//! the new contents.
//!
//! Every temporary a writer makes is named with its process id: `.setl-<pid>-<random>.tmp` for
//! files, `.setl-<kind>-<pid>-<random>` for directories (see [`temp_prefix`]), so that a process
//! killed in the middle of a write can be told from one still writing. [`sweep_dead`] removes
//! those of processes that are gone; setl-rs's writers call it on the directory they write
//! into. On Linux a process is gone when `/proc/<pid>` is; elsewhere nothing is removed.
//!
//! The trade-off: process ids identify a writer on one machine only. Two machines (or two
//! containers with separate process-id namespaces) writing into one shared directory cannot
//! see each other's processes, and one may remove a temporary of the other's write in
//! progress, which then fails with an error naming it (the target is never damaged).

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::BoxError;

/// What [`write_atomic`] does when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace the target file, atomically.
    Replace,
    /// Fail with [`WriteError::AlreadyExists`] if the target exists, also if it appeared while
    /// the file was being written.
    CreateNew,
}

/// Why an atomic write failed. The target is untouched and the temporary file is gone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The target exists and the mode is [`WriteMode::CreateNew`].
    #[error("`{}` already exists; remove it or write with WriteMode::Replace", .path.display())]
    AlreadyExists {
        /// The target.
        path: PathBuf,
    },
    /// The target is a directory, which a file write never replaces.
    #[error("`{}` is a directory; a file write does not replace it: remove it or choose another path", .path.display())]
    IsDirectory {
        /// The target.
        path: PathBuf,
    },
    /// The target is a symbolic link; writes do not follow or replace links.
    #[error("`{}` is a symbolic link; setl-rs does not write through links: write to the path it points to, or remove it", .path.display())]
    Symlink {
        /// The target.
        path: PathBuf,
    },
    /// An I/O error, with what was being done and on which path.
    #[error("could not {action} `{}`: {source}", .path.display())]
    Io {
        /// What was being done (`create a temporary file in`, `rename into place`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The caller's write function failed.
    #[error("writing `{}` failed: {source}", .path.display())]
    Write {
        /// The target.
        path: PathBuf,
        /// The write function's error.
        #[source]
        source: BoxError,
    },
}

impl WriteError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        WriteError::Io { action, path: path.to_path_buf(), source }
    }
}

impl From<WriteError> for std::io::Error {
    /// The error as an `io::Error` of the matching kind, its message naming the path.
    fn from(error: WriteError) -> Self {
        let kind = match &error {
            WriteError::AlreadyExists { .. } => std::io::ErrorKind::AlreadyExists,
            WriteError::IsDirectory { .. } | WriteError::Symlink { .. } => std::io::ErrorKind::InvalidInput,
            WriteError::Io { source, .. } => source.kind(),
            WriteError::Write { .. } => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

/// An atomic write with its options; [`write_atomic`] is the usual shortcut.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use setl_core::fs::{AtomicWrite, WriteMode};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("scratch.bin");
/// // A scratch file that need not survive a power loss: skip the fsyncs.
/// AtomicWrite::new(WriteMode::Replace).sync(false).write(&path, |file| Ok(file.write_all(b"x")?))?;
/// assert_eq!(std::fs::read(&path)?, b"x");
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AtomicWrite {
    mode: WriteMode,
    sync: bool,
}

impl AtomicWrite {
    /// A write in `mode` that syncs.
    pub fn new(mode: WriteMode) -> Self {
        AtomicWrite { mode, sync: true }
    }

    /// Whether the file is flushed to disk (`fsync`) before its rename and its directory after
    /// it (default true). Without it the rename stays atomic for readers, but after a power
    /// loss the target may hold neither version.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Writes `path` atomically: `write` fills a temporary file `.setl-<pid>-<random>.tmp`
    /// created exclusively in `path`'s directory (made if missing), which is then synced and
    /// renamed to `path`, and the directory synced. If `write` fails or panics, the temporary
    /// file is removed and `path` is untouched.
    ///
    /// # Errors
    ///
    /// [`WriteError::AlreadyExists`] in mode [`WriteMode::CreateNew`];
    /// [`WriteError::IsDirectory`] or [`WriteError::Symlink`] when `path` is one;
    /// [`WriteError::Write`] with `write`'s error; [`WriteError::Io`] naming the path.
    pub fn write<F>(&self, path: &Path, write: F) -> Result<(), WriteError>
    where
        F: FnOnce(&mut File) -> Result<(), BoxError>,
    {
        check_target(path, self.mode)?;
        let parent = parent_of(path);
        std::fs::create_dir_all(&parent).map_err(|e| WriteError::io("create the directory", &parent, e))?;
        let mut builder = tempfile::Builder::new();
        let prefix = temp_prefix(None);
        builder.prefix(&prefix).suffix(".tmp");
        // The file keeps the mode a plain `File::create` gives (0666 less the umask), not the
        // owner-only 0600 of temporary files: it becomes the output, readable as any other.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        // Exclusive creation (O_EXCL) under a random name: a planted file or link is never
        // opened, it only makes tempfile pick another name.
        let mut temp =
            builder.tempfile_in(&parent).map_err(|e| WriteError::io("create a temporary file in", &parent, e))?;
        // On error or panic, `temp` is dropped, which deletes the temporary file.
        write(temp.as_file_mut()).map_err(|source| WriteError::Write { path: path.to_path_buf(), source })?;
        if self.sync {
            temp.as_file().sync_all().map_err(|e| WriteError::io("flush to disk", temp.path(), e))?;
        }
        // Checked again just before the rename: a directory or link that appeared meanwhile
        // is not replaced (a rename does not follow a link; it would replace the link itself).
        check_target(path, self.mode)?;
        match self.mode {
            WriteMode::Replace => {
                temp.persist(path).map_err(|e| WriteError::io("rename into place", path, e.error))?;
            }
            WriteMode::CreateNew => {
                temp.persist_noclobber(path).map_err(|e| {
                    if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                        WriteError::AlreadyExists { path: path.to_path_buf() }
                    } else {
                        WriteError::io("rename into place", path, e.error)
                    }
                })?;
            }
        }
        if self.sync {
            sync_dir(&parent)?;
        }
        Ok(())
    }
}

/// Writes `path` atomically and durably; see [`AtomicWrite::write`].
///
/// # Errors
///
/// As [`AtomicWrite::write`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use setl_core::fs::{write_atomic, WriteError, WriteMode};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("hello.txt");
/// write_atomic(&path, WriteMode::CreateNew, |file| Ok(file.write_all(b"hello")?))?;
/// let again = write_atomic(&path, WriteMode::CreateNew, |file| Ok(file.write_all(b"bye")?));
/// assert!(matches!(again, Err(WriteError::AlreadyExists { .. })));
///
/// let failed = write_atomic(&path, WriteMode::Replace, |file| {
///     file.write_all(b"half")?;
///     Err("disk on fire".into())
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read_to_string(&path)?, "hello");
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1); // no temporary file left
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub fn write_atomic<F>(path: &Path, mode: WriteMode, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut File) -> Result<(), BoxError>,
{
    AtomicWrite::new(mode).write(path, write)
}

/// Refuses a target that is a link or a directory, or exists in mode `CreateNew`.
fn check_target(path: &Path, mode: WriteMode) -> Result<(), WriteError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(WriteError::Symlink { path: path.to_path_buf() }),
        Ok(meta) if meta.is_dir() => Err(WriteError::IsDirectory { path: path.to_path_buf() }),
        Ok(_) if mode == WriteMode::CreateNew => Err(WriteError::AlreadyExists { path: path.to_path_buf() }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WriteError::io("inspect", path, e)),
    }
}

/// Swaps two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`): each name then stands for
/// what the other did, and no observer ever finds either name missing. Both must exist, on one
/// file system.
///
/// # Errors
///
/// An error of kind [`std::io::ErrorKind::Unsupported`] on other platforms and on file systems
/// that cannot exchange; the I/O error otherwise.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "this file system cannot exchange names"))
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "exchanging names needs Linux"))
    }
}

/// Renames `from` to `to` unless `to` exists. On Linux the check and the rename are one step
/// (`renameat2(RENAME_NOREPLACE)`); elsewhere a `to` that appears between them is replaced.
///
/// # Errors
///
/// An error of kind [`std::io::ErrorKind::AlreadyExists`] if `to` exists; the I/O error
/// otherwise.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the target exists"));
    }
    std::fs::rename(from, to)
}

/// An exclusive lock on a directory, held until dropped, that setl-rs writers take on a target
/// directory before replacing it, so that two of them never build on the same old version
/// (two appenders would lose each other's files). Unix `flock`; the kernel releases it when
/// its process dies. Elsewhere it locks nothing.
#[derive(Debug)]
pub struct DirLock {
    #[cfg(unix)]
    _locked: File,
}

impl DirLock {
    /// Locks the directory at `dir`, waiting for the holder. A lock is on the directory, not
    /// its name: if the holder swapped another directory in under `dir`, the new one is locked
    /// instead, so on return `dir` names the locked directory. `Ok(None)` when `dir` does not
    /// exist (anymore).
    ///
    /// # Errors
    ///
    /// [`WriteError::Io`] naming `dir`, also when it was replaced a hundred times in a row.
    pub fn lock(dir: &Path) -> Result<Option<DirLock>, WriteError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            for _ in 0..100 {
                let file = match File::open(dir) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(WriteError::io("open to lock", dir, e)),
                };
                rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                    .map_err(|e| WriteError::io("lock", dir, e.into()))?;
                let locked = file.metadata().map_err(|e| WriteError::io("inspect", dir, e))?;
                match std::fs::metadata(dir) {
                    Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                        return Ok(Some(DirLock { _locked: file }));
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(WriteError::io("inspect", dir, e)),
                }
            }
            Err(WriteError::io(
                "lock",
                dir,
                std::io::Error::other("it was replaced by other writers a hundred times in a row"),
            ))
        }
        #[cfg(not(unix))]
        {
            Ok(dir.is_dir().then_some(DirLock {}))
        }
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes a directory's entries to disk (after a rename or removal in it). A no-op where
/// directories cannot be opened (Windows).
///
/// # Errors
///
/// [`WriteError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WriteError::io("flush to disk the directory", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The name prefix of this process's temporaries: `.setl-<pid>-` for files (`kind` `None`),
/// `.setl-<kind>-<pid>-` for directories (`kind` such as `staging`; letters only). The
/// random part and any suffix follow; [`sweep_dead`] recognizes the names.
pub fn temp_prefix(kind: Option<&str>) -> String {
    let pid = std::process::id();
    match kind {
        Some(kind) => format!(".setl-{kind}-{pid}-"),
        None => format!(".setl-{pid}-"),
    }
}

/// The process id in the name of a setl-rs temporary (see [`temp_prefix`]), or `None` when
/// the name is not one.
///
/// ```
/// use std::ffi::OsStr;
/// use setl_core::fs::leftover_pid;
///
/// assert_eq!(leftover_pid(OsStr::new(".setl-4242-a8Xk2p.tmp")), Some(4242));
/// assert_eq!(leftover_pid(OsStr::new(".setl-staging-17-Qz81")), Some(17));
/// assert_eq!(leftover_pid(OsStr::new("part-00001.parquet")), None);
/// ```
pub fn leftover_pid(name: &OsStr) -> Option<u32> {
    let rest = name.to_str()?.strip_prefix(".setl-")?;
    pid_after(rest)
}

/// The pid at the start of `rest` (`<pid>-...`), after an optional `<letters>-`.
fn pid_after(rest: &str) -> Option<u32> {
    let rest = match rest.split_once('-') {
        Some((kind, tail)) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase()) => tail,
        _ => rest,
    };
    let (pid, random) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || random.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is gone: `Some(true)` when it surely is, `Some(false)` when it runs,
/// `None` when this platform cannot tell (then nothing is removed). Linux: `/proc/<pid>`.
pub fn process_is_gone(pid: u32) -> Option<bool> {
    if pid == std::process::id() {
        return Some(false);
    }
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        return Some(!Path::new("/proc").join(pid.to_string()).exists());
    }
    None
}

/// What [`sweep_dead`] found in a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// The leftovers of dead writers, removed.
    pub removed: Vec<PathBuf>,
    /// Leftovers of writers still running (or whose state this platform cannot tell), kept.
    pub kept: Vec<PathBuf>,
}

/// Removes from `dir` (not its subdirectories) the temporaries of setl-rs writers that are gone
/// (names as [`temp_prefix`] makes them); those of running writers stay. A missing `dir` has
/// nothing to sweep.
///
/// It reads the directory once, so it costs one listing of `dir` per call; writers call it once
/// per write, on the directory they write into.
///
/// # Errors
///
/// [`WriteError::Io`] naming the directory or the leftover that could not be removed.
///
/// # Examples
///
/// ```
/// use setl_core::fs::sweep_dead;
///
/// let dir = tempfile::tempdir()?;
/// let mine = dir.path().join(format!(".setl-{}-abcdef.tmp", std::process::id()));
/// std::fs::write(&mine, "in progress")?;
/// let swept = sweep_dead(dir.path())?;
/// assert!(swept.removed.is_empty());
/// assert_eq!(swept.kept, [mine]); // this process is alive
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub fn sweep_dead(dir: &Path) -> Result<Swept, WriteError> {
    sweep_named(dir, leftover_pid)
}

/// Removes from `base` the spill directories `setl-spill-<pid>-<random>` of processes that are
/// gone; see [`sweep_dead`].
///
/// # Errors
///
/// As [`sweep_dead`].
pub fn sweep_dead_spill_dirs(base: &Path) -> Result<Swept, WriteError> {
    sweep_named(base, |name| pid_after(name.to_str()?.strip_prefix(SPILL_PREFIX)?))
}

/// The name prefix of spill directories; the pid, a dash and a random part follow.
pub const SPILL_PREFIX: &str = "setl-spill-";

fn sweep_named(dir: &Path, pid_of: impl Fn(&OsStr) -> Option<u32>) -> Result<Swept, WriteError> {
    let mut swept = Swept::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(swept),
        Err(e) => return Err(WriteError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| WriteError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(pid) = pid_of(&name) else { continue };
        let path = entry.path();
        if process_is_gone(pid) != Some(true) {
            swept.kept.push(path);
            continue;
        }
        // A link is removed as a link, never followed.
        let is_dir = entry.file_type().map_err(|e| WriteError::io("inspect", &path, e))?.is_dir();
        let removed = if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match removed {
            Ok(()) => swept.removed.push(path),
            // Another sweeper was first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WriteError::io("remove the leftover", &path, e)),
        }
    }
    swept.removed.sort();
    swept.kept.sort();
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn replace_and_create_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, WriteMode::CreateNew, |f| Ok(f.write_all(b"one")?)).unwrap();
        let error = write_atomic(&path, WriteMode::CreateNew, |f| Ok(f.write_all(b"two")?)).unwrap_err();
        assert!(matches!(error, WriteError::AlreadyExists { .. }), "{error}");
        assert!(error.to_string().contains("out.txt` already exists"), "{error}");
        write_atomic(&path, WriteMode::Replace, |f| Ok(f.write_all(b"three")?)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(names(&dir.path().join("sub")), ["out.txt"]);
    }

    #[test]
    fn a_failing_or_panicking_write_leaves_the_target_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let error = write_atomic(&path, WriteMode::Replace, |f| {
            f.write_all(b"half")?;
            Err("disk on fire".into())
        })
        .unwrap_err();
        assert_eq!(error.to_string(), format!("writing `{}` failed: disk on fire", path.display()));
        let panicked = std::panic::catch_unwind(|| {
            let _ = write_atomic(&path, WriteMode::Replace, |f| {
                f.write_all(b"half").unwrap();
                panic!("boom")
            });
        });
        assert!(panicked.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_directory_at_the_target_is_an_error_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep.csv"), "a\n1\n").unwrap();
        for mode in [WriteMode::Replace, WriteMode::CreateNew] {
            let error = write_atomic(&path, mode, |f| Ok(f.write_all(b"x")?)).unwrap_err();
            assert!(matches!(error, WriteError::IsDirectory { .. }), "{error}");
            assert!(error.to_string().starts_with(&format!("`{}` is a directory", path.display())), "{error}");
        }
        assert_eq!(std::fs::read(path.join("keep.csv")).unwrap(), b"a\n1\n");
        assert_eq!(names(dir.path()), ["data"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_neither_followed_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        for mode in [WriteMode::Replace, WriteMode::CreateNew] {
            let error = write_atomic(&path, mode, |f| Ok(f.write_all(b"evil")?)).unwrap_err();
            assert!(matches!(error, WriteError::Symlink { .. }), "{error}");
            assert!(error.to_string().contains("is a symbolic link"), "{error}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn temporaries_are_named_with_the_pid_and_unpredictable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut seen = Vec::new();
        for _ in 0..2 {
            write_atomic(&path, WriteMode::Replace, |_| {
                let names = names(dir.path());
                seen.extend(names.into_iter().filter(|n| n != "out.txt"));
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_ne!(seen[0], seen[1]);
        for name in &seen {
            assert!(name.starts_with(&format!(".setl-{}-", std::process::id())) && name.ends_with(".tmp"), "{name}");
            assert_eq!(leftover_pid(OsStr::new(name)), Some(std::process::id()));
        }
    }

    #[test]
    fn concurrent_writers_of_one_path_never_tear_it() {
        const WRITERS: usize = 4;
        const ROUNDS: usize = 40;
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("shared.bin"));
        // Version v of writer w: 64 KiB of one byte, so any mix of two versions shows.
        let contents = |w: usize, v: usize| vec![(w * ROUNDS + v) as u8; 64 * 1024];
        write_atomic(&path, WriteMode::Replace, |f| Ok(f.write_all(&contents(0, 0))?)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (path, done) = (path.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut reads = 0;
                    while !done.load(Ordering::Relaxed) {
                        let bytes = std::fs::read(&*path).unwrap();
                        assert_eq!(bytes.len(), 64 * 1024, "a torn read");
                        assert!(bytes.iter().all(|&b| b == bytes[0]), "a mix of two versions");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for v in 0..ROUNDS {
                        let data = contents(w, v);
                        write_atomic(&path, WriteMode::Replace, |f| Ok(f.write_all(&data)?)).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
        assert_eq!(names(dir.path()), ["shared.bin"]);
    }

    #[test]
    fn the_sweep_removes_dead_writers_leftovers_only() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let me = std::process::id();
        let dead_file = dir.path().join(format!(".setl-{dead}-aaaaaa.tmp"));
        let dead_dir = dir.path().join(format!(".setl-staging-{dead}-bbbbbb"));
        let live_file = dir.path().join(format!(".setl-{me}-cccccc.tmp"));
        std::fs::write(&dead_file, "x").unwrap();
        std::fs::create_dir_all(dead_dir.join("k=1")).unwrap();
        std::fs::write(dead_dir.join("k=1/part.csv"), "x").unwrap();
        std::fs::write(&live_file, "x").unwrap();
        std::fs::write(dir.path().join(".setl-notapid-x.tmp"), "x").unwrap();
        std::fs::write(dir.path().join("data.csv"), "x").unwrap();
        let swept = sweep_dead(dir.path()).unwrap();
        if cfg!(target_os = "linux") {
            let mut removed = vec![dead_file, dead_dir];
            removed.sort();
            assert_eq!(swept.removed, removed);
            assert_eq!(swept.kept, [live_file]);
            assert_eq!(
                names(dir.path()),
                [format!(".setl-{me}-cccccc.tmp"), ".setl-notapid-x.tmp".into(), "data.csv".into()]
            );
        }
        assert_eq!(sweep_dead(&dir.path().join("missing")).unwrap(), Swept::default());
    }

    #[test]
    fn the_spill_sweep_removes_dead_runs_directories() {
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join(format!("{SPILL_PREFIX}{}-abc", dead_pid()));
        let live = base.path().join(format!("{SPILL_PREFIX}{}-def", std::process::id()));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("0000-Source.blob"), "x").unwrap();
        std::fs::create_dir_all(&live).unwrap();
        std::fs::create_dir_all(base.path().join("setl-spill-legacy")).unwrap();
        let swept = sweep_dead_spill_dirs(base.path()).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(swept.removed, [dead]);
            assert_eq!(swept.kept, [live]);
        }
    }

    #[test]
    fn leftover_names_are_parsed_strictly() {
        assert_eq!(leftover_pid(OsStr::new(".setl-12-x.tmp")), Some(12));
        assert_eq!(leftover_pid(OsStr::new(".setl-old-12-x")), Some(12));
        assert_eq!(leftover_pid(OsStr::new(".setl-12")), None);
        assert_eq!(leftover_pid(OsStr::new(".setl--x")), None);
        assert_eq!(leftover_pid(OsStr::new(".setl-Old-12-x")), None);
        assert_eq!(leftover_pid(OsStr::new("setl-12-x")), None);
        assert_eq!(leftover_pid(OsStr::new(".setl-99999999999-x")), None);
    }
    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_directories_and_noreplace_refuses_an_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("one"), "1").unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("two"), "2").unwrap();
        exchange(&a, &b).unwrap();
        assert_eq!(names(&a), ["two"]);
        assert_eq!(names(&b), ["one"]);
        let error = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        let c = dir.path().join("c");
        rename_noreplace(&a, &c).unwrap();
        assert_eq!(names(&c), ["two"]);
        assert!(exchange(&a, &b).is_err(), "a is gone");
    }

    #[cfg(unix)]
    #[test]
    fn a_dir_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let target = Arc::new(dir.path().join("t"));
        assert!(DirLock::lock(&target).unwrap().is_none(), "nothing to lock");
        std::fs::create_dir(&*target).unwrap();
        let held = DirLock::lock(&target).unwrap().unwrap();
        let acquired = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (target, acquired) = (target.clone(), acquired.clone());
            std::thread::spawn(move || {
                let _lock = DirLock::lock(&target).unwrap().unwrap();
                acquired.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!acquired.load(Ordering::SeqCst), "the second holder waits");
        drop(held);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }
}
