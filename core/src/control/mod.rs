//! The control plane: scheduler, store, pools and concurrency slots answering the sessions'
//! commands.
//!
//! Runtime-neutral glue, so no shell holds policy: a shell runs one task that owns the
//! [`Control`], routes each [`SessionCommand`] here (except `AbandonWrites` and `CloseClient`,
//! which are its own I/O), and performs the [`ControlOutput`]s. It is on the per-turn path,
//! never on the per-event path.
//!
//! # Poll order
//!
//! After every `handle_*` call, drain [`Control::poll_output`] until `None`, then read
//! [`Control::poll_timeout`].
//!
//! # A session's first create
//!
//! ```text
//! Schedule ─▶ store lookups (previous_response_id, session key) ─▶ scheduler ─▶ Admission
//! Acquire  ─▶ pool: idle conn | Dial … handle_dial_ok ─▶ Lease     (or LeaseRefused after 2 s)
//! AcquireSlot ─▶ scheduler slot | wait (round-robin by client key) for SlotFreed ─▶ SlotGranted
//!                                   └▶ a blocked client holding the account's slots ─▶ YieldSlots
//! Bind (after each terminal) ─▶ store: response → (account, group), response → conn
//! ```
//!
//! A later create continuing a response its session did not create:
//!
//! ```text
//! CheckContinuation ─▶ store lookup of the record ─▶ group rule ─▶ ContinuationJudged
//! ```

mod http;
mod readiness;
mod schedule;
mod slots;
mod types;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

pub use readiness::{AccountReadiness, AccountState, Readiness};
use schedule::PendingSchedule;
use slots::{SlotQueue, SlotWaiter};
pub use types::{
    AccountSpec, ControlEvent, ControlOutput, DialFailure, SessionInfo, SessionInput,
    UpgradeRefusal,
};

use crate::pool::{PoolCommand, PoolRegistry, PoolStats};
use crate::resolver::{Transport, resolve};
use crate::scheduler::{
    self, Decision, FailureKind, Reject, ScheduleRequest, Scheduler, SchedulerEvent,
};
use crate::session::{SessionCommand, SessionEvent};
use crate::store::{OpId, ResponseConn, Store, StoreEvent, StoreFailure};
use crate::{AccountId, Config, ConnId, SessionId};

#[derive(Clone, Debug)]
struct SessionEntry {
    info: SessionInfo,
    schedule: Option<PendingSchedule>,
    /// The account whose pool it is waiting on
    acquiring: Option<AccountId>,
    /// Its session key once known (header, else the first `prompt_cache_key`)
    session_key: Option<String>,
    /// Continuation checks of its later creates waiting for a store get
    checks: Vec<schedule::PendingCheck>,
}

/// Scheduler, store, pools and slots for every session of one gateway process
#[derive(Debug)]
pub struct Control {
    cfg: Arc<Config>,
    accounts: HashMap<AccountId, (AccountSpec, Transport)>,
    scheduler: Scheduler,
    store: Store,
    pool: PoolRegistry,
    sessions: HashMap<SessionId, SessionEntry>,
    /// Creates waiting for a slot, per account, served round-robin by client key
    slot_waiters: HashMap<AccountId, SlotQueue>,
    /// Sessions whose client reads nothing while their responses hold slots of the account,
    /// longest blocked first: the first to give their slots up when creates wait
    blocked: Vec<(SessionId, AccountId)>,
    conn_accounts: HashMap<ConnId, AccountId>,
    /// HTTP requests in flight (holders named like sessions, answered with `ControlOutput::Http`)
    http: HashMap<SessionId, http::HttpEntry>,
    out: VecDeque<ControlOutput>,
}

