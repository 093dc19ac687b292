//! Interned compatibility keys, so conns and waiters compare keys as small integers.
//!
//! A [`CompatKey`] holds strings; cloning one per lease would allocate on every acquire. The
//! table keeps one copy per distinct live key with a reference count: each conn slot, waiter and
//! the warm-dial template holds one reference, and a key with no references is dropped, so the
//! table stays bounded by what is alive (beta values come from clients and must not pile up).

use crate::conn::CompatKey;

/// Index of an interned key; valid while it holds a reference
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KeyIdx(u32);

#[derive(Debug)]
struct Entry {
    key: Option<CompatKey>,
    refs: u32,
}

/// The interned keys of one pool
#[derive(Debug, Default)]
pub(super) struct KeyTable {
    entries: Vec<Entry>,
}

impl KeyTable {
    /// Takes a reference to `key`, interning it if it is new
    pub(super) fn intern(&mut self, key: &CompatKey) -> KeyIdx {
        if let Some(idx) = self.find(key) {
            self.retain(idx);
            return idx;
        }
        let entry = Entry {
            key: Some(key.clone()),
            refs: 1,
        };
        match self.entries.iter().position(|e| e.key.is_none()) {
            Some(free) => {
                self.entries[free] = entry;
                KeyIdx(free as u32)
            }
            None => {
                self.entries.push(entry);
                KeyIdx((self.entries.len() - 1) as u32)
            }
        }
    }

    /// The live index of `key`, without taking a reference
    pub(super) fn find(&self, key: &CompatKey) -> Option<KeyIdx> {
        self.entries
            .iter()
            .position(|e| e.key.as_ref() == Some(key))
            .map(|i| KeyIdx(i as u32))
    }

    /// Takes one more reference to a live key
    pub(super) fn retain(&mut self, idx: KeyIdx) {
        self.entries[idx.0 as usize].refs += 1;
    }

    /// Drops one reference; the key goes when the last one does
    pub(super) fn release(&mut self, idx: KeyIdx) {
        let entry = &mut self.entries[idx.0 as usize];
        entry.refs -= 1;
        if entry.refs == 0 {
            entry.key = None;
        }
    }

    /// The key behind a live index
    pub(super) fn get(&self, idx: KeyIdx) -> &CompatKey {
        self.entries[idx.0 as usize]
            .key
            .as_ref()
            .expect("a live key index holds its key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountId;

    fn live(table: &KeyTable) -> usize {
        table.entries.iter().filter(|e| e.key.is_some()).count()
    }

    #[test]
    fn keys_are_shared_and_dropped_with_their_last_reference() {
        let mut table = KeyTable::default();
        let plain = CompatKey::plain(AccountId(1));
        let beta = CompatKey::new(AccountId(1), ["x"], []);
        let a = table.intern(&plain);
        let b = table.intern(&plain);
        assert_eq!(a, b);
        let c = table.intern(&beta);
        assert_ne!(a, c);
        assert_eq!(live(&table), 2);
        table.release(a);
        table.release(b);
        assert_eq!(live(&table), 1);
        assert_eq!(table.find(&plain), None);
        // the freed entry is reused
        assert_eq!(table.intern(&plain), a);
        assert_eq!(table.get(c), &beta);
    }
}
