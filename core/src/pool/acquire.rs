//! Acquire rules of an account pool, and its waiters.
//!
//! Waiters are kept in one arrival-ordered queue. An HTTP turn that found nothing waits behind
//! the least-busy conn leased to another HTTP turn (linear min-scan, ties to the lower id); a
//! session, or an HTTP turn with no such conn, waits for any compatible conn or capacity. Where
//! a conn that becomes available goes is `release.rs`.

use std::time::{Duration, Instant};

use super::account::{AccountPool, HolderKind, Slot, SlotState, WaitState, Waiter};
use super::keys::KeyIdx;
use super::request::{CloseReason, Lease, PoolRequest, RefuseReason};
use crate::conn::{CompatKey, ConnRecord};
use crate::{ConnId, ResponseId, SessionId};

/// What an acquire attempt achieved
enum Got {
    /// A lease was granted
    Granted,
    /// A dial for the holder is in flight
    Dialing(ConnId),
}

impl AccountPool {
    /// A holder asks for a conn with `compat`: answered with `Granted` (now, or after a dial or
    /// a release) or `Refused` (`QueueFull`, `NoCapacity`, `DialFailed`; when its wait runs
    /// out, `SessionWaitTimeout` after `session_acquire_wait` for a session, `AcquireTimeout`
    /// after `acquire_timeout` in total for an HTTP turn). An HTTP turn prefers the idle conn
    /// whose lane cache holds `preferred` (the chain's previous response). A dial the holder
    /// waits for (its own, or a warm dial in flight it took over) that has not finished after
    /// `dial_wait` answers `Refused(DialWait)` and goes on as a warm dial; so does a session's
    /// wait for a conn or capacity (at most `session_acquire_wait`); the control plane passes a
    /// wait only when another account could serve the holder.
    pub fn acquire(
        &mut self,
        now: Instant,
        holder: SessionId,
        kind: HolderKind,
        compat: &CompatKey,
        preferred: Option<&ResponseId>,
        dial_wait: Option<Duration>,
    ) {
        if self.max_conns == 0 {
            self.refuse(holder, RefuseReason::NoCapacity);
            return;
        }
        let key = self.keys.intern(compat);
        match self.try_obtain(now, holder, kind, key, preferred) {
            Some(Got::Granted) => self.keys.release(key),
            Some(Got::Dialing(conn)) => {
                let deadline = self.own_dial_deadline(now, kind, dial_wait);
                let state = WaitState::Dialing(conn);
                self.waiters.push_back(Waiter {
                    holder,
                    kind,
                    key,
                    deadline,
                    dial_wait,
                    state,
                });
            }
            None => self.enqueue(now, holder, kind, key, dial_wait),
        }
        self.maintain(now);
    }

    /// An HTTP turn's `acquire_timeout` covers its dial; a session's own dial is bounded by the
    /// shell's `dial_timeout` instead (`session_acquire_wait` bounds waiting for others' conns);
    /// a `dial_wait`, when given, cuts either short
    fn own_dial_deadline(
        &self,
        now: Instant,
        kind: HolderKind,
        dial_wait: Option<Duration>,
    ) -> Option<Instant> {
        let own = match kind {
            HolderKind::Session => None,
            HolderKind::Http => Some(now + self.settings.pool.acquire_timeout),
        };
        own.into_iter().chain(dial_wait.map(|w| now + w)).min()
    }

