use setl_arrow::Schema;

#[derive(Schema)]
struct Order {
    #[schema(decimal(40, 2))]
    amount: i128,
}

fn main() {}
