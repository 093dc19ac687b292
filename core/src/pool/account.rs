//! The pool of one account: its public inputs and outputs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::holds::ChainHolds;
use super::keys::{KeyIdx, KeyTable};
use super::pacing::DialPacing;
use super::request::{PoolRequest, RefuseReason};
use super::stats::PoolStats;
use crate::config::{Config, PoolConfig};
use crate::conn::{CompatKey, ConnRecord};
use crate::resolver::Transport;
use crate::{AccountId, ConnId, ResponseId, SessionId};

/// Hands out [`ConnId`]s that are unique across every pool sharing the source
///
/// Cheap to clone; the pools of one process share one source, so a pool can move into its own
/// task (or behind its own lock) without a registry round trip per dial.
#[derive(Clone, Debug, Default)]
pub struct ConnIdSource(Arc<AtomicU64>);

impl ConnIdSource {
    /// A source whose first id is `c1`
    pub fn new() -> Self {
        Self::default()
    }

    /// The next unused id
    pub fn next_id(&self) -> ConnId {
        ConnId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Who holds conns and slots: decides the pool's waiting rules and whether a conn may be a
/// queue target, and the transport the scheduler finds accounts for
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderKind {
    /// A client WebSocket session (many creates): never queues behind another holder's conn
    Session,
    /// One HTTP turn: may queue on a conn leased to another HTTP turn
    Http,
}

impl HolderKind {
    /// The transport the scheduler must find an account for: a session needs a WebSocket
    /// upstream; an HTTP request takes either (an HTTP account gets the POST forwarded)
    pub fn transport(self) -> Transport {
        match self {
            Self::Session => Transport::WsV2,
            Self::Http => Transport::Http,
        }
    }
}

/// One conn the pool accounts for
///
/// ```text
///   acquire / warm      handle_dial_ok          release(reusable), no taker
///  ───────────────▶ Dialing ───────────────▶ Idle ◀──────────────────────────┐
///                     │      (holder waiting)  │ │ acquire                    │
///                     │  ┌─────────────────────┘ └──────────────▶ Leased ─────┘
///                     │  │ dial_ok for holder   ────────────────▶   │ release(reusable) with
///                     │  └─────────────────────────────────────▶    │ a waiter: Leased again
///   dial_failed       ▼                                             ▼
///               (forgotten) ◀─── Close: dirty, pong timeout, max age, eviction,
///                                not reusable, lane limit; conn closed while leased
/// ```
#[derive(Debug)]
pub(super) struct Slot {
    /// Its interned compatibility key (one reference held by the slot)
    pub(super) key: KeyIdx,
    pub(super) state: SlotState,
}

/// See [`Slot`]
#[derive(Debug)]
pub(super) enum SlotState {
    /// The shell is dialing; `holder` gets the conn, `None` = warm idle (or orphaned)
    Dialing { holder: Option<SessionId> },
    /// In the pool: the pool owns the record and the conn's liveness
    Idle {
        record: ConnRecord,
        pong_due: Option<Instant>,
        held: bool,
    },
    /// With a holder of `kind`; `queued` HTTP turns wait for it (only when `kind` is Http)
    Leased { kind: HolderKind, queued: usize },
    /// Between a dial result and its placement, inside one call (never seen between calls)
    Placing,
}

/// A holder waiting for a conn
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) holder: SessionId,
    pub(super) kind: HolderKind,
    pub(super) key: KeyIdx,
    /// When it is refused; `None` for a session waiting on its own dial (bounded by the
    /// shell's `dial_timeout`)
    pub(super) deadline: Option<Instant>,
    /// How long it may wait for a dial before it is refused with `DialWait` (`None`: as long
    /// as the dial takes)
    pub(super) dial_wait: Option<Duration>,
    pub(super) state: WaitState,
}

/// Where a waiter waits
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WaitState {
    /// For any compatible conn or capacity; `on` = the HTTP-leased conn it queues behind
    Queued { on: Option<ConnId> },
    /// For the dial made for it
    Dialing(ConnId),
}

