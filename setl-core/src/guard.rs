//! Running user code so that a panic becomes an error instead of unwinding through the runtime.
//!
//! The runtime calls user code on a factory's behalf in many places besides its phases: `get`,
//! `writable`, the drop of the factory and of its output, and the output's [`Storable`]
//! operations (weighing, spilling, reading back, materializing, which may run a lazy recipe).
//! Each call goes through [`catch`], and the caller turns a caught panic into
//! [`ErrorKind::Panicked`] naming the factory and the [`Operation`]. Nothing the runtime holds
//! is left half-updated by such a panic: user code never runs under the scheduler's lock.
//!
//! [`Storable`]: crate::Storable
//! [`ErrorKind::Panicked`]: crate::ErrorKind::Panicked
//! [`Operation`]: crate::error::Operation

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind, Operation};

/// Runs `call`; a panic comes back as its message.
///
/// `AssertUnwindSafe` is sound here: after a panic the runtime never looks at what the user code
/// was working on again, except to drop it (under `catch` too).
pub(crate) fn catch<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(message)
}

/// The message of a panic's payload. The payload is dropped here, and a panic in its own `Drop`
/// (`panic_any` of a value whose `drop` panics) is caught too: its payload is leaked rather than
/// dropped, so that nothing unwinds out of this function.
pub(crate) fn message(payload: Box<dyn Any + Send>) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    message
}

/// The error of a panic in `operation` of factory `factory`.
pub(crate) fn panicked(factory: &str, operation: Operation, message: String) -> Error {
    ErrorKind::Panicked { factory: factory.to_owned(), operation, message }.into()
}

/// Drops `value`; a panic in its `Drop` comes back as an error naming `factory` and `operation`.
pub(crate) fn drop_guarded<T>(value: T, factory: &str, operation: Operation) -> Result<(), Error> {
    catch(move || drop(value)).map_err(|message| panicked(factory, operation, message))
}
