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

/// Reads `$path` with `$reader` in every way a user may: untyped (printed, and projected on its
/// first column), typed as [`Row`] (which must give `Row`'s schema and convert to rows), and
/// streamed to the first error.
#[allow(unused_macros, reason = "every target but json_reader uses it")]
macro_rules! read_every_way {
    ($reader:expr, $path:expr) => {{
        let (reader, path) = (&$reader, &$path);
        if let Ok(dataset) = reader.read(path) {
            let _ = dataset.to_string();
            if let Some(first) = dataset.column_names().first() {
                let _ = reader.clone().with_projection([first.to_string()]).read(path);
            }
        }
        if let Ok(dataset) = reader.read_typed::<common::Row>(path) {
            assert_eq!(dataset.schema(), &<common::Row as setl_arrow::Schema>::arrow_schema());
            let _ = dataset.to_rows().expect("a checked dataset converts to rows");
        }
        if let Ok(stream) = reader.stream(path) {
            for batch in stream {
                if batch.is_err() {
                    break;
                }
            }
        }
    }};
}
