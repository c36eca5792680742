use setl_core::prelude::*;

#[factory]
struct Source<T> {
    rows: Vec<T>,
}

fn main() {}