/// Pool values copied out of [`Config`]
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) pool: PoolConfig,
    pub(super) ping_interval: Duration,
    pub(super) pong_timeout: Duration,
    pub(super) max_age: Duration,
}

/// The sans-IO pool of one account (see the [module docs](super) for the driving contract)
///
/// Capacity = open + dials in flight ≤ min(account concurrency, `pool.max_conns_per_account`).
/// Acquire order, for a session: MRU idle compatible conn, a new dial, a held idle conn, a dial
/// in place of an idle conn of another key (or of one too old for a session), else a wait of
/// at most `session_acquire_wait` (`dial_wait` when it could move to another account). A
/// session only ever gets a conn with at least `pool.session_min_remaining_life` left before
/// `upstream.max_age`. For an HTTP turn: the preferred conn if idle, then the same, else a
/// FIFO wait behind the least-busy conn leased to another HTTP turn (≤ `queue_limit_per_conn`
/// each) or, if no such conn exists, in the pool's queue; `acquire_timeout` in total.
#[derive(Debug)]
pub struct AccountPool {
    pub(super) account: AccountId,
    pub(super) settings: Settings,
    pub(super) max_conns: usize,
    pub(super) ids: ConnIdSource,
    pub(super) keys: KeyTable,
    pub(super) conns: HashMap<ConnId, Slot>,
    /// Idle conns, least recently released first
    pub(super) idle_order: Vec<ConnId>,
    /// Lane-cache responses of idle conns → conn (the preferred-conn fast path)
    pub(super) by_response: HashMap<ResponseId, ConnId>,
    /// Waiting holders in arrival order
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) holds: ChainHolds,
    pub(super) pacing: DialPacing,
    /// The key warm dials use: the last successful acquire's (one reference held)
    pub(super) warm_key: KeyIdx,
    /// Dials in flight that nobody waits for (warm, or their holder left)
    pub(super) warm_dialing: usize,
    pub(super) dialing: usize,
    pub(super) leased: usize,
    pub(super) stats: PoolStats,
    pub(super) out: VecDeque<PoolRequest>,
}

impl AccountPool {
    /// An empty pool for `account` whose conns may number at most
    /// min(`concurrency`, `pool.max_conns_per_account`); dial jitter is seeded with `seed`
    pub fn new(
        account: AccountId,
        concurrency: usize,
        config: &Config,
        ids: ConnIdSource,
        seed: u64,
    ) -> Self {
        let mut keys = KeyTable::default();
        let warm_key = keys.intern(&CompatKey::plain(account));
        let pool = config.pool.clone();
        Self {
            account,
            max_conns: concurrency.min(pool.max_conns_per_account),
            ids,
            keys,
            conns: HashMap::new(),
            idle_order: Vec::new(),
            by_response: HashMap::new(),
            waiters: VecDeque::new(),
            holds: ChainHolds::new(pool.max_chain_holds_per_account, pool.http_chain_hold),
            pacing: DialPacing::new(&pool, seed),
            warm_key,
            warm_dialing: 0,
            dialing: 0,
            leased: 0,
            stats: PoolStats::default(),
            out: VecDeque::new(),
            settings: Settings {
                pool,
                ping_interval: config.upstream.ping_interval,
                pong_timeout: config.upstream.pong_timeout,
                max_age: config.upstream.max_age,
            },
        }
    }

    /// Starts the pool: warm-idle dials begin (call once after `new`)
    pub fn start(&mut self, now: Instant) {
        self.maintain(now);
    }

    /// The scheduler asks for a probe dial (the account cools down after failed dials): one
    /// dial with no holder, unless a dial is already in flight (its result tells the same) or
    /// the pool is full. Returns whether a dial started.
    pub fn probe(&mut self) -> bool {
        if self.dialing > 0 || self.idle_order.len() + self.leased >= self.max_conns {
            return false;
        }
        self.start_dial(self.warm_key, None);
        self.warm_dialing += 1;
        self.stats.probes += 1;
        true
    }

