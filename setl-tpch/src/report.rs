//! What the job prints: progress while it runs, then the benchmark table and the one-line
//! summary (setl-report's `summary`).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use setl_core::{Event, EventKind, Observer};

/// Prints a line to stderr when a factory starts, finishes or fails.
#[derive(Default)]
pub struct Progress {
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
