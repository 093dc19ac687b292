//! The scheduler: account choice, cooldowns, concurrency slots, retries and failover.
//!
//! Pure and sans-IO: time enters as `now: Instant`; nothing here reads a clock or waits. One
//! [`Scheduler`] per gateway instance knows every configured account; it is consulted once
//! per turn start (never on the per-event path).
//!
//! # Choosing an account ([`Scheduler::schedule`])
//! Layers, first match wins:
//! 1. **`previous_response_id` binding** ([`Layer::PreviousResponse`]). A bound create goes to
//!    its account or nowhere: it never fails over (a stored response rehydrates only on its own
//!    account). If the account is unusable, a connection-local create gets
//!    [`Reject::PreviousResponseNotFound`] (the caller sends upstream's exact error); any other
//!    gets [`Reject::RateLimited`] (429, `Retry-After` at the cooldown's end) or
//!    [`Reject::AccountDisabled`] (503).
//! 2. **Session binding** ([`Layer::Session`]): the account bound to `session-id` /
//!    `prompt_cache_key`, if it is eligible; otherwise fall through (a session may move).
//! 3. **Priority, then least loaded** ([`Layer::LeastLoaded`]), one linear pass over eligible
//!    accounts. An account with a free slot beats every full one; among accounts with a free
//!    slot the **higher `priority` wins**, then the lower load (unfinished responses / max
//!    concurrency, compared exactly), then fewer waiters. So load balances within one priority
//!    and traffic spills to a lower priority only when every higher account is full or not
//!    eligible (cooling, disabled). Among full accounts (the create waits for a slot): lower
//!    load, then fewer waiters, then higher priority. For a WebSocket session, an account
//!    whose pool has no free conn ([`ConnUse::full`]) counts as full too: idle
//!    sessions hold conns but no slots, and a session sent there would wait
//!    `pool.session_acquire_wait` for another's conn, then get a 503, while another account
//!    could dial for it at once. For the same reason accounts serving only idle sessions tie
//!    on load, so a WebSocket session's remaining ties go to the account whose pool has the
//!    lower share of its conns in use ([`ScheduleRequest::conn_use`]): new sessions spread
//!    over equal accounts instead of piling on the lowest id, which would then hit its
//!    concurrency first when they all start turns. The account id breaks remaining ties (an
//!    HTTP request, which holds a conn only for its turn, goes by it directly).
//!
//! Eligible = configured, not disabled, not cooling down, not in `exclude`, and able to serve
//! the caller's transport (a WebSocket session needs an account that resolves to WS; an HTTP
//! request takes any). A full account stays eligible: its session waits for a slot (below).
//! With no eligible account: [`Reject::UpgradeRequired`] (426) when the caller is a
//! WebSocket session and some usable account resolves to HTTP, else [`Reject::NoAccount`]
//! (503, with the earliest cooldown end as `Retry-After` when one applies).
//!
//! The [`Choice`] carries the account's max concurrency at decision time; the session keeps it
//! and uses it for every later turn (a reload does not change a running session).
//!
//! # Health ([`Health`])
//! - [`Scheduler::handle_rate_limited`]: cool until the reset upstream named, else
//!   `rate_limit_cooldown` (60 s). A later running cooldown is never shortened.
//! - [`Scheduler::handle_server_error`]: `server_error_limit` (3) failures each less than
//!   `server_error_window` (60 s) apart from the newest ⇒ `server_error_cooldown` (30 s).
//! - [`Scheduler::handle_success`] clears the 5xx window: only an unbroken run of failures
//!   cools an account that still answers.
//! - [`Scheduler::handle_auth_failure`] (401/403): disabled until a reload
//!   ([`Scheduler::upsert_account`]).
//! - [`Scheduler::handle_dial_failed`]: every failed dial (refused, timed out, TLS, proxy
//!   refusal, upgrade 5xx; never a local error such as EMFILE, which the caller filters out)
//!   counts; `dial_failure_limit` (2) in a row cool the account until a dial succeeds. While
//!   it cools, [`SchedulerEvent::ProbeDue`] asks for a probe dial every `probe_interval` (5 s);
//!   [`Scheduler::handle_dial_ok`] (or a successful response) ends the cooldown at once, so a
//!   returning account serves again within `probe_interval` plus one dial. An account that
//!   resolves to HTTP has no pool to probe with: when its probe is due it is simply tried
//!   again, and its next failure cools it at once.
//!
//! # Nothing usable
//! When no eligible account is usable, an account that is cooling only because it failed
//! (dials or 5xx; not rate limited, not disabled) is still tried: the one whose last failure
//! is the oldest ([`Layer::LastResort`]). With none of those either: 429
//! [`Reject::AllRateLimited`] when some eligible account is rate limited (`Retry-After` at the
//! earliest reset), else the 426 / 503 answers below.
//!
//! # Concurrency slots (`slots.rs`)
//! A slot = one unfinished response on this instance. Every create (first turn and later ones)
//! asks [`Scheduler::acquire_slot`] with the decision's max concurrency and gives its slot back
//! with [`Scheduler::release_slot`] when the response ends. With no slot free, or creates
//! already waiting, the create queues; the scheduler alone decides who gets a freed slot:
//! round-robin by client key, oldest create of a key first
//! ([`SchedulerEvent::SlotGranted`]). A create that stops waiting (answered 429 after
//! `session.slot_wait_timeout`, or its holder closed) leaves with
//! [`Scheduler::cancel_slot_waits`].
//!
//! # Drive contract
//! After any `handle_*`, `acquire_slot` or `release_slot`, drain [`Scheduler::poll_event`]; keep
//! one timer at [`Scheduler::poll_timeout`] (the earliest cooldown end) and call
//! [`Scheduler::handle_timeout`] when it fires, which emits [`SchedulerEvent::AccountUsable`].
//! Usability never depends on `handle_timeout` having run: a cooldown simply ends at its instant.
//!
//! Calls naming an account that is not configured (e.g. removed by a reload while a response
//! was in flight) are no-ops; `acquire_slot` then grants at once (no slots left to count).

