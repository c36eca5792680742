//! The example of the README and of issue 2, verbatim, as a test.

use setl_core::prelude::*;

#[factory]
#[derive(Default)]
struct Numbers {
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
struct Squares {
    #[delivery(producer = Numbers)]
    numbers: Delivery<Vec<i64>>,
    out: Vec<i64>,
}

impl Factory for Squares {
    type Output = Vec<i64>; // same type as Numbers: the producer disambiguates
    fn process(&mut self) -> Result<()> {
        self.out = self.numbers.get().iter().map(|n| n * n).collect();
        Ok(())
    }
    fn get(&self) -> Vec<i64> {
        self.out.clone()
    }
}

#[factory]
struct Total {
    #[delivery(producer = Squares)]
    squares: Delivery<Vec<i64>>,
    #[delivery(id = "offset")] // an external input, matched by type and id
    offset: Delivery<i64>,
    scale: i64, // a constructor argument, not an input
    total: i64,
}

impl Total {
    fn new(scale: i64) -> Self {
        Total { squares: Delivery::default(), offset: Delivery::default(), scale, total: 0 }
    }
}

impl Factory for Total {
    type Output = i64;
    fn process(&mut self) -> Result<()> {
        self.total = (self.squares.get().iter().sum::<i64>() + *self.offset.get()) * self.scale;
        Ok(())
    }
    fn get(&self) -> i64 {
        self.total
    }
}

#[test]
fn the_issue_example_runs_and_reports() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true);
    pipeline.set_input(5_i64).with_id("offset");
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_stage_from_type::<Squares>()
        .add_stage(Stage::new().add_factory(Total::new(2)));
    pipeline.run()?;
    assert_eq!(*pipeline.output::<Total>()?, (385 + 5) * 2);
    let benchmarks = pipeline.benchmarks();
    assert_eq!(
        benchmarks.iter().map(|result| result.factory.as_str()).collect::<Vec<_>>(),
        ["Numbers", "Squares", "Total"]
    );
    for result in &benchmarks {
        let text = result.to_string();
        assert!(text.starts_with(&format!("Benchmark class: {}\nTotal elapsed time: ", result.factory)), "{text}");
        assert!(result.total >= result.read + result.process + result.write);
    }
    let mermaid = pipeline.to_mermaid();
    assert!(mermaid.starts_with("classDiagram\n"), "{mermaid}");
    println!("{mermaid}\n{}", pipeline.describe());
    Ok(())
}
