//! Writers killed with SIGKILL at random moments: the target keeps the old or the new complete
//! version, readers never see a writer's temporaries, and the next write removes them.
//!
//! The child writers are this test binary run again with `SETL_FAULT_CHILD` set, running the
//! ignored test `child_writer`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use setl_arrow::io::{ParquetReader, ParquetWriter, SaveMode};
use setl_arrow::Dataset;

use crate::common::{assert_whole, rows, version, Row, APPEND_ROWS};

/// The child: writes in a loop in the mode `SETL_FAULT_CHILD` names until it is killed.
#[test]
#[ignore = "run by fault_injection_kills_writers_at_random as a child process"]
fn child_writer() {
    let Ok(spec) = std::env::var("SETL_FAULT_CHILD") else { return };
    let (mode, target) = spec.split_once(':').unwrap();
    let target = PathBuf::from(target);
    let base = i64::from(std::process::id()) * 1000;
    for i in 0..2000 {
        match mode {
            "overwrite" => ParquetWriter::new()
                .with_mode(SaveMode::Overwrite)
                .with_partition_by(["k"])
                .write(&version(base + i), &target)
                .map(drop),
            "append" => ParquetWriter::new()
                .with_mode(SaveMode::Append)
                .with_partition_by(["k"])
                .write(&rows(APPEND_ROWS, "app"), &target)
                .map(drop),
            "file" => ParquetWriter::new().with_mode(SaveMode::Overwrite).write(&version(base + i), &target).map(drop),
            other => panic!("unknown child mode {other}"),
        }
        .unwrap();
    }
}

/// Every `.setl-` name in `dir` and, recursively, in `target`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".setl-") {
                found.push(entry.path());
            } else if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    found
}

fn wait_bounded(child: &mut Child, limit: Duration) {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(started.elapsed() < limit, "the child did not exit within {limit:?} after SIGKILL");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(unix)]
#[test]
fn fault_injection_kills_writers_at_random() {
    const ITERATIONS: u64 = 36;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    let file = dir.path().join("file.parquet");
    ParquetWriter::new().with_partition_by(["k"]).write(&version(0), &table).unwrap();
    ParquetWriter::new().write(&version(0), &file).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let (mut kills, mut exited, mut states, mut found, mut cleaned) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    for iteration in 0..ITERATIONS {
        let mode = ["overwrite", "append", "file"][(iteration % 3) as usize];
        let target = if mode == "file" { &file } else { &table };
        let mut child = Command::new(&exe)
            .args(["--exact", "fault_injection::child_writer", "--ignored", "--quiet", "--test-threads=1"])
            .env("SETL_FAULT_CHILD", format!("{mode}:{}", target.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // The child needs some 10-30 ms to start; kill it from before its first write to
        // well into its loop.
        std::thread::sleep(Duration::from_millis(5 + seed % 250));
        match child.try_wait().unwrap() {
            Some(_) => exited += 1,
            None => {
                child.kill().unwrap(); // SIGKILL on unix
                kills += 1;
            }
        }
        wait_bounded(&mut child, Duration::from_secs(10));
        let dead_pid = child.id();

        // The target holds one whole version, and readers see no leftover.
        let context = format!("iteration {iteration} ({mode})");
        let read: Dataset<Row> =
            ParquetReader::new().read_typed(target).unwrap_or_else(|e| panic!("{context}: read failed: {e}"));
        assert_whole(&read.to_rows().unwrap(), &context);
        if mode == "file" {
            assert_eq!(read.to_rows().unwrap().iter().filter(|r| r.k.starts_with("app")).count(), 0);
        }
        states += 1;
        let left = leftovers(dir.path());
        for path in &left {
            let name = path.file_name().unwrap();
            assert_eq!(setl_core::fs::leftover_pid(name), Some(dead_pid), "{context}: {}", path.display());
        }
        found += left.len();

        // The next write into the directory removes the dead writer's leftovers.
        if mode == "file" {
            ParquetWriter::new().with_mode(SaveMode::Overwrite).write(&version(iteration as i64), &file).unwrap();
        } else {
            ParquetWriter::new()
                .with_mode(SaveMode::Append)
                .with_partition_by(["k"])
                .write(&rows(APPEND_ROWS, "app"), &table)
                .unwrap();
        }
        let after = leftovers(dir.path());
        assert!(after.is_empty(), "{context}: left after the next write: {after:?}");
        cleaned += left.len();
    }
    eprintln!(
        "fault injection: {ITERATIONS} iterations, {kills} kills, {exited} children exited before the kill, \
         {states} states checked, {found} leftovers found, {cleaned} removed by the next write, {:.1?}",
        started.elapsed()
    );
    assert!(kills >= ITERATIONS / 2, "most children were killed while writing");
}
