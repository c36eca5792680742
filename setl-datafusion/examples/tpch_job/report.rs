//! What the job prints: progress while it runs, the benchmark report, the one-line summary.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use setl_core::{BenchmarkResult, Event, EventKind, Observer};

/// Prints a line to stderr when a factory starts, finishes or fails.
#[derive(Default)]
pub(crate) struct Progress {
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Observer for Progress {
    fn on_event(&self, event: &Event) {
        let line = match &event.kind {
            EventKind::PipelineStarted { factories } => {
                self.total.store(*factories, Ordering::Relaxed);
                return;
            }
            EventKind::FactoryStarted(factory) => format!("started  {}", factory.name),
            EventKind::FactoryFinished { factory, elapsed } => {
                self.done.fetch_add(1, Ordering::Relaxed);
                format!("finished {} in {:.3} s", factory.name, elapsed.as_secs_f64())
            }
            EventKind::FactoryFailed { factory, phase, .. } => format!("FAILED   {} in {phase}", factory.name),
            _ => return,
        };
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(std::io::stderr().lock(), "[{done:>2}/{total}] {line}");
    }
}

/// The benchmark results as a compact table, one row per factory, times in milliseconds.
pub(crate) fn table(results: &[BenchmarkResult]) -> String {
    let width = results.iter().map(|result| result.factory.len()).max().unwrap_or(7).max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "factory", "stage", "start ms", "read ms", "proc ms", "write ms", "total ms", "thread"
    );
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    for result in results {
        let thread = result.thread.map_or_else(|| "-".to_owned(), |thread| thread.to_string());
        let _ = writeln!(
            out,
            "{:<width$} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            result.factory,
            result.stage,
            ms(result.start),
            ms(result.read),
            ms(result.process),
            ms(result.write),
            ms(result.total),
            thread
        );
    }
    out
}

/// A byte count in readable units.
pub(crate) fn bytes(count: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`; `None` elsewhere.
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // The kernel counts in clock ticks, 100 per second on Linux.
    Some(Duration::from_millis((user + system) * 10))
}

/// The peak resident memory of this process, from `/proc/self/status`; `None` elsewhere.
pub(crate) fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Restarts the peak resident memory from the current one (Linux 4.0+), so that one part of a
/// program can be measured; returns whether it worked.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
