//! Type-erased factories: the face the scheduler runs, so that it is free of generics, and the
//! shelves factories wait on for their run: one vector per factory type, not one heap block each.
//!
//! A boxed factory is a heap block of its own. A pipeline of 10,000 factories would hold
//! 10,000 of them, freed one by one by the workers that ran them, and glibc's malloc sorts such
//! a heap out on its next large allocation, a cache miss per block, inside `run()`. On a shelf,
//! factories of one type sit side by side: a run borrows each one (`&mut`), drops it in place
//! when it has finished, and the shelf's memory goes back in one piece with the pipeline.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use foldhash::HashMap;

use crate::delivery::{InjectError, Payload};
use crate::error::{ErrorKind, Phase, Result};

use super::Factory;

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

/// A stage's or a pipeline's factories, by type. Each one is known by its owner: its index
/// among the factories of the stage or pipeline that holds the shelves.
#[derive(Default)]
pub(crate) struct Shelves {
    shelves: Vec<Box<dyn Shelf>>,
    /// The shelf of each factory type.
    by_type: HashMap<TypeId, usize>,
    /// Factories on all shelves.
    len: usize,
}

impl Shelves {
    /// Puts `factory`, of owner `owner`, on its type's shelf.
    pub(crate) fn put<F: Factory>(&mut self, owner: usize, factory: F) {
        let shelves = &mut self.shelves;
        let shelf = *self.by_type.entry(TypeId::of::<F>()).or_insert_with(|| {
            shelves.push(Box::new(TypedShelf::<F> { factories: Vec::new(), owners: Vec::new() }));
            shelves.len() - 1
        });
        let shelf = self.shelves[shelf].as_any_mut().downcast_mut::<TypedShelf<F>>().expect("one shelf per type");
        shelf.factories.push(Some(factory));
        shelf.owners.push(owner);
        self.len += 1;
    }

    /// Moves every factory of `other` here, its owners shifted by `offset`.
    pub(crate) fn append(&mut self, other: Shelves, offset: usize) {
        self.len += other.len;
        for mut shelf in other.shelves {
            shelf.shift_owners(offset);
            match self.by_type.get(&shelf.factory_type()) {
                Some(&mine) => self.shelves[mine].append(shelf),
                None => {
                    self.by_type.insert(shelf.factory_type(), self.shelves.len());
                    self.shelves.push(shelf);
                }
            }
        }
    }

    /// Lends every factory for a run: entry `owner` of the table is that owner's factory, `None`
    /// where an owner has none.
    pub(crate) fn lend(&mut self, owners: usize) -> Vec<Option<&mut dyn ErasedFactory>> {
        let mut table: Vec<Option<&mut dyn ErasedFactory>> = Vec::with_capacity(owners);
        table.resize_with(owners, || None);
        for shelf in &mut self.shelves {
            shelf.lend(&mut table);
        }
        table
    }

    /// The number of factories.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Debug for Shelves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shelves").field("types", &self.shelves.len()).field("factories", &self.len).finish()
    }
}

/// The factories of one type, with their owners.
struct TypedShelf<F> {
    /// `None` once the factory ran and was dropped.
    factories: Vec<Option<F>>,
    owners: Vec<usize>,
}

/// A shelf of any factory type.
trait Shelf: Send {
    fn factory_type(&self) -> TypeId;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn shift_owners(&mut self, offset: usize);
    /// Moves the factories of `other`, a shelf of the same type, to the end of this one.
    fn append(&mut self, other: Box<dyn Shelf>);
    fn lend<'a>(&'a mut self, table: &mut [Option<&'a mut dyn ErasedFactory>]);
}

impl<F: Factory> Shelf for TypedShelf<F> {
    fn factory_type(&self) -> TypeId {
        TypeId::of::<F>()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn shift_owners(&mut self, offset: usize) {
        for owner in &mut self.owners {
            *owner += offset;
        }
    }

    fn append(&mut self, mut other: Box<dyn Shelf>) {
        let other = other.as_any_mut().downcast_mut::<TypedShelf<F>>().expect("shelves of one type");
        self.factories.append(&mut other.factories);
        self.owners.append(&mut other.owners);
    }

    fn lend<'a>(&'a mut self, table: &mut [Option<&'a mut dyn ErasedFactory>]) {
        for (factory, &owner) in self.factories.iter_mut().zip(&self.owners) {
            table[owner] = Some(factory);
        }
    }
}
