//! Where a conn goes when it becomes available or goes away: placement, release, warm idle,
//! and forgetting or closing a conn.
//!
//! A conn that becomes available (fresh from a dial, or released reusable) goes, in order, to
//! the holder it was dialed for, to its own first queued waiter, to the oldest compatible
//! waiter of any queue, else to the idle set: a compatible conn never sits idle while a
//! compatible holder waits.

use std::time::Instant;

use super::account::{AccountPool, HolderKind, Slot, SlotState, WaitState};
use super::request::{CloseReason, PoolRequest, RefuseReason};
use crate::conn::{ConnRecord, Release};
use crate::{ConnId, ResponseId};

impl AccountPool {
    /// A conn is available (fresh from a dial, or released reusable): see the module docs for
    /// who gets it. Returns true if it went idle.
    pub(super) fn place(&mut self, now: Instant, mut record: ConnRecord, fresh: bool) -> bool {
        let conn = record.id;
        let key = self.conns[&conn].key;
        let taker = self
            .waiters
            .iter()
            .position(|w| w.state == WaitState::Dialing(conn))
            .or_else(|| {
                self.waiters
                    .iter()
                    .position(|w| w.state == WaitState::Queued { on: Some(conn) })
            })
            .or_else(|| {
                self.waiters.iter().position(|w| {
                    matches!(w.state, WaitState::Queued { .. })
                        && w.key == key
                        && self.fits(w.kind, &record, now)
                })
            });
        if let Some(i) = taker {
            let (holder, kind) = self.drop_waiter(i);
            self.grant(holder, kind, record, fresh, false);
            return false;
        }
        record.last_released = now;
        for cached in &record.lane_cache {
            self.by_response.insert(cached.response.clone(), conn);
        }
        self.idle_order.push(conn);
        let slot = self.conns.get_mut(&conn).expect("placed conn has a slot");
        slot.state = SlotState::Idle {
            record,
            pong_due: None,
            held: false,
        };
        true
    }

    /// A holder gives its conn back: reusable ones go to a waiter or the idle set (MRU),
    /// others — and any past `max_age` or `lane_reuse_limit` — are closed. With `hold` (after
    /// a `store:false` HTTP turn), a conn that goes idle is held for that chain (its
    /// continuation) for `http_chain_hold`.
    pub fn handle_release(&mut self, now: Instant, release: Release, hold: Option<ResponseId>) {
        let Release { record, reusable } = release;
        let conn = record.id;
        if !matches!(
            self.conns.get(&conn),
            Some(Slot {
                state: SlotState::Leased { .. },
                ..
            })
        ) {
            return;
        }
        let retire = if !reusable {
            Some(CloseReason::NotReusable)
        } else if self.too_old(&record, now) {
            Some(CloseReason::MaxAge)
        } else if record.named_lanes.len() > self.settings.pool.lane_reuse_limit {
            Some(CloseReason::LaneLimit)
        } else {
            None
        };
        if let Some(reason) = retire {
            self.close(conn, reason);
            self.after_capacity_change(now);
            return;
        }
        self.leased -= 1;
        let key = self.conns[&conn].key;
        let idle = self.place(now, record, false);
        if idle && let Some(chain) = hold {
            match self.holds.add(now, conn, chain) {
                Some(pushed_out) if pushed_out == conn => {}
                pushed_out => {
                    if let Some(old) = pushed_out {
                        self.set_held(old, false);
                    }
                    self.set_held(conn, true);
                }
            }
        }
        if idle
            && self.waiters.iter().any(|w| {
                w.kind == HolderKind::Session
                    && w.key == key
                    && matches!(w.state, WaitState::Queued { .. })
            })
        {
            // Too old for the session that waits: a dial, maybe in its place, serves it
            self.pump(now);
        }
        self.maintain(now);
    }

    /// Capacity or pacing changed: serve waiters, then warm idle
    pub(super) fn after_capacity_change(&mut self, now: Instant) {
        self.pump(now);
        self.maintain(now);
    }

    /// Warm idle: one dial at a time, spaced by `warm_cooldown`, while unheld idle conns plus
    /// warm dials are below `min_idle_per_account` and nobody waits
    pub(super) fn maintain(&mut self, now: Instant) {
        if self.max_conns == 0
            || self
                .waiters
                .iter()
                .any(|w| matches!(w.state, WaitState::Queued { .. }))
        {
            return;
        }
        let unheld_idle = self.idle_order.len() - self.holds.len();
        if unheld_idle + self.warm_dialing >= self.settings.pool.min_idle_per_account
            || !self.can_dial(now)
            || !self.pacing.warm_allows(now)
        {
            return;
        }
        self.start_dial(self.warm_key, None);
        self.warm_dialing += 1;
        self.pacing.on_warm_dial(now);
    }

    pub(super) fn set_held(&mut self, conn: ConnId, held: bool) {
        if let Some(Slot {
            state: SlotState::Idle { held: h, .. },
            ..
        }) = self.conns.get_mut(&conn)
        {
            *h = held;
        }
    }

    /// The pool stops accounting for `conn`, whatever its state
    pub(super) fn forget(&mut self, conn: ConnId) {
        let Some(slot) = self.conns.remove(&conn) else {
            return;
        };
        match slot.state {
            SlotState::Dialing { holder } => {
                self.dialing -= 1;
                match holder {
                    None => self.warm_dialing -= 1,
                    Some(_) => {
                        if let Some(i) = self
                            .waiters
                            .iter()
                            .position(|w| w.state == WaitState::Dialing(conn))
                        {
                            self.refuse_waiter(i, RefuseReason::DialFailed);
                        }
                    }
                }
            }
            SlotState::Idle { record, held, .. } => self.leave_idle(&record, held),
            SlotState::Leased { .. } => {
                self.leased -= 1;
                for waiter in &mut self.waiters {
                    if waiter.state == (WaitState::Queued { on: Some(conn) }) {
                        waiter.state = WaitState::Queued { on: None };
                    }
                }
            }
            SlotState::Placing => {}
        }
        self.keys.release(slot.key);
    }

    /// Forgets `conn` and tells the shell to close it
    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.forget(conn);
        self.stats.closes += 1;
        self.stats.closes_by_reason[reason.index()] += 1;
        self.out.push_back(PoolRequest::Close(conn, reason));
    }
}
