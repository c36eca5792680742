//! Generated code names everything by absolute path: a crate that shadows `Result`, `Option`,
//! `Vec`, `Schema` or `Field` still compiles.
#![allow(dead_code)]

type Result<T> = std::result::Result<T, ()>;
type Option<T> = std::vec::Vec<T>;
struct Vec;
struct Field;
trait Schema {}

#[derive(setl_arrow::Schema)]
struct Order {
    id: i64,
    note: std::option::Option<String>,
    lines: std::vec::Vec<Line>,
}

#[derive(setl_arrow::Schema)]
struct Line {
    sku: String,
}

fn main() {
    let _ = <Order as setl_arrow::Schema>::arrow_schema();
    assert_eq!(Order::NOTE, "note");
}
