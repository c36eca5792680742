//! Comparing two runs: per factory and phase, the change in time, and the regressions.

use std::fmt;

use crate::report::RunReport;

/// When a slowdown counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// A time that grew by more than this percentage is a regression.
    pub threshold_pct: f64,
    /// Changes smaller than this many seconds are noise, never regressions (default 1 ms).
    pub min_delta_s: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions { threshold_pct: 10.0, min_delta_s: 0.001 }
    }
}

/// One compared time.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedTime {
    /// The factory (`(pipeline)` for the whole run).
    pub factory: String,
    /// `read`, `process`, `write`, or `total`.
    pub phase: String,
    /// The time in the old run, absent when it did not run there.
    pub old_s: Option<f64>,
    /// The time in the new run, absent when it did not run there.
    pub new_s: Option<f64>,
    /// The change in percent of the old time (absent when either is missing or old is zero).
    pub change_pct: Option<f64>,
    /// Whether it grew beyond the threshold.
    pub regression: bool,
}

/// The comparison of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The options used.
    pub options: CompareOptions,
    /// Per factory (old run's order, then factories only in the new run) and phase.
    pub rows: Vec<ComparedTime>,
}

impl Comparison {
    /// The rows flagged as regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &ComparedTime> {
        self.rows.iter().filter(|row| row.regression)
    }

    /// Whether any time regressed.
    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
    }
}

/// Compares `new` against `old`: every factory's `read`, `process`, `write` and `total`, and
/// the pipeline's elapsed time. A time regresses when it grew by more than
/// `options.threshold_pct` percent and by more than `options.min_delta_s`.
///
/// Factories are matched by name; one present in a single run gets a row with the other side
/// absent, never flagged.
pub fn compare(old: &RunReport, new: &RunReport, options: CompareOptions) -> Comparison {
    let mut rows = Vec::new();
    let mut push = |factory: &str, phase: &str, old_s: Option<f64>, new_s: Option<f64>| {
        let change_pct = match (old_s, new_s) {
            (Some(old), Some(new)) if old > 0.0 => Some((new - old) / old * 100.0),
            _ => None,
        };
        let regression = match (old_s, new_s) {
            (Some(old), Some(new)) => {
                new - old > options.min_delta_s && change_pct.is_none_or(|change| change > options.threshold_pct)
            }
            _ => false,
        };
        rows.push(ComparedTime {
            factory: factory.to_owned(),
            phase: phase.to_owned(),
            old_s,
            new_s,
            change_pct,
            regression,
        });
    };
    let mut names: Vec<&str> = old.factories.iter().map(|factory| factory.name.as_str()).collect();
    for factory in &new.factories {
        if !names.contains(&factory.name.as_str()) {
            names.push(&factory.name);
        }
    }
    for name in names {
        let before = old.factory(name);
        let after = new.factory(name);
        for phase in ["read", "process", "write"] {
            let old_s = before.and_then(|factory| factory.phase_s(phase));
            let new_s = after.and_then(|factory| factory.phase_s(phase));
            if old_s.is_some() || new_s.is_some() {
                push(name, phase, old_s, new_s);
            }
        }
        push(name, "total", before.and_then(|factory| factory.total_s), after.and_then(|factory| factory.total_s));
    }
    push("(pipeline)", "total", Some(old.elapsed_s), Some(new.elapsed_s));
    Comparison { options, rows }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.4}"))
}

/// A table: factory, phase, old and new seconds, change, and `REGRESSION` where flagged,
/// then a summary line.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.rows.iter().map(|row| row.factory.len()).max().unwrap_or(7).max(7);
        writeln!(f, "{:<width$}  {:<7}  {:>10}  {:>10}  {:>9}", "factory", "phase", "old (s)", "new (s)", "change")?;
        for row in &self.rows {
            let change = row.change_pct.map_or_else(|| "-".to_owned(), |change| format!("{change:+.1}%"));
            let flag = if row.regression { "  REGRESSION" } else { "" };
            writeln!(
                f,
                "{:<width$}  {:<7}  {:>10}  {:>10}  {:>9}{flag}",
                row.factory,
                row.phase,
                seconds(row.old_s),
                seconds(row.new_s),
                change
            )?;
        }
        let count = self.regressions().count();
        if count == 0 {
            write!(f, "no regression above {}%", self.options.threshold_pct)
        } else {
            write!(f, "{count} regression(s) above {}%", self.options.threshold_pct)
        }
    }
}