    /// Preferred idle conn, MRU unheld idle conn, a warm dial in flight (taken over: one dial
    /// fewer on every cold start), a dial, a held idle conn, a dial in place of an idle conn of
    /// another key
    fn try_obtain(
        &mut self,
        now: Instant,
        holder: SessionId,
        kind: HolderKind,
        key: KeyIdx,
        preferred: Option<&ResponseId>,
    ) -> Option<Got> {
        if let Some(conn) = preferred.and_then(|p| self.by_response.get(p)).copied()
            && self.idle_usable(now, conn, key, kind)
        {
            self.lease_idle(conn, holder, kind, true);
            return Some(Got::Granted);
        }
        if let Some(conn) = self.find_idle(now, key, false, kind) {
            self.lease_idle(conn, holder, kind, false);
            return Some(Got::Granted);
        }
        if let Some(conn) = self.take_over_warm_dial(key, holder) {
            return Some(Got::Dialing(conn));
        }
        if self.can_dial(now) {
            return Some(Got::Dialing(self.start_dial(key, Some(holder))));
        }
        if let Some(conn) = self.find_idle(now, key, true, kind) {
            self.lease_idle(conn, holder, kind, false);
            return Some(Got::Granted);
        }
        // In place of an idle conn of another key, or — for a session — one too old for it
        if self.full_but_dialable(now)
            && let Some(victim) = self.idle_where(|slot_key, record, held| {
                !held && (slot_key != key || !self.fits(kind, record, now))
            })
        {
            let reason = if self.conns[&victim].key == key {
                CloseReason::SessionAge
            } else {
                CloseReason::Incompatible
            };
            self.close(victim, reason);
            return Some(Got::Dialing(self.start_dial(key, Some(holder))));
        }
        None
    }

    /// Makes `holder` the taker of the oldest warm dial in flight with `key`, if any
    fn take_over_warm_dial(&mut self, key: KeyIdx, holder: SessionId) -> Option<ConnId> {
        let conn = self
            .conns
            .iter()
            .filter(|(_, slot)| {
                slot.key == key && matches!(slot.state, SlotState::Dialing { holder: None })
            })
            .map(|(conn, _)| *conn)
            .min()?;
        if let Some(Slot {
            state: SlotState::Dialing { holder: taker },
            ..
        }) = self.conns.get_mut(&conn)
        {
            *taker = Some(holder);
        }
        self.warm_dialing -= 1;
        self.stats.dial_takeovers += 1;
        Some(conn)
    }

    /// Whether `conn` is idle, has `key` and may be leased to a holder of `kind` now
    fn idle_usable(&self, now: Instant, conn: ConnId, key: KeyIdx, kind: HolderKind) -> bool {
        matches!(self.conns.get(&conn), Some(Slot { key: k, state: SlotState::Idle { record, .. } })
            if *k == key && self.fits(kind, record, now))
    }

    pub(super) fn too_old(&self, record: &ConnRecord, now: Instant) -> bool {
        now.saturating_duration_since(record.opened_at) >= self.settings.max_age
    }

    /// Whether `record`'s conn may be leased to a holder of `kind` now: younger than
    /// `upstream.max_age`, and for a session with at least `pool.session_min_remaining_life`
    /// left before it (the session's `store:false` chains live and die with the conn)
    pub(super) fn fits(&self, kind: HolderKind, record: &ConnRecord, now: Instant) -> bool {
        let age = now.saturating_duration_since(record.opened_at);
        let left = self.settings.max_age.saturating_sub(age);
        let session_min = self.settings.pool.session_min_remaining_life;
        !left.is_zero() && (kind == HolderKind::Http || left >= session_min)
    }

    /// The most recently released idle conn with `key` and this hold state that fits a holder
    /// of `kind`; conns past `max_age` met on the way are closed (never leased), conns only
    /// too old for a session stay for HTTP turns
    fn find_idle(
        &mut self,
        now: Instant,
        key: KeyIdx,
        held: bool,
        kind: HolderKind,
    ) -> Option<ConnId> {
        loop {
            let (conn, expired) =
                self.idle_order
                    .iter()
                    .rev()
                    .find_map(|c| match self.conns.get(c) {
                        Some(Slot {
                            key: k,
                            state:
                                SlotState::Idle {
                                    record, held: h, ..
                                },
                        }) if *k == key && *h == held => {
                            if self.too_old(record, now) {
                                Some((*c, true))
                            } else {
                                self.fits(kind, record, now).then_some((*c, false))
                            }
                        }
                        _ => None,
                    })?;
            if !expired {
                return Some(conn);
            }
            self.close(conn, CloseReason::MaxAge);
        }
    }

    /// Capacity allows a dial, the back-off has passed, and no probe dial is in flight
    pub(super) fn can_dial(&self, now: Instant) -> bool {
        self.idle_order.len() + self.leased + self.dialing < self.max_conns
            && self.pacing_allows(now)
    }

