//! The hardening of writes: atomic files, partitioned targets that stay inside themselves,
//! partition names readers can read, schema checks on Append, and what concurrent readers see.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use setl_arrow::io::{CsvWriter, ParquetReader, ParquetWriter, SaveMode};
use setl_arrow::{Dataset, Error, Schema};

use crate::common::{assert_whole, rows, version, Row};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Runs `body` on a thread and fails (instead of hanging) if it takes longer than `limit`.
fn with_watchdog(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test did not finish within {limit:?}: something blocks"),
    }
}

#[test]
fn overwriting_a_directory_with_a_file_is_an_error_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sales");
    ParquetWriter::new().with_partition_by(["k"]).write(&rows(6, "a"), &target).unwrap();
    let before = ParquetReader::new().read(&target).unwrap().num_rows();
    let error = ParquetWriter::new().with_mode(SaveMode::Overwrite).write(&rows(2, "b"), &target).unwrap_err();
    assert!(error.to_string().contains(&format!("`{}` is a directory", target.display())), "{error}");
    assert_eq!(ParquetReader::new().read(&target).unwrap().num_rows(), before);
    assert_eq!(names(dir.path()), ["sales"]);
}

#[cfg(unix)]
#[test]
fn append_refuses_a_partition_directory_that_is_a_link_out_of_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = dir.path().join("sales");
    ParquetWriter::new().with_partition_by(["k"]).write(&rows(3, "a"), &target).unwrap();
    // `k=b0` points outside the target.
    std::os::unix::fs::symlink(outside.path(), target.join("k=b0")).unwrap();
    let error = ParquetWriter::new()
        .with_mode(SaveMode::Append)
        .with_partition_by(["k"])
        .write(&rows(3, "b"), &target)
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("`{}` is a symbolic link inside the target", target.join("k=b0").display())),
        "{message}"
    );
    assert!(names(outside.path()).is_empty(), "nothing was written outside the target");
    // The target itself a link: refused too.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let error = ParquetWriter::new().with_mode(SaveMode::Append).write(&rows(1, "c"), &link).unwrap_err();
    assert!(error.to_string().contains("is a symbolic link"), "{error}");
}

#[test]
fn partition_columns_readers_would_skip_are_refused() {
    #[derive(Schema, Debug, Clone, PartialEq)]
    struct Hidden {
        _k: String,
        v: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::from_rows(&[Hidden { _k: "x".into(), v: 1 }]).unwrap();
    let error = CsvWriter::new().with_partition_by(["_k"]).write(&data, dir.path().join("t")).unwrap_err();
    assert!(matches!(error, Error::InvalidOption { option: "partition_by", .. }), "{error}");
    assert!(
        error.to_string().contains("column `_k` would name directories `_k=<value>`, which readers skip"),
        "{error}"
    );
    assert!(names(dir.path()).is_empty());
}

#[test]
fn append_with_another_schema_is_refused_listing_the_columns() {
    #[derive(Schema, Debug, Clone, PartialEq)]
    struct Other {
        k: String,
        v: String,
        extra: Option<i32>,
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    ParquetWriter::new().with_partition_by(["k"]).write(&rows(3, "a"), &target).unwrap();
    let other = Dataset::from_rows(&[Other { k: "a0".into(), v: "x".into(), extra: None }]).unwrap();
    let error =
        ParquetWriter::new().with_mode(SaveMode::Append).with_partition_by(["k"]).write(&other, &target).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::AppendSchema { .. }), "{message}");
    assert!(message.contains("(2 columns differ)"), "{message}");
    assert!(message.contains("column `v` has type Utf8, expected Int64"), "{message}");
    assert!(message.contains("extra column `extra` (Int32)"), "{message}");
    assert_eq!(ParquetReader::new().read(&target).unwrap().num_rows(), 3, "still readable");
    // The same schema appends.
    ParquetWriter::new().with_mode(SaveMode::Append).with_partition_by(["k"]).write(&rows(3, "a"), &target).unwrap();
    assert_eq!(ParquetReader::new().read(&target).unwrap().num_rows(), 6);
}

