//! `Delivery<T>`: an input slot of a factory, filled by the runtime before `read`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::Phase;

/// A value on its way between factories: shared, never deep-copied.
pub type Payload = Arc<dyn Any + Send + Sync>;

/// A delivery could not be injected: a bug in the resolver, never a user mistake.
#[doc(hidden)]
#[derive(Debug)]
pub struct InjectError {
    /// The field that refused the value.
    pub field: &'static str,
}

/// An input of a factory, declared as a field with `#[delivery(..)]`.
///
/// The runtime fills it before the factory's `read` runs, with the output of the producer the
/// resolver matched to it. The value is shared with every other consumer through an `Arc`.
///
/// # Examples
///
/// ```
/// use setl_core::prelude::*;
/// # #[factory] #[derive(Default)] struct Numbers;
/// # impl Factory for Numbers { type Output = Vec<i64>; fn get(&self) -> Vec<i64> { vec![] } }
///
/// #[factory]
/// #[derive(Default)]
/// struct Sum {
///     #[delivery(producer = Numbers)]
///     numbers: Delivery<Vec<i64>>,
///     #[delivery(id = "bonus", optional)]
///     bonus: Delivery<i64>,
///     total: i64,
/// }
///
/// impl Factory for Sum {
///     type Output = i64;
///     fn process(&mut self) -> Result<()> {
///         let bonus = self.bonus.try_get().copied().unwrap_or(0);
///         self.total = self.numbers.get().iter().sum::<i64>() + bonus;
///         Ok(())
///     }
///     fn get(&self) -> i64 { self.total }
/// }
/// ```
pub struct Delivery<T> {
    value: Option<Arc<T>>,
    /// The phase after which the runtime released the value (`#[delivery(release = ..)]`).
    released: Option<Phase>,
}

impl<T> Delivery<T> {
    /// An empty slot (what `Default` gives too).
    pub const fn new() -> Self {
        Delivery { value: None, released: None }
    }

    /// A slot already holding `value`, for calling a factory's phases directly in a unit test.
    pub fn filled(value: T) -> Self {
        Delivery { value: Some(Arc::new(value)), released: None }
    }

    /// The delivered value.
    ///
    /// # Panics
    ///
    /// When the slot is empty: the factory is not running inside a pipeline, or the input is
    /// `optional` and nothing produced it (use [`try_get`](Self::try_get) for those). Inside a
    /// pipeline the panic is caught and reported as the factory's failure.
    #[track_caller]
    pub fn get(&self) -> &T {
        let payload = || crate::type_name::short_type_name(std::any::type_name::<T>());
        match (&self.value, self.released) {
            (Some(value), _) => value,
            (None, Some(after)) => panic!(
                "Delivery<{}> was released when `{}` returned (`#[delivery(release = {})]`); \
                 release it after a later phase, or keep `shared()` in a field to use it after",
                payload(),
                after.as_str(),
                after.as_str(),
            ),
            (None, None) => panic!(
                "Delivery<{}> is empty: it is filled by a pipeline before `read`; \
                 for an `optional` input use `try_get()`",
                payload()
            ),
        }
    }

    /// The delivered value, or `None` when the slot is empty.
    pub fn try_get(&self) -> Option<&T> {
        self.value.as_deref()
    }

    /// The shared handle to the value, to keep it beyond the factory without copying.
    pub fn shared(&self) -> Option<Arc<T>> {
        self.value.clone()
    }

    /// Whether the slot holds a value.
    pub fn is_filled(&self) -> bool {
        self.value.is_some()
    }

    /// Empties the slot, dropping this factory's share of the value.
    pub fn take(&mut self) -> Option<Arc<T>> {
        self.value.take()
    }

    /// Empties the slot when phase `after` returned; called by the code `#[factory]` generates.
    #[doc(hidden)]
    pub fn __release(&mut self, after: Phase) {
        if self.value.take().is_some() {
            self.released = Some(after);
        }
    }
}

impl<T: Send + Sync + 'static> Delivery<T> {
    /// Fills the slot; called by the code `#[factory]` generates.
    #[doc(hidden)]
    pub fn __fill(&mut self, field: &'static str, value: Payload) -> Result<(), InjectError> {
        let value = value.downcast::<T>().map_err(|_| InjectError { field })?;
        self.value = Some(value);
        self.released = None;
        Ok(())
    }
}

impl<T> Default for Delivery<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        Delivery { value: self.value.clone(), released: self.released }
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => f.debug_tuple("Delivery").field(value).finish(),
            None => f.write_str("Delivery(<empty>)"),
        }
    }
}
