//! Factories: the traits a user implements, and what the runtime knows about each.
//!
//! A user implements [`Factory`] (the four phases) and puts `#[factory]` on the struct, which
//! implements [`FactoryWiring`]: the factory's [`Signature`] (inputs, output, ids) and the code
//! that fills its [`Delivery`](crate::Delivery) fields.
//!
//! - [`signature`]: the static description of a factory type ([`Signature`], [`InputDecl`]).
//! - [`boxed`]: [`BoxedFactory`], an instance of any type with its own delivery ids.
//! - [`shelf`]: the type-erased face the scheduler runs, and the shelves factories wait on.

pub(crate) mod boxed;
pub(crate) mod shelf;
pub(crate) mod signature;

use crate::delivery::{InjectError, Payload};
use crate::error::{Phase, Result};

pub use boxed::BoxedFactory;
pub use signature::{FactoryRef, InputDecl, Signature, TypeInfo};

/// An ETL step: `read` its inputs, `process` them, `write` results, and hand its output on with
/// `get`.
///
/// Phases default to doing nothing, so a factory implements only what it needs. `?` inside a
/// phase converts any `std::error::Error + Send + Sync + 'static`.
///
/// # Examples
///
/// ```
/// use setl_core::prelude::*;
///
/// #[factory]
/// #[derive(Default)]
/// struct Numbers { out: Vec<i64> }
///
/// impl Factory for Numbers {
///     type Output = Vec<i64>;
///     fn read(&mut self) -> Result<()> { self.out = (1..=3).collect(); Ok(()) }
///     fn get(&self) -> Vec<i64> { self.out.clone() }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a setl factory",
    label = "not a factory",
    note = "put `#[factory]` on the struct and write `impl Factory for {Self}`"
)]
pub trait Factory: FactoryWiring + Send + 'static {
    /// What the factory hands on. Consumers receive it shared (`Arc`), never deep-copied.
    type Output: Send + Sync + 'static;

    /// Loads what the factory needs. Deliveries are filled before it is called.
    fn read(&mut self) -> Result<()> {
        Ok(())
    }

    /// Transforms what `read` loaded.
    fn process(&mut self) -> Result<()> {
        Ok(())
    }

    /// Persists results. Runs only when both the factory and its stage are writable.
    fn write(&mut self) -> Result<()> {
        Ok(())
    }

    /// The output, handed to every consumer. Called once, after the last phase.
    fn get(&self) -> Self::Output;

    /// Whether `write` should run; a stage can also switch writing off for all its factories.
    fn writable(&self) -> bool {
        true
    }
}

/// The compile-time description of a factory, implemented by `#[factory]`. Do not implement it
/// by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[factory]` attribute",
    label = "not declared as a factory",
    note = "put `#[factory]` on the struct declaration of `{Self}`"
)]
pub trait FactoryWiring {
    /// The factory's name: the struct's identifier.
    const NAME: &'static str;

    /// The static description of inputs and output, built once per process.
    fn signature() -> &'static Signature
    where
        Self: Sized;

    /// Fills input slot `slot` (an index into `signature().inputs`) with `value`.
    #[doc(hidden)]
    fn __inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError>;

    /// Empties input slot `slot`, declared `release = ..`, when phase `after` has returned.
    #[doc(hidden)]
    fn __release(&mut self, slot: usize, after: Phase);
}

/// Instance ids on any factory: `ReadTable::new(path).with_id("lineitem")`.
pub trait FactoryExt: Factory + Sized {
    /// Boxes the factory and delivers its output under `id`; see [`BoxedFactory::with_id`].
    fn with_id(self, id: &str) -> BoxedFactory {
        BoxedFactory::new(self).with_id(id)
    }

    /// Boxes the factory and points its input `field` at delivery id `id`; see
    /// [`BoxedFactory::with_input_id`].
    fn with_input_id(self, field: &str, id: &str) -> BoxedFactory {
        BoxedFactory::new(self).with_input_id(field, id)
    }

    /// Boxes the factory and leaves its optional input `field` empty; see
    /// [`BoxedFactory::without_input`].
    fn without_input(self, field: &str) -> BoxedFactory {
        BoxedFactory::new(self).without_input(field)
    }
}

impl<F: Factory> FactoryExt for F {}
