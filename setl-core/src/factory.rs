//! Factories, their static description, and the type-erased adapter the scheduler runs.
//!
//! A user implements [`Factory`] (the four phases) and puts `#[factory]` on the struct, which
//! implements [`FactoryWiring`]: the factory's [`Signature`] (inputs, output, ids) and the code
//! that fills its [`Delivery`](crate::Delivery) fields. The scheduler only ever sees
//! [`BoxedFactory`], so it is free of generics.

use std::any::TypeId;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::delivery::Payload;
use crate::delivery_key::{self, HeldKey};
use crate::error::{ErrorKind, Phase, Result};
use crate::name::Name;
use crate::shelf::Shelves;
use crate::store::{StorageLevel, StoreOps};
use crate::type_name::short_type_name;

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

/// A delivery could not be injected: a bug in the resolver, never a user mistake.
#[doc(hidden)]
#[derive(Debug)]
pub struct InjectError {
    /// The field that refused the value.
    pub field: &'static str,
}

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
    /// Left empty by this instance ([`BoxedFactory::without_input`]).
    pub(crate) left_out: bool,
    /// `payload` and `id` as one number, for resolution.
    pub(crate) key: HeldKey,
}

/// Everything the runtime knows about a factory type before running it.
///
/// `#[factory]` builds one per type, once per process ([`FactoryWiring::signature`]); an
/// instance with its own ids ([`BoxedFactory::with_id`]) has its own copy, with those ids, that
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
    /// [`with_id`](BoxedFactory::with_id)); `""` when none was given.
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

/// The object-safe face of every factory, so that the scheduler is free of generics. A run
/// borrows each factory where it waits (an `Option<F>` on its type's shelf, see `shelf`) and
/// disposes of it in place when it has finished.
pub(crate) trait ErasedFactory: Send {
    fn inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError>;
    fn run_phase(&mut self, phase: Phase) -> Result<()>;
    /// Empties input slot `slot` (declared `release = after`) once phase `after` has returned.
    fn release(&mut self, slot: usize, after: Phase);
    fn writable(&self) -> bool;
    fn output(&self) -> Payload;
    /// Drops the factory (and its shares of its inputs); the slot stays, empty.
    fn dispose(&mut self);
}

/// Said when a factory is used after it was disposed of: a scheduler bug, never a user mistake.
const DISPOSED: &str = "a factory runs once and is disposed of after it";

impl<F: Factory> ErasedFactory for Option<F> {
    fn inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError> {
        match self {
            Some(factory) => factory.__inject(slot, value),
            None => Err(InjectError { field: DISPOSED }),
        }
    }

    fn run_phase(&mut self, phase: Phase) -> Result<()> {
        let Some(factory) = self else { return Err(ErrorKind::Internal(DISPOSED.to_owned()).into()) };
        match phase {
            Phase::Read => factory.read(),
            Phase::Process => factory.process(),
            Phase::Write => factory.write(),
            Phase::Get => Ok(()),
        }
    }

    fn release(&mut self, slot: usize, after: Phase) {
        if let Some(factory) = self {
            factory.__release(slot, after);
        }
    }

    fn writable(&self) -> bool {
        self.as_ref().is_some_and(Factory::writable)
    }

    fn output(&self) -> Payload {
        // Called inside `catch_unwind`: the panic becomes the run's error.
        Arc::new(self.as_ref().expect(DISPOSED).get())
    }

    fn dispose(&mut self) {
        // Taken out first: if its `Drop` panics, the slot is empty all the same.
        drop(self.take());
    }
}

/// A boxed factory's way onto its type's shelf.
pub(crate) trait Shelve: Send {
    fn shelve(self: Box<Self>, shelves: &mut Shelves, owner: usize);
}

impl<F: Factory> Shelve for F {
    fn shelve(self: Box<Self>, shelves: &mut Shelves, owner: usize) {
        shelves.put(owner, *self);
    }
}

