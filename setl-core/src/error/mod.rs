//! The one error type of setl-rs, and the validation report.
//!
//! [`Error`] works like `anyhow::Error` for the code inside a factory phase: `?` converts any
//! `std::error::Error + Send + Sync + 'static` into it, so a phase can call arrow, std::io or a
//! user crate without mapping errors by hand. The price of that blanket conversion is that
//! `Error` itself cannot implement `std::error::Error` (the two impls would overlap); it derefs
//! to `dyn std::error::Error` and converts into `Box<dyn Error + Send + Sync>` instead, so it
//! still fits any error chain. What went wrong is [`ErrorKind`], a plain `std::error::Error`
//! enum a caller can match on.

use std::error::Error as StdError;
use std::fmt;

mod validation;

pub use validation::ValidationError;

/// `Result` with setl-rs's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from user code or a dependency.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// One of the four phases of a factory, plus `get`, which hands the output on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `Factory::read`: load inputs.
    Read,
    /// `Factory::process`: transform.
    Process,
    /// `Factory::write`: persist results; skipped when the stage or factory is not writable.
    Write,
    /// `Factory::get`: hand the output on to consumers.
    Get,
}

impl Phase {
    /// The three timed phases, in the order they run.
    pub const TIMED: [Phase; 3] = [Phase::Read, Phase::Process, Phase::Write];

