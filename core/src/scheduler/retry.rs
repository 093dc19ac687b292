//! Retry and failover policy for one response (pure, per response).
//!
//! Rules:
//! - A response may be retried or moved only until its **first event has been written to the
//!   client** (HTTP `stream:false`: until the reply); never after. Events are not held back to
//!   widen the window.
//! - Every retry starts within `scheduler.retry_total_budget` of the first attempt (the budget
//!   bounds the *start* of the last attempt). A retry whose back-off would end after the budget
//!   is not made: back-off is never shortened to squeeze one more attempt in.
//! - Back-off: `Jitter::backoff(retry_index, retry_backoff_initial, retry_backoff_max)`,
//!   i.e. 120 ms doubling up to 2 s, each scaled by a jitter factor in `[0.5, 1]`.
//! - At most `scheduler.max_account_switches` (3) moves to another account.
//!
//! Which failures move the response ([`FailureKind`]):
//!
//! | Failure                    | Free create                                  | Bound (`previous_response_id`) | Connection-local chain |
//! |----------------------------|----------------------------------------------|--------------------------------|------------------------|
//! | `RateLimited` (429)        | switch (the account is cooling down)         | give up (`PinnedAccountUnusable`) | give up (`PinnedAccountUnusable`) |
//! | `AuthFailed` (401/403)     | switch (the account is now disabled)         | give up (`PinnedAccountUnusable`) | give up (`PinnedAccountUnusable`) |
//! | `ServerError` (5xx)        | switch (another account is the faster bet)   | retry same account             | retry same account     |
//! | `UpstreamLost` / `DialFailed` | first: retry same account on a fresh conn (one broken socket says little about the account, and the session binding keeps its cache); second in a row on that account: switch | retry same account | give up (`ChainLost`): the chain died with its conn |
//! | `Refused` (other 4xx)      | give up (`NotRetryable`): forward upstream's error | same                       | same                   |
//!
//! After [`RetryDecision::GiveUp`] the caller answers the client: with upstream's own error when
//! it has one, else by re-asking the scheduler (which yields the 429 / 503 /
//! `previous_response_not_found` answer for a bound create).

use std::time::{Duration, Instant};

use crate::AccountId;
use crate::config::SchedulerConfig;
use crate::rng::Jitter;

/// Why an attempt of a response failed before (or after) its first event
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// 429 (handshake or `error` event): the account cools down
    RateLimited {
        /// The reset upstream named (`resets_at`, `Retry-After`, rate-limit headers), if any
        reset_after: Option<Duration>,
    },
    /// 5xx (handshake, HTTP status or `error` event)
    ServerError,
    /// 401 / 403: the account's credentials are refused
    AuthFailed,
    /// The upstream connection closed or broke before the response ended
    UpstreamLost,
    /// Dial, proxy, TLS or upgrade failure (no HTTP status from upstream)
    DialFailed,
    /// Any other upstream refusal (4xx such as `invalid_request_error`): retrying cannot help
    Refused,
    /// Nothing failed: no conn came within `pool.dial_wait` (a slow dial, or a full pool) while
    /// another account could serve, so the holder moved there
    DialWait,
}

impl FailureKind {
    /// The failure an upstream HTTP status (handshake, HTTP reply or `error` event `status`)
    /// stands for: 429 ⇒ `RateLimited` with `reset_after`, 401/403 ⇒ `AuthFailed`, 5xx (and
    /// Cloudflare-style 52x) ⇒ `ServerError`, anything else ⇒ `Refused`
    pub fn from_status(status: u16, reset_after: Option<Duration>) -> Self {
        match status {
            429 => Self::RateLimited { reset_after },
            401 | 403 => Self::AuthFailed,
            500..=599 => Self::ServerError,
            _ => Self::Refused,
        }
    }

    /// Stable snake-case name for logs and snapshots
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::ServerError => "server_error",
            Self::AuthFailed => "auth_failed",
            Self::UpstreamLost => "upstream_lost",
            Self::DialFailed => "dial_failed",
            Self::Refused => "refused",
            Self::DialWait => "dial_wait",
        }
    }
}

