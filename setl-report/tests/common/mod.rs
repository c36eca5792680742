//! Pipelines shared by the tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::thread::sleep;
use std::time::Duration;

use setl_core::prelude::*;
use setl_core::Pipeline;
use setl_report::{run_with_report, OutputSize, RunRecorder, RunReport};

#[factory]
#[derive(Default)]
pub struct Numbers {
    out: Vec<i64>,
}

impl Factory for Numbers {
    type Output = Vec<i64>;
    fn read(&mut self) -> Result<()> {
        self.out = (1..=10).collect();
        Ok(())
    }
    fn get(&self) -> Vec<i64> {
        self.out.clone()
    }
}

#[factory]
#[derive(Default)]
pub struct Squares {
    #[delivery(producer = Numbers)]
    numbers: Delivery<Vec<i64>>,
    out: Vec<i64>,
}

impl Factory for Squares {
    type Output = Vec<i64>;
    fn process(&mut self) -> Result<()> {
        self.out = self.numbers.get().iter().map(|n| n * n).collect();
        Ok(())
    }
    fn get(&self) -> Vec<i64> {
        self.out.clone()
    }
}

#[factory]
#[derive(Default)]
pub struct Total {
    #[delivery(producer = Squares)]
    squares: Delivery<Vec<i64>>,
    #[delivery(id = "offset")]
    offset: Delivery<i64>,
    total: i64,
}

impl Factory for Total {
    type Output = i64;
    fn process(&mut self) -> Result<()> {
        self.total = self.squares.get().iter().sum::<i64>() + *self.offset.get();
        Ok(())
    }
    fn get(&self) -> i64 {
        self.total
    }
}

/// Numbers -> Squares -> Total, with the external input "offset"; Total's stage is not writable.
pub fn small_pipeline(threads: usize) -> Pipeline {
    let setl = Setl::builder().threads(threads).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline.set_input(5_i64).with_id("offset");
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_stage_from_type::<Squares>()
        .add_stage(Stage::new().writable(false).add_factory_from_type::<Total>());
    pipeline
}

pub fn vec_measure() -> RunRecorder {
    RunRecorder::new().measure(|values: &Vec<i64>| OutputSize {
        rows: Some(values.len() as u64),
        bytes: Some(std::mem::size_of_val(values.as_slice()) as u64),
    })
}

pub fn small_report() -> RunReport {
    let mut pipeline = small_pipeline(2);
    let (result, report) = run_with_report(&mut pipeline, vec_measure());
    result.unwrap();
    report
}

fn nap(millis: u64) {
    sleep(Duration::from_millis(millis));
}

#[factory]
#[derive(Default)]
pub struct Origin;

impl Factory for Origin {
    type Output = u32;
    fn read(&mut self) -> Result<()> {
        nap(5);
        Ok(())
    }
    fn get(&self) -> u32 {
        1
    }
}

#[factory]
#[derive(Default)]
pub struct Left {
    #[delivery(producer = Origin)]
    origin: Delivery<u32>,
}

impl Factory for Left {
    type Output = String;
    fn process(&mut self) -> Result<()> {
        nap(40);
        Ok(())
    }
    fn get(&self) -> String {
        format!("left {}", self.origin.get())
    }
}

#[factory]
#[derive(Default)]
pub struct Right {
    #[delivery(producer = Origin)]
    origin: Delivery<u32>,
}

impl Factory for Right {
    type Output = Vec<u8>;
    fn process(&mut self) -> Result<()> {
        nap(40);
        Ok(())
    }
    fn get(&self) -> Vec<u8> {
        vec![*self.origin.get() as u8]
    }
}

#[factory]
#[derive(Default)]
pub struct Join {
    #[delivery(producer = Left)]
    left: Delivery<String>,
    #[delivery(producer = Right)]
    right: Delivery<Vec<u8>>,
}

impl Factory for Join {
    type Output = usize;
    fn write(&mut self) -> Result<()> {
        nap(5);
        Ok(())
    }
    fn get(&self) -> usize {
        self.left.get().len() + self.right.get().len()
    }
}

/// Origin -> (Left, Right) -> Join on two threads: Left and Right run side by side.
pub fn diamond_report() -> RunReport {
    let setl = Setl::builder().threads(2).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Origin>();
    pipeline.add_stage(Stage::new().add_factory_from_type::<Left>().add_factory_from_type::<Right>());
    pipeline.add_stage_from_type::<Join>();
    let (result, report) = run_with_report(&mut pipeline, RunRecorder::new());
    result.unwrap();
    report
}

#[factory]
#[derive(Default)]
pub struct Broken {
    #[delivery(producer = Numbers)]
    numbers: Delivery<Vec<i64>>,
}

impl Factory for Broken {
    type Output = ();
    fn process(&mut self) -> Result<()> {
        Err(std::io::Error::other("disk on fire").into())
    }
    fn get(&self) {}
}

/// Numbers -> Broken, which fails in process.
pub fn failing_report() -> RunReport {
    let setl = Setl::builder().threads(1).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<Broken>();
    let (result, report) = run_with_report(&mut pipeline, RunRecorder::new());
    assert!(result.is_err());
    report
}
