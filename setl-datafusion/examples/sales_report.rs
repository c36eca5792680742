//! PySetl's layout on DataFusion: reader factories, a join factory, one factory per aggregate,
//! each writing its result. No hand-written "Load" factory: the joined frame is `shared()`, so
//! the aggregates read it once between them, whichever runs first.
//!
//! ```text
//! cargo run --release --example sales_report -- [OUT_DIR]
//! ```
//!
//! The inputs are two small CSV files written next to the results, with `NA` for missing values.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use setl_core::prelude::*;
use setl_datafusion::arrow::datatypes::{DataType, Field, Schema};
use setl_datafusion::{write_csv, CsvScan, Engine, Frame};

/// Reads `sales.csv`: lazy, it runs inside the join.
#[factory]
struct ReadSales {
    engine: Engine,
    dir: PathBuf,
    out: Option<Frame>,
}

impl Factory for ReadSales {
    type Output = Frame;
    fn read(&mut self) -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer", DataType::Int64, false),
            Field::new("amount", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
        ]));
        let scan = CsvScan::new(self.dir.join("sales.csv")).schema(schema).null_values(["NA"]);
        self.out = Some(scan.read(&self.engine.session())?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in read")
    }
}

/// Reads `customers.csv`, its schema inferred (`NA` does not make a column text).
#[factory]
struct ReadCustomers {
    engine: Engine,
    dir: PathBuf,
    out: Option<Frame>,
}

impl Factory for ReadCustomers {
    type Output = Frame;
    fn read(&mut self) -> Result<()> {
        let scan = CsvScan::new(self.dir.join("customers.csv")).null_values(["NA"]);
        self.out = Some(scan.read(&self.engine.session())?);
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in read")
    }
}

/// Joins sales to customers; shared, so that the aggregates read the join once.
#[factory]
struct Enriched {
    #[delivery(producer = ReadSales)]
    sales: Delivery<Frame>,
    #[delivery(producer = ReadCustomers)]
    customers: Delivery<Frame>,
    engine: Engine,
    out: Option<Frame>,
}

impl Factory for Enriched {
    type Output = Frame;
    fn process(&mut self) -> Result<()> {
        let sql = "SELECT s.amount, s.day, c.country FROM sales s JOIN customers c ON s.customer = c.id";
        let tables = [("sales", self.sales.get()), ("customers", self.customers.get())];
        self.out = Some(self.engine.query("enriched", sql, tables)?.shared());
        Ok(())
    }
    fn get(&self) -> Frame {
        self.out.clone().expect("set in process")
    }
}

/// One factory per aggregate: its query over the shared join, written as CSV.
macro_rules! aggregate {
    ($name:ident, $file:literal, $sql:literal) => {
        #[factory]
        struct $name {
            #[delivery(producer = Enriched)]
            enriched: Delivery<Frame>,
            engine: Engine,
            out_dir: PathBuf,
            out: Option<Frame>,
        }

        impl Factory for $name {
            type Output = Frame;
            fn process(&mut self) -> Result<()> {
                let query = self.engine.query(stringify!($name), $sql, [("enriched", self.enriched.get())])?;
                self.out = Some(query.materialize()?);
                Ok(())
            }
            fn write(&mut self) -> Result<()> {
                let data = self.out.as_ref().expect("set in process").collect()?;
                write_csv(&data, self.out_dir.join($file))?;
                Ok(())
            }
            fn get(&self) -> Frame {
                self.out.clone().expect("set in process")
            }
        }
    };
}

aggregate!(
    ByCountry,
    "by_country.csv",
    "SELECT country, count(*) AS sales, sum(amount) AS total FROM enriched GROUP BY country ORDER BY country"
);
aggregate!(
    ByDay,
    "by_day.csv",
    "SELECT day, sum(amount) AS total FROM enriched WHERE day IS NOT NULL GROUP BY day ORDER BY day"
);

