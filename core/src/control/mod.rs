//! The control plane: scheduler, store, pools and concurrency slots answering the requests of
//! its holders — WebSocket sessions and HTTP requests.
//!
//! Runtime-neutral glue, so no shell holds policy: a shell runs one task that owns the
//! [`Control`], routes each [`SessionRequest`] and `HttpTurnRequest` here (except `AbandonWrites`
//! and `CloseClient`, which are its own I/O), and performs the [`ControlOutput`]s. It is on the
//! per-turn path, never on the per-event path.
//!
//! Both holder kinds go down one path (`holder.rs`: open, schedule, acquire, slot, bind,
//! close) over one map; the scheduler alone queues their creates for slots and picks who gets
//! a freed one, and this plane routes its grants; the rules only one kind has are stated where
//! the kind is matched (`HolderKind`, `http.rs`).
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
//! AcquireSlot ─▶ scheduler: a slot free, nobody waiting ─▶ SlotGranted
//!                | else queued (round-robin by client key) … its grant on a release ─▶ SlotGranted
//!                  └▶ a blocked client holding the account's slots ─▶ YieldSlots
//! Bind (after each terminal) ─▶ store: response → (account, group), response → conn
//! ```
//!
//! A later create continuing a response its session did not create:
//!
//! ```text
//! CheckContinuation ─▶ store lookup of the record ─▶ group rule ─▶ ContinuationJudged
//! ```
//!
//! A lease the driver could not hand over (its holder's task ended first, or ended with the
//! lease unread) comes back through [`Control::handle_unread_lease`]: the conn goes back to the
//! pool untouched, for a session and an HTTP request alike.

mod holder;
mod http;
mod readiness;
mod schedule;
mod types;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use holder::{Answer, Holder};
pub use readiness::{AccountReadiness, AccountState, Readiness};
pub use types::{AccountSpec, ControlEvent, ControlOutput, DialFailure, UpgradeRefusal};

use crate::pool::{HolderKind, PoolRegistry, PoolRequest, PoolStats};
use crate::resolver::{Transport, resolve};
use crate::scheduler::{
    self, Decision, FailureKind, Reject, ScheduleRequest, Scheduler, SchedulerEvent,
};
use crate::session::{SessionEvent, SessionRequest};
use crate::store::{OpId, Store, StoreEvent, StoreFailure};
use crate::turn::{ResponseReport, SessionInfo, TurnEvent};
use crate::{AccountId, Config, ConnId, SessionId};

