//! A factory instance of any type, with its own delivery ids.

use std::fmt;
use std::ops::Deref;

use crate::delivery_key::HeldKey;
use crate::name::Name;

use super::shelf::Shelve;
use super::{Factory, Signature};

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
