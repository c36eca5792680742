//! Graph exports are deterministic: exact text for a small pipeline.

mod common;

use setl_report::Graph;

const MERMAID: &str = r#"flowchart LR
    subgraph stage0["stage 0"]
        f0["Numbers<br/>Vec#lt;i64#gt;"]
    end
    subgraph stage1["stage 1"]
        f1["Squares<br/>Vec#lt;i64#gt;"]
    end
    subgraph stage2["stage 2"]
        f2["Total<br/>i64"]
    end
    in0(["input #quot;offset#quot;: i64"])
    f0 -->|numbers| f1
    f1 -->|squares| f2
    in0 -->|offset| f2
"#;

const DOT: &str = r#"digraph pipeline {
    rankdir=LR;
    node [shape=box, style=rounded, fontname="Helvetica"];
    edge [fontname="Helvetica", fontsize=10];
    subgraph cluster_stage0 {
        label="stage 0";
        f0 [label="Numbers\nVec<i64>"];
    }
    subgraph cluster_stage1 {
        label="stage 1";
        f1 [label="Squares\nVec<i64>"];
    }
    subgraph cluster_stage2 {
        label="stage 2";
        f2 [label="Total\ni64"];
    }
    in0 [shape=ellipse, label="input \"offset\": i64"];
    f0 -> f1 [label="numbers"];
    f1 -> f2 [label="squares"];
    in0 -> f2 [label="offset"];
}
"#;

#[test]
fn the_mermaid_flowchart_is_exact() {
    let graph = Graph::from(&common::small_pipeline(1).graph());
    assert_eq!(graph.to_mermaid_flowchart(), MERMAID);
    // The same pipeline built again gives the same text.
    assert_eq!(Graph::from(&common::small_pipeline(2).graph()).to_mermaid_flowchart(), MERMAID);
}

#[test]
fn the_dot_graph_is_exact() {
    let graph = Graph::from(&common::small_pipeline(1).graph());
    assert_eq!(graph.to_dot(), DOT);
}

#[test]
fn a_report_highlights_its_critical_path() {
    let report = common::small_report();
    // A chain: the critical path is the whole chain.
    assert_eq!(report.critical_path.factories, [0, 1, 2]);
    let mermaid = report.to_mermaid_flowchart();
    assert!(mermaid.starts_with(MERMAID), "{mermaid}");
    assert_eq!(
        &mermaid[MERMAID.len()..],
        "    classDef critical stroke:#d62728,stroke-width:3px\n    class f0,f1,f2 critical\n    linkStyle 0 stroke:#d62728,stroke-width:3px\n    linkStyle 1 stroke:#d62728,stroke-width:3px\n"
    );
    let dot = report.to_dot();
    assert!(dot.contains("f0 -> f1 [label=\"numbers\", color=\"#d62728\", penwidth=2.5];"), "{dot}");
    assert!(dot.contains("in0 -> f2 [label=\"offset\"];"), "{dot}");
}

#[test]
fn the_critical_path_follows_the_slower_branch() {
    let mut report = common::diamond_report();
    // Make the branch through Right clearly longer than through Left, then recompute.
    let left = report.factories.iter().position(|factory| factory.name == "Left").unwrap();
    let right = report.factories.iter().position(|factory| factory.name == "Right").unwrap();
    report.factories[left].total_s = Some(0.010);
    report.factories[right].total_s = Some(0.500);
    let path = setl_report::critical_path(&report.graph, &report.factories);
    let names: Vec<&str> = path.factories.iter().map(|&index| report.factories[index].name.as_str()).collect();
    assert_eq!(names, ["Origin", "Right", "Join"]);
}