impl Control {
    /// The control plane for `accounts`; `seed` makes pool jitter reproducible
    pub fn new(cfg: Arc<Config>, accounts: Vec<AccountSpec>, seed: u64, now: Instant) -> Self {
        let mut control = Self {
            scheduler: Scheduler::new(cfg.scheduler.clone()),
            store: Store::new(cfg.store.clone(), cfg.upstream.max_age),
            pool: PoolRegistry::new(&cfg, seed, now),
            accounts: HashMap::new(),
            sessions: HashMap::new(),
            slot_waiters: HashMap::new(),
            blocked: Vec::new(),
            conn_accounts: HashMap::new(),
            http: HashMap::new(),
            out: VecDeque::new(),
            cfg,
        };
        for spec in accounts {
            control.add_account(now, spec);
        }
        control.pump(now);
        control
    }

    fn add_account(&mut self, now: Instant, spec: AccountSpec) {
        let transport = resolve(Some(&spec.protocol), &self.cfg.protocol).transport;
        self.scheduler.upsert_account(scheduler::AccountSpec {
            id: spec.id,
            priority: spec.priority,
            max_concurrency: spec.concurrency,
            transport,
        });
        if transport == Transport::WsV2 {
            self.pool
                .add_account(now, spec.id, spec.concurrency as usize);
        }
        self.accounts.insert(spec.id, (spec, transport));
    }

    /// Applies a reloaded account list without dropping sessions
    ///
    /// New accounts are added; changed ones keep their load and cooldowns (a disabled one is
    /// re-enabled: its credentials may have changed) and get the new concurrency; removed ones
    /// stop taking work — their idle conns close now, leased ones when their sessions release
    /// them. An account that now resolves to HTTP loses its pool the same way.
    pub fn apply_accounts(&mut self, now: Instant, accounts: Vec<AccountSpec>) {
        let keep: std::collections::HashSet<AccountId> = accounts.iter().map(|a| a.id).collect();
        let removed: Vec<AccountId> = self
            .accounts
            .keys()
            .copied()
            .filter(|id| !keep.contains(id))
            .collect();
        for id in removed {
            self.accounts.remove(&id);
            self.scheduler.remove_account(id);
            self.pool.remove_account(now, id);
        }
        for spec in accounts {
            let had_pool = self
                .accounts
                .get(&spec.id)
                .is_some_and(|(_, t)| *t == Transport::WsV2);
            let transport = resolve(Some(&spec.protocol), &self.cfg.protocol).transport;
            match (had_pool, transport == Transport::WsV2) {
                (true, true) => {
                    self.pool
                        .set_concurrency(now, spec.id, spec.concurrency as usize);
                    self.scheduler.upsert_account(scheduler::AccountSpec {
                        id: spec.id,
                        priority: spec.priority,
                        max_concurrency: spec.concurrency,
                        transport,
                    });
                    self.accounts.insert(spec.id, (spec, transport));
                }
                (true, false) => {
                    self.pool.remove_account(now, spec.id);
                    self.add_account(now, spec);
                }
                (false, _) => self.add_account(now, spec),
            }
        }
        self.pump(now);
    }

    /// Whether a WebSocket upgrade may proceed: some account must be usable (or failing, as a
    /// last resort) and speak WebSocket; refusals carry the `Retry-After` of the earliest
    /// cooldown end
    pub fn check_upgrade(&self, now: Instant) -> Result<(), UpgradeRefusal> {
        match self
            .scheduler
            .schedule(now, &ScheduleRequest::fresh(Transport::WsV2))
        {
            Decision::Schedule(_) => Ok(()),
            Decision::Reject(Reject::UpgradeRequired) => Err(UpgradeRefusal::UpgradeRequired),
            Decision::Reject(reject @ Reject::AllRateLimited { .. }) => {
                Err(UpgradeRefusal::RateLimited {
                    retry_after: reject.retry_after_secs(now).unwrap_or(1),
                })
            }
            Decision::Reject(reject) => Err(UpgradeRefusal::NoUsableAccount {
                retry_after: reject.retry_after_secs(now),
            }),
        }
    }