    /// The holder gave up waiting (client gone); it gets no answer. A dial made for it goes on
    /// and its conn goes to the next waiter or the idle set
    pub fn cancel(&mut self, now: Instant, holder: SessionId) {
        if let Some(i) = self.waiter_index(holder) {
            self.drop_waiter(i);
        }
        self.maintain(now);
    }

    /// A leased (or idle) conn died; its capacity is free again and its queued turns look for
    /// another conn. The holder drops its record
    pub fn handle_conn_closed(&mut self, now: Instant, conn: ConnId) {
        self.forget(conn);
        self.after_capacity_change(now);
    }

    /// The dial of `conn` finished: the conn goes to the holder it was dialed for, else to the
    /// first compatible waiter, else idle
    pub fn handle_dial_ok(&mut self, now: Instant, conn: ConnId) {
        let Some(slot) = self.conns.get_mut(&conn) else {
            return;
        };
        let SlotState::Dialing { holder } = slot.state else {
            return;
        };
        let record = ConnRecord::new(conn, self.keys.get(slot.key).clone(), now);
        slot.state = SlotState::Placing;
        self.dialing -= 1;
        if holder.is_none() {
            self.warm_dialing -= 1;
        }
        self.pacing.on_dial_ok();
        self.place(now, record, true);
        self.after_capacity_change(now);
    }

    /// The dial of `conn` failed: its holder gets `Refused(DialFailed)`, dials back off
    pub fn handle_dial_failed(&mut self, now: Instant, conn: ConnId) {
        if !matches!(
            self.conns.get(&conn),
            Some(Slot {
                state: SlotState::Dialing { .. },
                ..
            })
        ) {
            return;
        }
        self.stats.dial_failures += 1;
        self.pacing.on_dial_failed(now);
        self.forget(conn);
        self.after_capacity_change(now);
    }

    /// An idle conn answered the pool's ping
    pub fn handle_idle_pong(&mut self, now: Instant, conn: ConnId) {
        if let Some(Slot {
            state: SlotState::Idle {
                record, pong_due, ..
            },
            ..
        }) = self.conns.get_mut(&conn)
        {
            *pong_due = None;
            record.last_read = now;
        }
    }

    /// A text frame arrived on an idle conn: a tail packet, so the conn is dirty and closed
    pub fn handle_idle_frame(&mut self, now: Instant, conn: ConnId) {
        if self.is_idle(conn) {
            self.close(conn, super::CloseReason::Dirty);
            self.after_capacity_change(now);
        }
    }

    /// An idle conn's socket closed
    pub fn handle_idle_closed(&mut self, now: Instant, conn: ConnId) {
        if self.is_idle(conn) {
            self.forget(conn);
            self.after_capacity_change(now);
        }
    }

    /// The account's concurrency changed; existing conns stay, new dials respect the new cap
    pub fn set_concurrency(&mut self, now: Instant, concurrency: usize) {
        self.max_conns = concurrency.min(self.settings.pool.max_conns_per_account);
        self.after_capacity_change(now);
    }

    /// Refuses every waiter and closes every idle conn (the account is going away); leased
    /// conns close on release, dials in flight on completion (by the registry)
    pub fn shutdown(&mut self) {
        while !self.waiters.is_empty() {
            self.refuse_waiter(0, RefuseReason::AccountRemoved);
        }
        while let Some(&conn) = self.idle_order.first() {
            self.close(conn, super::CloseReason::AccountRemoved);
        }
        self.max_conns = 0;
    }

