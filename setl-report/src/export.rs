//! Graph exports: a Mermaid flowchart (GitHub renders it in Markdown) and Graphviz DOT.
//!
//! Both list stages in order, factories in declaration order, then external inputs, then edges
//! in consumer-then-field order, so the same pipeline always gives the same text. Node ids are
//! positional (`f0`, `in0`), so no factory name can clash with a keyword of either language.
//! SETL's class diagram is `Pipeline::to_mermaid()` in setl-core.

use std::collections::HashSet;
use std::fmt::Write;

use crate::report::{Graph, RunReport, Source};

impl Graph {
    /// A Mermaid `flowchart LR`: a subgraph per stage, a node per factory (name and output
    /// type), a stadium node per external input, an edge per delivery labelled with the field.
    pub fn to_mermaid_flowchart(&self) -> String {
        mermaid(self, &[])
    }

    /// A Graphviz `digraph`: a cluster per stage, a box per factory, an ellipse per external
    /// input, an edge per delivery labelled with the field. Render with `dot -Tsvg`.
    pub fn to_dot(&self) -> String {
        dot(self, &[])
    }
}

impl RunReport {
    /// [`Graph::to_mermaid_flowchart`] with the critical path highlighted.
    pub fn to_mermaid_flowchart(&self) -> String {
        mermaid(&self.graph, &self.critical_path.factories)
    }

    /// [`Graph::to_dot`] with the critical path highlighted.
    pub fn to_dot(&self) -> String {
        dot(&self.graph, &self.critical_path.factories)
    }
}

/// The edges on a path, as (producer, consumer) pairs.
fn path_edges(path: &[usize]) -> HashSet<(usize, usize)> {
    path.windows(2).map(|pair| (pair[0], pair[1])).collect()
}

fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '|' => out.push_str("#124;"),
            _ => out.push(c),
        }
    }
    out
}

fn input_label(payload: &str, id: &str) -> String {
    if id.is_empty() {
        format!("input: {payload}")
    } else {
        format!("input \"{id}\": {payload}")
    }
}

/// The stages that hold a factory, in order: walking `0..graph.stages` would take as long as a
/// hand-edited count says.
fn occupied_stages(graph: &Graph) -> Vec<usize> {
    let mut stages: Vec<usize> =
        graph.factories.iter().map(|node| node.stage).filter(|&stage| stage < graph.stages).collect();
    stages.sort_unstable();
    stages.dedup();
    stages
}

fn mermaid(graph: &Graph, critical: &[usize]) -> String {
    let mut out = String::from("flowchart LR\n");
    for stage in occupied_stages(graph) {
        let members: Vec<usize> = (0..graph.factories.len()).filter(|&i| graph.factories[i].stage == stage).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    subgraph stage{stage}[\"stage {stage}\"]");
        for index in members {
            let node = &graph.factories[index];
            let _ =
                writeln!(out, "        f{index}[\"{}<br/>{}\"]", mermaid_text(&node.name), mermaid_text(&node.output));
        }
        let _ = writeln!(out, "    end");
    }
    for (index, input) in graph.external_inputs.iter().enumerate() {
        let _ = writeln!(out, "    in{index}([\"{}\"])", mermaid_text(&input_label(&input.payload, &input.id)));
    }
    let on_path = path_edges(critical);
    let mut edge_number = 0;
    let mut critical_edges = Vec::new();
    for (consumer, node) in graph.factories.iter().enumerate() {
        for input in &node.inputs {
            let from = match input.source {
                Some(Source::Factory(producer)) => {
                    if on_path.contains(&(producer, consumer)) {
                        critical_edges.push(edge_number);
                    }
                    format!("f{producer}")
                }
                Some(Source::External(external)) => format!("in{external}"),
                None => continue,
            };
            let _ = writeln!(out, "    {from} -->|{}| f{consumer}", mermaid_text(&input.field));
            edge_number += 1;
        }
    }
    if !critical.is_empty() {
        let _ = writeln!(out, "    classDef critical stroke:#d62728,stroke-width:3px");
        let nodes: Vec<String> = critical.iter().map(|index| format!("f{index}")).collect();
        let _ = writeln!(out, "    class {} critical", nodes.join(","));
        for edge in critical_edges {
            let _ = writeln!(out, "    linkStyle {edge} stroke:#d62728,stroke-width:3px");
        }
    }
    out
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(graph: &Graph, critical: &[usize]) -> String {
    const RED: &str = ", color=\"#d62728\", penwidth=2.5";
    let on_path = path_edges(critical);
    let mut out = String::from("digraph pipeline {\n");
    out.push_str("    rankdir=LR;\n");
    out.push_str("    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    for stage in occupied_stages(graph) {
        let members: Vec<usize> = (0..graph.factories.len()).filter(|&i| graph.factories[i].stage == stage).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    subgraph cluster_stage{stage} {{");
        let _ = writeln!(out, "        label=\"stage {stage}\";");
        for index in members {
            let node = &graph.factories[index];
            let highlight = if critical.contains(&index) { RED } else { "" };
            let _ = writeln!(
                out,
                "        f{index} [label=\"{}\\n{}\"{highlight}];",
                dot_text(&node.name),
                dot_text(&node.output)
            );
        }
        let _ = writeln!(out, "    }}");
    }
    for (index, input) in graph.external_inputs.iter().enumerate() {
        let _ = writeln!(
            out,
            "    in{index} [shape=ellipse, label=\"{}\"];",
            dot_text(&input_label(&input.payload, &input.id))
        );
    }
    for (consumer, node) in graph.factories.iter().enumerate() {
        for input in &node.inputs {
            let (from, highlight) = match input.source {
                Some(Source::Factory(producer)) => {
                    (format!("f{producer}"), if on_path.contains(&(producer, consumer)) { RED } else { "" })
                }
                Some(Source::External(external)) => (format!("in{external}"), ""),
                None => continue,
            };
            let _ = writeln!(out, "    {from} -> f{consumer} [label=\"{}\"{highlight}];", dot_text(&input.field));
        }
    }
    out.push_str("}\n");
    out
}
