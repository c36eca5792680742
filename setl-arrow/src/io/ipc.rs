//! Arrow IPC files (the Feather v2 format) through arrow-ipc.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::error::{Error, Result};
use crate::io::guard::{check_types, guarded, Guarded};
use crate::io::read::{common_read_options, FileBatches, Format, ReadOptions};
use crate::io::write::{common_write_options, FormatWriter, WriteOptions};

/// Reads Arrow IPC files, directories and globs. Each file's schema is stored in it. Batches keep
/// the sizes they were written with (the batch size option does not apply).
#[derive(Debug, Clone, Default)]
pub struct IpcReader {
    common: ReadOptions,
}

impl IpcReader {
    /// A reader with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn format(&self) -> Arc<IpcFormat> {
        Arc::new(IpcFormat)
    }

    common_read_options!();
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct IpcFormat;

/// The error for a panic of arrow-ipc on `path`.
fn panicked(path: &Path, message: &str) -> Error {
    Error::Ipc {
        path: path.to_path_buf(),
        source: arrow::error::ArrowError::IpcError(format!(
            "arrow-ipc panicked on it ({message}); the file is corrupt, or uses a feature the crate does not support"
        )),
    }
}

/// Checks that every block the footer of `file` lists lies inside the file.
///
/// arrow-ipc allocates a block's stated length before reading it, so a corrupt footer that
/// states exabytes aborts the process (an allocation failure is no panic). Anything else wrong
/// with the footer is left to arrow-ipc, which reports it.
///
/// # Errors
///
/// [`Error::Ipc`] naming the block and the file's length.
fn check_blocks(path: &Path, file: &mut File) -> Result<()> {
    let io = |e| Error::io(path, e);
    let length = file.metadata().map_err(io)?.len();
    if length < 10 {
        return Ok(());
    }
    let mut trailer = [0u8; 10];
    file.seek(SeekFrom::End(-10)).map_err(io)?;
    file.read_exact(&mut trailer).map_err(io)?;
    let Ok(footer_length) = arrow::ipc::reader::read_footer_length(trailer) else { return Ok(()) };
    let corrupt = |message: String| Error::Ipc {
        path: path.to_path_buf(),
        source: arrow::error::ArrowError::IpcError(format!("{message}; the file is truncated or corrupt")),
    };
    if footer_length as u64 > length - 10 {
        return Err(corrupt(format!("its footer is {footer_length} bytes, longer than the file ({length} bytes)")));
    }
    let mut footer = vec![0u8; footer_length];
    file.seek(SeekFrom::End(-10 - footer_length as i64)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    file.rewind().map_err(io)?;
    let Ok(footer) = arrow::ipc::root_as_footer(&footer) else { return Ok(()) };
    let kinds = [("dictionary", footer.dictionaries()), ("record batch", footer.recordBatches())];
    for (kind, blocks) in kinds {
        for (index, block) in blocks.iter().flatten().enumerate() {
            let end = u64::try_from(block.offset()).ok().and_then(|offset| {
                let metadata = u64::try_from(block.metaDataLength()).ok()?;
                let body = u64::try_from(block.bodyLength()).ok()?;
                offset.checked_add(metadata)?.checked_add(body)
            });
            if end.is_none_or(|end| end > length) {
                return Err(corrupt(format!(
                    "{kind} {index} of its footer (offset {}, {} bytes of metadata, {} bytes of body) does not lie \
                     within the file ({length} bytes)",
                    block.offset(),
                    block.metaDataLength(),
                    block.bodyLength()
                )));
            }
        }
    }
    Ok(())
}

fn open_reader(
    path: &Path,
    projection: Option<Vec<usize>>,
    options: &ReadOptions,
) -> Result<FileReader<BufReader<File>>> {
    let mut file = options.open(path)?;
    check_blocks(path, &mut file)?;
    let reader = guarded(
        || {
            FileReader::try_new(BufReader::new(file), projection)
                .map_err(|source| Error::Ipc { path: path.to_path_buf(), source })
        },
        |message| panicked(path, &message),
    )?;
    check_types(&reader.schema()).map_err(|source| Error::Ipc { path: path.to_path_buf(), source })?;
    Ok(reader)
}

impl Format for IpcFormat {
    fn self_describing(&self) -> bool {
        true
    }

    fn file_schema(&self, path: &Path, options: &ReadOptions) -> Result<Option<ArrowSchema>> {
        Ok(Some(open_reader(path, None, options)?.schema().as_ref().clone()))
    }

    fn schema_for(&self, path: &Path, _: &SchemaRef, options: &ReadOptions) -> Result<SchemaRef> {
        Ok(open_reader(path, None, options)?.schema())
    }

    fn open(&self, path: &Path, _: &SchemaRef, projection: &[usize], options: &ReadOptions) -> Result<FileBatches> {
        let reader = open_reader(path, Some(projection.to_vec()), options)?;
        let path = path.to_path_buf();
        let panic_path = path.clone();
        let batches = reader.map(move |batch| batch.map_err(|source| Error::Ipc { path: path.clone(), source }));
        Ok(Box::new(Guarded::new(batches, move |message: String| panicked(&panic_path, &message))))
    }
}

/// Writes a dataset as an Arrow IPC file, atomically.
#[derive(Debug, Clone, Default)]
pub struct IpcWriter {
    common: WriteOptions,
}

impl IpcWriter {
    /// A writer with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn format_writer(&self) -> &Self {
        self
    }

    common_write_options!();
}

impl FormatWriter for IpcWriter {
    fn stored_schema(&self, path: &Path) -> Result<Option<SchemaRef>> {
        Ok(Some(open_reader(path, None, &ReadOptions::default())?.schema()))
    }

    fn extension(&self) -> &'static str {
        "arrow"
    }

    fn write_file(&self, file: &mut File, path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let error = |source| Error::Ipc { path: path.to_path_buf(), source };
        let mut writer = FileWriter::try_new(&mut *file, schema).map_err(error)?;
        for batch in batches {
            writer.write(batch).map_err(error)?;
        }
        writer.finish().map_err(error)?;
        Ok(())
    }
}
