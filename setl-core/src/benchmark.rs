//! Per-phase benchmarks. Workers time each benchmarked factory and hand the timings over with
//! its output; the same timings go on the event stream for observers.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Phase;
use crate::executed::{seconds, ExecutedWork};
use crate::runtime::FactoryTiming;

/// The timings of one factory in one run.
///
/// `total` is the factory's wall time from start to hand-off (it includes injection and `get`,
/// so it is at least the sum of the phases). `start` is the offset from the pipeline's start, and
/// `thread` the Rayon worker, so a timeline can be drawn. `executed` is the work of the
/// factory's lazy plans, wherever it ran: a plan that a consumer executed is charged here, to
/// the factory that defined it, and not only to the consumer's phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BenchmarkResult {
    /// The factory's name.
    pub factory: String,
    /// The stage the factory was declared in.
    pub stage: usize,
    /// Time spent in `read`.
    #[serde(serialize_with = "seconds")]
    pub read: Duration,
    /// Time spent in `process`.
    #[serde(serialize_with = "seconds")]
    pub process: Duration,
    /// Time spent in `write` (zero when skipped).
    #[serde(serialize_with = "seconds")]
    pub write: Duration,
    /// The factory's wall time.
    #[serde(serialize_with = "seconds")]
    pub total: Duration,
    /// When the factory started, from the start of the pipeline.
    #[serde(serialize_with = "seconds")]
    pub start: Duration,
    /// The Rayon worker thread it ran on.
    pub thread: Option<usize>,
    /// Work of the plans it defined, as the engines that executed them measured it (empty for
    /// a factory that defines no lazy work, or when no engine reports it).
    pub executed: Vec<ExecutedWork>,
}

impl BenchmarkResult {
    /// The time of one phase (`Get` is not timed on its own and gives zero).
    pub fn phase(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Read => self.read,
            Phase::Process => self.process,
            Phase::Write => self.write,
            Phase::Get => Duration::ZERO,
        }
    }

    /// CPU time of the work its plans did wherever they executed.
    pub fn executed_compute(&self) -> Duration {
        self.executed.iter().map(|work| work.compute).sum()
    }

    /// The work of its plans, summed per place it executed, in the order first seen.
    pub fn executed_by_place(&self) -> Vec<ExecutedPlace> {
        let mut places: Vec<ExecutedPlace> = Vec::new();
        for work in &self.executed {
            let mut place = match &work.executed_in {
                Some(phase) if phase.factory == self.factory => format!("in its own {}", phase.phase.as_str()),
                Some(phase) => format!("later, in {phase}"),
                None => "after the run".to_owned(),
            };
            if let Some(how) = &work.shared {
                place = format!("{place} ({how})");
            }
            match places.iter_mut().find(|known| known.place == place) {
                Some(known) => {
                    known.compute += work.compute;
                    known.rows += work.rows;
                    known.peak_memory = known.peak_memory.max(work.peak_memory);
                }
                None => places.push(ExecutedPlace {
                    place,
                    compute: work.compute,
                    rows: work.rows,
                    peak_memory: work.peak_memory,
                }),
            }
        }
        places
    }
}

/// The work of a factory's plans that ran in one place, summed (one line of the text form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedPlace {
    /// Where, in words: "later, in Load.process", "in its own write", "after the run"; with how
    /// it was shared, for a shared read.
    pub place: String,
    /// CPU time of its operators there.
    pub compute: Duration,
    /// Rows its plans produced there.
    pub rows: u64,
    /// The most memory one of its executions there held reserved in the engine's pool.
    pub peak_memory: u64,
}

/// The text form of SETL and PySetl, with a line per place its plans executed.
impl fmt::Display for BenchmarkResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Benchmark class: {}", self.factory)?;
        writeln!(f, "Total elapsed time: {} s", self.total.as_secs_f64())?;
        writeln!(f, "read: {} s", self.read.as_secs_f64())?;
        writeln!(f, "process: {} s", self.process.as_secs_f64())?;
        writeln!(f, "write: {} s", self.write.as_secs_f64())?;
        for ExecutedPlace { place, compute, rows, peak_memory } in self.executed_by_place() {
            write!(f, "executed {place}: {} s, {} rows", compute.as_secs_f64(), thousands(rows))?;
            if peak_memory > 0 {
                write!(f, ", {:.1} MiB reserved at peak", peak_memory as f64 / (1 << 20) as f64)?;
            }
            writeln!(f)?;
        }
        write!(f, "=================")
    }
}

