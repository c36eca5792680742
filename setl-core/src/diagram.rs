//! Text views of a pipeline: `describe()` and the Mermaid class diagram of SETL.
//!
//! Both list factories in declaration order and flows in consumer-then-field order, so the same
//! pipeline always prints the same text.

use std::fmt::Write;

use crate::pipeline::{FlowSource, Pipeline};

impl Pipeline {
    /// A text summary: each factory with its stage, inputs and output ("Data Transformation
    /// Summary"), then each delivery ("Data Flow Summary"). Unresolved inputs show as such.
    pub fn describe(&self) -> String {
        let flows = self.flows();
        let signatures: Vec<_> = self.factories().collect();
        let source_name = |source: Option<FlowSource>| match source {
            Some(FlowSource::Factory(index)) => signatures[index].name.to_string(),
            Some(FlowSource::External(index)) => {
                let (_, id) = self.input_description(index);
                if id.is_empty() {
                    "external input".to_owned()
                } else {
                    format!("external input \"{id}\"")
                }
            }
            None => "(nothing)".to_owned(),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Pipeline: {} in {}, {}",
            counted(signatures.len(), "factory", "factories"),
            counted(self.stage_count(), "stage", "stages"),
            counted(self.input_count(), "external input", "external inputs")
        );
        let _ = writeln!(out, "\nData Transformation Summary");
        for (index, signature) in signatures.iter().enumerate() {
            let _ = writeln!(out, "  stage {}: {}", self.entry_stage(index), signature.name);
            for (slot, input) in signature.inputs.iter().enumerate() {
                let id = if input.id.is_empty() { String::new() } else { format!(" \"{}\"", input.id) };
                let _ = writeln!(
                    out,
                    "    input  {}: {}{id} from {}",
                    input.field,
                    input.payload.name(),
                    source_name(flows[index][slot])
                );
            }
            let _ = writeln!(out, "    output {}", signature.output.name());
        }
        let _ = writeln!(out, "\nData Flow Summary");
        for (index, signature) in signatures.iter().enumerate() {
            for (slot, input) in signature.inputs.iter().enumerate() {
                if let Some(source) = flows[index][slot] {
                    let _ = writeln!(
                        out,
                        "  {} ==> {}.{} : {}",
                        source_name(Some(source)),
                        signature.name,
                        input.field,
                        input.payload.name()
                    );
                }
            }
        }
        out
    }

    /// A Mermaid `classDiagram` in SETL's shape: a class per factory (its inputs as members),
    /// a class per output and per external input, `Output` and `Input` links. Deterministic.
    pub fn to_mermaid(&self) -> String {
        let flows = self.flows();
        let signatures: Vec<_> = self.factories().collect();
        let mut out = String::from("classDiagram\n");
        for signature in &signatures {
            let _ = writeln!(out, "class {} {{", mermaid_class(&signature.name));
            let _ = writeln!(out, "  <<Factory[{}]>>", mermaid_type(&signature.output.name()));
            for input in &signature.inputs {
                let _ = writeln!(out, "  +{} {}", mermaid_type(&input.payload.name()), input.field);
            }
            let _ = writeln!(out, "}}");
        }
        for signature in &signatures {
            let _ = writeln!(out, "class {}Output {{", mermaid_class(&signature.name));
            let _ = writeln!(out, "  <<{}>>", mermaid_type(&signature.output.name()));
            if !signature.output_id.is_empty() {
                let _ = writeln!(out, "  +id {}", signature.output_id);
            }
            let _ = writeln!(out, "}}");
        }
        for index in 0..self.input_count() {
            let (payload, id) = self.input_description(index);
            let _ = writeln!(out, "class ExternalInput{index} {{");
            let _ = writeln!(out, "  <<{}>>", mermaid_type(&payload));
            if !id.is_empty() {
                let _ = writeln!(out, "  +id {id}");
            }
            let _ = writeln!(out, "}}");
        }
        for signature in &signatures {
            let _ = writeln!(out, "{0}Output <|.. {0} : Output", mermaid_class(&signature.name));
        }
        for (index, signature) in signatures.iter().enumerate() {
            for source in flows[index].iter().flatten() {
                let from = match *source {
                    FlowSource::Factory(producer) => format!("{}Output", mermaid_class(&signatures[producer].name)),
                    FlowSource::External(input) => format!("ExternalInput{input}"),
                };
                let _ = writeln!(out, "{} <|-- {from} : Input", mermaid_class(&signature.name));
            }
        }
        out
    }
}

/// A Mermaid class name: an instance's `ReadTable[orders]` becomes `ReadTable_orders`.
fn mermaid_class(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return name.into();
    }
    let class: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    class.trim_end_matches('_').to_owned().into()
}

/// Mermaid writes generics with tildes: `Vec<i64>` is `Vec~i64~`.
fn mermaid_type(name: &str) -> String {
    name.replace(['<', '>'], "~")
}

/// `1 stage`, `3 stages`: a count with its noun in the right number.
fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
