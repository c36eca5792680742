//! `Pipeline::graph()`: the resolved graph as data, before and after a run, and when invalid.

use setl_core::prelude::*;
use setl_core::GraphSource;

#[factory]
#[derive(Default)]
struct Numbers;

impl Factory for Numbers {
    type Output = Vec<i64>;
    fn get(&self) -> Vec<i64> {
        vec![1, 2]
    }
}

#[factory]
#[derive(Default)]
struct Sum {
    #[delivery(producer = Numbers)]
    numbers: Delivery<Vec<i64>>,
    #[delivery(id = "scale")]
    scale: Delivery<i64>,
}

impl Factory for Sum {
    type Output = i64;
    fn get(&self) -> i64 {
        self.numbers.get().iter().sum::<i64>() * *self.scale.get()
    }
}

#[test]
fn the_graph_names_every_source_before_and_after_the_run() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(2).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.mode(ExecutionMode::StageBarrier);
    pipeline.set_input(3_i64).with_id("scale");
    pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<Sum>();
    let before = pipeline.graph();
    assert!(before.resolved);
    assert!(before.stage_barrier);
    assert_eq!((before.stages, before.threads), (2, 2));
    let names: Vec<&str> = before.factories.iter().map(|factory| factory.name.as_str()).collect();
    assert_eq!(names, ["Numbers", "Sum"]);
    let sum = &before.factories[1];
    assert_eq!((sum.stage, sum.output.as_str()), (1, "i64"));
    let inputs: Vec<(&str, &str, &str, Option<GraphSource>)> = sum
        .inputs
        .iter()
        .map(|input| (input.field.as_str(), input.payload.as_str(), input.id.as_str(), input.source))
        .collect();
    assert_eq!(
        inputs,
        [
            ("numbers", "Vec<i64>", "", Some(GraphSource::FactoryOutput(0))),
            ("scale", "i64", "scale", Some(GraphSource::ExternalInput(0)))
        ]
    );
    assert_eq!((before.external_inputs[0].payload.as_str(), before.external_inputs[0].id.as_str()), ("i64", "scale"));
    pipeline.run()?;
    assert_eq!(pipeline.graph(), before);
    Ok(())
}

#[test]
fn an_invalid_pipeline_still_has_a_graph_without_the_missing_sources() -> setl_core::Result<()> {
    let setl = Setl::builder().threads(1).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<Sum>();
    let graph = pipeline.graph();
    assert!(!graph.resolved);
    assert!(graph.factories[0].inputs.iter().all(|input| input.source.is_none()));
    Ok(())
}