    /// Whether `/readyz` says ready (the shell checks its own listener and shutdown first):
    /// always, unless `ingress.ready_requires_upstream` asks for the upgrade check too
    pub fn check_ready(&self, now: Instant) -> Result<(), UpgradeRefusal> {
        if self.cfg.ingress.ready_requires_upstream {
            self.check_upgrade(now)
        } else {
            Ok(())
        }
    }

    /// Registers a client socket that was just upgraded
    pub fn open_session(&mut self, _now: Instant, id: SessionId, info: SessionInfo) {
        let session_key = info.session_key.clone();
        self.sessions.insert(
            id,
            SessionEntry {
                info,
                schedule: None,
                acquiring: None,
                session_key,
                checks: Vec::new(),
            },
        );
    }

    /// Forgets a session: its waits for conns, slots and lookups are cancelled
    pub fn close_session(&mut self, now: Instant, id: SessionId) {
        if let Some(entry) = self.sessions.remove(&id)
            && let Some(account) = entry.acquiring
        {
            self.pool.cancel(now, account, id);
        }
        for (account, waiters) in &mut self.slot_waiters {
            for _ in 0..waiters.remove_where(|w| w.session == id) {
                self.scheduler.waiter_removed(*account);
            }
        }
        self.blocked.retain(|(s, _)| *s != id);
        self.pump(now);
    }

    /// Takes one command of session `id` (all but `AbandonWrites` and `CloseClient`)
    pub fn handle_session_command(&mut self, now: Instant, id: SessionId, cmd: SessionCommand) {
        match cmd {
            SessionCommand::Schedule {
                previous,
                connection_local,
                prompt_cache_key,
                exclude,
                ..
            } => self.start_schedule(
                now,
                id,
                previous,
                connection_local,
                prompt_cache_key,
                exclude,
            ),
            SessionCommand::Acquire {
                account,
                compat,
                may_move_from,
            } => {
                if let Some(entry) = self.sessions.get_mut(&id) {
                    entry.acquiring = Some(account);
                }
                let dial_wait = may_move_from
                    .and_then(|tried| self.dial_wait_for(now, account, &tried, Transport::WsV2));
                self.pool
                    .acquire_for_session_within(now, id, &compat, dial_wait);
            }
            SessionCommand::AcquireSlot {
                turn,
                account,
                max_concurrency,
            } => {
                // A removed account (reload) has no slots left to count, but a session that
                // still holds one of its conns runs its turns there until it releases it.
                let removed = !self.accounts.contains_key(&account);
                let tenant = self.sessions.get(&id).map_or(0, |e| e.info.tenant);
                let waiter = SlotWaiter {
                    session: id,
                    turn,
                    max_concurrency,
                    tenant,
                };
                if removed || self.acquire_or_wait(account, waiter) {
                    self.out
                        .push_back(ControlOutput::Session(id, SessionInput::SlotGranted(turn)));
                }
            }
            SessionCommand::CancelSlotWait { turn, account } => {
                if let Some(waiters) = self.slot_waiters.get_mut(&account)
                    && waiters.remove_where(|w| w.session == id && w.turn == turn) > 0
                {
                    self.scheduler.waiter_removed(account);
                }
            }
            SessionCommand::ReleaseSlot { account } => self.scheduler.release_slot(account),
            SessionCommand::ClientBlocked { account, blocked } => {
                self.blocked.retain(|(s, _)| *s != id);
                if blocked {
                    self.blocked.push((id, account));
                    self.take_back_blocked_slots(account);
                }
            }
            SessionCommand::Release(release) => self.pool.handle_release(now, release),
            SessionCommand::Bind {
                response,
                account,
                conn,
                lane,
                store,
            } => {
                let group = self.sessions.get(&id).map(|e| e.info.group.clone());
                let at = ResponseConn { conn, lane, store };
                self.bind_response(now, group.as_deref(), &response, account, at);
            }
            SessionCommand::CheckContinuation { turn, previous } => {
                self.check_continuation(now, id, turn, &previous)
            }
            SessionCommand::AbandonWrites { .. } | SessionCommand::CloseClient { .. } => {}
        }
        self.pump(now);
    }

