//! One account as the scheduler sees it: static settings, health and load on this instance.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::AccountId;
use crate::config::SchedulerConfig;
use crate::resolver::Transport;

use super::decision::{ConnUse, ScheduleRequest};
use super::slots::SlotQueue;

/// An account's scheduling settings, given at registration and on reload
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    /// The account
    pub id: AccountId,
    /// Higher number = preferred: an account with a free slot is chosen over every account of
    /// a lower priority, whatever their load
    pub priority: i32,
    /// The account's configured `concurrency`: unfinished responses allowed on this
    /// instance. Zero is treated as one (config validation rejects it; the scheduler must not
    /// divide by it).
    pub max_concurrency: u32,
    /// The protocol resolver's answer for this account
    pub transport: Transport,
}

/// An account's health, derived from its disabled flag, cooldowns and failed dials at a given
/// instant.
///
/// ```text
///               429 / 3×5xx in window /
///               dial_failure_limit failed dials
///   +--------+ ------------------------------> +---------+
///   | Usable |                                 | Cooling |
///   +--------+ <------------------------------ +---------+
///     ^    |    cooldown end (handle_timeout        |
///     |    |    or simply time passing); after      |
///     |    |    failed dials: a probe dial (or a    |
///     |    |    response) succeeds                  |
///     |    | 401/403                        401/403 |
///     |    v                                        |
///   +----------+ <----------------------------------+
///   | Disabled |
///   +----------+  reload (upsert_account) ⇒ Usable, or Cooling while a cooldown runs
/// ```
///
/// A disabled account may also carry a cooldown; it reports `Disabled` until re-enabled and
/// `Cooling` afterwards if the cooldown has not ended yet. An account cooling after failed
/// dials reports `Cooling` until its next probe is due (or, with a probe in flight, one
/// `probe_interval` ahead): it ends only when a dial or a response on it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// May be scheduled
    Usable,
    /// Rate limited or failing: not scheduled until `until`
    Cooling {
        /// When the cooldown ends (after failed dials: when the next probe is due)
        until: Instant,
    },
    /// Credentials refused (401/403): not scheduled until a reload
    Disabled,
}

/// Scheduler-side state of one account
#[derive(Clone, Debug)]
pub(crate) struct AccountState {
    pub(crate) spec: AccountSpec,
    pub(crate) disabled: bool,
    /// End of a 5xx cooldown
    pub(crate) cooldown_until: Option<Instant>,
    /// End of a 429 cooldown
    pub(crate) rate_limited_until: Option<Instant>,
    /// Failed dials since the last successful dial or response
    pub(crate) dial_failures: u32,
    /// Cooling after `dial_failure_limit` failed dials: when the next probe dial is due
    pub(crate) next_probe: Option<Instant>,
    /// The latest failure that counts against the account (failed dial, 5xx)
    pub(crate) last_failure: Option<Instant>,
    /// Times of recent 5xx failures, oldest first; never longer than `server_error_limit`
    pub(crate) server_errors: VecDeque<Instant>,
    /// Unfinished responses on this instance (slots held)
    pub(crate) unfinished: u32,
    /// Creates waiting for a slot on this account
    pub(crate) waiters: SlotQueue,
    /// Whether an `AccountUsable` event is queued for this account
    pub(crate) usable_event_queued: bool,
}

impl AccountState {
    pub(crate) fn new(spec: AccountSpec) -> Self {
        Self {
            spec: normalize(spec),
            disabled: false,
            cooldown_until: None,
            rate_limited_until: None,
            dial_failures: 0,
            next_probe: None,
            last_failure: None,
            server_errors: VecDeque::new(),
            unfinished: 0,
            waiters: SlotQueue::default(),
            usable_event_queued: false,
        }
    }

    /// Applies new settings from a reload; a reload re-enables a disabled account (its
    /// credentials may have changed) but keeps cooldowns and load
    pub(crate) fn update(&mut self, spec: AccountSpec) {
        self.spec = normalize(spec);
        self.disabled = false;
    }

    pub(crate) fn health(&self, now: Instant) -> Health {
        if self.disabled {
            return Health::Disabled;
        }
        let probe = self
            .next_probe
            .map(|at| at.max(now + Duration::from_millis(1)));
        [self.cooldown_until, self.rate_limited_until, probe]
            .into_iter()
            .flatten()
            .filter(|until| *until > now)
            .max()
            .map_or(Health::Usable, |until| Health::Cooling { until })
    }

    pub(crate) fn is_usable(&self, now: Instant) -> bool {
        self.health(now) == Health::Usable
    }

    /// Whether a 429 cooldown runs at `now`
    pub(crate) fn is_rate_limited(&self, now: Instant) -> bool {
        self.rate_limited_until.is_some_and(|until| until > now)
    }

    /// Cooling only because it failed (dials or 5xx), not rate limited nor disabled: a last
    /// resort when nothing is usable
    pub(crate) fn is_failing(&self, now: Instant) -> bool {
        !self.disabled
            && !self.is_rate_limited(now)
            && matches!(self.health(now), Health::Cooling { .. })
    }

    /// Extends the 5xx cooldown to `until` (a later running cooldown is kept)
    pub(crate) fn cool_until(&mut self, until: Instant) {
        self.cooldown_until = Some(self.cooldown_until.map_or(until, |t| t.max(until)));
    }

    /// Extends the 429 cooldown to `until` (a later running cooldown is kept)
    pub(crate) fn rate_limit_until(&mut self, until: Instant) {
        self.rate_limited_until = Some(self.rate_limited_until.map_or(until, |t| t.max(until)));
    }

