//! A local binding entry and how long it is trusted before the store is read again.
//!
//! ```text
//!   bind/unbind, write sent ──▶ Writing(op) ──store took it──▶ TrustedUntil(sent + max_age)
//!          │                       │                                   │
//!          │ write not sent        │ failed / timed out                │ a lookup at or after it:
//!          ▼                       ▼                                   ▼ dropped, the store is read
//!        Pinned ◀──────────────────┘                         (a remote hit's copy starts here,
//!   (until the entry expires: the store may hold an           at get sent + max_age)
//!    older value, which must never be served)
//! ```

use std::time::{Duration, Instant};

use super::binding::Binding;
use super::request::OpId;

/// A local binding, or a tombstone left by a delete through this gateway
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LocalBinding {
    Bound(Binding),
    Deleted,
}

/// When a local entry stops being trusted (see the module diagram)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Confirmed by the store: trusted until then (`store.local_copy_max_age` after the
    /// confirming command was sent)
    TrustedUntil(Instant),
    /// This gateway's write `op` is in flight: trusted until it is answered
    Writing(OpId),
    /// This gateway's write failed or was never sent: trusted until the entry expires, and a
    /// hit does not extend it
    Pinned,
}

/// One entry of the local binding map
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LocalEntry {
    pub(super) binding: LocalBinding,
    pub(super) check: Check,
}

impl LocalEntry {
    /// A copy of what the store answered to a get sent at `sent`
    pub(super) fn copy(binding: Binding, sent: Instant, max_age: Duration) -> Self {
        Self {
            binding: LocalBinding::Bound(binding),
            check: Check::TrustedUntil(sent + max_age),
        }
    }

    /// Whether a lookup at `now` must read the store instead
    pub(super) fn stale(&self, now: Instant) -> bool {
        matches!(self.check, Check::TrustedUntil(until) if until <= now)
    }

    /// The answer to write `op`, sent at `sent`: trusted for `max_age` from `sent` once the store
    /// took it, pinned if not; an entry a later write replaced is left alone
    pub(super) fn write_answered(&mut self, op: OpId, ok: bool, sent: Instant, max_age: Duration) {
        if self.check == Check::Writing(op) {
            self.check = if ok {
                Check::TrustedUntil(sent + max_age)
            } else {
                Check::Pinned
            };
        }
    }
}