    /// Only capacity stands in the way of a dial
    fn full_but_dialable(&self, now: Instant) -> bool {
        self.max_conns > 0 && self.pacing_allows(now)
    }

    fn pacing_allows(&self, now: Instant) -> bool {
        self.pacing.backoff_allows(now) && !(self.pacing.probing() && self.dialing > 0)
    }

    pub(super) fn start_dial(&mut self, key: KeyIdx, holder: Option<SessionId>) -> ConnId {
        let conn = self.ids.next_id();
        self.keys.retain(key);
        self.conns.insert(
            conn,
            Slot {
                key,
                state: SlotState::Dialing { holder },
            },
        );
        self.dialing += 1;
        self.stats.dials += 1;
        let compat = self.keys.get(key).clone();
        self.out.push_back(PoolRequest::Dial {
            conn,
            compat,
            for_holder: holder,
        });
        conn
    }

    /// Leases an idle conn: it leaves the idle set, the response index and its hold
    fn lease_idle(&mut self, conn: ConnId, holder: SessionId, kind: HolderKind, preferred: bool) {
        let slot = self.conns.get_mut(&conn).expect("idle conn has a slot");
        let SlotState::Idle { record, held, .. } =
            std::mem::replace(&mut slot.state, SlotState::Placing)
        else {
            unreachable!("lease_idle is called on idle conns only")
        };
        self.leave_idle(&record, held);
        self.grant(holder, kind, record, false, preferred);
    }

    /// Removes an idle conn's traces from the idle order, the response index and the holds
    pub(super) fn leave_idle(&mut self, record: &ConnRecord, held: bool) {
        let conn = record.id;
        if let Some(i) = self.idle_order.iter().rposition(|c| *c == conn) {
            self.idle_order.remove(i);
        }
        for cached in &record.lane_cache {
            if self.by_response.get(&cached.response) == Some(&conn) {
                self.by_response.remove(&cached.response);
            }
        }
        if held {
            self.holds.end(conn);
        }
    }

    /// Hands `record`'s conn to `holder` (its slot keeps the queue behind it)
    pub(super) fn grant(
        &mut self,
        holder: SessionId,
        kind: HolderKind,
        record: ConnRecord,
        fresh: bool,
        preferred_hit: bool,
    ) {
        let slot = self
            .conns
            .get_mut(&record.id)
            .expect("granted conn has a slot");
        let queued = match slot.state {
            SlotState::Leased { queued, .. } => queued,
            _ => 0,
        };
        slot.state = SlotState::Leased { kind, queued };
        let key = slot.key;
        if key != self.warm_key {
            self.keys.retain(key);
            self.keys.release(self.warm_key);
            self.warm_key = key;
        }
        self.leased += 1;
        if !fresh {
            self.stats.reuses += 1;
        }
        if preferred_hit {
            self.stats.preferred_hits += 1;
        }
        let lease = Lease {
            holder,
            record,
            fresh,
            preferred_hit,
        };
        self.out.push_back(PoolRequest::Granted(lease));
    }

