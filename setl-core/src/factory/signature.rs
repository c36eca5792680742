//! The static description of a factory type: its inputs, its output and their delivery ids.

use std::any::TypeId;
use std::fmt;

use crate::cache::{StorageLevel, StoreOps};
use crate::delivery_key::HeldKey;
use crate::error::Phase;
use crate::name::Name;
use crate::type_name::short_type_name;

use super::{Factory, FactoryWiring};

/// A type, remembered by id and by name.
#[derive(Clone, Copy)]
pub struct TypeInfo {
    id: TypeId,
    name: &'static str,
}

impl TypeInfo {
    /// Describes `T`.
    pub fn of<T: ?Sized + 'static>() -> Self {
        TypeInfo { id: TypeId::of::<T>(), name: std::any::type_name::<T>() }
    }

    /// The type's id.
    pub fn id(&self) -> TypeId {
        self.id
    }

    /// The full path name, e.g. `alloc::vec::Vec<i64>`.
    pub fn full_name(&self) -> &'static str {
        self.name
    }

    /// The readable name, without module paths, e.g. `Vec<i64>`.
    pub fn name(&self) -> String {
        short_type_name(self.name)
    }
}

impl PartialEq for TypeInfo {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for TypeInfo {}

impl fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A reference to a factory type, as named in `producer = X` or `consumers(X, Y)`.
#[derive(Clone, Copy)]
pub struct FactoryRef {
    type_id: TypeId,
    name: &'static str,
}

impl FactoryRef {
    /// Refers to factory `F`.
    pub fn of<F: FactoryWiring + 'static>() -> Self {
        FactoryRef { type_id: TypeId::of::<F>(), name: F::NAME }
    }

    pub(crate) fn from_signature(signature: &Signature) -> Self {
        FactoryRef { type_id: signature.factory.id(), name: signature.type_name }
    }

    /// The factory type's id.
    pub fn type_id(&self) -> TypeId {
        self.type_id
    }

    /// The factory's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for FactoryRef {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id
    }
}

impl Eq for FactoryRef {}

impl fmt::Debug for FactoryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One input of a factory: a `Delivery<T>` field and what it accepts.
#[derive(Debug, Clone)]
pub struct InputDecl {
    /// The field's name.
    pub field: &'static str,
    /// The payload type `T` of `Delivery<T>`.
    pub payload: TypeInfo,
    /// The factory that must produce it; `None` accepts any producer, including external inputs.
    pub producer: Option<FactoryRef>,
    /// The delivery id; `""` when none was given.
    pub id: Name,
    /// Whether the slot may stay empty when nothing produces it.
    pub optional: bool,
    /// The phase after which the runtime empties the slot (`#[delivery(release = ..)]`), so that
    /// an input is freed before the factory finishes; `None` keeps it until the factory is dropped.
    pub release: Option<Phase>,
    /// Left empty by this instance ([`BoxedFactory::without_input`](crate::BoxedFactory::without_input)).
    pub(crate) left_out: bool,
    /// `payload` and `id` as one number, for resolution.
    pub(crate) key: HeldKey,
}

/// Everything the runtime knows about a factory type before running it.
///
/// `#[factory]` builds one per type, once per process ([`FactoryWiring::signature`]); an
/// instance with its own ids ([`BoxedFactory::with_id`](crate::BoxedFactory::with_id)) has its own copy, with those ids, that
/// goes with the instance.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The factory's name: its struct identifier, `ReadTable[orders]` for an instance with an id.
    pub name: Name,
    /// The module that declares it.
    pub module: &'static str,
    /// The factory type.
    pub factory: TypeInfo,
    /// The type of `Factory::Output`.
    pub output: TypeInfo,
    /// The delivery id of the output (`#[factory(id = "..")]`, or the instance's
    /// [`with_id`](crate::BoxedFactory::with_id)); `""` when none was given.
    pub output_id: Name,
    /// The only factories allowed to consume the output; empty means anyone.
    pub consumers: Vec<FactoryRef>,
    /// The inputs, in field order.
    pub inputs: Vec<InputDecl>,
    /// How the store weighs, spills and materializes the output, when its type implements
    /// [`Storable`](crate::Storable); found at compile time by `#[factory]`.
    pub store_ops: Option<StoreOps>,
    /// The storage level declared with `#[factory(storage = ..)]`, if any.
    pub storage: Option<StorageLevel>,
    /// The factory type's name, [`FactoryWiring::NAME`], whatever the instance's `name`.
    pub(crate) type_name: &'static str,
    /// `output` and `output_id` as one number, for resolution.
    pub(crate) output_key: HeldKey,
}

impl Signature {
    /// Builds the signature of `F`; called by the code `#[factory]` generates.
    #[doc(hidden)]
    pub fn __new<F: Factory>(
        module: &'static str,
        output_id: &'static str,
        consumers: Vec<FactoryRef>,
        inputs: Vec<InputDecl>,
    ) -> Self {
        let output_id = Name::from_static(output_id);
        Signature {
            name: Name::from_static(F::NAME),
            module,
            factory: TypeInfo::of::<F>(),
            output: TypeInfo::of::<F::Output>(),
            output_key: HeldKey::declare(TypeId::of::<F::Output>(), &output_id),
            output_id,
            consumers,
            inputs,
            store_ops: None,
            storage: None,
            type_name: F::NAME,
        }
    }

    /// Adds what `#[factory]` found out about the output's storage; called by generated code.
    #[doc(hidden)]
    pub fn __with_store(mut self, store_ops: Option<StoreOps>, storage: Option<StorageLevel>) -> Self {
        self.store_ops = store_ops;
        self.storage = storage;
        self
    }
}

impl InputDecl {
    /// Declares an input; called by the code `#[factory]` generates.
    #[doc(hidden)]
    pub fn __new<T: Send + Sync + 'static>(
        field: &'static str,
        producer: Option<FactoryRef>,
        id: &'static str,
        optional: bool,
        release: Option<Phase>,
    ) -> Self {
        let id = Name::from_static(id);
        InputDecl {
            field,
            payload: TypeInfo::of::<T>(),
            producer,
            key: HeldKey::declare(TypeId::of::<T>(), &id),
            id,
            optional,
            release,
            left_out: false,
        }
    }
}
