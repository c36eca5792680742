use setl_arrow::Schema;

#[derive(Schema)]
struct Order {
    id: i64,
    tags: std::collections::HashMap<String, String>,
}

fn main() {}
