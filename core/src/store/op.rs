//! The records of the store machine's op table: what each command in flight is for.

use std::time::{Duration, Instant};

use super::key::StoreKey;
use super::request::BindingRef;
use crate::AccountId;

#[derive(Debug)]
/// A command sent and not yet answered or timed out
pub(super) struct Op {
    pub(super) sent: Instant,
    pub(super) deadline: Instant,
    pub(super) purpose: Purpose,
}

/// Who still cares about a get's reply
///
/// ```text
///  issue --> Waiting --reply/deadline--> (Resolved event, gone)
///             |   ^
///   breaker   |   | a lookup of the same key joins it again
///   opens     v   |
///          AnsweredEarly --reply--> back-fill only (no event) --deadline--> gone
///
///  Waiting or AnsweredEarly --local bind/delete of the key--> Superseded --> reply ignored
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GetState {
    /// Lookups wait for it: its reply or deadline emits `Resolved`
    Waiting,
    /// The breaker opened and answered its lookups Miss; its reply is still trustworthy and
    /// may fill the local map, and a later lookup of the key may join it again
    AnsweredEarly,
    /// A local write to its key answered it; its reply is older than that write and is never
    /// copied (the no-stale-read rule)
    Superseded,
}

/// What a command is for, and what its answer updates
#[derive(Debug)]
pub(super) enum Purpose {
    /// A lookup's get
    Get {
        key: StoreKey,
        /// How long a copy of its answer is kept locally
        ttl: Duration,
        /// Whether a hit moves the store's expiry (session bindings; a response's binding
        /// lives as long as what it protects, however often it is read)
        refresh: bool,
        state: GetState,
    },
    Set {
        key: StoreKey,
        group: String,
        account: AccountId,
        binding: BindingRef,
    },
    Delete {
        key: StoreKey,
    },
    Refresh,
    Probe,
}
