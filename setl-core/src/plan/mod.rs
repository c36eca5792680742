//! The plan: every input slot matched to exactly one deliverable, once, before anything runs.
//!
//! Matching follows SETL's dispatcher (payload type, delivery id, producer, consumer list) with
//! its known defects fixed: the declared producer is always checked, two candidates without a
//! declared producer are reported as ambiguous (naming both), cycles are found and printed as a
//! path, and every problem is reported at once. Cost: O(factories + deliveries), hash lookups
//! only.
//!
//! - [`deliverables`]: what slots may take (factory outputs and pipeline inputs), grouped by
//!   payload type and id.
//! - [`resolve`](mod@resolve): the matching rules, one function each.
//! - [`order`]: a topological order with priorities, or the cycle that prevents one.

mod deliverables;
mod order;
mod resolve;

use std::any::TypeId;

use foldhash::{HashSet, HashSetExt};

use crate::delivery_key::DeliveryKey;
use crate::error::ValidationError;
use crate::factory::{FactoryRef, Signature, TypeInfo};

use deliverables::{duplicate_factories, Deliverable, Grouped};
use resolve::Resolver;

/// Where an input slot's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The output of the factory at this index.
    Factory(usize),
    /// The pipeline input at this index.
    External(usize),
}

/// An input slot's [`Source`] in four bytes: the plan holds one per input slot of every
/// factory, so a pipeline of 10,000 three-input factories keeps 120 KB instead of 480 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotSource(u32);

impl SlotSource {
    /// No source: an optional input nothing delivers, or one that did not resolve.
    const NONE: SlotSource = SlotSource(u32::MAX);
    /// Set on a pipeline input's index.
    const EXTERNAL: u32 = 1 << 31;

    fn new(source: Option<Source>) -> Self {
        // A pipeline holds far fewer than 2^31 factories or inputs.
        let index = |index: usize| u32::try_from(index).ok().filter(|&index| index < Self::EXTERNAL);
        match source {
            None => Self::NONE,
            Some(Source::Factory(factory)) => SlotSource(index(factory).expect("fewer than 2^31 factories")),
            Some(Source::External(input)) => {
                SlotSource(index(input).expect("fewer than 2^31 pipeline inputs") | Self::EXTERNAL)
            }
        }
    }

    /// The source, if the slot has one.
    pub(crate) fn get(self) -> Option<Source> {
        match self.0 {
            u32::MAX => None,
            packed if packed & Self::EXTERNAL != 0 => Some(Source::External((packed & !Self::EXTERNAL) as usize)),
            factory => Some(Source::Factory(factory as usize)),
        }
    }
}

/// A pipeline input, as the resolver sees it.
pub(crate) struct ExternalDecl<'a> {
    pub(crate) payload: TypeInfo,
    pub(crate) id: &'a str,
    pub(crate) consumers: &'a [FactoryRef],
}

/// A factory, as the resolver sees it.
pub(crate) struct FactoryDecl<'a> {
    pub(crate) signature: &'a Signature,
    pub(crate) stage: usize,
    /// Fields given to `with_input_id` or `without_input` (the method, the field) that are not
    /// inputs.
    pub(crate) unknown_inputs: &'a [(&'static str, Box<str>)],
}

/// The resolved graph: everything the scheduler needs, as indices.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Per factory, per input slot: where its value comes from (`None`: optional and absent).
    pub(crate) sources: Lists<SlotSource>,
    /// Per factory: the distinct factories that consume its output, in declaration order.
    pub(crate) dependents: Lists<usize>,
    /// Per factory: how many distinct factories it waits for.
    pub(crate) producer_count: Vec<usize>,
    /// Per factory: how many input slots take its output.
    pub(crate) output_takers: Vec<usize>,
    /// Per pipeline input: how many input slots take it.
    pub(crate) external_takers: Vec<usize>,
    /// Per factory: the number of factories on the longest path from it to a sink, itself
    /// included. The scheduler starts the ready factory with the highest value first.
    pub(crate) priority: Vec<u32>,
    /// The factories in one valid execution order.
    pub(crate) topological_order: Vec<usize>,
}

/// One list per factory, all in one flat array, so a plan of any size is a handful of
/// allocations.
#[derive(Debug)]
pub(crate) struct Lists<T> {
    /// List `i` is `items[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    items: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Lists { offsets: vec![0], items: Vec::new() }
    }
}

impl<T> Lists<T> {
    /// The lists `items[offsets[i]..offsets[i + 1]]`.
    fn from_offsets(offsets: Vec<usize>, items: Vec<T>) -> Self {
        debug_assert_eq!(offsets.last(), Some(&items.len()), "the offsets do not cover the items");
        Lists { offsets, items }
    }

    /// List `index`.
    pub(crate) fn get(&self, index: usize) -> &[T] {
        &self.items[self.offsets[index]..self.offsets[index + 1]]
    }

    /// Every list, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.offsets.windows(2).map(|range| &self.items[range[0]..range[1]])
    }
}

impl Lists<usize> {
    /// `lists` lists from `(list, item)` pairs, each list keeping the pairs' order.
    fn from_pairs<'p>(lists: usize, pairs: impl Iterator<Item = &'p (usize, usize)> + Clone) -> Self {
        // Counted one place further on, so that filling moves each list's start to its end,
        // which is the next list's start: no second table of positions.
        let mut offsets = vec![0; lists + 2];
        for &(list, _) in pairs.clone() {
            offsets[list + 2] += 1;
        }
        for list in 2..lists + 2 {
            offsets[list] += offsets[list - 1];
        }
        let mut items = vec![0; offsets[lists + 1]];
        for &(list, item) in pairs {
            items[offsets[list + 1]] = item;
            offsets[list + 1] += 1;
        }
        offsets.pop();
        Lists { offsets, items }
    }
}

