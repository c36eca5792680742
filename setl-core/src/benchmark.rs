//! Per-phase benchmarks. Workers time each benchmarked factory and hand the timings over with
//! its output; the same timings go on the event stream for observers.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use crate::error::Phase;
use crate::runtime::FactoryTiming;

/// The timings of one factory in one run.
///
/// `total` is the factory's wall time from start to hand-off (it includes injection and `get`,
/// so it is at least the sum of the phases). `start` is the offset from the pipeline's start, and
/// `thread` the Rayon worker, so a timeline can be drawn.
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
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
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
}

/// The text form of SETL and PySetl.
impl fmt::Display for BenchmarkResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Benchmark class: {}", self.factory)?;
        writeln!(f, "Total elapsed time: {} s", self.total.as_secs_f64())?;
        writeln!(f, "read: {} s", self.read.as_secs_f64())?;
        writeln!(f, "process: {} s", self.process.as_secs_f64())?;
        writeln!(f, "write: {} s", self.write.as_secs_f64())?;
        write!(f, "=================")
    }
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
        };
        assert_eq!(
            result.to_string(),
            "Benchmark class: SourceFactory\nTotal elapsed time: 0.35 s\nread: 0.1 s\nprocess: 0.05 s\nwrite: 0.2 s\n================="
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["total"], 0.35);
        assert_eq!(json["factory"], "SourceFactory");
    }
}
