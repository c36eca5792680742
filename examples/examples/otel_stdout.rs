//! setl's `tracing` spans (one per pipeline, factory and phase) exported with OpenTelemetry.
//!
//! `cargo run -p setl-examples --features otel --example otel_stdout`
//!
//! The spans go through `tracing-opentelemetry` to OpenTelemetry's stdout exporter, so no
//! collector is needed: each finished span is printed with its trace id, parent span id,
//! attributes (`factory`, `phase`) and timings. Every factory span is a child of the
//! `pipeline` span, and every phase span a child of its factory's, so the run is one trace.
//! To send them to a collector instead, swap the stdout exporter for `opentelemetry-otlp`'s.

use std::thread::sleep;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use setl_core::prelude::*;
use tracing_subscriber::layer::SubscriberExt;

#[factory]
#[derive(Default)]
struct Extract {
    rows: Vec<u32>,
}

impl Factory for Extract {
    type Output = Vec<u32>;
    fn read(&mut self) -> Result<()> {
        self.rows = (0..1_000).collect();
        sleep(Duration::from_millis(20));
        Ok(())
    }
    fn get(&self) -> Vec<u32> {
        self.rows.clone()
    }
}

#[factory]
#[derive(Default)]
struct Load {
    #[delivery(producer = Extract)]
    rows: Delivery<Vec<u32>>,
    total: u64,
}

impl Factory for Load {
    type Output = u64;
    fn process(&mut self) -> Result<()> {
        self.total = self.rows.get().iter().map(|&row| u64::from(row)).sum();
        Ok(())
    }
    fn write(&mut self) -> Result<()> {
        sleep(Duration::from_millis(10));
        Ok(())
    }
    fn get(&self) -> u64 {
        self.total
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let provider =
        SdkTracerProvider::builder().with_simple_exporter(opentelemetry_stdout::SpanExporter::default()).build();
    let tracer = provider.tracer("setl-rs");
    let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::set_global_default(subscriber)?;

    let setl = Setl::builder().threads(2).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Extract>().add_stage_from_type::<Load>();
    pipeline.run()?;
    println!("total = {}", pipeline.output::<Load>()?);

    // Flushes the spans still buffered.
    provider.shutdown()?;
    Ok(())
}
