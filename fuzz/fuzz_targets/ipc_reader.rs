//! Any bytes given to the Arrow IPC reader, untyped (the file's own schema) and typed, streamed and
//! projected, give a dataset or an error, never a panic or a hang (a panic inside the format crate is
//! caught by setl-arrow and must come out as an error: see `dependency_panics.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use setl_arrow::io::IpcReader;

#[macro_use]
#[path = "common.rs"]
mod common;
#[path = "dependency_panics.rs"]
mod dependency_panics;

fuzz_target!(|data: &[u8]| {
    dependency_panics::let_unwind();
    let Some((&options, body)) = data.split_first() else { return };
    let path = common::scratch(body, "arrow");
    let reader = IpcReader::new().with_batch_size(usize::from(options >> 4) + 1);
    read_every_way!(reader, path);
});
