//! The resolved graph of a pipeline as plain data, for reports and graph exports.
//!
//! `describe()` and `to_mermaid()` print one fixed view; a [`PipelineGraph`] gives the same
//! facts (factories, stages, inputs and where each comes from) to code that draws its own.

use serde::Serialize;

use crate::pipeline::{ExecutionMode, FlowSource, Pipeline};

/// The factories of a pipeline and who feeds whom, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PipelineGraph {
    /// The factories, in declaration order (indices match `FactoryId::index`).
    pub factories: Vec<GraphFactory>,
    /// The pipeline inputs given with `set_input`.
    pub external_inputs: Vec<GraphExternal>,
    /// The number of stages.
    pub stages: usize,
    /// The number of worker threads of the pipeline's context.
    pub threads: usize,
    /// Whether the pipeline runs in SETL's stage-barrier mode.
    pub stage_barrier: bool,
    /// Whether every input resolved; when not, unresolved inputs have no `source`.
    pub resolved: bool,
}

/// One factory of a [`PipelineGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GraphFactory {
    /// The factory's name.
    pub name: String,
    /// The module that declares it.
    pub module: String,
    /// The stage it was added in.
    pub stage: usize,
    /// The readable name of its output type.
    pub output: String,
    /// The delivery id of its output (`""` = none).
    pub output_id: String,
    /// Its inputs, in field order.
    pub inputs: Vec<GraphInput>,
}

/// One input slot of a factory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GraphInput {
    /// The `Delivery` field.
    pub field: String,
    /// The readable name of the payload type.
    pub payload: String,
    /// The delivery id asked for (`""` = none).
    pub id: String,
    /// Where the value comes from, when resolved (and not an empty optional input).
    pub source: Option<GraphSource>,
}

/// Where an input's value comes from.
///
/// (The variants avoid the bare name `Factory`, which would make rustc print the `Factory`
/// trait with its full path in diagnostics.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "index", rename_all = "snake_case")]
pub enum GraphSource {
    /// The output of the factory at this index.
    FactoryOutput(usize),
    /// The pipeline input at this index.
    ExternalInput(usize),
}

/// A pipeline input of a [`PipelineGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GraphExternal {
    /// The readable name of its type.
    pub payload: String,
    /// Its delivery id (`""` = none).
    pub id: String,
}

impl Pipeline {
    /// The resolved graph as data: factories, stages, inputs and their sources. Available
    /// before and after `run()`; when validation fails, `resolved` is false and the
    /// unresolved inputs have no source.
    pub fn graph(&self) -> PipelineGraph {
        let resolved = self.resolve().is_ok();
        let flows = self.flows();
        let factories = self
            .factories()
            .enumerate()
            .map(|(index, signature)| GraphFactory {
                name: signature.name.to_string(),
                module: signature.module.to_owned(),
                stage: self.entry_stage(index),
                output: signature.output.name(),
                output_id: signature.output_id.to_string(),
                inputs: signature
                    .inputs
                    .iter()
                    .zip(&flows[index])
                    .map(|(input, source)| GraphInput {
                        field: input.field.to_owned(),
                        payload: input.payload.name(),
                        id: input.id.to_string(),
                        source: source.map(|source| match source {
                            FlowSource::Factory(producer) => GraphSource::FactoryOutput(producer),
                            FlowSource::External(input) => GraphSource::ExternalInput(input),
                        }),
                    })
                    .collect(),
            })
            .collect();
        let external_inputs = (0..self.input_count())
            .map(|index| {
                let (payload, id) = self.input_description(index);
                GraphExternal { payload, id: id.to_owned() }
            })
            .collect();
        PipelineGraph {
            factories,
            external_inputs,
            stages: self.stage_count(),
            threads: self.threads(),
            stage_barrier: self.execution_mode() == ExecutionMode::StageBarrier,
            resolved,
        }
    }
}
