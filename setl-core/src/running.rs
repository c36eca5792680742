//! Which factory's phase is running on the current thread.
//!
//! Libraries that build lazy work inside a phase (a DataFusion scan or query that runs later,
//! in another factory's phase) read it to name the factory that defined the work: an error or a
//! cost is then reported where the user wrote the code, not where it happened to execute.

use std::cell::RefCell;

use crate::error::Phase;
use crate::name::Name;

/// A factory phase running on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The factory's name as reports show it (`Type` or `Type[id]`).
    pub factory: Name,
    /// The phase.
    pub phase: Phase,
}

thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// The factory phase running on this thread, if any: set by the pipeline around each `read`,
/// `process`, `write` and `get` call.
pub fn running() -> Option<Running> {
    RUNNING.with(|running| running.borrow().clone())
}

/// Marks `factory`'s `phase` as running on this thread until dropped; what ran before (a phase
/// this one is nested in, when a worker picks up other work while it waits) comes back then.
pub(crate) struct RunningGuard {
    previous: Option<Running>,
}

impl RunningGuard {
    pub(crate) fn enter(factory: Name, phase: Phase) -> Self {
        let now = Running { factory, phase };
        RunningGuard { previous: RUNNING.with(|running| running.replace(Some(now))) }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        RUNNING.with(|running| *running.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_phases_restore_the_outer_one() {
        assert_eq!(running(), None);
        let outer = RunningGuard::enter(Name::from_static("Outer"), Phase::Process);
        {
            let _inner = RunningGuard::enter(Name::from_static("Inner"), Phase::Read);
            assert_eq!(running(), Some(Running { factory: Name::from_static("Inner"), phase: Phase::Read }));
        }
        assert_eq!(running().map(|r| r.factory), Some(Name::from_static("Outer")));
        drop(outer);
        assert_eq!(running(), None);
    }
}
