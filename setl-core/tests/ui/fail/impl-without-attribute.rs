use setl_core::prelude::*;

#[derive(Default)]
struct Source;

impl Factory for Source {
    type Output = i64;
    fn get(&self) -> i64 { 0 }
}

fn main() {}