/// `6001215` as `6,001,215`.
fn thousands(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Something that ran factories and can report their timings: a `Pipeline` or one of its stages.
pub trait HasBenchmark {
    /// One result per benchmarked factory, in declaration order; empty when benchmarking was off.
    fn benchmarks(&self) -> Vec<BenchmarkResult>;
}

/// The results of the benchmarked factories that finished, in declaration order.
/// `factories` gives each factory's name, stage and whether it is benchmarked; `timings` is
/// empty when no factory was timed.
pub(crate) fn results<'a>(
    factories: impl Iterator<Item = (&'a str, usize, bool)>,
    timings: &[Option<FactoryTiming>],
    pipeline_start: Option<Instant>,
    executed: &[ExecutedWork],
) -> Vec<BenchmarkResult> {
    factories
        .zip(timings)
        .filter_map(|((name, stage, benchmarked), timing)| {
            let timing = timing.as_ref().filter(|_| benchmarked)?;
            Some(BenchmarkResult {
                factory: name.to_owned(),
                stage,
                read: timing.read,
                process: timing.process,
                write: timing.write,
                total: timing.total,
                start: pipeline_start.map_or(Duration::ZERO, |begin| timing.started.saturating_duration_since(begin)),
                thread: timing.thread.map(|thread| thread as usize),
                executed: executed.iter().filter(|work| work.defined_in.factory == name).cloned().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_seed_text_form() {
        let result = BenchmarkResult {
            factory: "SourceFactory".into(),
            stage: 0,
            read: Duration::from_millis(100),
            process: Duration::from_millis(50),
            write: Duration::from_millis(200),
            total: Duration::from_millis(350),
            start: Duration::ZERO,
            thread: Some(0),
            executed: Vec::new(),
        };
        assert_eq!(
            result.to_string(),
            "Benchmark class: SourceFactory\nTotal elapsed time: 0.35 s\nread: 0.1 s\nprocess: 0.05 s\nwrite: 0.2 s\n================="
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["total"], 0.35);
        assert_eq!(json["factory"], "SourceFactory");
    }

    #[test]
    fn work_executed_elsewhere_has_a_line_per_place() {
        use crate::executed::FactoryPhase;
        let work = |executed_in: Option<(&str, Phase)>, millis, rows| ExecutedWork {
            defined_in: FactoryPhase { factory: "ReadLineitem".into(), phase: Phase::Read },
            executed_in: executed_in.map(|(factory, phase)| FactoryPhase { factory: factory.into(), phase }),
            what: "Parquet scan".into(),
            shared: None,
            start: Duration::ZERO,
            elapsed: Duration::from_millis(millis),
            compute: Duration::from_millis(millis),
            rows,
            spilled_bytes: 0,
            peak_memory: 0,
            thread: None,
            operators: Vec::new(),
        };
        let result = BenchmarkResult {
            factory: "ReadLineitem".into(),
            stage: 0,
            read: Duration::from_millis(2),
            process: Duration::ZERO,
            write: Duration::ZERO,
            total: Duration::from_millis(2),
            start: Duration::ZERO,
            thread: Some(0),
            executed: vec![
                work(Some(("Load", Phase::Process)), 250, 3_000_000),
                work(Some(("Load", Phase::Process)), 320, 3_001_215),
                ExecutedWork { peak_memory: 10 << 20, ..work(Some(("ReadLineitem", Phase::Write)), 10, 5) },
                work(None, 1, 1),
            ],
        };
        let text = result.to_string();
        assert!(text.contains("\nexecuted later, in Load.process: 0.57 s, 6,001,215 rows\n"), "{text}");
        assert!(text.contains("\nexecuted in its own write: 0.01 s, 5 rows, 10.0 MiB reserved at peak\n"), "{text}");
        assert!(text.contains("\nexecuted after the run: 0.001 s, 1 rows\n"), "{text}");
        assert_eq!(result.executed_compute(), Duration::from_millis(581));
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["executed"][0]["executed_in"]["factory"], "Load");
        assert_eq!(json["executed"][0]["compute"], 0.25);
    }
}
