use setl_arrow::Schema;

#[derive(Schema)]
struct Order(i64, String);

fn main() {}