    /// Puts a waiter in line: HTTP behind the least-busy HTTP-leased conn, else in the pool
    /// queue (bounded by `max_conns × queue_limit_per_conn`)
    fn enqueue(
        &mut self,
        now: Instant,
        holder: SessionId,
        kind: HolderKind,
        key: KeyIdx,
        dial_wait: Option<Duration>,
    ) {
        let limit = self.settings.pool.queue_limit_per_conn;
        // The key's conns leased to other HTTP turns (only an HTTP turn queues behind one)
        let targets = self
            .conns
            .iter()
            .filter_map(|(&conn, slot)| match slot.state {
                SlotState::Leased {
                    kind: HolderKind::Http,
                    queued,
                } if kind == HolderKind::Http && slot.key == key => Some((queued, conn)),
                _ => None,
            });
        // The least busy with room, ties to the lower id
        let on = targets.clone().filter(|(queued, _)| *queued < limit).min();
        let full = match on {
            Some(_) => false,
            None if targets.count() > 0 => true,
            None => self.pool_queue_len() >= self.max_conns.saturating_mul(limit).max(limit),
        };
        if full {
            self.keys.release(key);
            self.refuse(holder, RefuseReason::QueueFull);
            return;
        }
        let on = on.map(|(_, conn)| conn);
        if let Some(Slot {
            state: SlotState::Leased { queued, .. },
            ..
        }) = on.and_then(|conn| self.conns.get_mut(&conn))
        {
            *queued += 1;
        }
        // A session that could move (a `dial_wait`) waits for a conn no longer than for a dial
        let wait = match kind {
            HolderKind::Session => {
                let wait = self.settings.pool.session_acquire_wait;
                dial_wait.map_or(wait, |w| w.min(wait))
            }
            HolderKind::Http => self.settings.pool.acquire_timeout,
        };
        let state = WaitState::Queued { on };
        self.stats.queued += 1;
        self.waiters.push_back(Waiter {
            holder,
            kind,
            key,
            deadline: Some(now + wait),
            dial_wait,
            state,
        });
    }

    pub(super) fn pool_queue_len(&self) -> usize {
        self.waiters
            .iter()
            .filter(|w| w.state == WaitState::Queued { on: None })
            .count()
    }

    /// Serves waiters in arrival order with idle conns or dials, while either is possible
    pub(super) fn pump(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.waiters.len() {
            if !self.can_dial(now) && self.idle_order.is_empty() {
                break;
            }
            let Waiter {
                holder,
                kind,
                key,
                state,
                dial_wait,
                ..
            } = self.waiters[i];
            let WaitState::Queued { on } = state else {
                i += 1;
                continue;
            };
            match self.try_obtain(now, holder, kind, key, None) {
                Some(Got::Granted) => {
                    self.drop_waiter(i);
                }
                Some(Got::Dialing(conn)) => {
                    if let Some(target) = on {
                        self.unqueue_from(target);
                    }
                    let deadline = self.own_dial_deadline(now, kind, dial_wait);
                    let waiter = &mut self.waiters[i];
                    waiter.state = WaitState::Dialing(conn);
                    if kind == HolderKind::Session || dial_wait.is_some() {
                        waiter.deadline = deadline;
                    }
                    i += 1;
                }
                None => i += 1,
            }
        }
    }

    /// Removes waiter `i`; a dial made for it goes on as a warm dial. Returns who it was.
    pub(super) fn drop_waiter(&mut self, i: usize) -> (SessionId, HolderKind) {
        let waiter = self.waiters.remove(i).expect("waiter index in range");
        match waiter.state {
            WaitState::Queued { on: Some(target) } => self.unqueue_from(target),
            WaitState::Dialing(conn) => {
                if let Some(Slot {
                    state: SlotState::Dialing { holder },
                    ..
                }) = self.conns.get_mut(&conn)
                {
                    *holder = None;
                    self.warm_dialing += 1;
                }
            }
            WaitState::Queued { on: None } => {}
        }
        self.keys.release(waiter.key);
        (waiter.holder, waiter.kind)
    }

    fn unqueue_from(&mut self, target: ConnId) {
        if let Some(Slot {
            state: SlotState::Leased { queued, .. },
            ..
        }) = self.conns.get_mut(&target)
        {
            *queued -= 1;
        }
    }

    pub(super) fn refuse_waiter(&mut self, i: usize, reason: RefuseReason) {
        let (holder, _) = self.drop_waiter(i);
        self.refuse(holder, reason);
    }

    pub(super) fn refuse(&mut self, holder: SessionId, reason: RefuseReason) {
        self.stats.refusals += 1;
        match reason {
            RefuseReason::QueueFull => self.stats.queue_full += 1,
            RefuseReason::AcquireTimeout | RefuseReason::SessionWaitTimeout => {
                self.stats.acquire_timeouts += 1
            }
            RefuseReason::DialWait => self.stats.dial_waits_expired += 1,
            _ => {}
        }
        self.out.push_back(PoolRequest::Refused { holder, reason });
    }
}
