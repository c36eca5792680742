//! Any bytes given to the newline-delimited JSON reader, untyped (inference) and typed, give a
//! dataset or an error, never a panic; a dataset read typed has the schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use setl_arrow::io::JsonReader;
use setl_arrow::Schema;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&options, body)) = data.split_first() else { return };
    let path = common::scratch(body, "json");
    let reader = JsonReader::new().with_batch_size(usize::from(options >> 4) + 1);
    if let Ok(dataset) = reader.read(&path) {
        let _ = dataset.to_string();
    }
    if let Ok(dataset) = reader.read_typed::<common::Row>(&path) {
        assert_eq!(dataset.schema(), &common::Row::arrow_schema());
        let _ = dataset.to_rows().expect("a checked dataset converts to rows");
    }
});