fn write_inputs(dir: &Path) -> std::io::Result<()> {
    let mut sales = String::from("customer,amount,day\n");
    for i in 0..10_000 {
        let amount = if i % 17 == 0 { "NA".to_owned() } else { format!("{}.5", i % 100) };
        let day = if i % 23 == 0 { "NA".to_owned() } else { format!("2024-03-{:02}", 1 + i % 28) };
        sales.push_str(&format!("{},{amount},{day}\n", i % 50));
    }
    std::fs::write(dir.join("sales.csv"), sales)?;
    let mut customers = String::from("id,country\n");
    for id in 0..50 {
        let country = ["fr", "de", "NA", "it"][id % 4];
        customers.push_str(&format!("{id},{country}\n"));
    }
    std::fs::write(dir.join("customers.csv"), customers)
}

/// What a run gives: the per-country aggregate, and how the join was shared.
struct Outcome {
    by_country: setl_arrow::Dataset,
    /// Times the join was read.
    shared_reads: u64,
    /// Shared reads kept whole for a later reader.
    shared_kept: u64,
    benchmarks: Vec<BenchmarkResult>,
}

/// Writes the inputs into `dir`, runs the pipeline, and leaves the results there.
fn run(dir: &Path) -> Result<Outcome> {
    write_inputs(dir)?;
    let setl = Setl::builder().threads(2).build()?;
    let engine = Engine::of(&setl)?;
    let dir = dir.to_path_buf();
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline
        .add_factory(ReadSales { engine: engine.clone(), dir: dir.clone(), out: None })
        .add_factory(ReadCustomers { engine: engine.clone(), dir: dir.clone(), out: None })
        .add_factory(Enriched { sales: Delivery::new(), customers: Delivery::new(), engine: engine.clone(), out: None })
        .add_factory(ByCountry { enriched: Delivery::new(), engine: engine.clone(), out_dir: dir.clone(), out: None })
        .add_factory(ByDay { enriched: Delivery::new(), engine: engine.clone(), out_dir: dir, out: None });
    pipeline.run()?;
    Ok(Outcome {
        by_country: pipeline.output::<ByCountry>()?.collect()?,
        shared_reads: engine.shared_reads(),
        shared_kept: engine.shared_kept(),
        benchmarks: pipeline.benchmarks(),
    })
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map_or_else(|| PathBuf::from("target/sales_report"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let outcome = run(&dir)?;
    println!("{}", setl_datafusion::arrow::util::pretty::pretty_format_batches(outcome.by_country.batches())?);
    println!(
        "the join was read {} time(s) for two aggregates ({} kept for the later one); results in {}",
        outcome.shared_reads,
        outcome.shared_kept,
        dir.display()
    );
    println!("\n{}", setl_report::summary::benchmark_table(&outcome.benchmarks));
    // The join's read, charged to `Enriched` and run in whichever aggregate came first.
    if let Some(enriched) = outcome.benchmarks.iter().find(|result| result.factory == "Enriched") {
        println!("{enriched}");
    }
    Ok(())
}

/// Run by `cargo test` (`test = true` in the crate's manifest): the layout shares its join and
/// its answers are right.
#[cfg(test)]
mod tests {
    use super::*;
    use setl_datafusion::arrow;

    #[test]
    fn the_aggregates_read_the_join_once_and_count_every_sale() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(dir.path()).unwrap();
        assert_eq!((outcome.shared_reads, outcome.shared_kept), (1, 1));
        // The report says which happened: the join read once by the first aggregate, kept.
        let enriched = outcome.benchmarks.iter().find(|result| result.factory == "Enriched").unwrap();
        let kept: Vec<_> = enriched.executed.iter().filter(|work| work.shared.is_some()).collect();
        assert_eq!(kept.len(), 1, "{enriched}");
        assert_eq!(kept[0].shared.as_deref(), Some("read for 1 of its readers, kept whole for the others"));
        assert_eq!(kept[0].rows, 10_000);
        let batches = outcome.by_country.batches();
        let column = |name: &str| {
            arrow::compute::concat(
                &batches.iter().map(|b| b.column_by_name(name).unwrap().as_ref()).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let sales = column("sales");
        let sales = sales.as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
        // 10,000 sales; customers whose country is `NA` (null) are a group of their own.
        assert_eq!(sales.iter().map(|count| count.unwrap()).sum::<i64>(), 10_000);
        assert_eq!(outcome.by_country.num_rows(), 4);
        let written = std::fs::read_to_string(dir.path().join("by_day.csv")).unwrap();
        assert_eq!(written.lines().count(), 1 + 28);
    }
}
