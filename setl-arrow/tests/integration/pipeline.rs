//! A setl-core pipeline delivers a typed `Dataset<Orders>` from one factory to another.

use setl_arrow::io::{CsvReader, CsvWriter};
use setl_arrow::{Dataset, Schema};
use setl_core::prelude::*;

#[derive(Schema, Debug, Clone, PartialEq)]
struct Orders {
    id: i64,
    customer: String,
    amount: f64,
}

#[derive(Schema, Debug, Clone, PartialEq)]
struct Totals {
    customer: String,
    total: f64,
}

/// Reads the orders file into a typed dataset.
#[factory]
struct LoadOrders {
    path: std::path::PathBuf,
    orders: Option<Dataset<Orders>>,
}

impl Factory for LoadOrders {
    type Output = Dataset<Orders>;
    fn read(&mut self) -> Result<()> {
        self.orders = Some(CsvReader::new().read_typed(&self.path)?);
        Ok(())
    }
    fn get(&self) -> Dataset<Orders> {
        self.orders.clone().unwrap_or_else(Dataset::empty)
    }
}

/// Sums the amounts per customer.
#[factory]
#[derive(Default)]
struct SumByCustomer {
    #[delivery(producer = LoadOrders)]
    orders: Delivery<Dataset<Orders>>,
    totals: Option<Dataset<Totals>>,
}

impl Factory for SumByCustomer {
    type Output = Dataset<Totals>;
    fn process(&mut self) -> Result<()> {
        let mut totals: std::collections::BTreeMap<String, f64> = Default::default();
        for order in self.orders.get().to_rows()? {
            *totals.entry(order.customer).or_default() += order.amount;
        }
        let rows: Vec<Totals> = totals.into_iter().map(|(customer, total)| Totals { customer, total }).collect();
        self.totals = Some(Dataset::from_rows(&rows)?);
        Ok(())
    }
    fn get(&self) -> Dataset<Totals> {
        self.totals.clone().unwrap_or_else(Dataset::empty)
    }
}

#[test]
fn a_typed_dataset_flows_between_factories() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("orders.csv");
    let orders = vec![
        Orders { id: 1, customer: "ann".into(), amount: 2.5 },
        Orders { id: 2, customer: "bob".into(), amount: 1.0 },
        Orders { id: 3, customer: "ann".into(), amount: 4.0 },
    ];
    CsvWriter::new().write(&Dataset::from_rows(&orders)?, &path)?;

    let setl = Setl::builder().threads(2).build().map_err(|e| e.to_string())?;
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(LoadOrders { path: path.clone(), orders: None }))
        .add_stage_from_type::<SumByCustomer>();
    pipeline.run().map_err(|e| e.to_string())?;
    let totals = pipeline.output::<SumByCustomer>().map_err(|e| e.to_string())?;
    assert_eq!(
        totals.to_rows()?,
        vec![Totals { customer: "ann".into(), total: 6.5 }, Totals { customer: "bob".into(), total: 1.0 }]
    );
    Ok(())
}

#[test]
fn a_bad_file_fails_the_factory_with_the_location() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("orders.csv");
    std::fs::write(&path, "id,customer,amount\n1,ann,oops\n")?;
    let setl = Setl::builder().threads(1).build().map_err(|e| e.to_string())?;
    let mut pipeline = setl.new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(LoadOrders { path: path.clone(), orders: None }))
        .add_stage_from_type::<SumByCustomer>();
    let error = pipeline.run().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "factory `LoadOrders` failed in read: malformed CSV in `{}`, line 2, column 3 (`amount`): value \"oops\" is not a valid Float64",
            path.display()
        )
    );
    Ok(())
}
