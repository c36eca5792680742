use setl_arrow::Schema;

#[derive(Schema)]
struct Order {
    #[schema(rename = "order_id", default = 3)]
    id: i64,
}

fn main() {}
