//! Assertions for a user's tests on the benchmarks or the report of a run.
//!
//! Each assertion panics with a message naming the factory and what was found instead, at the
//! caller's line (`#[track_caller]`), and returns `self` so checks chain:
//!
//! ```
//! # use setl_core::prelude::*;
//! # #[factory] #[derive(Default)] struct Numbers;
//! # impl Factory for Numbers { type Output = (); fn get(&self) {} }
//! use setl_report::testing::{expect_benchmarks, expect_run};
//! use setl_report::{run_with_report, RunRecorder};
//!
//! let setl = Setl::builder().threads(1).build()?;
//! let mut pipeline = setl.new_pipeline();
//! pipeline.benchmark(true);
//! pipeline.add_stage_from_type::<Numbers>();
//! let (result, report) = run_with_report(&mut pipeline, RunRecorder::new());
//! result?;
//! expect_benchmarks(&pipeline.benchmarks()).has_factory("Numbers").each_once();
//! expect_run(&report).succeeded().ran_once_each().phase_order("Numbers", &["read", "process", "write"]);
//! # Ok::<(), setl_core::Error>(())
//! ```

use setl_core::BenchmarkResult;

use crate::report::{RunReport, Status};

/// Assertions on `HasBenchmark::benchmarks()`; see [`expect_benchmarks`].
#[derive(Debug, Clone, Copy)]
pub struct BenchmarkExpect<'a> {
    results: &'a [BenchmarkResult],
}

/// Starts assertions on benchmark results.
pub fn expect_benchmarks(results: &[BenchmarkResult]) -> BenchmarkExpect<'_> {
    BenchmarkExpect { results }
}

impl BenchmarkExpect<'_> {
    fn names(&self) -> Vec<&str> {
        self.results.iter().map(|result| result.factory.as_str()).collect()
    }

    /// The factory has a benchmark result.
    ///
    /// # Panics
    ///
    /// When it has none; the message lists the factories that have one.
    #[track_caller]
    pub fn has_factory(&self, name: &str) -> &Self {
        assert!(
            self.results.iter().any(|result| result.factory == name),
            "no benchmark result for factory `{name}`; results exist for {:?}",
            self.names()
        );
        self
    }

    /// No factory has two results.
    ///
    /// # Panics
    ///
    /// Naming the first factory found twice.
    #[track_caller]
    pub fn each_once(&self) -> &Self {
        let names = self.names();
        for (position, name) in names.iter().enumerate() {
            assert!(
                !names[..position].contains(name),
                "factory `{name}` has more than one benchmark result: {names:?}"
            );
        }
        self
    }

    /// The factories with results are exactly `names`, in declaration order.
    ///
    /// # Panics
    ///
    /// When they differ, showing both lists.
    #[track_caller]
    pub fn factories(&self, names: &[&str]) -> &Self {
        assert_eq!(self.names(), names, "the benchmarked factories differ");
        self
    }

    /// Every result's total is at least the sum of its phases (a timing is not lost).
    ///
    /// # Panics
    ///
    /// Naming the factory whose phases add up to more than its total.
    #[track_caller]
    pub fn totals_cover_phases(&self) -> &Self {
        for result in self.results {
            assert!(
                result.total >= result.read + result.process + result.write,
                "factory `{}`: total {:?} is less than read + process + write = {:?}",
                result.factory,
                result.total,
                result.read + result.process + result.write
            );
        }
        self
    }
}

/// Assertions on a [`RunReport`]; see [`expect_run`].
#[derive(Debug, Clone, Copy)]
pub struct RunExpect<'a> {
    report: &'a RunReport,
}

/// Starts assertions on a run report.
pub fn expect_run(report: &RunReport) -> RunExpect<'_> {
    RunExpect { report }
}

impl RunExpect<'_> {
    #[track_caller]
    fn factory(&self, name: &str) -> &crate::report::FactoryRun {
        match self.report.factory(name) {
            Some(factory) => factory,
            None => panic!(
                "factory `{name}` is not in the run; it has {:?}",
                self.report.factories.iter().map(|factory| factory.name.as_str()).collect::<Vec<_>>()
            ),
        }
    }

    /// The run succeeded.
    ///
    /// # Panics
    ///
    /// With the run's error.
    #[track_caller]
    pub fn succeeded(&self) -> &Self {
        assert!(self.report.ok, "the run failed: {:?}", self.report.error);
        self
    }

    /// The factory ran to the end.
    ///
    /// # Panics
    ///
    /// When it is absent, failed or never started.
    #[track_caller]
    pub fn has_factory(&self, name: &str) -> &Self {
        let factory = self.factory(name);
        assert_eq!(factory.status, Status::Finished, "factory `{name}` did not finish");
        self
    }

    /// Every factory that started, started once.
    ///
    /// # Panics
    ///
    /// Naming a factory that started more than once.
    #[track_caller]
    pub fn ran_once_each(&self) -> &Self {
        for factory in &self.report.factories {
            assert!(factory.starts <= 1, "factory `{}` started {} times", factory.name, factory.starts);
        }
        self
    }

    /// The factory's phases ran exactly in this order (skipped phases are not listed).
    ///
    /// # Panics
    ///
    /// Showing the phases that ran, when they differ or overlap.
    #[track_caller]
    pub fn phase_order(&self, name: &str, phases: &[&str]) -> &Self {
        let factory = self.factory(name);
        let ran: Vec<&str> = factory.phases.iter().map(|phase| phase.phase.as_str()).collect();
        assert_eq!(ran, phases, "factory `{name}` ran other phases than expected");
        for pair in factory.phases.windows(2) {
            assert!(
                pair[1].start_s >= pair[0].start_s + pair[0].elapsed_s - 1e-9,
                "factory `{name}`: {} started before {} ended",
                pair[1].phase,
                pair[0].phase
            );
        }
        self
    }

    /// `first` finished before `second` started.
    ///
    /// # Panics
    ///
    /// With both times, when they overlap or either did not run.
    #[track_caller]
    pub fn ran_before(&self, first: &str, second: &str) -> &Self {
        let end = self.factory(first).end_s;
        let start = self.factory(second).start_s;
        match (end, start) {
            (Some(end), Some(start)) => {
                assert!(end <= start, "`{first}` ended at {end:.6} s, after `{second}` started at {start:.6} s")
            }
            _ => panic!("`{first}` or `{second}` did not run"),
        }
        self
    }

    /// The run failed in `phase` of factory `name`.
    ///
    /// # Panics
    ///
    /// With the run's actual error.
    #[track_caller]
    pub fn failed_in(&self, name: &str, phase: &str) -> &Self {
        let error = self.report.error.as_ref();
        assert!(
            error.is_some_and(|error| error.factory.as_deref() == Some(name) && error.phase.as_deref() == Some(phase)),
            "expected the run to fail in `{name}` {phase}, got {error:?}"
        );
        self
    }
}
