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
//! [`SaveMode`] says what happens when the target exists.
//!
//! # What is atomic, what is synced, what a concurrent reader sees
//!
//! Every file goes through [`setl_core::fs::write_atomic`]: it is written to an unpredictable
//! hidden temporary `.setl-<pid>-<random>.tmp` in its directory, flushed to disk, renamed into
//! place, and the directory flushed (`with_sync(false)` skips both flushes, not the rename).
//!
//! - **One file** (no partitioning, `ErrorIfExists` or `Overwrite`): a reader sees the old
//!   file or the new one, whole. A directory or a symbolic link at the path is never replaced.
//! - **A directory** (partitioned, or `Append`): the files are written into a staging
//!   directory `.setl-staging-<pid>-<random>` next to the target, which then takes the
//!   target's place in one step: on Linux `renameat2(RENAME_EXCHANGE)` swaps them (a first
//!   write `RENAME_NOREPLACE`), then the replaced version is removed. An `Append` first
//!   hard-links the target's files into the staging directory (no data is copied; the cost is
//!   one link per existing file), so it too is a whole new version. Writers of one target take
//!   an exclusive `flock` on it for the swap, so concurrent appenders keep each other's files.
//!   Where names cannot be exchanged (not Linux, or a file system without it) the target is
//!   renamed aside and the staging directory renamed in: a reader between the two renames
//!   finds no target.
//! - **Readers** of a directory list it, open every file (up to 512), and list again if the
//!   directory was swapped meanwhile or a file vanished (up to 50 times), then read the open
//!   files. A reader thus sees exactly one version: before or after each Overwrite, before or
//!   after each whole Append, never a part. Larger listings, and globs, are read file by file,
//!   without that guarantee. Names starting with `.` or `_` are never read.
//! - **Crashes**: a killed writer leaves its temporaries (named with its pid), never a partial
//!   target; the next write into the same directory removes those of dead processes
//!   ([`setl_core::fs::sweep_dead`]).
//! - **Never outside the target**: a writer refuses a target that is a symbolic link or holds
//!   one, and partition columns whose directories readers would skip (`_k`, `.k`). An Append
//!   whose schema differs from the target's files (Parquet, IPC) is refused, listing the
//!   columns.
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
