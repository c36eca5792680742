use setl_core::prelude::*;

#[factory]
struct Source(Delivery<i64>);

fn main() {}