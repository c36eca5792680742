use setl_core::prelude::*;

#[factory(storage = disk_only)]
#[derive(Default)]
struct Cached;

impl Factory for Cached {
    type Output = Vec<u8>;
    fn get(&self) -> Vec<u8> {
        Vec::new()
    }
}

fn main() {}
