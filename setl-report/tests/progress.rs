//! The progress observer counts finished factories and shows the running ones.
#![cfg(feature = "progress")]

mod common;

use std::sync::{Arc, Mutex};

use setl_core::{Event, EventKind, Observer};
use setl_report::progress::ProgressObserver;

/// Looks at the progress observer's state each time a factory starts, after it saw the event.
struct Peek {
    progress: Arc<ProgressObserver>,
    seen: Mutex<Vec<(u64, u64, Vec<String>)>>,
}

impl Observer for Peek {
    fn on_event(&self, event: &Event) {
        if let EventKind::FactoryStarted(_) = event.kind {
            let progress = &self.progress;
            let running = progress.running().iter().map(ToString::to_string).collect();
            self.seen.lock().unwrap().push((progress.done(), progress.total(), running));
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
    let seen = peek.seen.lock().unwrap();
    assert_eq!(
        *seen,
        [(0, 3, vec!["Numbers".to_owned()]), (1, 3, vec!["Squares".to_owned()]), (2, 3, vec!["Total".to_owned()])]
    );
    assert_eq!((progress.done(), progress.total()), (3, 3));
    assert!(progress.running().is_empty());
    assert!(progress.message().starts_with("done in "), "{}", progress.message());
}
