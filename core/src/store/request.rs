//! The values that cross the store boundary: commands out, replies in, events and answers.

use std::fmt;
use std::time::Duration;

use super::binding::Binding;
use super::key::StoreKey;
use crate::{AccountId, ResponseId};

crate::ids::numeric_id!(
    /// Names one store command from emission to reply; unique for the life of a [`Store`](super::Store)
    OpId,
    "op"
);

/// One command for the shell to run against the store, then answer with
/// [`Store::handle_reply`](super::Store::handle_reply)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRequest {
    /// Echo this in the reply
    pub op: OpId,
    /// What to run
    pub kind: RequestKind,
}

/// What a store command does (Redis: `GET`, `SET key value PX ttl`, `DEL`, `PEXPIRE`)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Read `key`; reply `Ok(Some(value))`, or `Ok(None)` when absent
    Get {
        /// Key to read
        key: StoreKey,
    },
    /// Write `value` under `key`, expiring after `ttl`; reply `Ok(None)`
    Set {
        /// Key to write
        key: StoreKey,
        /// The binding, `{account}:{group}` ([`Binding::encode`])
        value: String,
        /// Lifetime of the key
        ttl: Duration,
    },
    /// Remove `key`; reply `Ok(None)` whether or not it existed
    Delete {
        /// Key to remove
        key: StoreKey,
    },
    /// Move the expiry of `key` to `ttl` from now (no-op when absent); reply `Ok(None)`
    Expire {
        /// Key to refresh
        key: StoreKey,
        /// New lifetime
        ttl: Duration,
    },
}

impl RequestKind {
    /// The key the command touches
    pub fn key(&self) -> &StoreKey {
        match self {
            Self::Get { key }
            | Self::Set { key, .. }
            | Self::Delete { key }
            | Self::Expire { key, .. } => key,
        }
    }
}

/// Why the shell could not run a command
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFailure {
    /// The store could not be reached or the connection broke
    Unreachable,
    /// The store answered with an error
    Rejected,
    /// The shell's own per-command timeout fired first
    TimedOut,
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "state store unreachable",
            Self::Rejected => "state store rejected the command",
            Self::TimedOut => "state store command timed out",
        })
    }
}

/// The answer to a lookup made for a routing decision
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Bound (local answer, no wait)
    Hit(Binding),
    /// Not bound, store unusable, or deleted through this gateway: decide without it
    Miss,
    /// Asked the store; [`StoreEvent::Resolved`] with this op answers it by the op's deadline
    Pending(OpId),
}

/// A binding named in an event (session keys only by their hash: they are client text)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingRef {
    /// response→account
    Response(ResponseId),
    /// session→account, by its store key
    Session(StoreKey),
}

impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(id) => write!(f, "response {id}"),
            Self::Session(key) => write!(f, "session {key}"),
        }
    }
}

/// Something the shell must act on: wake a decision, log a warning, update a gauge
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// A [`Lookup::Pending`] op is answered; `None` is a miss (absent, failed or timed out)
    Resolved {
        /// The op the lookup returned
        op: OpId,
        /// The binding, if any
        result: Option<Binding>,
    },
    /// A binding write failed or timed out: log a warning (the local binding still holds)
    SetFailed {
        /// Group of the binding
        group: String,
        /// Account it bound to
        account: AccountId,
        /// What was bound
        binding: BindingRef,
    },
    /// The breaker opened: decisions stop waiting on the store
    BreakerOpened,
    /// The breaker closed: the store is used again
    BreakerClosed,
}

/// Counters for metrics and tests
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Lookups answered from a local binding or copy
    pub local_hits: u64,
    /// Lookups answered Miss from a local tombstone (deleted through this gateway)
    pub local_tombstone_misses: u64,
    /// Lookups that found their local entry older than `local_copy_max_age` and read the store
    pub rechecks: u64,
    /// Get commands sent for lookups
    pub gets: u64,
    /// Lookups that joined a get already in flight for the same key
    pub joined_gets: u64,
    /// Gets answered with a binding
    pub remote_hits: u64,
    /// Gets answered "absent"
    pub remote_misses: u64,
    /// Gets that failed or timed out (answered as a miss)
    pub get_failures: u64,
    /// Lookups answered Miss at once because the breaker was open
    pub breaker_misses: u64,
    /// Set commands sent
    pub sets: u64,
    /// Session binds not written because the store already holds that binding (this gateway
    /// read or wrote it within `local_copy_max_age`)
    pub unchanged_binds: u64,
    /// Sets that failed or timed out (each also a [`StoreEvent::SetFailed`])
    pub set_failures: u64,
    /// Delete commands sent
    pub deletes: u64,
    /// Deletes that failed or timed out
    pub delete_failures: u64,
    /// TTL refreshes (Expire) sent after hits
    pub refreshes: u64,
    /// Refreshes that failed or timed out
    pub refresh_failures: u64,
    /// Writes (set, delete, refresh) not sent because the breaker was open
    pub writes_skipped: u64,
    /// Lookups answered Miss and writes skipped because `max_pending_ops` were in flight
    pub shed: u64,
    /// Commands whose deadline passed before their reply
    pub timeouts: u64,
    /// Replies that came after their op's deadline (ignored)
    pub late_replies: u64,
    /// Store values that were not a binding (read as a miss)
    pub bad_values: u64,
    /// Probes sent while the breaker was open
    pub probes: u64,
    /// Times the breaker opened
    pub breaker_opened: u64,
}
