//! File connectors: CSV, newline-delimited JSON, Parquet and Arrow IPC.
//!
//! Every reader reads a file, a directory (recursively, following symbolic links, skipping names
//! that start with `.` or `_`; a link back to a directory above it is an error) or a glob
//! (`data/*.csv`) into a [`Dataset`](crate::Dataset), or streams it batch by batch
//! ([`BatchStream`]). Directories written with `partition_by` (hive-style `col=value/`) are read
//! back with the partition columns restored, each value as its directory spells it: a column is
//! `Int64` only when every value is an integer that prints back the same (`7`, not `007`), else
//! `Utf8`, unless `with_partition_schema` or the read's schema gives its type. A typed read
//! (`read_typed::<S>()`) uses `S`'s schema instead of inferring one and checks every file
//! against it.
//!
//! Every writer writes atomically: data goes to a hidden temporary file in the target directory
//! and is renamed into place, so a failed or interrupted write leaves no partial file where a
//! reader would find it. [`SaveMode`] says what happens when the target exists.
//!
//! ```
//! use setl_arrow::io::{CsvReader, CsvWriter, SaveMode};
//! use setl_arrow::{Dataset, Schema};
//!
//! #[derive(Schema, Debug, PartialEq, Clone)]
//! struct Sale { region: String, amount: i64 }
//!
//! let dir = tempfile::tempdir()?;
//! let sales = Dataset::from_rows(&[
//!     Sale { region: "eu".into(), amount: 3 },
//!     Sale { region: "us".into(), amount: 5 },
//! ])?;
//! CsvWriter::new().with_partition_by(["region"]).write(&sales, dir.path().join("sales"))?;
//! let back: Dataset<Sale> = CsvReader::new().read_typed(dir.path().join("sales"))?;
//! assert_eq!(back.to_rows()?, sales.to_rows()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod csv;
mod csv_quotes;
mod files;
mod guard;
mod ipc;
mod json;
mod json_infer;
mod parquet;
mod read;
mod write;

pub use self::csv::{CsvReader, CsvWriter};
pub use self::ipc::{IpcReader, IpcWriter};
pub use self::json::{JsonReader, JsonWriter};
pub use self::parquet::{ParquetCompression, ParquetReader, ParquetWriter};
pub use self::read::BatchStream;
pub use self::write::{write_atomically, SaveMode};
