//! Any bytes given to the Arrow IPC reader, untyped (the file's own schema) and typed, streamed and
//! projected, give a dataset or an error, never a panic or a hang (a panic inside the format crate is
//! caught by setl-arrow and must come out as an error: see `dependency_panics.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use setl_arrow::io::IpcReader;
use setl_arrow::Schema;

#[path = "common.rs"]
mod common;
#[path = "dependency_panics.rs"]
mod dependency_panics;

fuzz_target!(|data: &[u8]| {
    dependency_panics::let_unwind();
    let Some((&options, body)) = data.split_first() else { return };
    let path = common::scratch(body, "arrow");
    let reader = IpcReader::new().with_batch_size(usize::from(options >> 4) + 1);
    if let Ok(dataset) = reader.read(&path) {
        let _ = dataset.to_string();
        if let Some(first) = dataset.column_names().first() {
            let _ = reader.clone().with_projection([first.to_string()]).read(&path);
        }
    }
    if let Ok(dataset) = reader.read_typed::<common::Row>(&path) {
        assert_eq!(dataset.schema(), &common::Row::arrow_schema());
        let _ = dataset.to_rows().expect("a checked dataset converts to rows");
    }
    if let Ok(stream) = reader.stream(&path) {
        for batch in stream {
            if batch.is_err() {
                break;
            }
        }
    }
});