/// How a response is tied to its account
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// No `previous_response_id` binding: may move to another account
    Free,
    /// `previous_response_id` bound to the account: never moves
    Bound,
    /// The chain lives only on its upstream connection (`store:false`): never moves, and dies
    /// with the connection
    ConnectionLocal,
}

/// What to do after a failed attempt
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Start the next attempt at `at`; on another account if `switch_account` (schedule with
    /// `exclude = RetryState::tried_accounts()`), else on the same account
    RetryAt {
        /// When to start the next attempt (never after the budget's end)
        at: Instant,
        /// Whether the next attempt must go to another account
        switch_account: bool,
    },
    /// Stop: answer the client
    GiveUp(GiveUpReason),
}

/// Why a response is not retried
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// An event of this response already reached the client
    EventWritten,
    /// The failure is not one a retry can fix
    NotRetryable,
    /// The next attempt would start after `retry_total_budget`
    BudgetExhausted,
    /// `max_account_switches` moves were already made
    SwitchLimit,
    /// A bound response's only account is rate limited or disabled
    PinnedAccountUnusable,
    /// A connection-local chain lost its connection
    ChainLost,
}

impl GiveUpReason {
    /// Stable snake-case name for logs and metric labels
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventWritten => "event_written",
            Self::NotRetryable => "not_retryable",
            Self::BudgetExhausted => "budget_exhausted",
            Self::SwitchLimit => "switch_limit",
            Self::PinnedAccountUnusable => "pinned_account_unusable",
            Self::ChainLost => "chain_lost",
        }
    }
}

/// Where one response stands in its retry life.
///
/// ```text
///                on_failure ⇒ RetryAt        attempt_started
///  +------------+ ------------------> +---------+ -------------> +------------+
///  | Attempting |                     | Waiting |                | Attempting |  ...
///  +------------+                     +---------+                +------------+
///        |  on_failure ⇒ GiveUp                                        |
///        v                                                             v
///  +----------+  (terminal: every later on_failure repeats the same GiveUp)
///  | GaveUp   | <-------------------------------------------------------+
///  +----------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPhase {
    /// An attempt is running on the current account
    Attempting,
    /// Waiting to start the next attempt
    Waiting {
        /// When it starts
        at: Instant,
        /// Whether it goes to another account
        switch_account: bool,
    },
    /// No more attempts
    GaveUp(GiveUpReason),
}

/// One retry decided for a response: an event on its span
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryNote {
    /// When the attempt failed
    pub at: Instant,
    /// The account of the failed attempt
    pub account: AccountId,
    /// What failed
    pub failure: FailureKind,
    /// Whether the next attempt goes to another account (a failover)
    pub switch_account: bool,
}

/// Retries a response remembers for its span; later ones are counted in
/// [`RetryState::retries`] but not noted
pub const MAX_RETRY_NOTES: usize = 16;

/// Retry and failover bookkeeping of one response
#[derive(Clone, Debug)]
pub struct RetryState {
    budget_end: Instant,
    backoff_initial: Duration,
    backoff_max: Duration,
    max_switches: u32,
    pinning: Pinning,
    current: AccountId,
    /// Accounts this response moved away from; bounded by `max_switches`
    tried: Vec<AccountId>,
    retries: u32,
    switches: u32,
    /// Consecutive lost-connection / dial failures on the current account
    transient_on_current: u32,
    phase: RetryPhase,
    /// The first [`MAX_RETRY_NOTES`] retries, for the response's span
    notes: Vec<RetryNote>,
}

impl RetryState {
    /// Starts tracking a response whose first attempt starts at `now` on `first_account`
    pub fn new(
        now: Instant,
        first_account: AccountId,
        pinning: Pinning,
        config: &SchedulerConfig,
    ) -> Self {
        Self {
            budget_end: now + config.retry_total_budget,
            backoff_initial: config.retry_backoff_initial,
            backoff_max: config.retry_backoff_max,
            max_switches: config.max_account_switches,
            pinning,
            current: first_account,
            tried: Vec::new(),
            retries: 0,
            switches: 0,
            transient_on_current: 0,
            phase: RetryPhase::Attempting,
            notes: Vec::new(),
        }
    }