    /// The phase's name as written in the `Factory` trait.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Read => "read",
            Phase::Process => "process",
            Phase::Write => "write",
            Phase::Get => "get",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime was doing for a factory, outside its phases, when user code panicked (see
/// [`ErrorKind::Panicked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Calling `Factory::writable`.
    Writable,
    /// Dropping the factory after its run (with its shares of its inputs).
    Drop,
    /// Dropping its output after the last consumer (or the store) let go of it.
    DropOutput,
    /// Weighing its output with `Storable::byte_size`.
    Weigh,
    /// Writing its output to a spill file with `Storable::spill`.
    Spill,
    /// Reading its output back from a spill file with `Storable::reload`.
    Reload,
    /// Materializing its (lazy) output with `Storable::materialize`.
    Materialize,
    /// Asking its (lazy) output for its run counter with `Storable::lazy_counter`.
    LazyCounter,
}

impl Operation {
    /// What was being done, as the error message says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Writable => "deciding whether to write",
            Operation::Drop => "being dropped",
            Operation::DropOutput => "dropping its output",
            Operation::Weigh => "weighing its output",
            Operation::Spill => "spilling its output",
            Operation::Reload => "reading its output back from a spill file",
            Operation::Materialize => "materializing its output",
            Operation::LazyCounter => "asking its output for its lazy run counter",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong. Match on it through [`Error::kind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pipeline's graph is not valid; every problem found is listed.
    #[error("{}", ValidationReport(.0))]
    Validation(Vec<ValidationError>),
    /// A factory phase returned an error. `source` is the phase's own error.
    #[error("factory `{factory}` failed in {phase}: {source}")]
    FactoryFailed {
        /// The factory's name.
        factory: String,
        /// The phase that returned the error.
        phase: Phase,
        /// The error the phase returned.
        #[source]
        source: BoxError,
    },
    /// A factory phase panicked; the panic was caught and the run stopped cleanly.
    #[error("factory `{factory}` panicked in {phase}: {message}")]
    FactoryPanicked {
        /// The factory's name.
        factory: String,
        /// The phase that panicked.
        phase: Phase,
        /// The panic message (or a placeholder when the payload was not a string).
        message: String,
    },
    /// User code the runtime called for a factory outside its phases panicked: the output's
    /// `Storable` operations, `writable`, or the drop of the factory or of its output. The panic
    /// was caught and the run stopped cleanly.
    #[error("factory `{factory}` panicked while {operation}: {message}")]
    Panicked {
        /// The factory's name.
        factory: String,
        /// What the runtime was doing for it.
        operation: Operation,
        /// The panic message (or a placeholder when the payload was not a string).
        message: String,
    },
    /// `output::<F>()` was asked for a factory that is not in the pipeline.
    #[error("factory `{factory}` is not in this pipeline; add it with `add_stage_from_type::<{}>()` or `add_factory(..)`", crate::name::factory_type_name(.factory))]
    UnknownFactory {
        /// The factory's name.
        factory: String,
    },
    /// `output::<F>()` was asked for a factory added several times, each with its own id.
    #[error("factory `{factory}` is in this pipeline {} times, with ids {}; fix: ask for one with `output_with_id::<{factory}>(id)`", .ids.len(), .ids.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", "))]
    AmbiguousFactory {
        /// The factory's name.
        factory: String,
        /// The output ids of its instances.
        ids: Vec<String>,
    },
    /// An output was asked for before `run()` succeeded.
    #[error("output of `{factory}` is not available: the pipeline has not run successfully; call `run()` first")]
    NotRun {
        /// The factory's name.
        factory: String,
    },
    /// An output was released after its last consumer took it.
    #[error("output of `{factory}` was released after its last consumer took it; call `pipeline.keep_output::<{}>()` (or `keep_all_outputs(true)`) before `run()` to keep it", crate::name::factory_type_name(.factory))]
    OutputReleased {
        /// The factory's name.
        factory: String,
    },
    /// An output exists but has another type than the one asked for.
    #[error("output of `{factory}` has type `{actual}`, not `{requested}`")]
    OutputType {
        /// The factory's name.
        factory: String,
        /// The type of the output.
        actual: String,
        /// The type asked for.
        requested: String,
    },
    /// `run()` was called twice on one pipeline.
    #[error("this pipeline already ran; factories are consumed by a run, so build a new pipeline to run again")]
    AlreadyRan,
    /// The pipeline has no factory.
    #[error("the pipeline has no factory; add a stage before calling `run()`")]
    EmptyPipeline,
    /// The thread pool could not be built.
    #[error("could not build a thread pool of {threads} threads: {source}")]
    ThreadPool {
        /// The number of threads asked for.
        threads: usize,
        /// Rayon's error.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// A setting has a value that cannot work.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// Why it cannot work.
        reason: String,
    },
    /// A spill file of the cache could not be written or read back.
    #[error("could not {action} the spill file `{}` of `{factory}`'s output: {source}", .path.display())]
    Spill {
        /// The factory whose output it holds.
        factory: String,
        /// What failed: "write" or "read back".
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O or decoding error.
        #[source]
        source: BoxError,
    },
    /// A message from user code ([`Error::msg`]).
    #[error("{0}")]
    Message(String),
    /// An error from user code or a dependency, converted by `?`.
    #[error(transparent)]
    External(BoxError),
    /// A broken invariant inside setl-rs: a bug, please report it.
    #[error("internal error (a bug in setl-rs, please report it): {0}")]
    Internal(String),
}

/// The error of setl-rs. It is shaped like `anyhow::Error`: `?` converts any error into it, so it cannot implement `std::error::Error` itself (the impls would overlap); it derefs to `dyn std::error::Error` instead.
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// An error carrying only a message, for user code: `return Err(Error::msg("bad row"))`.
    pub fn msg(message: impl fmt::Display) -> Self {
        ErrorKind::Message(message.to_string()).into()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Takes the kind out, to match on it by value.
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// The validation problems, when this error is a failed validation.
    pub fn validation_errors(&self) -> Option<&[ValidationError]> {
        match &*self.kind {
            ErrorKind::Validation(errors) => Some(errors),
            _ => None,
        }
    }

    /// The first error of type `E` in the chain of causes, starting with this error's kind.
    pub fn find_cause<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(&*self.kind);
        while let Some(error) = next {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            next = match error.downcast_ref::<ErrorKind>() {
                // `External` is transparent: look inside the box, not at its source.
                Some(ErrorKind::External(inner)) => Some(&**inner),
                _ => error.source(),
            };
        }
        None
    }

    /// Turns this error into the box a phase failure keeps as its source, unwrapping
    /// `External` so that the user's own error type stays downcastable.
    pub(crate) fn into_source(self) -> BoxError {
        match *self.kind {
            ErrorKind::External(inner) => inner,
            kind => Box::new(kind),
        }
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        let boxed: BoxError = Box::new(error);
        match boxed.downcast::<ErrorKind>() {
            Ok(kind) => Error { kind },
            Err(other) => ErrorKind::External(other).into(),
        }
    }
}

impl From<Error> for BoxError {
    fn from(error: Error) -> Self {
        error.kind
    }
}

impl std::ops::Deref for Error {
    type Target = dyn StdError + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.kind
    }
}

impl AsRef<dyn StdError + Send + Sync + 'static> for Error {
    fn as_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

/// Prints the message and then every deeper cause, as `anyhow` does, so that
/// `fn main() -> setl_core::Result<()>` shows the whole story.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f.debug_tuple("Error").field(&self.kind).finish();
        }
        write!(f, "{}", self.kind)?;
        // The immediate source is already part of the message of `FactoryFailed`.
        let mut cause = match &*self.kind {
            ErrorKind::FactoryFailed { source, .. } => source.source(),
            ErrorKind::External(inner) => inner.source(),
            other => other.source(),
        };
        if cause.is_some() {
            write!(f, "\n\nCaused by:")?;
        }
        while let Some(error) = cause {
            write!(f, "\n    {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

/// Prints validation problems one per line, numbered, under a count.
struct ValidationReport<'a>(&'a [ValidationError]);

impl fmt::Display for ValidationReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(f, "the pipeline is not valid ({count} problem{}):", if count == 1 { "" } else { "s" })?;
        for (number, problem) in self.0.iter().enumerate() {
            write!(f, "\n  {}. {problem}", number + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_converts_any_std_error_and_keeps_it_downcastable() {
        fn phase() -> Result<()> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "orders.csv"))?;
            Ok(())
        }
        let error = phase().unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::External(_)));
        assert_eq!(error.to_string(), "orders.csv");
        assert_eq!(error.find_cause::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn an_error_kind_converted_by_question_mark_is_not_wrapped_twice() {
        let error: Error = Error::from(ErrorKind::AlreadyRan);
        let boxed: BoxError = error.into();
        let again = Error::from(*boxed.downcast::<ErrorKind>().unwrap());
        assert!(matches!(again.kind(), ErrorKind::AlreadyRan));
    }

    #[test]
    fn debug_prints_the_chain_of_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Error::from(Outer(std::io::Error::other("inner")));
        assert_eq!(format!("{error:?}"), "outer\n\nCaused by:\n    inner");
    }
}