    /// Fires what is due at `now`, in this order: waiter deadlines (`Refused`), pong timeouts
    /// (`Close`), chain-hold expiries, the end of dial back-off / warm cooldown / suppression;
    /// then serves waiters and warm idle
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].deadline.is_some_and(|d| d <= now) {
                let waiter = &self.waiters[i];
                let reason = match (waiter.kind, waiter.state, waiter.dial_wait) {
                    (_, WaitState::Dialing(_), Some(_))
                    | (HolderKind::Session, WaitState::Queued { .. }, Some(_)) => {
                        RefuseReason::DialWait
                    }
                    (HolderKind::Session, ..) => RefuseReason::SessionWaitTimeout,
                    (HolderKind::Http, ..) => RefuseReason::AcquireTimeout,
                };
                self.refuse_waiter(i, reason);
            } else {
                i += 1;
            }
        }
        self.expire_pongs(now);
        while let Some(conn) = self.holds.pop_expired(now) {
            self.set_held(conn, false);
        }
        self.pacing.expire(now);
        self.after_capacity_change(now);
    }

    /// The next output, in decision order (drain until `None` after every input)
    #[must_use]
    pub fn poll_request(&mut self) -> Option<PoolRequest> {
        self.out.pop_front()
    }

    /// When `handle_timeout` must next be called (read after draining `poll_request`)
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waiters = self.waiters.iter().filter_map(|w| w.deadline);
        let pongs = self
            .idle_order
            .iter()
            .filter_map(|c| match &self.conns.get(c)?.state {
                SlotState::Idle { pong_due, .. } => *pong_due,
                _ => None,
            });
        let others = [self.holds.next_deadline(), self.pacing.next_deadline()];
        waiters
            .chain(pongs)
            .chain(others.into_iter().flatten())
            .min()
    }

    /// Whether a session acquiring now gets a conn without waiting for another holder's
    /// release: nobody is queued, and there is an idle conn (one of another key is replaced by
    /// a dial), a warm dial in flight, or capacity for a dial
    pub fn has_room_for_session(&self) -> bool {
        self.max_conns > 0
            && self.pool_queue_len() == 0
            && (!self.idle_order.is_empty()
                || self.warm_dialing > 0
                || self.idle_order.len() + self.leased + self.dialing < self.max_conns)
    }

    /// `(holders with a conn of this pool or waiting for one, the cap on conns)`: how busy the
    /// pool is for a new session (a session keeps its conn between turns)
    pub fn conns_in_use(&self) -> (usize, usize) {
        (self.leased + self.waiters.len(), self.max_conns)
    }

    /// The account this pool serves
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Counts for metrics
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            open: self.idle_order.len() + self.leased,
            idle: self.idle_order.len(),
            held: self.holds.len(),
            dialing: self.dialing,
            leased: self.leased,
            waiters: self.waiters.len(),
            ..self.stats
        }
    }

    /// Idle conns, most recently released first
    pub fn idle_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.idle_order.iter().rev().copied()
    }

    /// The chain an idle conn is held for
    pub fn held_for(&self, conn: ConnId) -> Option<&ResponseId> {
        self.holds.chain_of(conn)
    }

    /// The idle conn whose lane cache holds `response`, if any (held or not)
    ///
    /// What [`acquire`](Self::acquire) prefers for an HTTP turn; a `store:false` continuation
    /// with no such conn cannot continue anywhere.
    pub fn idle_conn_caching(&self, response: &ResponseId) -> Option<ConnId> {
        self.by_response.get(response).copied()
    }

    /// HTTP turns queued behind a leased conn
    pub fn queued_behind(&self, conn: ConnId) -> usize {
        match self.conns.get(&conn).map(|s| &s.state) {
            Some(SlotState::Leased { queued, .. }) => *queued,
            _ => 0,
        }
    }

    /// The dial `holder` waits for (its own, or a warm one it took over), if it waits on one
    pub fn waiting_on_dial(&self, holder: SessionId) -> Option<ConnId> {
        let waiter = &self.waiters[self.waiter_index(holder)?];
        match waiter.state {
            WaitState::Dialing(conn) => Some(conn),
            WaitState::Queued { .. } => None,
        }
    }

    pub(super) fn is_idle(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(Slot {
                state: SlotState::Idle { .. },
                ..
            })
        )
    }

    pub(super) fn waiter_index(&self, holder: SessionId) -> Option<usize> {
        self.waiters.iter().position(|w| w.holder == holder)
    }
}
