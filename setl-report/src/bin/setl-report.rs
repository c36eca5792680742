//! `setl-report`: compare saved run reports, and render them as HTML, traces or graphs.
//!
//! ```text
//! setl-report compare OLD.json NEW.json [--threshold PCT] [--min-delta-ms MS]
//! setl-report html REPORT.json --output REPORT.html
//! setl-report trace REPORT.json --output TRACE.json
//! setl-report timeline REPORT.json --output TIMELINE.svg
//! setl-report graph REPORT.json [--format mermaid|dot]
//! ```
//!
//! Exit status: 0 when fine, 1 when `compare` found a regression, 2 on bad arguments or input.

use std::process::ExitCode;

use setl_report::{compare, CompareOptions, RunReport};

const USAGE: &str = "usage:
  setl-report compare OLD.json NEW.json [--threshold PCT] [--min-delta-ms MS]
  setl-report html REPORT.json --output REPORT.html
  setl-report trace REPORT.json --output TRACE.json
  setl-report timeline REPORT.json --output TIMELINE.svg
  setl-report graph REPORT.json [--format mermaid|dot]

compare prints, per factory and phase, the change from OLD to NEW and exits with 1 when a time
grew by more than PCT percent (default 10) and more than MS milliseconds (default 1).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("setl-report: {message}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` options, in the order given.
type Options = Vec<(String, String)>;

/// Splits arguments into positionals and `--name value` options.
fn parse(args: &[String], allowed: &[&str]) -> Result<(Vec<String>, Options), String> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(name) = arg.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = iter.next().ok_or_else(|| format!("option --{name} needs a value\n\n{USAGE}"))?;
                    (name.to_owned(), value.clone())
                }
            };
            if !allowed.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}\n\n{USAGE}"));
            }
            options.push((name, value));
        } else if arg == "-o" {
            let value = iter.next().ok_or_else(|| format!("option -o needs a value\n\n{USAGE}"))?;
            options.push(("output".to_owned(), value.clone()));
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((positional, options))
}

fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

fn number(options: &[(String, String)], name: &str, default: f64) -> Result<f64, String> {
    match option(options, name) {
        None => Ok(default),
        Some(text) => match text.parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
            _ => Err(format!("--{name} {text}: expected a non-negative number")),
        },
    }
}

fn load(path: &str) -> Result<RunReport, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    RunReport::from_json(&text).map_err(|error| format!("{path}: {error}"))
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err(USAGE.to_owned());
    };
    match command.as_str() {
        "compare" => {
            let (files, options) = parse(rest, &["threshold", "min-delta-ms"])?;
            let [old, new] = files.as_slice() else {
                return Err(format!("compare needs two reports, got {}\n\n{USAGE}", files.len()));
            };
            let options = CompareOptions {
                threshold_pct: number(&options, "threshold", 10.0)?,
                min_delta_s: number(&options, "min-delta-ms", 1.0)? / 1000.0,
            };
            let comparison = compare(&load(old)?, &load(new)?, options);
            println!("{comparison}");
            Ok(if comparison.has_regressions() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        "html" | "trace" | "timeline" => {
            let (files, options) = parse(rest, &["output"])?;
            let [input] = files.as_slice() else {
                return Err(format!("{command} needs one report\n\n{USAGE}"));
            };
            let output = option(&options, "output").ok_or_else(|| format!("{command} needs --output FILE"))?;
            let report = load(input)?;
            let text = match command.as_str() {
                "html" => report.to_html(),
                "trace" => report.to_chrome_trace(),
                _ => report.to_timeline_svg(),
            };
            setl_report::write_file(output, text).map_err(|error| error.to_string())?;
            eprintln!("wrote {output}");
            Ok(ExitCode::SUCCESS)
        }
        "graph" => {
            let (files, options) = parse(rest, &["format"])?;
            let [input] = files.as_slice() else {
                return Err(format!("graph needs one report\n\n{USAGE}"));
            };
            let report = load(input)?;
            match option(&options, "format").unwrap_or("mermaid") {
                "mermaid" => print!("{}", report.to_mermaid_flowchart()),
                "dot" => print!("{}", report.to_dot()),
                other => return Err(format!("--format {other}: expected mermaid or dot")),
            }
            Ok(ExitCode::SUCCESS)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}
