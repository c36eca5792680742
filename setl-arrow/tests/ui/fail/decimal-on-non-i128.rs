use setl_arrow::Schema;

#[derive(Schema)]
struct Order {
    #[schema(decimal(10, 2))]
    amount: f64,
}

fn main() {}