/// Scheduler, store, pools and slots for every session of one gateway process
#[derive(Debug)]
pub struct Control {
    cfg: Arc<Config>,
    accounts: HashMap<AccountId, (AccountSpec, Transport)>,
    scheduler: Scheduler,
    store: Store,
    pool: PoolRegistry,
    /// Sessions and HTTP requests, one map: the same paths serve both kinds
    holders: HashMap<SessionId, Holder>,
    /// Sessions whose client reads nothing while their responses hold slots of the account,
    /// longest blocked first: the first to give their slots up when creates wait
    blocked: Vec<(SessionId, AccountId)>,
    conn_accounts: HashMap<ConnId, AccountId>,
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
            holders: HashMap::new(),
            blocked: Vec::new(),
            conn_accounts: HashMap::new(),
            out: VecDeque::new(),
            cfg,
        };
        for spec in accounts {
            control.add_account(now, spec);
        }
        control.pump(now);
        control
    }

    /// Adds an account, or applies new settings to a known one: the scheduler keeps its load
    /// and cooldowns, its pool takes the new concurrency (or goes, if it now resolves to HTTP)
    fn add_account(&mut self, now: Instant, spec: AccountSpec) {
        let transport = resolve(Some(&spec.protocol), &self.cfg.protocol).transport;
        self.scheduler.upsert_account(scheduler::AccountSpec {
            id: spec.id,
            priority: spec.priority,
            max_concurrency: spec.concurrency,
            transport,
        });
        match transport {
            Transport::WsV2 => self
                .pool
                .add_account(now, spec.id, spec.concurrency as usize),
            Transport::Http => self.pool.remove_account(spec.id),
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
            self.pool.remove_account(id);
        }
        for spec in accounts {
            self.add_account(now, spec);
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
    pub fn open_session(&mut self, id: SessionId, info: SessionInfo) {
        self.open_holder(id, HolderKind::Session, info);
    }

    /// Forgets a session: its waits for conns, slots and lookups are cancelled
    pub fn close_session(&mut self, now: Instant, id: SessionId) {
        self.close_holder(now, id);
        self.pump(now);
    }

    /// Takes one request of session `id` (all but `AbandonWrites` and `CloseClient`)
    pub fn handle_session_request(&mut self, now: Instant, id: SessionId, cmd: SessionRequest) {
        match cmd {
            SessionRequest::Schedule {
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
            SessionRequest::Acquire {
                account,
                compat,
                may_move_from,
            } => self.acquire(now, id, account, &compat, None, may_move_from),
            SessionRequest::Slot(request) => self.handle_slot_request(now, id, request),
            SessionRequest::ClientBlocked { account, blocked } => {
                self.blocked.retain(|(s, _)| *s != id);
                if blocked {
                    self.blocked.push((id, account));
                    self.take_back_blocked_slots(now, account);
                }
            }
            SessionRequest::Release(release) => self.pool.handle_release(now, release, None),
            SessionRequest::Bind(bind) => self.bind(now, id, bind),
            SessionRequest::CheckContinuation { turn, previous } => {
                self.check_continuation(now, id, turn, &previous)
            }
            SessionRequest::AbandonWrites { .. } | SessionRequest::CloseClient { .. } => {}
        }
        self.pump(now);
    }

    /// Takes a session event: ended responses feed account health
    pub fn handle_session_event(&mut self, now: Instant, event: &SessionEvent) {
        if let SessionEvent::Turn(TurnEvent::ResponseEnded(report)) = event {
            self.response_ended(now, report);
            self.pump(now);
        }
    }

    /// An ended response of either holder kind feeds its account's health
    fn response_ended(&mut self, now: Instant, report: &ResponseReport) {
        match &report.outcome {
            crate::conn::Outcome::Error {
                status,
                retry_after,
            } => {
                let failure = FailureKind::from_status(*status, *retry_after);
                self.account_failed(now, report.account, failure);
            }
            crate::conn::Outcome::Completed | crate::conn::Outcome::Incomplete => {
                self.scheduler.handle_success(now, report.account)
            }
            crate::conn::Outcome::Failed
            | crate::conn::Outcome::UpstreamLost
            | crate::conn::Outcome::Stalled
            | crate::conn::Outcome::CutAtShutdown => {}
        }
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
                self.account_failed(now, account, kind)
            }
            _ => self.scheduler.handle_dial_failed(now, account),
        }
        self.event(ControlEvent::DialFailed {
            account,
            conn,
            status: failure.status,
            message: failure.message,
        });
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
            while let Some(cmd) = self.pool.poll_request() {
                busy = true;
                self.on_pool_command(cmd);
            }
            while let Some(event) = self.scheduler.poll_event() {
                busy = true;
                match event {
                    SchedulerEvent::SlotGranted { account, waiter } => {
                        self.grant_slot(account, waiter)
                    }
                    SchedulerEvent::AccountUsable(account) => {
                        self.event(ControlEvent::AccountUsable { account })
                    }
                    SchedulerEvent::ProbeDue(account) => {
                        if self.pool.probe(account) {
                            self.event(ControlEvent::ProbeStarted { account });
                        }
                    }
                }
            }
            while let Some(cmd) = self.store.poll_request() {
                busy = true;
                self.out.push_back(ControlOutput::Store(cmd));
            }
            while let Some(event) = self.store.poll_event() {
                busy = true;
                match event {
                    StoreEvent::Resolved { op, result } => self.on_lookup_resolved(now, op, result),
                    StoreEvent::SetFailed {
                        group,
                        account,
                        binding,
                    } => self.event(ControlEvent::StoreSetFailed {
                        group,
                        account,
                        binding,
                    }),
                    StoreEvent::BreakerOpened => self.event(ControlEvent::StoreBreakerOpened),
                    StoreEvent::BreakerClosed => self.event(ControlEvent::StoreBreakerClosed),
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn on_pool_command(&mut self, cmd: PoolRequest) {
        match cmd {
            PoolRequest::Dial {
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
            PoolRequest::Ping(conn) => {
                if let Some(account) = self.account_of(conn) {
                    self.out.push_back(ControlOutput::Ping { account, conn });
                }
            }
            PoolRequest::Close(conn, _reason) => {
                if let Some(account) = self.conn_accounts.remove(&conn) {
                    self.out.push_back(ControlOutput::Close { account, conn });
                }
            }
            PoolRequest::Granted(lease) => self.acquired(lease.holder, Answer::Lease(lease)),
            PoolRequest::Refused { holder, reason } => {
                self.acquired(holder, Answer::LeaseRefused(reason))
            }
        }
    }

    /// Queues a log line or metric for the shell
    fn event(&mut self, event: ControlEvent) {
        self.out.push_back(ControlOutput::Event(event));
    }

    /// A failure that is the account's feeds its health; refused credentials disable it, which
    /// the shell is told
    fn account_failed(&mut self, now: Instant, account: AccountId, failure: FailureKind) {
        if failure == FailureKind::AuthFailed {
            self.event(ControlEvent::AccountDisabled { account });
        }
        self.scheduler.handle_failure(now, account, failure);
    }

    /// The pool answered holder `id`'s acquire
    fn acquired(&mut self, id: SessionId, answer: Answer) {
        if let Some(holder) = self.holders.get_mut(&id) {
            holder.acquiring = None;
        }
        self.answer(id, answer);
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
}