/// A factory of any type, ready to be added to a stage, with this instance's delivery ids.
///
/// A pipeline tells factories apart by type and output id, so one factory type can be added
/// several times when each instance delivers under its own id: one generic `ReadTable` per
/// table, say. [`with_id`](Self::with_id) sets that id (the instance is then named
/// `ReadTable[lineitem]` in errors, benchmarks and diagrams), and
/// [`with_input_id`](Self::with_input_id) points one of its inputs at another id.
///
/// # Examples
///
/// ```
/// use setl_core::prelude::*;
///
/// #[factory]
/// struct ReadTable { table: &'static str, rows: u64 }
///
/// impl Factory for ReadTable {
///     type Output = u64;
///     fn read(&mut self) -> Result<()> { self.rows = self.table.len() as u64; Ok(()) }
///     fn get(&self) -> u64 { self.rows }
/// }
///
/// #[factory]
/// #[derive(Default)]
/// struct Join {
///     #[delivery(producer = ReadTable, id = "orders")]
///     orders: Delivery<u64>,
///     #[delivery(producer = ReadTable, id = "lineitem")]
///     lineitem: Delivery<u64>,
/// }
///
/// impl Factory for Join {
///     type Output = u64;
///     fn get(&self) -> u64 { *self.orders.get() + *self.lineitem.get() }
/// }
///
/// let setl = Setl::builder().threads(2).build()?;
/// let mut pipeline = setl.new_pipeline();
/// pipeline.add_stage(
///     Stage::new()
///         .add_factory(ReadTable { table: "orders", rows: 0 }.with_id("orders"))
///         .add_factory(ReadTable { table: "lineitem", rows: 0 }.with_id("lineitem")),
/// );
/// pipeline.add_stage_from_type::<Join>().keep_output::<ReadTable>();
/// pipeline.run()?;
/// assert_eq!(*pipeline.output::<Join>()?, 14);
/// assert_eq!(*pipeline.output_with_id::<ReadTable>("orders")?, 6);
/// # Ok::<(), setl_core::Error>(())
/// ```
pub struct BoxedFactory {
    /// Moved onto its type's shelf when added to a stage (see `shelf`).
    pub(crate) factory: Box<dyn Shelve>,
    /// This instance's signature: the type's, with the ids set on the instance.
    pub(crate) signature: InstanceSignature,
    /// Fields given to `with_input_id` or `without_input` (the method, the field) that are not
    /// inputs of the factory; validation reports them.
    pub(crate) unknown_inputs: Vec<(&'static str, Box<str>)>,
}

impl BoxedFactory {
    /// Boxes `factory`.
    pub fn new<F: Factory>(factory: F) -> Self {
        BoxedFactory {
            factory: Box::new(factory),
            signature: InstanceSignature::Type(F::signature()),
            unknown_inputs: Vec::new(),
        }
    }

    /// Delivers this instance's output under `id` (instead of `#[factory(id = "..")]`'s), so
    /// consumers pick it with `#[delivery(id = "..")]`, and names the instance `Name[id]`.
    ///
    /// The id is the instance's: it is freed with the instance (with its pipeline), so a
    /// process may use ever new ids.
    #[must_use]
    pub fn with_id(mut self, id: &str) -> Self {
        let id = Name::from(id.to_owned());
        let signature = self.signature.to_mut();
        let type_name = signature.type_name;
        signature.output_key = HeldKey::declare(signature.output.id(), &id);
        signature.name = Name::from(format!("{type_name}[{id}]"));
        signature.output_id = id;
        self
    }

    /// Makes the input `field` take the delivery with id `id` (instead of its
    /// `#[delivery(id = "..")]`). A field the factory does not have is reported by validation.
    #[must_use]
    pub fn with_input_id(mut self, field: &str, id: &str) -> Self {
        match self.signature.inputs.iter().position(|input| input.field == field) {
            Some(slot) => {
                let id = Name::from(id.to_owned());
                let input = &mut self.signature.to_mut().inputs[slot];
                input.key = HeldKey::declare(input.payload.id(), &id);
                input.id = id;
            }
            None => self.unknown_inputs.push(("with_input_id", field.into())),
        }
        self
    }

