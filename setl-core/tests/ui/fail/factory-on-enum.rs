use setl_core::prelude::*;

#[factory]
enum Source {
    Csv,
    Parquet,
}

fn main() {}