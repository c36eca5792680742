use setl_core::prelude::*;

#[factory]
#[derive(Default)]
struct Source;

fn main() {}