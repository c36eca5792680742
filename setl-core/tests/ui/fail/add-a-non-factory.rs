use setl_core::prelude::*;

struct NotAFactory;

fn main() {
    let _stage = Stage::new().add_factory(NotAFactory);
}
