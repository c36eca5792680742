//! Generated code names setl-core by absolute path, so a crate with its own `Result`, `Error`,
//! `Factory`, `Delivery`, `Option`, `Vec` and `inventory` still compiles.

#![allow(dead_code)]

type Result<T> = ::std::result::Result<T, String>;
struct Error;
trait Factory {}
struct Delivery;
struct Option;
struct Vec;
struct Box;
mod inventory {}
mod core {}
mod std {}

#[setl_core::factory]
#[derive(Default)]
struct Numbers {
    out: i64,
}

impl setl_core::Factory for Numbers {
    type Output = i64;
    fn read(&mut self) -> setl_core::Result<()> {
        self.out = 20;
        Ok(())
    }
    fn get(&self) -> i64 {
        self.out
    }
}

#[setl_core::factory(id = "doubled")]
#[derive(Default)]
struct Double {
    #[delivery(producer = Numbers)]
    numbers: setl_core::Delivery<i64>,
}

impl setl_core::Factory for Double {
    type Output = i64;
    fn get(&self) -> i64 {
        self.numbers.get() * 2
    }
}

fn main() {
    let setl = setl_core::Setl::builder().threads(1).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<Double>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<Double>().unwrap(), 40);
}
