//! One account as the scheduler sees it: static settings, health and load on this instance.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::AccountId;
use crate::config::SchedulerConfig;
use crate::resolver::Transport;

/// An account's scheduling settings, given at registration and on reload
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    /// The account
    pub id: AccountId,
    /// Lower number = preferred (the prior art's convention); only breaks load ties
    pub priority: i32,
    /// The account's configured `concurrency`: unfinished responses allowed on this
    /// instance. Zero is treated as one (config validation rejects it; the scheduler must not
    /// divide by it).
    pub max_concurrency: u32,
    /// The protocol resolver's answer for this account
    pub transport: Transport,
}

/// An account's health, derived from its disabled flag and cooldown at a given instant.
///
/// ```text
///              429 / 3×5xx in window            cooldown end (handle_timeout
///   +--------+ ------------------> +---------+  or simply time passing)
///   | Usable |                     | Cooling | ------------------+
///   +--------+ <------------------ +---------+                   |
///     ^  |            reset_account                               |
///     |  | 401/403                  | 401/403                     |
///     |  v                          v                             |
///   +----------+ <------------------+                             |
///   | Disabled |  reload (upsert) / reset_account ⇒ Usable        |
///   +----------+  (a reload keeps a running cooldown)             |
///     ^-----------------------------------------------------------+
/// ```
///
/// A disabled account may also carry a cooldown; it reports `Disabled` until re-enabled and
/// `Cooling` afterwards if the cooldown has not ended yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// May be scheduled
    Usable,
    /// Rate limited or failing: not scheduled until `until`
    Cooling {
        /// When the cooldown ends
        until: Instant,
    },
    /// Credentials refused (401/403): not scheduled until a reload or `reset_account`
    Disabled,
}

/// Scheduler-side state of one account
#[derive(Clone, Debug)]
pub(crate) struct AccountState {
    pub(crate) spec: AccountSpec,
    pub(crate) disabled: bool,
    pub(crate) cooldown_until: Option<Instant>,
    /// Times of recent 5xx failures, oldest first; never longer than `server_error_limit`
    pub(crate) server_errors: VecDeque<Instant>,
    /// Unfinished responses on this instance (slots held)
    pub(crate) unfinished: u32,
    /// Creates waiting for a slot on this account
    pub(crate) waiters: u32,
    /// Slot-freed wake-ups queued for this account and not yet polled
    pub(crate) pending_wakes: u32,
    /// Whether an `AccountUsable` event is queued for this account
    pub(crate) usable_event_queued: bool,
}

impl AccountState {
    pub(crate) fn new(spec: AccountSpec) -> Self {
        Self {
            spec: normalize(spec),
            disabled: false,
            cooldown_until: None,
            server_errors: VecDeque::new(),
            unfinished: 0,
            waiters: 0,
            pending_wakes: 0,
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
        match self.cooldown_until {
            Some(until) if until > now => Health::Cooling { until },
            _ => Health::Usable,
        }
    }

    pub(crate) fn is_usable(&self, now: Instant) -> bool {
        self.health(now) == Health::Usable
    }

    /// Extends the cooldown to `until` (a later running cooldown is kept)
    pub(crate) fn cool_until(&mut self, until: Instant) {
        self.cooldown_until = Some(self.cooldown_until.map_or(until, |t| t.max(until)));
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

    /// The least-loaded order: load ratio, then waiters, then priority (lower first), then id
    pub(crate) fn least_loaded_cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.load_cmp(other)
            .then(self.waiters.cmp(&other.waiters))
            .then(self.spec.priority.cmp(&other.spec.priority))
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
}

impl AccountView {
    pub(crate) fn of(state: &AccountState, now: Instant) -> Self {
        Self {
            spec: state.spec,
            health: state.health(now),
            unfinished: state.unfinished,
            waiters: state.waiters,
            recent_server_errors: u32::try_from(state.server_errors.len()).unwrap_or(u32::MAX),
        }
    }
}

/// A cooldown length from an optional reset hint
pub(crate) fn rate_limit_cooldown(hint: Option<Duration>, config: &SchedulerConfig) -> Duration {
    hint.unwrap_or(config.rate_limit_cooldown)
}
