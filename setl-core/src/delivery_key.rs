//! Delivery keys: a delivery's payload type and id as one small number, for resolution.
//!
//! Every (payload type, id) pair a signature declares is numbered, so that resolution groups
//! and looks up integers and never hashes a type id or an id string. The numbers are held, not
//! leaked: a signature keeps a [`HeldKey`] for each pair it declares, and when the last holder
//! of a pair goes (the last signature using an instance id, usually with its pipeline), the pair
//! leaves the table and its number is free again. A process that builds pipelines with ever new
//! ids holds only the keys of the signatures it still has. Free numbers are handed out lowest
//! first, so the numbers stay as few as the live keys.

use std::any::TypeId;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use foldhash::HashMap;

use crate::name::Name;

/// A delivery's payload type and id as one number: equal keys, equal (type, id), among the keys
/// held at the time. Copied freely while a [`HeldKey`] of it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryKey(u32);

impl DeliveryKey {
    /// The key of `(payload, id)` if some live signature declares it: a value no factory
    /// declares (a pipeline input nothing asks for) has none, and the table does not grow
    /// with it. The number stays that pair's while the caller holds a signature declaring it.
    pub(crate) fn declared(payload: TypeId, id: &str) -> Option<Self> {
        let table = table();
        let (key, _) = table.pairs.get(&payload)?.get(id)?;
        Some(*key)
    }
}

/// A share of a declared (payload type, id) pair: the pair keeps its number while one lives.
#[derive(Clone)]
pub(crate) struct HeldKey {
    /// The pair's number, kept beside the share so that resolution reads it from the signature
    /// itself rather than from wherever the pair was allocated (a cache miss per key).
    key: DeliveryKey,
    pair: Arc<Pair>,
}

/// A declared pair, shared by every [`HeldKey`] of it; it leaves the table when dropped.
struct Pair {
    key: DeliveryKey,
    payload: TypeId,
    id: Name,
}

impl HeldKey {
    /// The key of `(payload, id)`, numbered now if no live signature declares it.
    pub(crate) fn declare(payload: TypeId, id: &Name) -> Self {
        let mut table = table();
        if let Some(held) =
            table.pairs.get(&payload).and_then(|ids| ids.get(id.as_str())).and_then(|(_, pair)| pair.upgrade())
        {
            return HeldKey { key: held.key, pair: held };
        }
        // No live holder: never declared, or its last holder is being dropped right now and has
        // not taken it out yet (its drop then leaves this new entry alone).
        let key = table.take_number();
        let pair = Arc::new(Pair { key, payload, id: id.clone() });
        table.pairs.entry(payload).or_default().insert(id.clone(), (key, Arc::downgrade(&pair)));
        HeldKey { key, pair }
    }

    /// The key.
    pub(crate) fn key(&self) -> DeliveryKey {
        self.key
    }
}

impl fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HeldKey").field(&self.key.0).field(&self.pair.id).finish()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // The table never holds a strong share, so no pair is dropped while it is locked.
        table().release(self);
    }
}

/// The pairs with a live holder, and the numbers free for new ones.
#[derive(Default)]
struct Table {
    /// By payload type, then id: the pair's number and its shared entry.
    pairs: HashMap<TypeId, HashMap<Name, (DeliveryKey, Weak<Pair>)>>,
    /// Numbers below `next` that no pair has.
    free: BTreeSet<u32>,
    /// The lowest number never given out (or given back from the top).
    next: u32,
}

impl Table {
    fn take_number(&mut self) -> DeliveryKey {
        if let Some(number) = self.free.pop_first() {
            return DeliveryKey(number);
        }
        let number = self.next;
        // Numbers are reused, so this counts the pairs alive at once: far fewer than 2^32.
        self.next = number.checked_add(1).expect("fewer than 2^32 delivery keys alive at once");
        DeliveryKey(number)
    }

    fn release(&mut self, pair: &Pair) {
        if let Some(ids) = self.pairs.get_mut(&pair.payload) {
            // Another entry under the same pair is a new one, declared while this was dropping.
            if ids.get(pair.id.as_str()).is_some_and(|(key, _)| *key == pair.key) {
                ids.remove(pair.id.as_str());
                if ids.is_empty() {
                    self.pairs.remove(&pair.payload);
                } else {
                    shrink(ids);
                }
            }
        }
        self.free.insert(pair.key.0);
        while self.next > 0 && self.free.last() == Some(&(self.next - 1)) {
            self.free.pop_last();
            self.next -= 1;
        }
    }
}

/// Gives back a map's room once it holds a quarter of it, so that a table that once held a big
/// pipeline's ids does not keep their room; halving the room then costs O(1) per removal.
fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// Locks the process-wide table; nothing panics while holding it, but recover anyway.
fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pairs with a live holder.
pub(crate) fn live_pairs() -> usize {
    table().pairs.values().map(HashMap::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_keeps_its_number_while_held_and_leaves_with_its_last_holder() {
        struct Marker;
        let id = Name::from(String::from("delivery-key-unit-test"));
        let first = HeldKey::declare(TypeId::of::<Marker>(), &id);
        let second = HeldKey::declare(TypeId::of::<Marker>(), &Name::from("delivery-key-unit-test"));
        assert_eq!(first.key(), second.key());
        assert_eq!(DeliveryKey::declared(TypeId::of::<Marker>(), "delivery-key-unit-test"), Some(first.key()));
        assert_ne!(HeldKey::declare(TypeId::of::<Marker>(), &Name::EMPTY).key(), first.key());
        drop(first);
        assert!(DeliveryKey::declared(TypeId::of::<Marker>(), "delivery-key-unit-test").is_some());
        drop(second);
        assert_eq!(DeliveryKey::declared(TypeId::of::<Marker>(), "delivery-key-unit-test"), None);
    }
}
