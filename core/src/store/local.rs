//! A bounded map with per-entry expiry and least-recently-used eviction, for the gateway's
//! local binding copies and its response→(conn, lane) map.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// At most `capacity` entries; an expired entry reads as absent and is dropped when read
#[derive(Clone, Debug)]
pub(crate) struct LocalMap<K, V> {
    entries: HashMap<K, Slot<V>>,
    /// Use order: the smallest tick is the least recently used key
    order: BTreeMap<u64, K>,
    next_tick: u64,
    capacity: usize,
}

#[derive(Clone, Debug)]
struct Slot<V> {
    value: V,
    expires_at: Instant,
    tick: u64,
}

impl<K: Clone + Eq + Hash, V> LocalMap<K, V> {
    /// An empty map that holds at most `capacity` entries (0 holds none)
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            capacity,
        }
    }

    /// Inserts or replaces `key`, evicting the least recently used entry when full
    pub(crate) fn insert(&mut self, key: K, value: V, expires_at: Instant) {
        if self.capacity == 0 {
            return;
        }
        self.remove(&key);
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let tick = self.bump();
        self.order.insert(tick, key.clone());
        self.entries.insert(
            key,
            Slot {
                value,
                expires_at,
                tick,
            },
        );
    }

    /// The live entry of `key`, marked as used; an expired one is dropped
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        let slot = self.entries.get(key)?;
        if slot.expires_at <= now {
            self.remove(key);
            return None;
        }
        let old_tick = slot.tick;
        let tick = self.bump();
        self.order.remove(&old_tick);
        self.order.insert(tick, key.clone());
        let slot = self.entries.get_mut(key)?;
        slot.tick = tick;
        Some(&mut slot.value)
    }

    /// The entry of `key`, expired or not, without marking it as used
    pub(crate) fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|slot| &mut slot.value)
    }

    /// Moves the expiry of a live `key` to `expires_at`
    pub(crate) fn set_expiry(&mut self, key: &K, expires_at: Instant) {
        if let Some(slot) = self.entries.get_mut(key) {
            slot.expires_at = expires_at;
        }
    }

    /// Removes `key`, returning its value
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.entries.remove(key)?;
        self.order.remove(&slot.tick);
        Some(slot.value)
    }

    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn evicts_least_recently_used_and_expires() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let mut map = LocalMap::new(2);
        map.insert("a", 1, later);
        map.insert("b", 2, later);
        assert_eq!(map.get(&"a", t0).copied(), Some(1)); // "b" is now the least recently used
        map.insert("c", 3, later);
        assert_eq!(map.entries.len(), 2);
        assert_eq!(map.get(&"b", t0), None);
        assert_eq!(map.get(&"c", t0).copied(), Some(3));
        assert_eq!(map.get(&"a", later), None, "expired at its deadline");
        assert_eq!(map.entries.len(), 1);
        let mut none = LocalMap::new(0);
        none.insert("a", 1, later);
        assert_eq!(none.get(&"a", t0), None);
    }
}