mod account;
mod decision;
mod retry;
mod slots;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use account::{AccountSpec, AccountView, Health};
pub use decision::{Choice, ConnUse, Decision, Layer, Reject, ScheduleRequest};
pub use retry::{
    FailureKind, GiveUpReason, MAX_RETRY_NOTES, Pinning, RetryDecision, RetryNote, RetryPhase,
    RetryState,
};
pub use slots::SlotWaiter;

use crate::AccountId;
use crate::config::SchedulerConfig;
use crate::resolver::Transport;
use account::AccountState;

/// Something the shell must act on
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerEvent {
    /// A slot of `account` was released and goes to `waiter`, the next create in turn: it is
    /// taken for it (give it back with `release_slot` if its holder is gone)
    SlotGranted {
        /// The account
        account: AccountId,
        /// The create that gets it
        waiter: SlotWaiter,
    },
    /// The account's cooldown ended and it is usable again (log / notify)
    AccountUsable(AccountId),
    /// The account cools down after failed dials: dial one probe conn now (no holder), and
    /// report its result with `handle_dial_ok` / `handle_dial_failed`
    ProbeDue(AccountId),
}

impl std::fmt::Display for SchedulerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SlotGranted { account, waiter } => {
                write!(
                    f,
                    "slot_granted {account} {} {}",
                    waiter.holder, waiter.turn
                )
            }
            Self::AccountUsable(account) => write!(f, "account_usable {account}"),
            Self::ProbeDue(account) => write!(f, "probe_due {account}"),
        }
    }
}

