//! The upstream connection's lifecycle states and the edges between them.

/// Lifecycle of an upstream connection (from its lease; the dial before it is the pool's
/// `Slot::Dialing`)
///
/// ```text
///   Open ──── error event, tail packet, drain timeout ───▶ Dirty
///    │  max_age, connection-limit error,                     │
///    │  lane overflow, a stalled response                    │
///    ▼                                                       │
///   Retiring ◀──────────────── (same triggers) ──────────────┘
///    │ last unfinished response ended
///    ▼                close()
///   Closing ◀──────────────── (Open / Dirty)
///    │ close seen, read error
///    ▼
///   Closed ◀──────────── read error, close, pong timeout,
///                        abandoned write (from any state)
/// ```
///
/// Every edge is one method of [`UpstreamConn`](super::UpstreamConn) (`mark_dirty`, `retire`,
/// `close`, `close_now`) and goes through its `move_to`, which debug-asserts
/// `has_edge_to`.
///
/// A stalled response (its lane's head, none of its own events for `read_timeout`; pongs and
/// other lanes' events do not count) ends as [`Outcome::Stalled`](super::Outcome::Stalled) with the rest of its lane;
/// the conn turns dirty and retiring, so its other lanes finish before it closes.
///
/// Dirty conns are never pooled or leased again, but the session holding one may keep using
/// it (upstream keeps the socket open after request-scoped errors, and other lanes' chains live
/// there). Retiring conns take no new creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Clean and usable
    Open,
    /// Usable by its current holder only
    Dirty,
    /// Takes no new creates; closes when its unfinished responses end
    Retiring,
    /// Close sent, waiting for the socket to end
    Closing,
    /// Gone
    Closed,
}

impl ConnState {
    /// Lowercase name for traces and logs
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Dirty => "dirty",
            Self::Retiring => "retiring",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }

    /// Whether `self → next` is an edge of the diagram above
    pub(super) fn has_edge_to(self, next: Self) -> bool {
        use ConnState::{Closed, Closing, Dirty, Open, Retiring};
        matches!(
            (self, next),
            (Open, Dirty)
                | (Open | Dirty, Retiring)
                | (Open | Dirty | Retiring, Closing)
                | (Open | Dirty | Retiring | Closing, Closed)
        )
    }
}
