//! Fixtures of the write tests: rows tagged by the version or append that wrote them, and the
//! check that a read saw whole versions only.

use setl_arrow::{Dataset, Schema};

#[derive(Schema, Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) k: String,
    pub(crate) v: i64,
}

/// `n` rows whose keys are `tag` and the row's index modulo 3 (three partitions).
pub(crate) fn rows(n: i64, tag: &str) -> Dataset<Row> {
    let rows: Vec<Row> = (0..n).map(|i| Row { k: format!("{tag}{}", i % 3), v: i }).collect();
    Dataset::from_rows(&rows).unwrap()
}

/// Version `n` of an overwritten target: 3 to 7 rows, partitions `gN-0` to `gN-2`.
pub(crate) fn version(n: i64) -> Dataset<Row> {
    rows(3 + n % 5, &format!("g{n}-"))
}

/// Rows of one append (keys `app...`).
pub(crate) const APPEND_ROWS: i64 = 4;

/// Checks a read holds one overwrite's version `gN-` whole, plus whole appends.
pub(crate) fn assert_whole(rows: &[Row], context: &str) {
    let generations: std::collections::BTreeSet<&str> =
        rows.iter().filter(|r| r.k.starts_with('g')).map(|r| r.k.split_once('-').unwrap().0).collect();
    assert_eq!(generations.len(), 1, "{context}: one version, not {generations:?}");
    let generation: i64 = generations.first().unwrap()[1..].parse().unwrap();
    let base = rows.iter().filter(|r| r.k.starts_with('g')).count();
    assert_eq!(base, version(generation).num_rows(), "{context}: version {generation} whole");
    let appended = rows.iter().filter(|r| r.k.starts_with("app")).count();
    assert_eq!(appended % APPEND_ROWS as usize, 0, "{context}: whole appends only, {appended} rows");
}
