//! Chain holds: an idle conn kept for the next turn of a `store:false` HTTP chain.
//!
//! A `store:false` response lives only in the lane cache of the conn it ran on, so the chain's
//! continuation must find that conn. A hold ends after `http_chain_hold`, when the chain's next
//! turn takes the conn, when anyone else takes or closes it, or when a newer hold pushes it out
//! (at most `max_chain_holds_per_account`). Holds are created in time order with one duration,
//! so the oldest hold is also the first to expire.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::{ConnId, ResponseId};

#[derive(Clone, Debug)]
struct Hold {
    conn: ConnId,
    chain: ResponseId,
    until: Instant,
}

/// The holds of one pool, oldest first
#[derive(Debug)]
pub(super) struct ChainHolds {
    holds: VecDeque<Hold>,
    cap: usize,
    duration: Duration,
}

impl ChainHolds {
    /// No holds yet; at most `cap`, each lasting `duration`
    pub(super) fn new(cap: usize, duration: Duration) -> Self {
        Self {
            holds: VecDeque::with_capacity(cap),
            cap,
            duration,
        }
    }

    /// Holds `conn` for `chain` (replacing its previous hold); returns the conn whose hold was
    /// pushed out by the cap, if any. With a cap of 0 nothing is held and `conn` comes back.
    pub(super) fn add(&mut self, now: Instant, conn: ConnId, chain: ResponseId) -> Option<ConnId> {
        self.end(conn);
        if self.cap == 0 {
            return Some(conn);
        }
        let pushed_out = if self.holds.len() >= self.cap {
            self.holds.pop_front().map(|h| h.conn)
        } else {
            None
        };
        self.holds.push_back(Hold {
            conn,
            chain,
            until: now + self.duration,
        });
        pushed_out
    }

    /// Ends the hold on `conn`, if any
    pub(super) fn end(&mut self, conn: ConnId) {
        self.holds.retain(|h| h.conn != conn);
    }

    /// Ends and returns the oldest hold if it has expired at `now`
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<ConnId> {
        let expired = self.holds.front().is_some_and(|h| h.until <= now);
        expired
            .then(|| self.holds.pop_front())
            .flatten()
            .map(|h| h.conn)
    }

    /// When the oldest hold expires
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.holds.front().map(|h| h.until)
    }

    /// The chain `conn` is held for
    pub(super) fn chain_of(&self, conn: ConnId) -> Option<&ResponseId> {
        self.holds.iter().find(|h| h.conn == conn).map(|h| &h.chain)
    }

    /// Holds alive
    pub(super) fn len(&self) -> usize {
        self.holds.len()
    }
}
