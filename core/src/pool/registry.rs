//! The pools of all accounts: routing, the ping and cleanup ticks, and stats.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::account::{AccountPool, ConnIdSource, HolderKind};
use super::request::{CloseReason, PoolRequest, RefuseReason};
use super::stats::PoolStats;
use crate::config::Config;
use crate::conn::{CompatKey, Release};
use crate::{AccountId, ConnId, ResponseId, SessionId};

/// One [`AccountPool`] per account, plus the ticks that cover every account
///
/// Every input is routed to the account's pool and its outputs are moved into one queue; the
/// driving contract is the pool's (see the [module docs](super)). Inputs naming an account
/// without a pool are answered so nothing leaks: acquires get `Refused(UnknownAccount)`, dial
/// results and releases get a `Close`. Accounts are kept in id order so that ticks are
/// deterministic.
#[derive(Debug)]
pub struct PoolRegistry {
    config: Config,
    seed: u64,
    ids: ConnIdSource,
    pools: BTreeMap<AccountId, AccountPool>,
    next_ping_tick: Instant,
    next_cleanup_tick: Instant,
    out: VecDeque<PoolRequest>,
}

impl PoolRegistry {
    /// No accounts yet; the first ticks are one period after `now`; dial jitter of each pool is
    /// derived from `seed` and its account id
    pub fn new(config: &Config, seed: u64, now: Instant) -> Self {
        Self {
            config: config.clone(),
            seed,
            ids: ConnIdSource::new(),
            pools: BTreeMap::new(),
            next_ping_tick: now + config.pool.ping_tick,
            next_cleanup_tick: now + config.pool.cleanup_tick,
            out: VecDeque::new(),
        }
    }

    /// Adds a pool for `account` (or updates its concurrency: the pool cap is min(concurrency,
    /// hard cap)); warm-idle dials start at once
    pub fn add_account(&mut self, now: Instant, account: AccountId, concurrency: usize) {
        if self.pools.contains_key(&account) {
            self.with(account, |pool| pool.set_concurrency(now, concurrency));
            return;
        }
        let seed = self.seed ^ account.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let pool = AccountPool::new(account, concurrency, &self.config, self.ids.clone(), seed);
        self.pools.insert(account, pool);
        self.with(account, |pool| pool.start(now));
    }

    /// Removes an account: its waiters get `Refused(AccountRemoved)`, its idle conns close now,
    /// its leased conns on release and its dials on completion
    pub fn remove_account(&mut self, account: AccountId) {
        self.with(account, AccountPool::shutdown);
        self.pools.remove(&account);
    }

    /// See [`AccountPool::acquire`]; routed by the key's account
    pub fn acquire(
        &mut self,
        now: Instant,
        holder: SessionId,
        kind: HolderKind,
        compat: &CompatKey,
        preferred: Option<&ResponseId>,
        dial_wait: Option<Duration>,
    ) {
        if !self.with(compat.account(), |pool| {
            pool.acquire(now, holder, kind, compat, preferred, dial_wait)
        }) {
            self.refuse_unknown_account(holder);
        }
    }

    /// A holder asked for a conn of an account that has no pool
    fn refuse_unknown_account(&mut self, holder: SessionId) {
        self.out.push_back(PoolRequest::Refused {
            holder,
            reason: RefuseReason::UnknownAccount,
        });
    }

    /// See [`AccountPool::probe`]; false for an account without a pool
    pub fn probe(&mut self, account: AccountId) -> bool {
        let mut started = false;
        self.with(account, |pool| started = pool.probe());
        started
    }

    /// See [`AccountPool::cancel`]
    pub fn cancel(&mut self, now: Instant, account: AccountId, holder: SessionId) {
        self.with(account, |pool| pool.cancel(now, holder));
    }

    /// See [`AccountPool::handle_release`]; routed by the record's account
    pub fn handle_release(&mut self, now: Instant, release: Release, hold: Option<ResponseId>) {
        let (account, conn) = (release.record.account(), release.record.id);
        if !self.with(account, |pool| pool.handle_release(now, release, hold)) {
            self.out
                .push_back(PoolRequest::Close(conn, CloseReason::AccountRemoved));
        }
    }

