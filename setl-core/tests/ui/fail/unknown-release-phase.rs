use setl_core::prelude::*;

#[factory]
#[derive(Default)]
struct Numbers;
impl Factory for Numbers {
    type Output = Vec<i64>;
    fn get(&self) -> Vec<i64> { Vec::new() }
}

#[factory]
#[derive(Default)]
struct Sum {
    #[delivery(producer = Numbers, release = get)]
    numbers: Delivery<Vec<i64>>,
}
impl Factory for Sum {
    type Output = i64;
    fn get(&self) -> i64 { 0 }
}

fn main() {}
