//! The HTML report: one self-contained file (inline CSS, SVG and a little JavaScript, nothing
//! fetched), readable offline and attachable to a CI run.
//!
//! Sections: a summary; a Gantt timeline by thread, one bar per factory split into its phases;
//! the pipeline graph drawn as SVG (layered left to right); the per-phase table, sortable by
//! clicking a column; the executed plans (the run's top operators, and each factory's plans
//! operator by operator, wherever they ran: hatched strips in the timeline); memory and cache
//! over time. The critical path is outlined in red in the
//! timeline, the graph and the table. The report's JSON is embedded (`<script id="run-report">`)
//! so tools can read it back from the page.

use std::fmt::Write;

use crate::report::{CacheEventKind, RunReport, Source, Status, SCHEMA_VERSION};

/// Above this many factories the graph is not drawn (a page with thousands of nodes helps nobody).
const MAX_DRAWN_FACTORIES: usize = 300;

const READ: &str = "#4e79a7";
const PROCESS: &str = "#f28e2b";
const WRITE: &str = "#59a14f";
const CRITICAL: &str = "#d62728";

/// An execution's start and wall time, in seconds.
type Span = (f64, f64);

/// One factory's part of an execution: the factory's index and its work.
type Part<'a> = (usize, &'a crate::report::ExecutedRun);

/// The timeline's own rules of [`STYLE`], for the standalone picture.
const SVG_STYLE: &str = ".grid{stroke:#e4e4e4}.tick{fill:#666;text-anchor:middle}.lane{fill:#333;font-size:12px}\
.bar{fill:#e8edf3;stroke:#9aa7b4}.bar.critical{stroke:#d62728;stroke-width:2.5}.bar.failed{stroke:#d62728;stroke-dasharray:4 2}\
.barlabel{fill:#fff;font-size:11px;font-weight:600;paint-order:stroke;stroke:#333;stroke-width:2px}";

/// `head` (an `<svg ...` tag without its `>`) with its `height` attributes grown by `by`.
fn bump_height(head: &str, by: f64) -> String {
    let mut out = head.to_owned();
    for key in ["height=\"", "viewBox=\"0 -22 "] {
        let Some(at) = out.find(key) else { continue };
        let start = at + key.len();
        if key.starts_with("viewBox") {
            // "W H" after the origin: grow H.
            let rest = &out[start..];
            let Some(end) = rest.find('"') else { continue };
            let mut parts: Vec<String> = rest[..end].split(' ').map(str::to_owned).collect();
            if let Some(height) = parts.get_mut(1).and_then(|h| h.parse::<f64>().ok().map(|v| (v, h))) {
                *height.1 = format!("{:.0}", height.0 + by);
            }
            out.replace_range(start..start + end, &parts.join(" "));
        } else {
            let rest = &out[start..];
            let Some(end) = rest.find('"') else { continue };
            if let Ok(value) = rest[..end].parse::<f64>() {
                out.replace_range(start..start + end, &format!("{:.0}", value + by));
            }
        }
    }
    out
}

/// A color of its own for factory `index`, for the work charged to it in the timeline.
fn factory_color(index: usize) -> String {
    format!("hsl({}, 55%, 52%)", (index * 67) % 360)
}

/// Escapes text for HTML and SVG content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn phase_color(phase: &str) -> &'static str {
    match phase {
        "read" => READ,
        "process" => PROCESS,
        "write" => WRITE,
        _ => "#9c9c9c",
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks over `span`.
fn tick_step(span: f64, target: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|step| *step >= raw).unwrap_or(10.0 * power)
}

