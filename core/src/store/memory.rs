//! [`MemoryBackend`]: the in-process store behind the default (no Redis) mode of both shells.
//!
//! It runs [`StoreRequest`]s synchronously with Redis semantics (`GET`, `SET … PX`, `DEL`,
//! `PEXPIRE`), so a shell without Redis feeds the machine's commands to it and keeps no store
//! policy of its own. As in Redis, a `Get` leaves the TTL alone: whether a read extends a
//! binding is the machine's rule (a session binding's hit sends an `Expire`; a response's
//! binding lives as long as the response it protects, however often it is read).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::machine::Store;
use super::request::{RequestKind, StoreFailure, StoreRequest};

/// A bounded key/value map with per-key TTL, driven by `now`
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    entries: HashMap<String, Entry>,
    /// Expiry order, for purging and for evicting the soonest-expiring key when full
    by_expiry: BTreeSet<(Instant, String)>,
    capacity: usize,
}

#[derive(Clone, Debug)]
struct Entry {
    value: String,
    expires_at: Instant,
}

impl MemoryBackend {
    /// An empty backend holding at most `capacity` keys (at least 1); when full, the key that
    /// would expire soonest makes room
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Runs one command at `now`; never fails (the signature matches a remote store's)
    pub fn execute(
        &mut self,
        now: Instant,
        command: &StoreRequest,
    ) -> Result<Option<String>, StoreFailure> {
        self.purge_expired(now);
        Ok(match &command.kind {
            RequestKind::Get { key } => self.entries.get(key.as_str()).map(|e| e.value.clone()),
            RequestKind::Set { key, value, ttl } => {
                self.remove(key.as_str());
                if self.entries.len() >= self.capacity
                    && let Some((_, soonest)) = self.by_expiry.pop_first()
                {
                    self.entries.remove(&soonest);
                }
                let expires_at = now + *ttl;
                self.by_expiry.insert((expires_at, key.as_str().to_owned()));
                let entry = Entry {
                    value: value.clone(),
                    expires_at,
                };
                self.entries.insert(key.as_str().to_owned(), entry);
                None
            }
            RequestKind::Delete { key } => {
                self.remove(key.as_str());
                None
            }
            RequestKind::Expire { key, ttl } => {
                self.set_expiry(key.as_str(), now + *ttl);
                None
            }
        })
    }

    /// Runs every command `store` has queued (and any its replies queue) at `now`
    pub fn drive(&mut self, store: &mut Store, now: Instant) {
        while let Some(command) = store.poll_request() {
            let reply = self.execute(now, &command);
            store.handle_reply(now, command.op, reply);
        }
    }

    /// Live keys (expired ones count until the next command purges them)
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn purge_expired(&mut self, now: Instant) {
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
        }
    }

    fn set_expiry(&mut self, key: &str, expires_at: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        self.by_expiry.remove(&(entry.expires_at, key.to_owned()));
        entry.expires_at = expires_at;
        self.by_expiry.insert((expires_at, key.to_owned()));
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_expiry.remove(&(entry.expires_at, key.to_owned()));
        }
    }
}
