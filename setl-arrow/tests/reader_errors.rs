//! Readers on hostile input: symbolic link loops, ambiguous CSV headers and quotes, partition
//! values that would change on the way in, JSON integers beyond `i64`. Each error names what is
//! wrong, where, and what to do.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use arrow::array::Int64Array;
use setl_arrow::io::CsvReader;
use setl_arrow::{Dataset, Error};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn write(path: &Path, text: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Runs `read` on another thread and fails the test if it does not finish within 20 s, so a
/// read that never ends cannot hang the suite.
fn within_deadline<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(read());
    });
    receiver.recv_timeout(Duration::from_secs(20)).expect("the read did not finish within 20 s")
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_in_a_directory_is_an_error_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write(&root.join("part-0.csv"), b"a\n1\n");
    write(&root.join("sub/part-1.csv"), b"a\n2\n");
    std::os::unix::fs::symlink(".", root.join("sub/a")).unwrap();
    let read_root = root.clone();
    let error = within_deadline(move || CsvReader::new().read(&read_root).map(|d| d.num_rows())).unwrap_err();
    assert!(matches!(error, Error::SymlinkLoop { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "symbolic link loop: `{}` leads back to `{}`, which contains it; remove the link, or read a path that \
             does not include it",
            root.join("sub/a").display(),
            root.join("sub").display()
        )
    );
    // Through a glob too.
    let pattern = dir.path().join("da*");
    let error = within_deadline(move || CsvReader::new().read(&pattern).map(|d| d.num_rows())).unwrap_err();
    assert!(matches!(error, Error::SymlinkLoop { .. }), "{error:?}");
}

#[cfg(unix)]
#[test]
fn links_without_a_loop_are_followed_and_hidden_names_skipped_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let elsewhere = dir.path().join("elsewhere");
    write(&root.join("b.csv"), b"a\n2\n");
    write(&root.join("a.csv"), b"a\n1\n");
    write(&root.join(".hidden.csv"), b"a\n99\n");
    write(&root.join("_SUCCESS"), b"");
    write(&elsewhere.join("c.csv"), b"a\n3\n");
    std::os::unix::fs::symlink(&elsewhere, root.join("linked"))?;
    // A dangling link with a hidden name, as an editor's lock file: skipped like any hidden name.
    std::os::unix::fs::symlink(dir.path().join("absent"), root.join(".#lock"))?;
    let read_root = root.clone();
    let data: Dataset = within_deadline(move || CsvReader::new().read(&read_root))?;
    let batch = data.compact()?;
    let column = batch.batches()[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
    assert_eq!(column.values().to_vec(), [1, 2, 3]);
    Ok(())
}