/// Account choice, health and load of every configured account (see the module docs)
#[derive(Clone, Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    /// Sorted by id: deterministic passes, O(log n) lookup
    accounts: Vec<AccountState>,
    /// Slots taken for waiters, not yet polled
    grants: VecDeque<SchedulerEvent>,
    /// Accounts with `usable_event_queued`, each at most once
    usable_events: VecDeque<AccountId>,
    /// Probe dials due, in the order they fell due
    probes: VecDeque<AccountId>,
}

impl Scheduler {
    /// A scheduler with no accounts
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            accounts: Vec::new(),
            grants: VecDeque::new(),
            usable_events: VecDeque::new(),
            probes: VecDeque::new(),
        }
    }

    /// Adds an account, or applies new settings to a known one (a reload): load and cooldowns
    /// are kept, a disabled account is re-enabled (its credentials may have changed)
    pub fn upsert_account(&mut self, spec: AccountSpec) {
        match self.index(spec.id) {
            Ok(i) => self.accounts[i].update(spec),
            Err(i) => self.accounts.insert(i, AccountState::new(spec)),
        }
    }

    /// Forgets an account (removed from the configuration); returns whether it was known
    pub fn remove_account(&mut self, id: AccountId) -> bool {
        match self.index(id) {
            Ok(i) => {
                self.accounts.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Chooses an account for `request` at `now` (pure: changes nothing)
    #[must_use]
    pub fn schedule(&self, now: Instant, request: &ScheduleRequest<'_>) -> Decision {
        if let Some(bound) = request.bound_account {
            return self.schedule_bound(now, request, bound);
        }
        if let Some(account) = request.session_account.and_then(|id| self.get(id))
            && Self::is_eligible(account, now, request)
        {
            return Decision::Schedule(Self::choice(account, Layer::Session));
        }
        self.schedule_least_loaded(now, request)
    }

    /// A 429 from `account`: cool it for `reset_after` (the reset upstream named) or
    /// `rate_limit_cooldown`
    pub fn handle_rate_limited(
        &mut self,
        now: Instant,
        account: AccountId,
        reset_after: Option<Duration>,
    ) {
        let cooldown = reset_after.unwrap_or(self.config.rate_limit_cooldown);
        if let Some(state) = self.get_mut(account) {
            state.rate_limit_until(now + cooldown);
        }
    }

    /// A 5xx from `account`: the `server_error_limit`-th within the window cools it for
    /// `server_error_cooldown`
    pub fn handle_server_error(&mut self, now: Instant, account: AccountId) {
        let config = self.config.clone();
        if let Some(state) = self.get_mut(account)
            && state.record_server_error(now, &config)
        {
            state.cool_until(now + config.server_error_cooldown);
        }
    }

    /// A 401/403 from `account`: disabled until a reload
    pub fn handle_auth_failure(&mut self, account: AccountId) {
        if let Some(state) = self.get_mut(account) {
            state.disabled = true;
        }
    }

    /// A response on `account` succeeded (reached its first event): clears the 5xx window and
    /// the failed dials (ending a cooldown they started)
    pub fn handle_success(&mut self, now: Instant, account: AccountId) {
        if let Some(state) = self.get_mut(account) {
            state.server_errors.clear();
        }
        self.handle_dial_ok(now, account);
    }

    /// A dial to `account` failed for a reason that is the account's (not a local error):
    /// the `dial_failure_limit`-th in a row cools it until a dial succeeds
    pub fn handle_dial_failed(&mut self, now: Instant, account: AccountId) {
        let config = self.config.clone();
        if let Some(state) = self.get_mut(account) {
            state.record_dial_failure(now, &config);
        }
    }

    /// A dial to `account` succeeded: failed dials are forgotten and a cooldown they started
    /// ends now
    pub fn handle_dial_ok(&mut self, now: Instant, account: AccountId) {
        let Ok(i) = self.index(account) else { return };
        let state = &mut self.accounts[i];
        if state.record_reached() && state.is_usable(now) {
            self.queue_usable_event(i);
        }
    }

    /// Feeds a failed attempt to the matching health rule (429 ⇒ cooldown, 5xx ⇒ window,
    /// 401/403 ⇒ disabled; lost connections and refusals say nothing about the account's
    /// health, and failed dials are fed by [`Self::handle_dial_failed`] where they happen)
    pub fn handle_failure(&mut self, now: Instant, account: AccountId, failure: FailureKind) {
        match failure {
            FailureKind::RateLimited { reset_after } => {
                self.handle_rate_limited(now, account, reset_after);
            }
            FailureKind::ServerError => self.handle_server_error(now, account),
            FailureKind::AuthFailed => self.handle_auth_failure(account),
            FailureKind::UpstreamLost
            | FailureKind::DialFailed
            | FailureKind::Refused
            | FailureKind::DialWait => {}
        }
    }

    /// The next thing the shell must act on: slot grants first, then usable-again notices
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SchedulerEvent> {
        if let Some(grant) = self.grants.pop_front() {
            return Some(grant);
        }
        while let Some(id) = self.usable_events.pop_front() {
            let Some(state) = self.get_mut(id) else {
                continue;
            };
            if !state.usable_event_queued {
                continue;
            }
            state.usable_event_queued = false;
            return Some(SchedulerEvent::AccountUsable(id));
        }
        self.probes.pop_front().map(SchedulerEvent::ProbeDue)
    }

    /// The earliest cooldown end or probe not yet handled by `handle_timeout`
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.accounts
            .iter()
            .flat_map(|a| [a.cooldown_until, a.rate_limited_until, a.next_probe])
            .flatten()
            .min()
    }

    /// Ends every cooldown due at `now` (an account that is usable again yields
    /// [`SchedulerEvent::AccountUsable`]) and asks for the probes due
    /// ([`SchedulerEvent::ProbeDue`]; the next one is due `probe_interval` later)
    pub fn handle_timeout(&mut self, now: Instant) {
        let probe_interval = self.config.probe_interval;
        let limit = self.config.dial_failure_limit.max(1);
        for i in 0..self.accounts.len() {
            let account = &mut self.accounts[i];
            let mut ended = false;
            for until in [&mut account.cooldown_until, &mut account.rate_limited_until] {
                if until.is_some_and(|at| at <= now) {
                    *until = None;
                    ended = true;
                }
            }
            if account.next_probe.is_some_and(|at| at <= now) {
                if account.spec.transport == Transport::Http {
                    // No pool to probe with: the next request is the probe; one more failure
                    // cools the account again.
                    account.next_probe = None;
                    account.dial_failures = limit - 1;
                    ended = true;
                } else {
                    account.next_probe = Some(now + probe_interval);
                    self.probes.push_back(account.spec.id);
                }
            }
            if ended && account.is_usable(now) {
                self.queue_usable_event(i);
            }
        }
    }

    /// A view of one account at `now`
    pub fn account(&self, id: AccountId, now: Instant) -> Option<AccountView> {
        self.get(id).map(|state| AccountView::of(state, now))
    }

    /// Every configured account, in id order
    pub fn account_ids(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.accounts.iter().map(|a| a.spec.id)
    }

    /// The configuration in use
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    fn schedule_bound(
        &self,
        now: Instant,
        request: &ScheduleRequest<'_>,
        bound: AccountId,
    ) -> Decision {
        let Some(account) = self.get(bound) else {
            return Decision::Reject(Reject::PreviousResponseNotFound);
        };
        if !Self::serves(account, request.transport) {
            return Decision::Reject(Reject::PreviousResponseNotFound);
        }
        let blocked = match account.health(now) {
            Health::Usable if !request.exclude.contains(&bound) => {
                return Decision::Schedule(Self::choice(account, Layer::PreviousResponse));
            }
            Health::Usable => Reject::NoAccount { retry_at: None },
            Health::Cooling { until } => Reject::RateLimited {
                account: bound,
                until,
            },
            Health::Disabled => Reject::AccountDisabled { account: bound },
        };
        if request.connection_local {
            Decision::Reject(Reject::PreviousResponseNotFound)
        } else {
            Decision::Reject(blocked)
        }
    }

    fn schedule_least_loaded(&self, now: Instant, request: &ScheduleRequest<'_>) -> Decision {
        let mut best: Option<&AccountState> = None;
        let mut usable_http_only = false;
        let mut retry_at: Option<Instant> = None;
        // Nothing usable: the failing account whose last failure is the oldest, else the
        // earliest end of a rate limit
        let mut last_resort: Option<&AccountState> = None;
        let mut rate_limited: Option<(AccountId, Instant)> = None;
        for account in &self.accounts {
            let serves = Self::serves(account, request.transport);
            if request.exclude.contains(&account.spec.id) {
                // Tried already, but its rate limit still says when a retry could work.
                if serves
                    && !account.disabled
                    && let Some(end) = account.rate_limited_until.filter(|t| *t > now)
                {
                    retry_at = Some(retry_at.map_or(end, |t| t.min(end)));
                    if rate_limited.is_none_or(|(_, t)| end < t) {
                        rate_limited = Some((account.spec.id, end));
                    }
                }
                continue;
            }
            match account.health(now) {
                Health::Usable if serves => {
                    if best.is_none_or(|b| account.least_loaded_cmp(b, request).is_lt()) {
                        best = Some(account);
                    }
                }
                Health::Usable => usable_http_only = true,
                Health::Cooling { until } if serves => {
                    retry_at = Some(retry_at.map_or(until, |t| t.min(until)));
                    if account.is_failing(now) {
                        if last_resort.is_none_or(|b| account.failed_before(b)) {
                            last_resort = Some(account);
                        }
                    } else if let Some(end) =
                        account.rate_limited_until.filter(|_| !account.disabled)
                        && rate_limited.is_none_or(|(_, t)| end < t)
                    {
                        rate_limited = Some((account.spec.id, end));
                    }
                }
                Health::Cooling { .. } | Health::Disabled => {}
            }
        }
        match (best, last_resort) {
            (Some(account), _) => Decision::Schedule(Self::choice(account, Layer::LeastLoaded)),
            (None, _) if usable_http_only => Decision::Reject(Reject::UpgradeRequired),
            (None, Some(account)) => Decision::Schedule(Self::choice(account, Layer::LastResort)),
            (None, None) => match rate_limited {
                Some((_, until)) => Decision::Reject(Reject::AllRateLimited { retry_at: until }),
                None => Decision::Reject(Reject::NoAccount { retry_at }),
            },
        }
    }

    fn is_eligible(account: &AccountState, now: Instant, request: &ScheduleRequest<'_>) -> bool {
        account.is_usable(now)
            && Self::serves(account, request.transport)
            && !request.exclude.contains(&account.spec.id)
    }

    /// Whether `account` can serve a caller that needs `transport`
    fn serves(account: &AccountState, transport: Transport) -> bool {
        transport == Transport::Http || account.spec.transport == transport
    }

    fn choice(account: &AccountState, layer: Layer) -> Choice {
        Choice {
            account: account.spec.id,
            max_concurrency: account.spec.max_concurrency,
            layer,
        }
    }

    fn queue_usable_event(&mut self, i: usize) {
        let account = &mut self.accounts[i];
        if !account.usable_event_queued {
            account.usable_event_queued = true;
            self.usable_events.push_back(account.spec.id);
        }
    }

    fn index(&self, id: AccountId) -> Result<usize, usize> {
        self.accounts.binary_search_by_key(&id, |a| a.spec.id)
    }

    fn get(&self, id: AccountId) -> Option<&AccountState> {
        self.index(id).ok().map(|i| &self.accounts[i])
    }

    fn get_mut(&mut self, id: AccountId) -> Option<&mut AccountState> {
        self.index(id).ok().map(|i| &mut self.accounts[i])
    }
}