impl RunReport {
    /// The self-contained HTML report.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = format!("setl run report: {} factories", self.factories.len());
        let _ = writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
            esc(&title)
        );
        self.summary(&mut out);
        out.push_str("<section><h2>Timeline</h2>\n");
        self.gantt(&mut out);
        out.push_str("</section>\n<section><h2>Pipeline graph</h2>\n");
        self.graph_svg(&mut out);
        out.push_str("</section>\n<section><h2>Phases</h2>\n<p class=\"hint\">Click a column to sort.</p>\n");
        self.table(&mut out);
        out.push_str("</section>\n<section><h2>Executed plans</h2>\n<p class=\"hint\">The work of lazy plans, charged to the factory that defined each part wherever it ran (hatched in the timeline, under the thread that ran it).</p>\n");
        self.operators(&mut out);
        out.push_str("</section>\n<section><h2>Memory and cache</h2>\n");
        self.memory_chart(&mut out);
        self.cache_table(&mut out);
        out.push_str("</section>\n");
        // With `<` escaped (still valid JSON), nothing in it can end the script element.
        let json = serde_json::to_string(self).unwrap_or_default().replace('<', "\\u003c");
        let _ = writeln!(out, "<script type=\"application/json\" id=\"run-report\">{json}</script>");
        let _ = writeln!(
            out,
            "<script>{}</script>\n</body>\n</html>",
            SCRIPT.replace("@SCHEMA@", &SCHEMA_VERSION.to_string())
        );
        out
    }

    /// The report's timeline alone, as a standalone SVG picture (for a README or a ticket): one
    /// lane per thread, phases in color, the work of lazy plans hatched under the thread that
    /// ran it, with a legend.
    pub fn to_timeline_svg(&self) -> String {
        let mut gantt = String::new();
        self.gantt(&mut gantt);
        let Some(open_end) = gantt.find('>').filter(|_| gantt.starts_with("<svg")) else {
            // No factory ran: a one-line picture that says so.
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"24\"><text x=\"4\" y=\"16\">No factory ran.</text></svg>\n".to_owned();
        };
        let legend = format!(
            "<text x=\"150\" y=\"-6\" class=\"lane\">read <tspan fill=\"{READ}\">&#9632;</tspan>  process <tspan fill=\"{PROCESS}\">&#9632;</tspan>  write <tspan fill=\"{WRITE}\">&#9632;</tspan>  hatched: work of a factory's plan, executed later (width: its share of the CPU time)</text>"
        );
        // Room above the chart for the legend, and the page's styles inside the picture.
        let head = gantt[..open_end].replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1).replacen(
            "viewBox=\"0 0 ",
            "viewBox=\"0 -22 ",
            1,
        );
        let head = bump_height(&head, 22.0);
        format!(
            "{head}><style>text{{font:11px system-ui,Helvetica,Arial,sans-serif}}{SVG_STYLE}</style><rect x=\"0\" y=\"-22\" width=\"100%\" height=\"100%\" fill=\"#fff\"/>{legend}{}",
            &gantt[open_end + 1..]
        )
    }

    fn summary(&self, out: &mut String) {
        let status =
            if self.ok { "<span class=\"ok\">succeeded</span>" } else { "<span class=\"failed\">failed</span>" };
        let _ = writeln!(out, "<header><h1>setl run report</h1>\n<p>Run {status} in <b>{:.3} s</b>: {} factories in {} stages on {} threads{}.</p>",
            self.elapsed_s,
            self.factories.len(),
            self.graph.stages,
            self.threads,
            if self.stage_barrier { " (stage barriers)" } else { "" });
        if !self.critical_path.factories.is_empty() {
            let names: Vec<String> = self
                .critical_path
                .factories
                .iter()
                .filter_map(|&index| self.factories.get(index))
                .map(|f| esc(&f.name))
                .collect();
            let _ = writeln!(
                out,
                "<p>Critical path (<b>{:.3} s</b>, no schedule can beat it): <span class=\"crit\">{}</span></p>",
                self.critical_path.elapsed_s,
                names.join(" &rarr; ")
            );
        }
        if let Some(error) = &self.error {
            let place = match (&error.factory, &error.phase) {
                (Some(factory), Some(phase)) => format!("{} in {}: ", esc(factory), esc(phase)),
                _ => String::new(),
            };
            let _ = writeln!(out, "<p class=\"error\">Error: {place}{}</p>", esc(&error.message));
        }
        let _ = writeln!(
            out,
            "<p class=\"legend\"><span style=\"background:{READ}\"></span>read <span style=\"background:{PROCESS}\"></span>process <span style=\"background:{WRITE}\"></span>write <span class=\"critkey\"></span>critical path <span class=\"hatchkey\"></span>work of a factory's plan, executed later</p>\n</header>"
        );
    }

    fn gantt(&self, out: &mut String) {
        let mut tracks: Vec<Option<usize>> =
            self.factories.iter().filter(|factory| factory.start_s.is_some()).map(|factory| factory.thread).collect();
        tracks.sort();
        tracks.dedup();
        if tracks.is_empty() {
            out.push_str("<p>No factory ran.</p>\n");
            return;
        }
        // Work executed for other factories gets a strip under the executing thread's bars.
        let attributed = self.factories.iter().any(|factory| !factory.executed.is_empty());
        let (label, width, top) = (150.0, 820.0, 24.0);
        let (row, bar) = if attributed { (58.0, 32.0) } else { (38.0, 32.0) };
        let span = self.elapsed_s.max(1e-6);
        let x = |seconds: f64| label + seconds / span * width;
        let height = top + row * tracks.len() as f64 + 8.0;
        let _ = writeln!(
            out,
            "<svg id=\"gantt\" class=\"chart\" viewBox=\"0 0 {:.0} {height:.0}\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"timeline of the run by thread\">",
            label + width + 20.0,
            label + width + 20.0
        );
        out.push_str("<defs><pattern id=\"hatch\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#fff\" stroke-width=\"2\"/></pattern></defs>\n");
        let step = tick_step(span, 8.0);
        let mut tick = 0.0;
        while tick <= span + step * 1e-9 {
            let _ = writeln!(
                out,
                "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{height:.0}\" class=\"grid\"/><text x=\"{0:.1}\" y=\"14\" class=\"tick\">{2}s</text>",
                x(tick),
                top - 6.0,
                trim_float(tick)
            );
            tick += step;
        }
        for (position, thread) in tracks.iter().enumerate() {
            let y = top + row * position as f64;
            let name = self
                .factories
                .iter()
                .find(|factory| factory.thread == *thread && factory.thread_name.is_some())
                .and_then(|factory| factory.thread_name.clone())
                .unwrap_or_else(|| thread.map_or_else(|| "caller".to_owned(), |index| format!("worker-{index}")));
            let _ =
                writeln!(out, "<text x=\"4\" y=\"{:.1}\" class=\"lane\">{}</text>", y + row / 2.0 + 4.0, esc(&name));
            for factory in self.factories.iter().filter(|factory| factory.thread == *thread) {
                let Some(start) = factory.start_s else { continue };
                let end = factory.end_s.unwrap_or(start);
                let (x0, x1) = (x(start), x(end).max(x(start) + 1.0));
                let class = match (factory.critical, factory.status) {
                    (_, Status::Failed) => "bar failed",
                    (true, _) => "bar critical",
                    _ => "bar",
                };
                let _ = write!(
                    out,
                    "<g class=\"factory\" data-factory=\"{0}\"><title>{0} (stage {1}): {2:.4} s from {3:.4} s</title><rect class=\"{class}\" x=\"{x0:.1}\" y=\"{4:.1}\" width=\"{5:.1}\" height=\"{6:.1}\" rx=\"3\"/>",
                    esc(&factory.name),
                    factory.stage,
                    factory.total_s.unwrap_or(end - start),
                    start,
                    y + 3.0,
                    x1 - x0,
                    bar
                );
                for phase in &factory.phases {
                    let p0 = x(phase.start_s);
                    let pw = (phase.elapsed_s / span * width).max(0.5);
                    let _ = write!(
                        out,
                        "<rect x=\"{p0:.1}\" y=\"{:.1}\" width=\"{pw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {:.4} s</title></rect>",
                        y + 8.0,
                        bar - 10.0,
                        phase_color(&phase.phase),
                        esc(&factory.name),
                        esc(&phase.phase),
                        phase.elapsed_s
                    );
                }
                if x1 - x0 > 40.0 {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"barlabel\">{}</text>",
                        x0 + 4.0,
                        y + bar - 6.0,
                        esc(&factory.name)
                    );
                }
                out.push_str("</g>\n");
            }
            if attributed {
                self.attributed_strip(out, *thread, y + bar + 5.0, &x, width / span);
            }
        }
        out.push_str("</svg>\n");
    }

    /// The work executed on `thread` for the factories that defined it: each execution's span
    /// split among the factories whose parts ran in it, in proportion to their CPU time, so the
    /// strip under `Load.process` shows which scans and queries its time went to.
    fn attributed_strip(&self, out: &mut String, thread: Option<usize>, y: f64, x: &dyn Fn(f64) -> f64, scale: f64) {
        // (start, elapsed) of each execution on this thread, with its parts.
        let mut executions: Vec<(Span, Vec<Part<'_>>)> = Vec::new();
        for (index, factory) in self.factories.iter().enumerate() {
            for work in factory.executed.iter().filter(|work| work.thread == thread) {
                let span = (work.start_s, work.elapsed_s);
                match executions.iter_mut().find(|(known, _)| *known == span) {
                    Some((_, parts)) => parts.push((index, work)),
                    None => executions.push((span, vec![(index, work)])),
                }
            }
        }
        for ((start, elapsed), mut parts) in executions {
            parts.sort_by(|a, b| b.1.compute_s.total_cmp(&a.1.compute_s));
            let total: f64 = parts.iter().map(|(_, work)| work.compute_s).sum::<f64>().max(1e-12);
            let mut at = x(start);
            for (index, work) in parts {
                let w = (elapsed * scale * work.compute_s / total).max(0.5);
                let name = &self.factories[index].name;
                // Named inside when the name fits (about 6.5 px a character).
                let label = if w > name.len() as f64 * 6.5 + 6.0 {
                    format!("<text x=\"{:.1}\" y=\"{:.1}\" class=\"barlabel\">{}</text>", at + 3.0, y + 12.0, esc(name))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "<g class=\"attributed\" data-factory=\"{0}\"><title>{0}'s plan ({1}){2}, executed in {3}: {4:.4} s CPU, {5} rows</title><rect x=\"{at:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{6}\"/><rect x=\"{at:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"url(#hatch)\"/>{label}</g>",
                    esc(name),
                    esc(&work.what),
                    work.shared.as_ref().map_or_else(String::new, |how| format!(", {}", esc(how))),
                    esc(work.executed_in.as_deref().unwrap_or("no phase")),
                    work.compute_s,
                    work.rows,
                    factory_color(index)
                );
                at += w;
            }
        }
    }

    fn graph_svg(&self, out: &mut String) {
        let graph = &self.graph;
        let count = graph.factories.len();
        if count == 0 {
            out.push_str("<p>No factory.</p>\n");
            return;
        }
        if count > MAX_DRAWN_FACTORIES {
            let _ = writeln!(
                out,
                "<p>{count} factories are too many to draw here; export the graph with <code>to_dot()</code> or <code>setl-report graph --format dot</code>.</p>"
            );
            return;
        }
        // Layer of each factory: one more than its deepest producer; external inputs sit in
        // layer 0 when there are any.
        let shift = usize::from(!graph.external_inputs.is_empty());
        let mut layer = vec![0usize; count];
        for _ in 0..count {
            let mut changed = false;
            for (consumer, node) in graph.factories.iter().enumerate() {
                for input in &node.inputs {
                    if let Some(Source::Factory(producer)) = input.source {
                        if producer < count && layer[consumer] < layer[producer] + 1 {
                            layer[consumer] = layer[producer] + 1;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let layers = layer.iter().max().copied().unwrap_or(0) + 1 + shift;
        let mut columns: Vec<Vec<Node>> = vec![Vec::new(); layers];
        for (index, input) in graph.external_inputs.iter().enumerate() {
            let label = if input.id.is_empty() { "input".to_owned() } else { format!("input \"{}\"", input.id) };
            columns[0].push(Node { kind: NodeKind::External(index), title: label, subtitle: input.payload.clone() });
        }
        for (index, node) in graph.factories.iter().enumerate() {
            columns[layer[index] + shift].push(Node {
                kind: NodeKind::Factory(index),
                title: node.name.clone(),
                subtitle: format!("stage {} · {}", node.stage, node.output),
            });
        }
        let (node_w, node_h, gap_x, gap_y, pad) = (180.0, 44.0, 100.0, 22.0, 12.0);
        let tallest = columns.iter().map(Vec::len).max().unwrap_or(1) as f64;
        let height = pad * 2.0 + tallest * node_h + (tallest - 1.0) * gap_y;
        let width = pad * 2.0 + layers as f64 * node_w + (layers as f64 - 1.0) * gap_x;
        let mut factory_pos = vec![(0.0, 0.0); count];
        let mut external_pos = vec![(0.0, 0.0); graph.external_inputs.len()];
        for (column, nodes) in columns.iter().enumerate() {
            let used = nodes.len() as f64 * node_h + (nodes.len() as f64 - 1.0).max(0.0) * gap_y;
            let offset = (height - used) / 2.0;
            for (row, node) in nodes.iter().enumerate() {
                let position = (pad + column as f64 * (node_w + gap_x), offset + row as f64 * (node_h + gap_y));
                match node.kind {
                    NodeKind::Factory(index) => factory_pos[index] = position,
                    NodeKind::External(index) => external_pos[index] = position,
                }
            }
        }
        let _ = writeln!(
            out,
            "<svg id=\"graph\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"pipeline graph\">\n\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#667\"/></marker>\
             <marker id=\"arrow-crit\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{CRITICAL}\"/></marker></defs>"
        );
        let critical: Vec<(usize, usize)> =
            self.critical_path.factories.windows(2).map(|pair| (pair[0], pair[1])).collect();
        for (consumer, node) in graph.factories.iter().enumerate() {
            // Each input enters the consumer at its own height, in field order.
            let slots = node.inputs.iter().filter(|input| input.source.is_some()).count() as f64;
            let mut slot = 0.0;
            for input in &node.inputs {
                let (from, on_path) = match input.source {
                    Some(Source::Factory(producer)) if producer < count => {
                        (factory_pos[producer], critical.contains(&(producer, consumer)))
                    }
                    Some(Source::External(index)) if index < external_pos.len() => (external_pos[index], false),
                    _ => continue,
                };
                slot += 1.0;
                let to = factory_pos[consumer];
                let (x0, y0) = (from.0 + node_w, from.1 + node_h / 2.0);
                let (x1, y1) = (to.0, to.1 + node_h * slot / (slots + 1.0));
                let bend = ((x1 - x0) / 2.0).max(30.0);
                let (class, marker) = if on_path { ("edge critical", "arrow-crit") } else { ("edge", "arrow") };
                let _ = writeln!(
                    out,
                    "<path class=\"{class}\" d=\"M{x0:.1},{y0:.1} C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}\" marker-end=\"url(#{marker})\"><title>{}</title></path>\
                     <text class=\"edgelabel\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x0 + bend,
                    x1 - bend,
                    esc(&input.field),
                    x1 - 10.0,
                    y1 - 3.0,
                    esc(&input.field)
                );
            }
        }
        for nodes in &columns {
            for node in nodes {
                let ((x, y), class) = match node.kind {
                    NodeKind::Factory(index) => {
                        let class = if self.factories.get(index).is_some_and(|factory| factory.critical) {
                            "node critical"
                        } else if self.factories.get(index).is_some_and(|factory| factory.status == Status::Failed) {
                            "node failed"
                        } else {
                            "node"
                        };
                        (factory_pos[index], class)
                    }
                    NodeKind::External(index) => (external_pos[index], "node external"),
                };
                let _ = writeln!(
                    out,
                    "<g class=\"{class}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{node_w}\" height=\"{node_h}\" rx=\"8\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" class=\"nodetitle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"nodesub\">{}</text></g>",
                    x + node_w / 2.0,
                    y + 18.0,
                    esc(&truncate(&node.title, 24)),
                    x + node_w / 2.0,
                    y + 34.0,
                    esc(&truncate(&node.subtitle, 30))
                );
            }
        }
        out.push_str("</svg>\n");
    }

    fn table(&self, out: &mut String) {
        out.push_str("<table id=\"phases\" class=\"sortable\">\n<thead><tr>");
        for (head, kind) in [
            ("Factory", "text"),
            ("Stage", "num"),
            ("Thread", "text"),
            ("Start (s)", "num"),
            ("Read (s)", "num"),
            ("Process (s)", "num"),
            ("Write (s)", "num"),
            ("Total (s)", "num"),
            ("Executed CPU (s)", "num"),
            ("Executed rows", "num"),
            ("Executed peak memory", "num"),
            ("Executed in", "text"),
            ("Rows", "num"),
            ("Bytes", "num"),
            ("Status", "text"),
            ("Critical", "text"),
        ] {
            let _ = write!(out, "<th data-type=\"{kind}\" tabindex=\"0\">{head}</th>");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let number = |value: Option<f64>| match value {
            Some(value) => format!("<td data-v=\"{value}\">{value:.4}</td>"),
            None => "<td data-v=\"-1\">-</td>".to_owned(),
        };
        let count = |value: Option<u64>, text: &dyn Fn(u64) -> String| match value {
            Some(value) => format!("<td data-v=\"{value}\">{}</td>", text(value)),
            None => "<td data-v=\"-1\">-</td>".to_owned(),
        };
        for factory in &self.factories {
            let class = if factory.critical { " class=\"critical\"" } else { "" };
            let status = match factory.status {
                Status::Finished => "finished",
                Status::Failed => "failed",
                Status::NotStarted => "not started",
            };
            let thread = factory.thread_name.clone().unwrap_or_else(|| "-".to_owned());
            let executed = !factory.executed.is_empty();
            let compute = executed.then(|| factory.executed.iter().map(|work| work.compute_s).sum());
            let rows = executed.then(|| factory.executed.iter().map(|work| work.rows).sum());
            let peak = factory.executed.iter().map(|work| work.peak_memory_bytes).max();
            let mut places: Vec<&str> =
                factory.executed.iter().map(|work| work.executed_in.as_deref().unwrap_or("no phase")).collect();
            places.dedup();
            let places = esc(&places.join(", "));
            let _ = writeln!(
                out,
                "<tr{class}><td data-v=\"{0}\">{0}</td><td data-v=\"{1}\">{1}</td><td data-v=\"{2}\">{2}</td>{3}{4}{5}{6}{7}{11}{12}{13}<td data-v=\"{places}\">{places}</td>{8}{9}<td data-v=\"{status}\">{status}</td><td data-v=\"{10}\">{10}</td></tr>",
                esc(&factory.name),
                factory.stage,
                esc(&thread),
                number(factory.start_s),
                number(factory.phase_s("read")),
                number(factory.phase_s("process")),
                number(factory.phase_s("write")),
                number(factory.total_s),
                count(factory.output.and_then(|output| output.rows), &|rows| rows.to_string()),
                count(factory.output.and_then(|output| output.bytes), &crate::summary::bytes),
                if factory.critical { "yes" } else { "" },
                number(compute),
                count(rows, &|rows| rows.to_string()),
                count(peak, &crate::summary::bytes),
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }

    /// Each factory's executed plans, operator by operator (collapsible, as `EXPLAIN ANALYZE`
    /// shows them), after the run's most expensive operators.
    fn operators(&self, out: &mut String) {
        let mut top: Vec<(&str, &crate::report::OperatorRun)> = self
            .factories
            .iter()
            .flat_map(|factory| {
                factory.executed.iter().flat_map(move |work| work.operators.iter().map(move |op| (&*factory.name, op)))
            })
            .collect();
        if top.is_empty() {
            out.push_str("<p>No engine reported the plans it executed.</p>\n");
            return;
        }
        top.sort_by(|a, b| b.1.compute_s.total_cmp(&a.1.compute_s));
        out.push_str("<h3>Top operators by CPU time</h3>\n<table id=\"top-operators\">\n<thead><tr><th>Factory</th><th>Operator</th><th>CPU (s)</th><th>Rows</th><th>Spilled</th><th>Peak memory</th></tr></thead>\n<tbody>\n");
        for (factory, op) in top.iter().take(10) {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"op\">{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(factory),
                esc(&truncate(&op.name, 90)),
                op.compute_s,
                op.rows,
                crate::summary::bytes(op.spilled_bytes),
                crate::summary::bytes(op.peak_memory_bytes)
            );
        }
        out.push_str("</tbody>\n</table>\n<h3>Executed plans by factory</h3>\n");
        for factory in self.factories.iter().filter(|factory| !factory.executed.is_empty()) {
            let compute: f64 = factory.executed.iter().map(|work| work.compute_s).sum();
            let _ = writeln!(
                out,
                "<details class=\"plans\"><summary><b>{}</b>: {} execution(s), {compute:.4} s CPU</summary>",
                esc(&factory.name),
                factory.executed.len()
            );
            for work in &factory.executed {
                let _ = writeln!(
                    out,
                    "<details><summary>{}{}, executed in {} at {:.3} s: {:.4} s CPU, {} rows, {} reserved at peak</summary><pre>",
                    esc(&work.what),
                    work.shared.as_ref().map_or_else(String::new, |how| format!(" ({})", esc(how))),
                    esc(work.executed_in.as_deref().unwrap_or("no phase")),
                    work.start_s,
                    work.compute_s,
                    work.rows,
                    crate::summary::bytes(work.peak_memory_bytes)
                );
                for op in &work.operators {
                    let _ = writeln!(
                        out,
                        "{:indent$}{}  [cpu={:.4}s, rows={}{}{}]",
                        "",
                        esc(&op.name),
                        op.compute_s,
                        op.rows,
                        if op.spilled_bytes > 0 {
                            format!(", spilled={}", crate::summary::bytes(op.spilled_bytes))
                        } else {
                            String::new()
                        },
                        if op.peak_memory_bytes > 0 {
                            format!(", peak_mem={}", crate::summary::bytes(op.peak_memory_bytes))
                        } else {
                            String::new()
                        },
                        indent = op.depth * 2
                    );
                }
                out.push_str("</pre></details>\n");
            }
            out.push_str("</details>\n");
        }
    }

    fn memory_chart(&self, out: &mut String) {
        let rss: Vec<(f64, f64)> = self
            .memory
            .iter()
            .filter_map(|sample| sample.rss_bytes.map(|bytes| (sample.at_s, bytes as f64 / 1048576.0)))
            .collect();
        let held: Vec<(f64, f64)> = self
            .memory
            .iter()
            .filter_map(|sample| sample.outputs_bytes.map(|bytes| (sample.at_s, bytes as f64 / 1048576.0)))
            .collect();
        if rss.is_empty() && held.is_empty() {
            out.push_str("<p>No memory samples (memory is sampled on Linux, outputs are measured when a measure knows their type).</p>\n");
        } else {
            self.step_chart(
                out,
                "memory",
                &[("process RSS", "#6f4e7c", rss), ("measured outputs held by the store", "#0b84a5", held)],
            );
        }
        let _ = writeln!(
            out,
            "<p>Outputs released after their last consumer: {}{}.</p>",
            self.store.outputs_released,
            self.store
                .peak_output_bytes
                .map(|peak| format!("; peak bytes of measured outputs held: {}", crate::summary::bytes(peak)))
                .unwrap_or_default()
        );
        if !self.cache_events.is_empty() {
            let mut series = Vec::new();
            for (kind, name, color) in [
                (CacheEventKind::Spilled, "bytes spilled (cumulative)", "#e15759"),
                (CacheEventKind::Reloaded, "bytes reloaded (cumulative)", "#76b7b2"),
                (CacheEventKind::Materialized, "bytes materialized (cumulative)", "#edc948"),
            ] {
                let mut total = 0.0;
                let points: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
                    .chain(self.cache_events.iter().filter(|event| event.kind == kind).map(|event| {
                        total += event.bytes as f64 / 1048576.0;
                        (event.at_s, total)
                    }))
                    .collect();
                if points.len() > 1 {
                    series.push((name, color, points));
                }
            }
            self.step_chart(out, "cache-timeline", &series);
        }
    }

    /// A step chart of MiB over the run's time, one line per series, with its legend.
    fn step_chart(&self, out: &mut String, id: &str, series: &[Series<'_>]) {
        let (left, width, top, height) = (60.0, 800.0, 12.0, 160.0);
        let span = self.elapsed_s.max(1e-6);
        let max =
            series.iter().flat_map(|(_, _, points)| points.iter().map(|(_, mib)| *mib)).fold(0.0, f64::max).max(1e-3)
                * 1.1;
        let x = |seconds: f64| left + seconds.clamp(0.0, span) / span * width;
        let y = |mib: f64| top + height - mib / max * height;
        let _ = writeln!(
            out,
            "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {0:.0} {1:.0}\" width=\"{0:.0}\" height=\"{1:.0}\" role=\"img\" aria-label=\"{id} over time\">",
            left + width + 20.0,
            top + height + 30.0
        );
        let step = tick_step(max, 4.0);
        let mut tick = 0.0;
        while tick <= max {
            let _ = writeln!(
                out,
                "<line x1=\"{left}\" x2=\"{right:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" class=\"grid\"/><text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"tick end\">{label} MiB</text>",
                right = left + width,
                ty = y(tick),
                lx = left - 4.0,
                ly = y(tick) + 4.0,
                label = trim_float(tick)
            );
            tick += step;
        }
        let time_step = tick_step(span, 8.0);
        let mut tick = 0.0;
        while tick <= span + time_step * 1e-9 {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}s</text>",
                x(tick),
                top + height + 16.0,
                trim_float(tick)
            );
            tick += time_step;
        }
        let mut legend = String::new();
        for (name, color, points) in series {
            if points.is_empty() {
                continue;
            }
            let mut line = String::new();
            let mut previous: Option<f64> = None;
            for &(at, mib) in points {
                if let Some(previous) = previous {
                    let _ = write!(line, "{:.1},{:.1} ", x(at), y(previous));
                }
                let _ = write!(line, "{:.1},{:.1} ", x(at), y(mib));
                previous = Some(mib);
            }
            if let Some(previous) = previous {
                let _ = write!(line, "{:.1},{:.1}", x(span), y(previous));
            }
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{line}\"><title>{name}</title></polyline>"
            );
            let _ = write!(legend, "<span style=\"background:{color}\"></span>{name} ");
        }
        let _ = writeln!(out, "</svg>\n<p class=\"legend\">{}</p>", legend.trim_end());
    }

    fn cache_table(&self, out: &mut String) {
        let Some(cache) = &self.cache else {
            out.push_str("<p>No cache statistics: the pipeline had no cache that reports them.</p>\n");
            return;
        };
        out.push_str("<table id=\"cache\"><thead><tr><th>Cache</th><th>Value</th></tr></thead><tbody>\n");
        for (name, value) in [
            ("memory budget", cache.budget.map_or_else(|| "none".to_owned(), crate::summary::bytes)),
            ("bytes held at end", crate::summary::bytes(cache.bytes_held)),
            ("peak bytes held", crate::summary::bytes(cache.peak_bytes)),
            ("spilled bytes", crate::summary::bytes(cache.spilled_bytes)),
            ("spill files (deleted during the run)", format!("{} ({})", cache.spill_files, cache.spill_files_deleted)),
            ("reloads", format!("{} ({})", cache.reloads, crate::summary::bytes(cache.reloaded_bytes))),
            ("releases", cache.releases.to_string()),
            ("materializations", cache.materializations.to_string()),
            ("lazy recipe runs (recomputations)", format!("{} ({})", cache.lazy_runs, cache.lazy_recomputations)),
        ] {
            let _ = writeln!(out, "<tr><td>{name}</td><td>{value}</td></tr>");
        }
        out.push_str("</tbody></table>\n");
    }
}

/// A line of a chart: its name, its colour and its (seconds, MiB) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

#[derive(Clone)]
enum NodeKind {
    Factory(usize),
    External(usize),
}

#[derive(Clone)]
struct Node {
    kind: NodeKind,
    title: String,
    subtitle: String,
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.ok{color:#1a7f37;font-weight:bold}.failed{color:#d62728;font-weight:bold}.error{background:#fde8e8;border-left:4px solid #d62728;padding:8px}
.crit{color:#d62728;font-weight:bold}.hint{color:#666;font-size:12px;margin:0 0 6px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle;border-radius:2px}
.legend .critkey{border:2.5px solid #d62728;width:10px;height:10px;background:#e8edf3}
.chart{display:block;max-width:100%;height:auto;font-size:11px}
.grid{stroke:#e4e4e4}.tick{fill:#666;text-anchor:middle}.tick.end{text-anchor:end}.lane{fill:#333;font-size:12px}
.bar{fill:#e8edf3;stroke:#9aa7b4}.bar.critical{stroke:#d62728;stroke-width:2.5}.bar.failed{stroke:#d62728;stroke-dasharray:4 2}
.barlabel{fill:#fff;font-size:11px;font-weight:600;paint-order:stroke;stroke:#333;stroke-width:2px}
.node rect{fill:#f4f6f9;stroke:#8795a5;stroke-width:1.5}.node.critical rect{stroke:#d62728;stroke-width:3;fill:#fff5f5}
.node.failed rect{stroke:#d62728;stroke-dasharray:4 2}.node.external rect{fill:#fffbe6;stroke:#c9a227}
.nodetitle{text-anchor:middle;font-weight:600;font-size:13px}.nodesub{text-anchor:middle;fill:#555;font-size:11px}
.edge{fill:none;stroke:#667;stroke-width:1.5}.edge.critical{stroke:#d62728;stroke-width:3}.edgelabel{fill:#555;font-size:10px;text-anchor:end;paint-order:stroke;stroke:#fff;stroke-width:3px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f6f9;cursor:pointer;user-select:none}td:first-child,th:first-child{text-align:left}
th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}
tr.critical td:first-child{border-left:4px solid #d62728;font-weight:600}
td.op{text-align:left;font-family:ui-monospace,monospace;font-size:12px}
details.plans{margin:4px 0}details details{margin-left:18px}pre{font-size:12px;background:#f8f9fb;padding:6px;overflow-x:auto}
.legend .hatchkey{background:repeating-linear-gradient(45deg,#888 0 3px,#fff 3px 5px)}
";

const SCRIPT: &str = r#"
(function () {
  function key(cell, type) {
    var v = cell.getAttribute('data-v');
    return type === 'num' ? parseFloat(v) : v.toLowerCase();
  }
  function sortBy(table, column) {
    var head = table.tHead.rows[0].cells[column];
    var type = head.getAttribute('data-type');
    var ascending = head.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute('aria-sort'); });
    head.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[column], type), y = key(b.cells[column], type);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  try {
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
        th.addEventListener('click', function () { sortBy(table, column); });
        th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sortBy(table, column); } });
      });
    });
    var report = JSON.parse(document.getElementById('run-report').textContent);
    if (report.schema_version !== @SCHEMA@) { throw new Error('unexpected schema_version ' + report.schema_version); }
    if (document.querySelectorAll('#phases tbody tr').length !== report.factories.length) {
      throw new Error('the phase table does not list every factory');
    }
    document.body.setAttribute('data-report-ready', 'ok');
  } catch (error) {
    document.body.setAttribute('data-report-ready', 'error');
    console.error('setl report: ' + error);
  }
})();
"#;
