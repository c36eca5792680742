//! A tour of run reports on a pipeline that fans out and in: two runs, their HTML report and
//! trace, the graph in Mermaid and DOT, and the comparison of the two runs.
//!
//! `cargo run --example report_tour -- [OUT_DIR]` (default: `setl-report-tour` in the system's
//! temporary directory, so a run inside the repository leaves nothing there) writes
//! `tour.html`, `tour-trace.json`, `tour-old.json` and `tour-new.json`, then prints the graph
//! and `setl-report compare`'s table. The second run makes `Enrich` slower on purpose.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::Duration;

use setl_core::prelude::*;
use setl_report::{compare, run_with_report, CompareOptions, OutputSize, RunRecorder, RunReport};

/// How long `Enrich` sleeps in `process`, in milliseconds (the second run raises it).
static ENRICH_MS: AtomicU64 = AtomicU64::new(60);

fn nap(millis: u64) {
    sleep(Duration::from_millis(millis));
}

#[factory]
#[derive(Default)]
struct Orders {
    rows: Vec<u64>,
}

impl Factory for Orders {
    type Output = Vec<u64>;
    fn read(&mut self) -> Result<()> {
        self.rows = (0..50_000).collect();
        nap(40);
        Ok(())
    }
    fn get(&self) -> Vec<u64> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct Customers {
    rows: Vec<u64>,
}

impl Factory for Customers {
    type Output = Vec<u64>;
    fn read(&mut self) -> Result<()> {
        self.rows = (0..5_000).collect();
        nap(25);
        Ok(())
    }
    fn get(&self) -> Vec<u64> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct Enrich {
    #[delivery(producer = Orders)]
    orders: Delivery<Vec<u64>>,
    #[delivery(producer = Customers)]
    customers: Delivery<Vec<u64>>,
    #[delivery(id = "discount")]
    discount: Delivery<u64>,
    rows: Vec<u64>,
}

impl Factory for Enrich {
    type Output = Vec<u64>;
    fn process(&mut self) -> Result<()> {
        let customers = self.customers.get().len() as u64;
        let discount = *self.discount.get();
        self.rows = self.orders.get().iter().map(|order| (order % customers).saturating_sub(discount)).collect();
        nap(ENRICH_MS.load(Ordering::Relaxed));
        Ok(())
    }
    fn write(&mut self) -> Result<()> {
        nap(20);
        Ok(())
    }
    fn get(&self) -> Vec<u64> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct DailyTotals {
    #[delivery(producer = Enrich)]
    rows: Delivery<Vec<u64>>,
    totals: Vec<u64>,
}

impl Factory for DailyTotals {
    type Output = Vec<u64>;
    fn process(&mut self) -> Result<()> {
        self.totals = self.rows.get().chunks(1_000).map(|day| day.iter().sum()).collect();
        nap(30);
        Ok(())
    }
    fn get(&self) -> Vec<u64> {
        self.totals.clone()
    }
}

#[factory]
#[derive(Default)]
struct Audit {
    #[delivery(producer = Enrich)]
    rows: Delivery<Vec<u64>>,
    count: usize,
}

impl Factory for Audit {
    type Output = usize;
    fn process(&mut self) -> Result<()> {
        self.count = self.rows.get().len();
        nap(15);
        Ok(())
    }
    fn get(&self) -> usize {
        self.count
    }
}

fn run_once() -> std::result::Result<RunReport, Box<dyn std::error::Error + Send + Sync>> {
    let setl = Setl::builder().threads(2).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline.set_input(3_u64).with_id("discount");
    pipeline.add_stage(Stage::new().add_factory_from_type::<Orders>().add_factory_from_type::<Customers>());
    pipeline.add_stage_from_type::<Enrich>();
    pipeline.add_stage(Stage::new().add_factory_from_type::<DailyTotals>().add_factory_from_type::<Audit>());
    if let Some(progress) = setl_report::progress::ProgressObserver::stderr_if_terminal() {
        pipeline.observe(Arc::new(progress));
    }
    let recorder = RunRecorder::new().measure(|rows: &Vec<u64>| OutputSize {
        rows: Some(rows.len() as u64),
        bytes: Some(std::mem::size_of_val(rows.as_slice()) as u64),
    });
    let (result, report) = run_with_report(&mut pipeline, recorder);
    result?;
    Ok(report)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let out = std::env::args().nth(1).map_or_else(|| std::env::temp_dir().join("setl-report-tour"), PathBuf::from);
    std::fs::create_dir_all(&out)?;
    let old = run_once()?;
    ENRICH_MS.store(120, Ordering::Relaxed);
    let new = run_once()?;

    for (name, text) in [
        ("tour.html", new.to_html()),
        ("tour-trace.json", new.to_chrome_trace()),
        ("tour-old.json", old.to_json()),
        ("tour-new.json", new.to_json()),
    ] {
        let path = out.join(name);
        setl_report::write_file(&path, text)?;
        eprintln!("wrote {}", path.display());
    }

    println!("```mermaid\n{}```\n", new.to_mermaid_flowchart());
    println!("{}", new.to_dot());
    let comparison = compare(&old, &new, CompareOptions::default());
    println!("{comparison}");
    Ok(())
}
