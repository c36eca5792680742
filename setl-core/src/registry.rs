//! The global registry of every `#[factory]` linked into the binary (through `inventory`).

use crate::factory::{BoxedFactory, Signature};

/// A factory type known to the registry. `#[factory]` submits one per struct.
pub struct Registration {
    name: &'static str,
    module: &'static str,
    signature: fn() -> &'static Signature,
    make_default: fn() -> Option<BoxedFactory>,
}

impl Registration {
    /// Called by the code `#[factory]` generates.
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        module: &'static str,
        signature: fn() -> &'static Signature,
        make_default: fn() -> Option<BoxedFactory>,
    ) -> Self {
        Registration { name, module, signature, make_default }
    }

    /// The factory's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The module that declares it.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Its inputs and output.
    pub fn signature(&self) -> &'static Signature {
        (self.signature)()
    }

    /// A default instance, when the factory implements `Default`.
    pub fn instantiate(&self) -> Option<BoxedFactory> {
        (self.make_default)()
    }

    /// Whether the factory implements `Default` (so a pipeline can be built from the registry).
    pub fn is_default_constructible(&self) -> bool {
        // Building one is the only way to know without generics; factories are cheap to make.
        self.instantiate().is_some()
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("name", &self.name).field("module", &self.module).finish()
    }
}

inventory::collect!(Registration);

impl Registration {
    /// Every registered factory, ordered by module then name.
    ///
    /// Only crates that some code of the binary names are linked, so a factory in a crate
    /// nobody uses is not listed (`use that_crate as _;` links it).
    pub fn all() -> Vec<&'static Registration> {
        let mut all: Vec<&'static Registration> = inventory::iter::<Registration>.into_iter().collect();
        all.sort_by_key(|registration| (registration.module, registration.name));
        all
    }
}