    /// Takes a session event: ended responses feed account health
    pub fn handle_session_event(&mut self, now: Instant, _id: SessionId, event: &SessionEvent) {
        let SessionEvent::ResponseEnded(report) = event else {
            return;
        };
        match &report.outcome {
            crate::conn::Outcome::Error {
                status,
                retry_after,
            } => {
                let failure = FailureKind::from_status(*status, *retry_after);
                if failure == FailureKind::AuthFailed {
                    self.out
                        .push_back(ControlOutput::Event(ControlEvent::AccountDisabled {
                            account: report.account,
                        }));
                }
                self.scheduler.handle_failure(now, report.account, failure);
            }
            crate::conn::Outcome::Completed | crate::conn::Outcome::Incomplete => {
                self.scheduler.handle_success(now, report.account)
            }
            crate::conn::Outcome::Failed
            | crate::conn::Outcome::UpstreamLost
            | crate::conn::Outcome::Stalled
            | crate::conn::Outcome::CutAtShutdown => {}
        }
        self.pump(now);
    }

    /// A dial finished: the conn is open, and the account is reachable (ending a cooldown
    /// that failed dials started)
    pub fn handle_dial_ok(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.pool.handle_dial_ok(now, account, conn);
        self.scheduler.handle_dial_ok(now, account);
        self.pump(now);
    }

    /// A dial failed. Every failure that is the account's counts against its health: an
    /// upgrade refused with 401/403 disables it, 429 cools it, any other (refused, timed out,
    /// TLS, proxy, upgrade 5xx) is a failed dial; a local error (`failure.local`: descriptors,
    /// memory, our own limits) says nothing about the account and counts for nothing
    pub fn handle_dial_failed(
        &mut self,
        now: Instant,
        account: AccountId,
        conn: ConnId,
        failure: DialFailure,
    ) {
        self.conn_accounts.remove(&conn);
        self.pool.handle_dial_failed(now, account, conn);
        let kind = failure
            .status
            .map(|status| FailureKind::from_status(status, failure.retry_after));
        match kind {
            _ if failure.local => {}
            Some(kind @ (FailureKind::RateLimited { .. } | FailureKind::AuthFailed)) => {
                if kind == FailureKind::AuthFailed {
                    self.out
                        .push_back(ControlOutput::Event(ControlEvent::AccountDisabled {
                            account,
                        }));
                }
                self.scheduler.handle_failure(now, account, kind);
            }
            _ => self.scheduler.handle_dial_failed(now, account),
        }
        self.out
            .push_back(ControlOutput::Event(ControlEvent::DialFailed {
                account,
                conn,
                status: failure.status,
                message: failure.message,
            }));
        self.pump(now);
    }

    /// A text frame arrived on an idle (pooled) conn: a tail packet, the conn is closed
    pub fn handle_idle_frame(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.pool.handle_idle_frame(now, account, conn);
        self.pump(now);
    }

    /// A pong arrived on an idle conn
    pub fn handle_idle_pong(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.pool.handle_idle_pong(now, account, conn);
        self.pump(now);
    }

    /// An idle conn's socket ended
    pub fn handle_idle_closed(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.conn_accounts.remove(&conn);
        self.pool.handle_idle_closed(now, account, conn);
        self.pump(now);
    }

    /// A leased conn's socket ended after its session released it (capacity accounting)
    pub fn handle_conn_closed(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.conn_accounts.remove(&conn);
        self.pool.handle_conn_closed(now, account, conn);
        self.pump(now);
    }

    /// The result of a store command
    pub fn handle_store_reply(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<Option<String>, StoreFailure>,
    ) {
        self.store.handle_reply(now, op, result);
        self.pump(now);
    }

