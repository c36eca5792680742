//! Shared by the fuzz targets: a scratch file the input is written to, since the readers read
//! paths, and a typed schema to read with.

use std::path::PathBuf;
use std::sync::OnceLock;

/// A typed schema covering the types the readers parse.
#[derive(setl_arrow::Schema, Debug)]
pub struct Row {
    pub id: i64,
    pub name: Option<String>,
    pub price: Option<f64>,
    pub flag: Option<bool>,
    #[schema(decimal(12, 3))]
    pub amount: Option<i128>,
    pub day: Option<chrono::NaiveDate>,
    pub at: Option<chrono::NaiveDateTime>,
}

/// Writes `data` to this process's scratch file and returns its path.
pub fn scratch(data: &[u8], extension: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("setl-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    });
    let path = dir.join(format!("input.{extension}"));
    std::fs::write(&path, data).expect("scratch file");
    path
}