    /// Decides what follows a failed attempt at `now`.
    ///
    /// `first_event_written`: whether any event of this response has reached the client.
    pub fn on_failure(
        &mut self,
        now: Instant,
        failure: FailureKind,
        first_event_written: bool,
        jitter: &mut Jitter,
    ) -> RetryDecision {
        if let RetryPhase::GaveUp(reason) = self.phase {
            return RetryDecision::GiveUp(reason);
        }
        let decision = self.decide(now, failure, first_event_written, jitter);
        self.phase = match decision {
            RetryDecision::RetryAt { at, switch_account } => {
                self.retries += 1;
                if self.notes.len() < MAX_RETRY_NOTES {
                    self.notes.push(RetryNote {
                        at: now,
                        account: self.current,
                        failure,
                        switch_account,
                    });
                }
                if switch_account {
                    self.switches += 1;
                    self.tried.push(self.current);
                    self.transient_on_current = 0;
                }
                RetryPhase::Waiting { at, switch_account }
            }
            RetryDecision::GiveUp(reason) => RetryPhase::GaveUp(reason),
        };
        decision
    }

    /// Records that the next attempt started on `account` (the scheduler's choice after a
    /// switch, or the same account)
    pub fn attempt_started(&mut self, account: AccountId) {
        debug_assert!(
            !matches!(self.phase, RetryPhase::GaveUp(_)),
            "attempt started after giving up"
        );
        debug_assert!(
            self.pinning == Pinning::Free || account == self.current,
            "a pinned response moved to another account"
        );
        if account != self.current {
            self.current = account;
            self.transient_on_current = 0;
        }
        self.phase = RetryPhase::Attempting;
    }

    /// Accounts this response moved away from: pass as `ScheduleRequest::exclude`
    pub fn tried_accounts(&self) -> &[AccountId] {
        &self.tried
    }

    /// Retries decided so far (not counting the first attempt)
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The retries decided so far (the first [`MAX_RETRY_NOTES`]), oldest first
    pub fn notes(&self) -> &[RetryNote] {
        &self.notes
    }

    /// Account switches decided so far
    pub fn switches(&self) -> u32 {
        self.switches
    }

    /// The latest instant at which an attempt may start
    pub fn budget_end(&self) -> Instant {
        self.budget_end
    }

    /// Where the response stands
    pub fn phase(&self) -> RetryPhase {
        self.phase
    }

    fn decide(
        &mut self,
        now: Instant,
        failure: FailureKind,
        first_event_written: bool,
        jitter: &mut Jitter,
    ) -> RetryDecision {
        if first_event_written {
            return RetryDecision::GiveUp(GiveUpReason::EventWritten);
        }
        let switch_account = match self.movement(failure) {
            Ok(switch) => switch,
            Err(reason) => return RetryDecision::GiveUp(reason),
        };
        if switch_account && self.switches >= self.max_switches {
            return RetryDecision::GiveUp(GiveUpReason::SwitchLimit);
        }
        let backoff = jitter.backoff(self.retries, self.backoff_initial, self.backoff_max);
        let at = now + backoff;
        if at > self.budget_end {
            return RetryDecision::GiveUp(GiveUpReason::BudgetExhausted);
        }
        if !switch_account && matches!(failure, FailureKind::UpstreamLost | FailureKind::DialFailed)
        {
            self.transient_on_current += 1;
        }
        RetryDecision::RetryAt { at, switch_account }
    }

    /// Whether `failure` moves the response (`Ok(true)`), retries in place (`Ok(false)`) or
    /// ends it
    fn movement(&self, failure: FailureKind) -> Result<bool, GiveUpReason> {
        use FailureKind as F;
        match (self.pinning, failure) {
            (_, F::Refused) => Err(GiveUpReason::NotRetryable),
            (
                Pinning::Free,
                F::RateLimited { .. } | F::AuthFailed | F::ServerError | F::DialWait,
            ) => Ok(true),
            (Pinning::Free, F::UpstreamLost | F::DialFailed) => Ok(self.transient_on_current >= 1),
            (_, F::RateLimited { .. } | F::AuthFailed) => Err(GiveUpReason::PinnedAccountUnusable),
            (Pinning::ConnectionLocal, F::UpstreamLost | F::DialFailed) => {
                Err(GiveUpReason::ChainLost)
            }
            (_, F::ServerError | F::UpstreamLost | F::DialFailed | F::DialWait) => Ok(false),
        }
    }
}
