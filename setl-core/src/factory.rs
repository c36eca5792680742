//! Factories, their static description, and the type-erased adapter the scheduler runs.
//!
//! A user implements [`Factory`] (the four phases) and puts `#[factory]` on the struct, which
//! implements [`FactoryWiring`]: the factory's [`Signature`] (inputs, output, ids) and the code
//! that fills its [`Delivery`](crate::Delivery) fields. The scheduler only ever sees
//! [`BoxedFactory`], so it is free of generics.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::delivery::Payload;
use crate::error::{ErrorKind, Phase, Result};
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
        FactoryRef { type_id: signature.factory.id(), name: signature.name }
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
    pub id: &'static str,
    /// Whether the slot may stay empty when nothing produces it.
    pub optional: bool,
    /// `payload` and `id` as one number, for resolution.
    pub(crate) key: DeliveryKey,
}

/// Everything the runtime knows about a factory type before running it.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The factory's name (its struct identifier).
    pub name: &'static str,
    /// The module that declares it.
    pub module: &'static str,
    /// The factory type.
    pub factory: TypeInfo,
    /// The type of `Factory::Output`.
    pub output: TypeInfo,
    /// The delivery id of the output (`#[factory(id = "..")]`); `""` when none was given.
    pub output_id: &'static str,
    /// The only factories allowed to consume the output; empty means anyone.
    pub consumers: Vec<FactoryRef>,
    /// The inputs, in field order.
    pub inputs: Vec<InputDecl>,
    /// How the store weighs, spills and materializes the output, when its type implements
    /// [`Storable`](crate::Storable); found at compile time by `#[factory]`.
    pub store_ops: Option<StoreOps>,
    /// The storage level declared with `#[factory(storage = ..)]`, if any.
    pub storage: Option<StorageLevel>,
    /// `output` and `output_id` as one number, for resolution.
    pub(crate) output_key: DeliveryKey,
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
        Signature {
            name: F::NAME,
            module,
            factory: TypeInfo::of::<F>(),
            output: TypeInfo::of::<F::Output>(),
            output_id,
            consumers,
            inputs,
            store_ops: None,
            storage: None,
            output_key: DeliveryKey::declare(TypeId::of::<F::Output>(), output_id),
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
    ) -> Self {
        InputDecl {
            field,
            payload: TypeInfo::of::<T>(),
            producer,
            id,
            optional,
            key: DeliveryKey::declare(TypeId::of::<T>(), id),
        }
    }
}

/// The object-safe face of every factory, so that the scheduler is free of generics. A run
/// borrows each factory where it waits (an `Option<F>` on its type's shelf, see `shelf`) and
/// disposes of it in place when it has finished.
pub(crate) trait ErasedFactory: Send {
    fn inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError>;
    fn run_phase(&mut self, phase: Phase) -> Result<()>;
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
    pub(crate) signature: &'static Signature,
    /// Fields given to `with_input_id` that are not inputs of the factory; validation reports them.
    pub(crate) unknown_inputs: Vec<Box<str>>,
}

impl BoxedFactory {
    /// Boxes `factory`.
    pub fn new<F: Factory>(factory: F) -> Self {
        BoxedFactory { factory: Box::new(factory), signature: F::signature(), unknown_inputs: Vec::new() }
    }

    /// Delivers this instance's output under `id` (instead of `#[factory(id = "..")]`'s), so
    /// consumers pick it with `#[delivery(id = "..")]`, and names the instance `Name[id]`.
    #[must_use]
    pub fn with_id(mut self, id: &str) -> Self {
        self.signature = derived_signature(self.signature, Change::OutputId(intern(id)));
        self
    }

    /// Makes the input `field` take the delivery with id `id` (instead of its
    /// `#[delivery(id = "..")]`). A field the factory does not have is reported by validation.
    #[must_use]
    pub fn with_input_id(mut self, field: &str, id: &str) -> Self {
        match self.signature.inputs.iter().position(|input| input.field == field) {
            Some(slot) => self.signature = derived_signature(self.signature, Change::InputId(slot, intern(id))),
            None => self.unknown_inputs.push(field.into()),
        }
        self
    }

    /// This instance's signature: the factory type's, with the ids set on the instance.
    pub fn signature(&self) -> &'static Signature {
        self.signature
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
}

impl<F: Factory> FactoryExt for F {}