/// Resolves every input slot. `barrier` adds SETL's stage-order rule.
pub(crate) fn resolve<'a>(
    factories: &'a [FactoryDecl<'a>],
    externals: &'a [ExternalDecl<'a>],
    barrier: bool,
) -> Result<Plan, Vec<ValidationError>> {
    // Problems of single factories, with the factory's index: reported in declaration order.
    let mut factory_errors: Vec<(usize, ValidationError)> = factories
        .iter()
        .enumerate()
        .flat_map(|(index, factory)| instance_errors(factory).map(move |error| (index, error)))
        .collect();
    let mut deliverables: Vec<Deliverable<'_>> = factories
        .iter()
        .enumerate()
        .map(|(index, factory)| Deliverable {
            source: Source::Factory(index),
            key: Some(factory.signature.output_key.key()),
            consumers: &factory.signature.consumers,
        })
        .collect();
    // Reported after the factories' problems.
    let mut input_errors = Vec::new();
    let mut external_keys: HashSet<(TypeId, &str)> = HashSet::with_capacity(externals.len());
    for (index, external) in externals.iter().enumerate() {
        if !external_keys.insert((external.payload.id(), external.id)) {
            input_errors
                .push(ValidationError::DuplicateInput { payload: external.payload.name(), id: external.id.to_owned() });
            continue;
        }
        deliverables.push(Deliverable {
            source: Source::External(index),
            key: DeliveryKey::declared(external.payload.id(), external.id),
            consumers: external.consumers,
        });
    }
    let mut by_type_and_id = Grouped::new(deliverables.iter().map(|deliverable| deliverable.key));
    // A factory is known by its type and output id, so two instances of one type with one id
    // deliver the same type under the same id: they meet in one group, found without a map of
    // their own. The later one is reported and left out.
    let duplicates = duplicate_factories(&by_type_and_id, &deliverables, factories);
    if !duplicates.is_empty() {
        let mut reported = vec![false; factories.len()];
        for &(second, first) in &duplicates {
            reported[second] = true;
            factory_errors.push((
                second,
                ValidationError::DuplicateFactory {
                    factory: factories[second].signature.name.to_string(),
                    id: factories[second].signature.output_id.to_string(),
                    first_stage: factories[first].stage,
                    second_stage: factories[second].stage,
                },
            ));
        }
        deliverables.retain(|deliverable| !matches!(deliverable.source, Source::Factory(index) if reported[index]));
        by_type_and_id = Grouped::new(deliverables.iter().map(|deliverable| deliverable.key));
    }
    // A stable sort: a factory's unknown inputs stay before its duplicate.
    factory_errors.sort_by_key(|(index, _)| *index);
    let mut errors: Vec<ValidationError> = factory_errors.into_iter().map(|(_, error)| error).collect();
    errors.append(&mut input_errors);

    let resolver = Resolver::new(factories, externals, &deliverables, &by_type_and_id, barrier);
    let (sources, edges, mut resolve_errors) = resolver.resolve_all();
    errors.append(&mut resolve_errors);

    let count = factories.len();
    let mut plan = Plan {
        sources: Lists::default(),
        dependents: Lists::from_pairs(count, edges.iter()),
        producer_count: vec![0; count],
        output_takers: vec![0; count],
        external_takers: vec![0; externals.len()],
        priority: vec![0; count],
        topological_order: Vec::with_capacity(count),
    };
    for source in &sources {
        match source.get() {
            Some(Source::Factory(producer)) => plan.output_takers[producer] += 1,
            Some(Source::External(input)) => plan.external_takers[input] += 1,
            None => {}
        }
    }
    for &(_, consumer) in &edges {
        plan.producer_count[consumer] += 1;
    }
    let mut slot_offsets = Vec::with_capacity(count + 1);
    slot_offsets.push(0);
    for factory in factories {
        slot_offsets.push(slot_offsets.last().copied().unwrap_or(0) + factory.signature.inputs.len());
    }
    plan.sources = Lists::from_offsets(slot_offsets, sources);

    if let Err(path) = order::order(&mut plan, factories) {
        errors.push(ValidationError::Cycle { path });
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// The problems of one instance on its own: inputs it names that it does not have, and
/// required inputs it leaves out.
fn instance_errors<'a>(factory: &'a FactoryDecl<'a>) -> impl Iterator<Item = ValidationError> + 'a {
    let signature = factory.signature;
    let unknown = factory.unknown_inputs.iter().map(move |(method, field)| ValidationError::UnknownInput {
        factory: signature.name.to_string(),
        method,
        field: field.to_string(),
        inputs: signature.inputs.iter().map(|input| format!("`{}`", input.field)).collect(),
    });
    let left_out = signature.inputs.iter().filter(|input| input.left_out && !input.optional).map(move |input| {
        ValidationError::RequiredInputLeftOut { factory: signature.name.to_string(), field: input.field.to_owned() }
    });
    unknown.chain(left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_source_packs_and_unpacks_every_kind() {
        for source in [
            None,
            Some(Source::Factory(0)),
            Some(Source::Factory(12_345)),
            Some(Source::External(0)),
            Some(Source::External(7)),
        ] {
            assert_eq!(SlotSource::new(source).get(), source);
        }
        assert_eq!(SlotSource::NONE.get(), None);
    }

    #[test]
    fn lists_from_pairs_keep_each_lists_order() {
        let lists = Lists::from_pairs(3, [(2, 7), (0, 1), (2, 5), (0, 9)].iter());
        assert_eq!(lists.iter().collect::<Vec<_>>(), [&[1, 9][..], &[], &[7, 5]]);
    }
}
