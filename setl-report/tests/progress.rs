//! The progress observer counts finished factories and shows the running ones.
#![cfg(feature = "progress")]

mod common;

use std::sync::{Arc, Mutex};

use setl_core::{Event, EventKind, Observer};
use setl_report::progress::ProgressObserver;

/// Looks at the progress observer's state each time a factory starts, after it saw the event.
struct Peek {
    progress: Arc<ProgressObserver>,
    seen: Mutex<Vec<(u64, u64, Vec<&'static str>)>>,
}

impl Observer for Peek {
    fn on_event(&self, event: &Event) {
        if let EventKind::FactoryStarted(_) = event.kind {
            let progress = &self.progress;
            self.seen.lock().unwrap().push((progress.done(), progress.total(), progress.running()));
        }
    }
}

#[test]
fn the_bar_counts_factories_done_of_total() {
    let progress = Arc::new(ProgressObserver::hidden());
    let peek = Arc::new(Peek { progress: progress.clone(), seen: Mutex::new(Vec::new()) });
    let mut pipeline = common::small_pipeline(1);
    pipeline.observe(progress.clone()).observe(peek.clone());
    pipeline.run().unwrap();
    assert_eq!(*peek.seen.lock().unwrap(), [(0, 3, vec!["Numbers"]), (1, 3, vec!["Squares"]), (2, 3, vec!["Total"])]);
    assert_eq!((progress.done(), progress.total()), (3, 3));
    assert!(progress.running().is_empty());
    assert!(progress.message().starts_with("done in "), "{}", progress.message());
}