/// The factory type in a factory's name: `ReadTable` for the instance `ReadTable[orders]`.
pub(crate) fn factory_type_name(name: &str) -> &str {
    name.split_once('[').map_or(name, |(type_name, _)| type_name)
}

/// One change an instance makes to its signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Change {
    OutputId(&'static str),
    InputId(usize, &'static str),
}

/// Locks a process-wide table; nothing panics while holding one, but recover anyway.
fn lock_table<T: Default>(table: &'static OnceLock<Mutex<T>>) -> MutexGuard<'static, T> {
    table.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every interned text.
fn texts() -> MutexGuard<'static, HashSet<&'static str>> {
    static TEXTS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    lock_table(&TEXTS)
}

/// `text`, kept for the process's lifetime, once per distinct text.
fn intern(text: &str) -> &'static str {
    let mut texts = texts();
    match texts.get(text) {
        Some(&kept) => kept,
        None => {
            let kept: &'static str = Box::leak(text.into());
            texts.insert(kept);
            kept
        }
    }
}

/// `text` as interned, if it was, without interning it.
fn interned(text: &str) -> Option<&'static str> {
    texts().get(text).copied()
}

/// A delivery's payload type and id as one number: equal keys, equal (type, id). Every pair a
/// signature declares is numbered once per process, when the signature is built, so resolution
/// groups and looks up integers, and never reads a type id or an id string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryKey(u32);

/// The numbers given so far, by payload type and (interned) id.
type DeliveryKeys = HashMap<(TypeId, &'static str), DeliveryKey>;

impl DeliveryKey {
    /// The keys given so far, by payload type and interned id.
    fn table() -> MutexGuard<'static, DeliveryKeys> {
        static KEYS: OnceLock<Mutex<DeliveryKeys>> = OnceLock::new();
        lock_table(&KEYS)
    }

    /// The key of `(payload, id)`, given now if it has none yet.
    fn declare(payload: TypeId, id: &str) -> Self {
        let id = intern(id);
        let mut keys = Self::table();
        // One per distinct (type, id) declared by a factory: far fewer than 2^32.
        let next = DeliveryKey(u32::try_from(keys.len()).expect("fewer than 2^32 delivery keys"));
        *keys.entry((payload, id)).or_insert(next)
    }

    /// The key as a number: keys are numbered from 0 in the order they were first declared.
    pub(crate) fn number(self) -> u32 {
        self.0
    }

    /// The key of `(payload, id)` if some signature declared it: a value no factory declares
    /// (a pipeline input nothing asks for) has none, and the tables do not grow with it.
    pub(crate) fn declared(payload: TypeId, id: &str) -> Option<Self> {
        let id = interned(id)?;
        Self::table().get(&(payload, id)).copied()
    }
}

/// `base` with `change` applied. Each distinct (signature, change) pair is built once per
/// process and kept, as `#[factory]` keeps each type's, so that everything downstream
/// (validation, the scheduler, events, reports) reads plain `&'static` signatures and adding an
/// instance allocates nothing after the first time. Memory grows with the number of distinct
/// instance ids a process uses, not with the number of pipelines or runs.
/// Every derived signature, by base signature (its address) and change.
type Derived = HashMap<(usize, Change), &'static Signature>;

static DERIVED: OnceLock<Mutex<Derived>> = OnceLock::new();

fn derived_count() -> usize {
    lock_table(&DERIVED).len()
}

fn derived_signature(base: &'static Signature, change: Change) -> &'static Signature {
    let key = (std::ptr::from_ref(base) as usize, change);
    lock_table(&DERIVED).entry(key).or_insert_with(|| {
        let mut signature = base.clone();
        match change {
            Change::OutputId(id) => {
                let type_name = factory_type_name(base.name);
                signature.output_id = id;
                signature.output_key = DeliveryKey::declare(base.output.id(), id);
                signature.name = intern(&format!("{type_name}[{id}]"));
            }
            Change::InputId(slot, id) => {
                let input = &mut signature.inputs[slot];
                input.id = id;
                input.key = DeliveryKey::declare(input.payload.id(), id);
            }
        }
        Box::leak(Box::new(signature))
    })
}

/// The entries of the process-wide interning tables: interned texts, delivery keys and derived
/// signatures. For tests of memory that grows with instance ids; not public API.
///
/// Today these tables only grow: every distinct instance id stays for the life of the process.
#[doc(hidden)]
pub fn __interned_entries() -> usize {
    let texts = texts().len();
    let keys = DeliveryKey::table().len();
    texts + keys + derived_count()
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