#[test]
fn readers_see_a_whole_version_during_overwrites_and_appends() {
    with_watchdog(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        let writer = ParquetWriter::new().with_partition_by(["k"]).with_sync(false);
        writer.write(&version(0), &target).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Every state a reader may see: each overwrite version, then that version plus i appends.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (target, stop) = (target.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let read: Dataset<Row> =
                            ParquetReader::new().read_typed(&target).unwrap_or_else(|e| panic!("read failed: {e}"));
                        assert_whole(&read.to_rows().unwrap(), "a read beside the writers");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let appender = {
            let target = target.clone();
            std::thread::spawn(move || {
                for _ in 0..15 {
                    ParquetWriter::new()
                        .with_mode(SaveMode::Append)
                        .with_partition_by(["k"])
                        .with_sync(false)
                        .write(&rows(4, "app"), &target)
                        .unwrap();
                }
            })
        };
        for n in 1..=15 {
            writer.clone().with_mode(SaveMode::Overwrite).write(&version(n), &target).unwrap();
        }
        appender.join().unwrap();
        // After the last overwrite, only appends that came after it are there.
        let last = ParquetReader::new().read(&target).unwrap();
        let base = version(15).num_rows() as i64;
        assert_eq!((last.num_rows() as i64 - base) % 4, 0, "{} rows", last.num_rows());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
        assert_eq!(names(dir.path()), ["t"], "no staging directory left");
    });
}

#[test]
fn concurrent_appenders_keep_each_others_files() {
    with_watchdog(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        let appenders: Vec<_> = (0..3)
            .map(|_| {
                let target = target.clone();
                std::thread::spawn(move || {
                    for _ in 0..8 {
                        ParquetWriter::new()
                            .with_mode(SaveMode::Append)
                            .with_partition_by(["k"])
                            .with_sync(false)
                            .write(&rows(3, "a"), &target)
                            .unwrap();
                    }
                })
            })
            .collect();
        for appender in appenders {
            appender.join().unwrap();
        }
        assert_eq!(ParquetReader::new().read(&target).unwrap().num_rows(), 3 * 8 * 3);
    });
}

#[test]
fn readers_never_list_writers_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    ParquetWriter::new().with_partition_by(["k"]).write(&rows(3, "a"), &target).unwrap();
    // What killed writers leave next to and inside a target.
    let staging = dir.path().join(".setl-staging-999999-abc/k=x");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(
        std::fs::read_dir(target.join("k=a0")).unwrap().next().unwrap().unwrap().path(),
        staging.join("part-1.parquet"),
    )
    .unwrap();
    std::fs::write(target.join("k=a0/.setl-999999-abcdef.tmp"), "half a file").unwrap();
    for pattern in [target.clone(), dir.path().join("*"), dir.path().join("*/*"), dir.path().join("*/*/*.parquet")] {
        let read = ParquetReader::new().read(&pattern).unwrap_or_else(|e| panic!("{}: {e}", pattern.display()));
        assert_eq!(read.num_rows(), 3, "{}", pattern.display());
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_target_moved_aside_by_a_dead_writer_is_put_back_not_swept() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    ParquetWriter::new().with_partition_by(["k"]).write(&rows(3, "a"), &target).unwrap();
    // A writer without RENAME_EXCHANGE, killed between its two renames.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let old = dir.path().join(format!(".setl-old-{dead}-Xy12Zq"));
    std::fs::create_dir(&old).unwrap();
    std::fs::rename(&target, old.join("t")).unwrap();
    ParquetWriter::new().with_mode(SaveMode::Append).with_partition_by(["k"]).write(&rows(3, "b"), &target).unwrap();
    assert_eq!(ParquetReader::new().read(&target).unwrap().num_rows(), 6, "the old rows are back");
    assert_eq!(names(dir.path()), ["t"]);
}
