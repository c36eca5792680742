//! Parquet through the parquet crate's Arrow reader and writer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::io::guard::{check_types, guarded, Guarded};
use crate::io::read::{common_read_options, FileBatches, Format, ReadOptions};
use crate::io::write::{common_write_options, FormatWriter, WriteOptions};

/// Reads Parquet files, directories and globs. Each file's schema is stored in it; projection
/// reads only the chosen columns from disk. Truncated or non-Parquet files are reported by name.
#[derive(Debug, Clone, Default)]
pub struct ParquetReader {
    common: ReadOptions,
}

impl ParquetReader {
    /// A reader with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn format(&self) -> Arc<ParquetFormat> {
        Arc::new(ParquetFormat::default())
    }

    common_read_options!();
}

/// The Parquet format of one read. It remembers the footer it parsed last, so that planning a
/// file and opening it parse the footer once.
#[derive(Debug, Default)]
pub(crate) struct ParquetFormat {
    last: Mutex<Option<(PathBuf, ArrowReaderMetadata)>>,
}

/// The error for a panic of the parquet crate on `path`.
fn panicked(path: &Path, message: &str) -> Error {
    Error::Parquet {
        path: path.to_path_buf(),
        source: parquet::errors::ParquetError::General(format!(
            "the parquet crate panicked on it ({message}); the file is corrupt, or uses a feature the crate does \
             not support"
        )),
    }
}

impl ParquetFormat {
    fn builder(&self, path: &Path, options: &ReadOptions) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = options.open(path)?;
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let metadata = match last.as_ref() {
            Some((cached, metadata)) if cached == path => metadata.clone(),
            _ => {
                let metadata = guarded(
                    || {
                        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                            .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })
                    },
                    |message| panicked(path, &message),
                )?;
                check_types(metadata.schema()).map_err(|e| Error::Parquet {
                    path: path.to_path_buf(),
                    source: parquet::errors::ParquetError::ArrowError(e.to_string()),
                })?;
                *last = Some((path.to_path_buf(), metadata.clone()));
                metadata
            }
        };
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata))
    }
}

impl Format for ParquetFormat {
    fn self_describing(&self) -> bool {
        true
    }

    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>> {
        Ok(Some(self.builder(path, options)?.schema().as_ref().clone()))
    }

    fn schema_for(&self, path: &Path, _: &SchemaRef, options: &ReadOptions) -> Result<SchemaRef> {
        Ok(self.builder(path, options)?.schema().clone())
    }

    fn open(&self, path: &Path, _: &SchemaRef, projection: &[usize], options: &ReadOptions) -> Result<FileBatches> {
        let builder = self.builder(path, options)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), projection.iter().copied());
        let reader = guarded(
            || {
                builder
                    .with_batch_size(options.batch_size)
                    .with_projection(mask)
                    .build()
                    .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })
            },
            |message| panicked(path, &message),
        )?;
        let path = path.to_path_buf();
        let panic_path = path.clone();
        let batches = reader.map(move |batch| {
            batch.map_err(|e| Error::Parquet {
                path: path.clone(),
                source: parquet::errors::ParquetError::ArrowError(e.to_string()),
            })
        });
        Ok(Box::new(Guarded::new(batches, move |message: String| panicked(&panic_path, &message))))
    }
}

/// The compression of Parquet pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCompression {
    /// No compression.
    Uncompressed,
    /// Snappy (the default): fast, moderate ratio.
    #[default]
    Snappy,
    /// Zstandard at a level from 1 to 22: smaller files, slower writes.
    Zstd(i32),
}

/// Writes a dataset as Parquet, atomically. Defaults: snappy, row groups of at most 1 Mi rows.
#[derive(Debug, Clone)]
pub struct ParquetWriter {
    common: WriteOptions,
    compression: ParquetCompression,
    row_group_size: usize,
}

impl Default for ParquetWriter {
    fn default() -> Self {
        ParquetWriter {
            common: WriteOptions::default(),
            compression: ParquetCompression::Snappy,
            row_group_size: 1024 * 1024,
        }
    }
}

impl ParquetWriter {
    /// A writer with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The page compression (default snappy).
    pub fn with_compression(mut self, compression: ParquetCompression) -> Self {
        self.compression = compression;
        self
    }

    /// The maximum number of rows per row group (default 1 Mi; 0 is an error at write).
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows;
        self
    }

    fn format_writer(&self) -> &Self {
        self
    }

    fn properties(&self) -> Result<WriterProperties> {
        if self.row_group_size == 0 {
            return Err(Error::InvalidOption { option: "row_group_size", reason: "must be at least 1".to_owned() });
        }
        let compression = match self.compression {
            ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Zstd(level) => Compression::ZSTD(
                ZstdLevel::try_new(level)
                    .map_err(|e| Error::InvalidOption { option: "compression", reason: e.to_string() })?,
            ),
        };
        Ok(WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_size))
            .build())
    }

    common_write_options!();
}

impl FormatWriter for ParquetWriter {
    fn stored_schema(&self, path: &Path) -> Result<Option<SchemaRef>> {
        Ok(Some(ParquetFormat::default().builder(path, &ReadOptions::default())?.schema().clone()))
    }

    fn extension(&self) -> &'static str {
        "parquet"
    }

    fn write_file(&self, file: &mut File, path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let error = |source| Error::Parquet { path: path.to_path_buf(), source };
        let mut writer = ArrowWriter::try_new(&mut *file, schema.clone(), Some(self.properties()?)).map_err(error)?;
        for batch in batches {
            writer.write(batch).map_err(error)?;
        }
        writer.close().map_err(error)?;
        Ok(())
    }
}
