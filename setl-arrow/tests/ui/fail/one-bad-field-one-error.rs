//! One mistake in a schema gives one error, on the mistake: the type is still a schema, so its
//! uses below report nothing more.
use setl_arrow::{Dataset, Schema};

#[derive(Schema)]
struct Order {
    id: i64,
    #[schema(default = 0.0)]
    amount: f64,
}

fn rows(orders: &[Order]) -> Dataset<Order> {
    Dataset::from_rows(orders).unwrap()
}

fn main() {
    let _ = rows(&[]);
}
