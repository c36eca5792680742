//! Any bytes given to the CSV reader, untyped (inference) and typed, with options taken from the
//! first byte, give a dataset or an error, never a panic; a dataset read typed has the schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use setl_arrow::io::CsvReader;

#[macro_use]
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&options, body)) = data.split_first() else { return };
    let path = common::scratch(body, "csv");
    let mut reader = CsvReader::new()
        .with_header(options & 1 == 0)
        .with_delimiter(if options & 2 == 0 { b',' } else { b';' })
        .with_batch_size(usize::from(options >> 4) + 1);
    if options & 4 != 0 {
        reader = reader.with_null_values(["NA", ""]);
    }
    if options & 8 != 0 {
        reader = reader.with_escape(b'\\');
    }
    read_every_way!(reader, path);
});
