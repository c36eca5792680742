//! What input slots may take: every factory's output and every pipeline input, grouped by the
//! key slots look them up by.

use std::any::TypeId;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};

use crate::delivery_key::DeliveryKey;
use crate::factory::FactoryRef;

use super::{FactoryDecl, Lists, Source};

/// A value some slot may take.
pub(super) struct Deliverable<'a> {
    pub(super) source: Source,
    /// Its payload type and id; `None` for a pipeline input no factory declares an input for.
    pub(super) key: Option<DeliveryKey>,
    /// The only consumers it may feed; empty means anyone.
    pub(super) consumers: &'a [FactoryRef],
}

impl Deliverable<'_> {
    /// Whether `consumer` may take it.
    pub(super) fn allows(&self, consumer: &FactoryRef) -> bool {
        self.consumers.is_empty() || self.consumers.contains(consumer)
    }
}

/// Deliverable numbers grouped by a key, each group in declaration order, all in one flat array:
/// one map entry per key and no allocation per group.
pub(super) struct Grouped<K> {
    group_of_key: HashMap<K, usize>,
    pub(super) groups: Lists<usize>,
}

impl<K: Hash + Eq + Copy> Grouped<K> {
    /// Groups deliverables `0..` by their keys; one without a key is in no group.
    pub(super) fn new(keys: impl ExactSizeIterator<Item = Option<K>>) -> Self {
        let mut group_of_key = HashMap::with_capacity(keys.len());
        let pairs: Vec<(usize, usize)> = keys
            .enumerate()
            .filter_map(|(number, key)| {
                let groups = group_of_key.len();
                Some((*group_of_key.entry(key?).or_insert(groups), number))
            })
            .collect();
        let groups = Lists::from_pairs(group_of_key.len(), pairs.iter());
        Grouped { group_of_key, groups }
    }

    /// The deliverables under `key`, in declaration order.
    pub(super) fn get(&self, key: &K) -> &[usize] {
        self.group_of_key.get(key).map_or(&[], |&group| self.groups.get(group))
    }
}

/// Pairs (later, first) of factory instances with the same type and output id, in declaration
/// order of the later one.
pub(super) fn duplicate_factories(
    by_type_and_id: &Grouped<DeliveryKey>,
    deliverables: &[Deliverable<'_>],
    factories: &[FactoryDecl<'_>],
) -> Vec<(usize, usize)> {
    let mut duplicates = Vec::new();
    for group in by_type_and_id.groups.iter().filter(|group| group.len() > 1) {
        let mut first_of_type: HashMap<TypeId, usize> = HashMap::new();
        for &number in group {
            let Source::Factory(index) = deliverables[number].source else { continue };
            match first_of_type.entry(factories[index].signature.factory.id()) {
                Entry::Occupied(first) => duplicates.push((index, *first.get())),
                Entry::Vacant(vacant) => {
                    vacant.insert(index);
                }
            }
        }
    }
    duplicates.sort_unstable();
    duplicates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliverables_are_grouped_by_key_in_declaration_order() {
        // Deliverables 0..6 under these keys (none for number 3).
        let grouped = Grouped::new([Some(7_u32), Some(5), Some(7), None, Some(6), Some(5)].into_iter());
        let groups: Vec<&[usize]> = [5, 6, 7, 4].iter().map(|key| grouped.get(key)).collect();
        assert_eq!(groups, [&[1, 5][..], &[4], &[0, 2], &[]]);

        let grouped = Grouped::<u32>::new([None, None].into_iter());
        assert!(grouped.get(&0).is_empty());
    }
}