    /// Records a failed dial; returns whether it started a cooldown (the
    /// `dial_failure_limit`-th in a row)
    pub(crate) fn record_dial_failure(&mut self, now: Instant, config: &SchedulerConfig) -> bool {
        self.dial_failures = self.dial_failures.saturating_add(1);
        self.last_failure = Some(now);
        if self.next_probe.is_none() && self.dial_failures >= config.dial_failure_limit.max(1) {
            self.next_probe = Some(now + config.probe_interval);
            return true;
        }
        false
    }

    /// A dial or a response succeeded: failed dials are forgotten and a cooldown they started
    /// ends; returns whether one did
    pub(crate) fn record_reached(&mut self) -> bool {
        self.dial_failures = 0;
        self.next_probe.take().is_some()
    }

    /// Records a 5xx; returns whether it completed `server_error_limit` failures within the
    /// window (the caller then cools the account and the window starts afresh)
    pub(crate) fn record_server_error(&mut self, now: Instant, config: &SchedulerConfig) -> bool {
        let window = config.server_error_window;
        // "Within the window" = strictly less than `window` ago.
        while let Some(&oldest) = self.server_errors.front() {
            if now.saturating_duration_since(oldest) >= window {
                self.server_errors.pop_front();
            } else {
                break;
            }
        }
        let limit = config.server_error_limit.max(1) as usize;
        self.last_failure = Some(now);
        self.server_errors.push_back(now);
        while self.server_errors.len() > limit {
            self.server_errors.pop_front();
        }
        if self.server_errors.len() >= limit {
            self.server_errors.clear();
            return true;
        }
        false
    }

    /// `unfinished / max_concurrency` compared exactly (cross-multiplied, no floats)
    pub(crate) fn load_cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mine = u64::from(self.unfinished) * u64::from(other.spec.max_concurrency);
        let theirs = u64::from(other.unfinished) * u64::from(self.spec.max_concurrency);
        mine.cmp(&theirs)
    }

    /// Whether its last failure is older than `other`'s (never failed counts as oldest; the
    /// lower id breaks ties)
    pub(crate) fn failed_before(&self, other: &Self) -> bool {
        (self.last_failure, self.spec.id) < (other.last_failure, other.spec.id)
    }

    /// Takes a slot if fewer than `max_concurrency` responses are unfinished (zero counts as
    /// one)
    pub(crate) fn take_slot(&mut self, max_concurrency: u32) -> bool {
        let free = self.unfinished < max_concurrency.max(1);
        if free {
            self.unfinished += 1;
        }
        free
    }

    /// Whether every slot is taken (`unfinished ≥ max_concurrency`)
    pub(crate) fn is_full(&self) -> bool {
        self.unfinished >= self.spec.max_concurrency
    }

    /// The scheduling order, best first: accounts with a free slot (and, for a WebSocket
    /// session, a free conn: not [`ConnUse::full`]) before full ones; among those with room,
    /// higher priority first, then load ratio, then waiters; among full ones (the create will
    /// wait), load ratio, then waiters, then higher priority; then, for a WebSocket session,
    /// the lower share of pool conns in use (`conn_use`); the lower id breaks every remaining
    /// tie
    pub(crate) fn least_loaded_cmp(
        &self,
        other: &Self,
        request: &ScheduleRequest<'_>,
    ) -> std::cmp::Ordering {
        let waiters = self.waiters.len().cmp(&other.waiters.len());
        let by_load = || self.load_cmp(other).then(waiters);
        let higher_first = other.spec.priority.cmp(&self.spec.priority);
        let full = |a: &Self| a.is_full() || ConnUse::is_full_in(request.conn_use, a.spec.id);
        match (full(self), full(other)) {
            (false, true) => std::cmp::Ordering::Less,
            (true, false) => std::cmp::Ordering::Greater,
            (false, false) => higher_first.then_with(by_load),
            (true, true) => by_load().then(higher_first),
        }
        .then_with(|| ConnUse::cmp_in(request.conn_use, self.spec.id, other.spec.id))
        .then(self.spec.id.cmp(&other.spec.id))
    }
}

fn normalize(mut spec: AccountSpec) -> AccountSpec {
    spec.max_concurrency = spec.max_concurrency.max(1);
    spec
}

/// A read-only view of one account, for logs, metrics and tests
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountView {
    /// The account's settings (max concurrency already clamped to at least one)
    pub spec: AccountSpec,
    /// Health at the instant the view was taken
    pub health: Health,
    /// Unfinished responses (slots held) on this instance
    pub unfinished: u32,
    /// Creates waiting for a slot
    pub waiters: u32,
    /// 5xx failures recorded since the last cooldown or success (the oldest may have left the
    /// window; it is dropped when the next failure is recorded)
    pub recent_server_errors: u32,
    /// Failed dials since the last successful dial or response
    pub dial_failures: u32,
    /// Cooling after failed dials: when the next probe dial is due
    pub next_probe: Option<Instant>,
}

impl AccountView {
    pub(crate) fn of(state: &AccountState, now: Instant) -> Self {
        Self {
            spec: state.spec,
            health: state.health(now),
            unfinished: state.unfinished,
            waiters: u32::try_from(state.waiters.len()).unwrap_or(u32::MAX),
            recent_server_errors: u32::try_from(state.server_errors.len()).unwrap_or(u32::MAX),
            dial_failures: state.dial_failures,
            next_probe: state.next_probe,
        }
    }
}