    /// See [`AccountPool::handle_conn_closed`]
    pub fn handle_conn_closed(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.with(account, |pool| pool.handle_conn_closed(now, conn));
    }

    /// See [`AccountPool::handle_dial_ok`]
    pub fn handle_dial_ok(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        if !self.with(account, |pool| pool.handle_dial_ok(now, conn)) {
            self.out
                .push_back(PoolRequest::Close(conn, CloseReason::AccountRemoved));
        }
    }

    /// See [`AccountPool::handle_dial_failed`]
    pub fn handle_dial_failed(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.with(account, |pool| pool.handle_dial_failed(now, conn));
    }

    /// See [`AccountPool::handle_idle_pong`]
    pub fn handle_idle_pong(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.with(account, |pool| pool.handle_idle_pong(now, conn));
    }

    /// See [`AccountPool::handle_idle_frame`]
    pub fn handle_idle_frame(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.with(account, |pool| pool.handle_idle_frame(now, conn));
    }

    /// See [`AccountPool::handle_idle_closed`]
    pub fn handle_idle_closed(&mut self, now: Instant, account: AccountId, conn: ConnId) {
        self.with(account, |pool| pool.handle_idle_closed(now, conn));
    }

    /// Fires the pools' due timers (in account order), then the cleanup tick and the ping tick
    /// if due (cleanup first, so no conn is pinged and then evicted; each covers every account; the next one is a full period after `now`, so a late
    /// wake-up never causes a burst of ticks)
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<AccountId> = self
            .pools
            .iter()
            .filter(|(_, pool)| pool.poll_timeout().is_some_and(|t| t <= now))
            .map(|(account, _)| *account)
            .collect();
        for account in due {
            self.with(account, |pool| pool.handle_timeout(now));
        }
        if self.next_cleanup_tick <= now {
            self.next_cleanup_tick = now + self.config.pool.cleanup_tick;
            self.for_each(|pool| pool.handle_cleanup_tick(now));
        }
        if self.next_ping_tick <= now {
            self.next_ping_tick = now + self.config.pool.ping_tick;
            self.for_each(|pool| pool.handle_ping_tick(now));
        }
    }

    /// The next output (drain until `None` after every input)
    #[must_use]
    pub fn poll_request(&mut self) -> Option<PoolRequest> {
        self.out.pop_front()
    }

    /// The earliest of the ticks and every pool's own deadline
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pools = self.pools.values().filter_map(AccountPool::poll_timeout);
        pools
            .chain([self.next_ping_tick, self.next_cleanup_tick])
            .min()
    }

    /// One account's counts
    pub fn stats(&self, account: AccountId) -> Option<PoolStats> {
        self.pools.get(&account).map(AccountPool::stats)
    }

    /// Counts summed over every account
    pub fn total_stats(&self) -> PoolStats {
        let mut total = PoolStats::default();
        for pool in self.pools.values() {
            total += pool.stats();
        }
        total
    }

    /// One account's pool (read-only: inputs go through the registry so outputs are collected)
    pub fn pool(&self, account: AccountId) -> Option<&AccountPool> {
        self.pools.get(&account)
    }

    /// Every pool, in id order
    pub fn pools(&self) -> impl Iterator<Item = (AccountId, &AccountPool)> + '_ {
        self.pools.iter().map(|(account, pool)| (*account, pool))
    }

    /// Accounts with a pool, in id order
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.pools.keys().copied()
    }

    /// Runs `f` on the account's pool and collects its outputs; false if there is no pool
    fn with(&mut self, account: AccountId, f: impl FnOnce(&mut AccountPool)) -> bool {
        let Some(pool) = self.pools.get_mut(&account) else {
            return false;
        };
        f(pool);
        while let Some(request) = pool.poll_request() {
            self.out.push_back(request);
        }
        true
    }

    fn for_each(&mut self, f: impl Fn(&mut AccountPool)) {
        for pool in self.pools.values_mut() {
            f(pool);
            while let Some(request) = pool.poll_request() {
                self.out.push_back(request);
            }
        }
    }
}
