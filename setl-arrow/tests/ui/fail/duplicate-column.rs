use setl_arrow::Schema;

#[derive(Schema)]
struct Order {
    id: i64,
    #[schema(rename = "id")]
    other_id: i64,
}

fn main() {}