    /// Fires expired deadlines of the pools, the scheduler and the store
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pool.handle_timeout(now);
        self.scheduler.handle_timeout(now);
        self.store.handle_timeout(now);
        self.pump(now);
    }

    /// Next piece of work for the shell
    #[must_use]
    pub fn poll_output(&mut self) -> Option<ControlOutput> {
        self.out.pop_front()
    }

    /// The earliest deadline of the pools, the scheduler and the store
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.pool.poll_timeout(),
            self.scheduler.poll_timeout(),
            self.store.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Pool totals over every account
    pub fn stats(&self) -> PoolStats {
        self.pool.total_stats()
    }

    /// One account's pool stats (`None` for an unknown account or one that resolves to HTTP)
    pub fn pool_stats(&self, account: AccountId) -> Option<PoolStats> {
        self.pool.stats(account)
    }

    /// The configured accounts, with their names (for metric labels)
    pub fn accounts(&self) -> impl Iterator<Item = &AccountSpec> + '_ {
        self.accounts.values().map(|(spec, _)| spec)
    }

    /// The account a conn belongs to, while it exists
    pub fn account_of(&self, conn: ConnId) -> Option<AccountId> {
        self.conn_accounts.get(&conn).copied()
    }

    /// A configured account's decision data
    pub fn account(&self, id: AccountId) -> Option<&AccountSpec> {
        self.accounts.get(&id).map(|(spec, _)| spec)
    }

    /// An account's health and load as the scheduler sees it at `now`
    pub fn account_view(&self, id: AccountId, now: Instant) -> Option<scheduler::AccountView> {
        self.scheduler.account(id, now)
    }

    /// The store (stats, breaker state)
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Moves outputs of the sub-machines into the control queue
    fn pump(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(cmd) = self.pool.poll_command() {
                busy = true;
                self.on_pool_command(cmd);
            }
            while let Some(event) = self.scheduler.poll_event() {
                busy = true;
                match event {
                    SchedulerEvent::SlotFreed(account) => self.wake_slot_waiter(account),
                    SchedulerEvent::AccountUsable(account) => {
                        self.out
                            .push_back(ControlOutput::Event(ControlEvent::AccountUsable {
                                account,
                            }))
                    }
                    SchedulerEvent::ProbeDue(account) => {
                        if self.pool.probe(now, account) {
                            self.out
                                .push_back(ControlOutput::Event(ControlEvent::ProbeStarted {
                                    account,
                                }));
                        }
                    }
                }
            }
            while let Some(cmd) = self.store.poll_command() {
                busy = true;
                self.out.push_back(ControlOutput::Store(cmd));
            }
            while let Some(event) = self.store.poll_event() {
                busy = true;
                match event {
                    StoreEvent::Resolved { op, result } => self.on_lookup_resolved(now, op, result),
                    StoreEvent::SetFailed { group, account, .. } => {
                        self.out
                            .push_back(ControlOutput::Event(ControlEvent::StoreSetFailed {
                                group,
                                account,
                            }))
                    }
                    StoreEvent::BreakerOpened => self
                        .out
                        .push_back(ControlOutput::Event(ControlEvent::StoreBreakerOpened)),
                    StoreEvent::BreakerClosed => self
                        .out
                        .push_back(ControlOutput::Event(ControlEvent::StoreBreakerClosed)),
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn on_pool_command(&mut self, cmd: PoolCommand) {
        match cmd {
            PoolCommand::Dial {
                conn,
                compat,
                for_holder,
            } => {
                let account = compat.account();
                self.conn_accounts.insert(conn, account);
                self.out.push_back(ControlOutput::Dial {
                    conn,
                    account,
                    compat,
                    for_session: for_holder,
                });
            }
            PoolCommand::Ping(conn) => {
                if let Some(account) = self.account_of(conn) {
                    self.out.push_back(ControlOutput::Ping { account, conn });
                }
            }
            PoolCommand::Close(conn, _reason) => {
                if let Some(account) = self.conn_accounts.remove(&conn) {
                    self.out.push_back(ControlOutput::Close { account, conn });
                }
            }
            PoolCommand::Granted(lease) if self.http.contains_key(&lease.holder) => {
                self.http_lease(Ok(lease))
            }
            PoolCommand::Refused { holder, reason } if self.http.contains_key(&holder) => {
                self.http_lease(Err((holder, reason)))
            }
            PoolCommand::Granted(lease) => {
                let holder = lease.holder;
                if let Some(entry) = self.sessions.get_mut(&holder) {
                    entry.acquiring = None;
                }
                self.out
                    .push_back(ControlOutput::Session(holder, SessionInput::Lease(lease)));
            }
            PoolCommand::Refused { holder, reason } => {
                if let Some(entry) = self.sessions.get_mut(&holder) {
                    entry.acquiring = None;
                }
                self.out.push_back(ControlOutput::Session(
                    holder,
                    SessionInput::LeaseRefused(reason),
                ));
            }
        }
    }

    /// How long a holder that could move (it has tried `tried`) waits for a dial on
    /// `account` before it is told to try elsewhere: `pool.dial_wait` when another account
    /// is usable for it now, else as long as the dial takes (`None`)
    pub(super) fn dial_wait_for(
        &self,
        now: Instant,
        account: AccountId,
        tried: &[AccountId],
        transport: Transport,
    ) -> Option<std::time::Duration> {
        let mut exclude = tried.to_vec();
        exclude.push(account);
        let request = ScheduleRequest {
            exclude: &exclude,
            ..ScheduleRequest::fresh(transport)
        };
        match self.scheduler.schedule(now, &request) {
            Decision::Schedule(choice) if choice.layer == scheduler::Layer::LeastLoaded => {
                Some(self.cfg.pool.dial_wait)
            }
            _ => None,
        }
    }

    /// Takes a slot for `waiter` if one is free and no create waits for it (true); else queues
    /// it, and a free slot goes to the head of the rotation instead (no barging past waiters)
    fn acquire_or_wait(&mut self, account: AccountId, waiter: SlotWaiter) -> bool {
        let waiters = self.slot_waiters.entry(account).or_default();
        if waiters.is_empty()
            && self
                .scheduler
                .try_acquire_slot(account, waiter.max_concurrency)
        {
            return true;
        }
        self.scheduler.waiter_added(account);
        waiters.push(waiter);
        self.wake_slot_waiter(account);
        self.take_back_blocked_slots(account);
        false
    }

    /// While creates wait for the account's slots, the longest-blocked client holding some of
    /// them gives them up ([`SessionInput::YieldSlots`]); one per call, as each holds at least one
    fn take_back_blocked_slots(&mut self, account: AccountId) {
        if self
            .slot_waiters
            .get(&account)
            .is_none_or(SlotQueue::is_empty)
        {
            return;
        }
        if let Some(pos) = self.blocked.iter().position(|(_, a)| *a == account) {
            let (session, _) = self.blocked.remove(pos);
            self.out
                .push_back(ControlOutput::Session(session, SessionInput::YieldSlots));
        }
    }

    /// One freed slot wakes one waiter: the next client key in the rotation, its oldest create
    /// (see [`slots`]); if no slot is free after all, the waiter stays at the head
    fn wake_slot_waiter(&mut self, account: AccountId) {
        let Some(waiters) = self.slot_waiters.get_mut(&account) else {
            return;
        };
        let Some(w) = waiters.head() else {
            return;
        };
        if self.scheduler.try_acquire_slot(account, w.max_concurrency) {
            waiters.pop_head();
            self.scheduler.waiter_removed(account);
            let output = if self.http.contains_key(&w.session) {
                ControlOutput::Http(w.session, crate::http::HttpInput::SlotGranted)
            } else {
                ControlOutput::Session(w.session, SessionInput::SlotGranted(w.turn))
            };
            self.out.push_back(output);
        }
    }
}