    /// Leaves the optional input `field` empty for this instance, whatever the pipeline
    /// delivers, so that one factory type can serve steps with different inputs (a query over
    /// some of the tables it knows) without depending on the others. Validation reports a
    /// field that is not an input, or an input that is not `optional`.
    #[must_use]
    pub fn without_input(mut self, field: &str) -> Self {
        match self.signature.inputs.iter().position(|input| input.field == field) {
            Some(slot) => self.signature.to_mut().inputs[slot].left_out = true,
            None => self.unknown_inputs.push(("without_input", field.into())),
        }
        self
    }

    /// This instance's signature: the factory type's, with the ids set on the instance.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// A factory instance's signature: its type's, shared by every instance that sets no id, or
/// its own copy with the ids it sets, dropped with it.
#[derive(Debug)]
pub(crate) enum InstanceSignature {
    /// The type's, from `#[factory]`.
    Type(&'static Signature),
    /// The type's with this instance's ids.
    Own(Box<Signature>),
}

impl InstanceSignature {
    /// The instance's own copy, made now if it has none.
    fn to_mut(&mut self) -> &mut Signature {
        if let InstanceSignature::Type(signature) = *self {
            *self = InstanceSignature::Own(Box::new(signature.clone()));
        }
        match self {
            InstanceSignature::Own(signature) => signature,
            InstanceSignature::Type(_) => unreachable!("made its own just above"),
        }
    }
}

impl Deref for InstanceSignature {
    type Target = Signature;

    fn deref(&self) -> &Signature {
        match self {
            InstanceSignature::Type(signature) => signature,
            InstanceSignature::Own(signature) => signature,
        }
    }
}

impl<F: Factory> From<F> for BoxedFactory {
    fn from(factory: F) -> Self {
        BoxedFactory::new(factory)
    }
}

impl fmt::Debug for BoxedFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxedFactory").field(&self.signature.name).finish()
    }
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

/// The factory type in a factory's name: `ReadTable` for the instance `ReadTable[orders]`.
pub(crate) fn factory_type_name(name: &str) -> &str {
    name.split_once('[').map_or(name, |(type_name, _)| type_name)
}

/// The entries of the process-wide interning table: the (payload type, delivery id) pairs some
/// live signature declares. For tests of memory that grows with instance ids; not public API.
///
/// The types' own pairs stay for the life of the process; an instance's go with its last
/// signature, so the count returns to where it was once the pipelines that used them are gone.
#[doc(hidden)]
pub fn __interned_entries() -> usize {
    delivery_key::live_pairs()
}

/// Makes a boxed default instance of `F` when `F: Default`, and `None` otherwise, chosen at
/// compile time by auto-ref method resolution (no specialization needed).
#[doc(hidden)]
pub struct DefaultProbe<F>(std::marker::PhantomData<F>);

impl<F> DefaultProbe<F> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        DefaultProbe(std::marker::PhantomData)
    }
}

impl<F> Default for DefaultProbe<F> {
    fn default() -> Self {
        Self::new()
    }
}

#[doc(hidden)]
pub trait ViaDefault {
    fn make(&self) -> Option<BoxedFactory>;
}

impl<F: Factory + Default> ViaDefault for &DefaultProbe<F> {
    fn make(&self) -> Option<BoxedFactory> {
        Some(BoxedFactory::new(F::default()))
    }
}

#[doc(hidden)]
pub trait ViaNoDefault {
    fn make(&self) -> Option<BoxedFactory>;
}

impl<F> ViaNoDefault for DefaultProbe<F> {
    fn make(&self) -> Option<BoxedFactory> {
        None
    }
}

/// Fails to compile, on the `producer = P` token, when `P::Output` is not the field's payload
/// type `T`.
#[doc(hidden)]
pub fn assert_producer_output<P: Factory<Output = T>, T>() {}
