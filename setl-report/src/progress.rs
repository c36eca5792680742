//! A progress display for long runs: factories done of total, the running ones, elapsed time.
//!
//! An observer like any other, drawn with indicatif on stderr. Library code never attaches it
//! by itself; an application does, e.g. only when stderr is a terminal:
//!
//! ```no_run
//! # let setl = setl_core::Setl::builder().threads(1).build()?;
//! # let mut pipeline = setl.new_pipeline();
//! if let Some(progress) = setl_report::progress::ProgressObserver::stderr_if_terminal() {
//!     pipeline.observe(std::sync::Arc::new(progress));
//! }
//! # Ok::<(), setl_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use setl_core::{Event, EventKind, Name, Observer};

/// Shows a run's progress with an indicatif bar.
#[derive(Debug)]
pub struct ProgressObserver {
    bar: ProgressBar,
    /// The factories running now, by declaration index.
    running: Mutex<BTreeMap<usize, Name>>,
}

impl ProgressObserver {
    /// A bar drawn on stderr.
    pub fn stderr() -> Self {
        Self::with_target(ProgressDrawTarget::stderr())
    }

    /// A bar on stderr when stderr is a terminal, `None` otherwise (piped to a file or CI log).
    pub fn stderr_if_terminal() -> Option<Self> {
        std::io::stderr().is_terminal().then(Self::stderr)
    }

    /// A bar that draws nothing but counts, for tests.
    pub fn hidden() -> Self {
        Self::with_target(ProgressDrawTarget::hidden())
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        // The template is a constant known to parse; fall back to the default style anyway.
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} factories  running: {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        ProgressObserver { bar, running: Mutex::new(BTreeMap::new()) }
    }

    fn running_lock(&self) -> MutexGuard<'_, BTreeMap<usize, Name>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many factories finished.
    pub fn done(&self) -> u64 {
        self.bar.position()
    }

    /// How many factories the run has.
    pub fn total(&self) -> u64 {
        self.bar.length().unwrap_or(0)
    }

    /// The factories running now, in declaration order.
    pub fn running(&self) -> Vec<Name> {
        self.running_lock().values().cloned().collect()
    }

    /// The bar's message now (the running factories).
    pub fn message(&self) -> String {
        self.bar.message()
    }

    fn show_running(&self, running: &BTreeMap<usize, Name>) {
        let names: Vec<&str> = running.values().map(|name| name.as_str()).collect();
        self.bar.set_message(if names.is_empty() { "-".to_owned() } else { names.join(", ") });
    }
}

impl Observer for ProgressObserver {
    fn on_event(&self, event: &Event) {
        match &event.kind {
            EventKind::PipelineStarted { factories } => {
                self.bar.reset();
                self.bar.set_length(*factories as u64);
                self.bar.enable_steady_tick(Duration::from_millis(100));
            }
            EventKind::FactoryStarted(factory) => {
                let mut running = self.running_lock();
                running.insert(factory.index, factory.name.clone());
                self.show_running(&running);
            }
            EventKind::FactoryFinished { factory, .. } => {
                let mut running = self.running_lock();
                running.remove(&factory.index);
                self.bar.inc(1);
                self.show_running(&running);
            }
            EventKind::FactoryFailed { factory, .. } => {
                let mut running = self.running_lock();
                running.remove(&factory.index);
                self.show_running(&running);
            }
            EventKind::PipelineFinished { ok, elapsed } => {
                let outcome = if *ok { "done" } else { "failed" };
                if let Ok(style) = ProgressStyle::with_template(
                    "  [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} factories  {msg}",
                ) {
                    self.bar.set_style(style);
                }
                self.bar.finish_with_message(format!("{outcome} in {:.2} s", elapsed.as_secs_f64()));
            }
            _ => {}
        }
    }
}
