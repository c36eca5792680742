//! The hardening of writes: atomic files, partitioned targets that stay inside themselves,
//! partition names readers can read, schema checks on Append, and what concurrent readers see.

use std::path::Path;

use setl_arrow::io::{ParquetReader, ParquetWriter, SaveMode};
use setl_arrow::{Dataset, Schema};

#[derive(Schema, Debug, Clone, PartialEq)]
struct Row {
    k: String,
    v: i64,
}

fn rows(n: i64, tag: &str) -> Dataset<Row> {
    let rows: Vec<Row> = (0..n).map(|i| Row { k: format!("{tag}{}", i % 3), v: i }).collect();
    Dataset::from_rows(&rows).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
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
