//! What a scheduling request asks and what the scheduler answers.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, Instant};

use crate::AccountId;
use crate::resolver::Transport;

/// One scheduling question: for a new session's first create, a create that must move, a retry,
/// or an HTTP request
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleRequest<'a> {
    /// The account the create's `previous_response_id` is bound to (from the store). When set,
    /// the create goes to this account or is rejected: it never moves.
    pub bound_account: Option<AccountId>,
    /// Whether the create's chain lives only on its upstream connection (`store:false`), so an
    /// unusable bound account means upstream's exact `previous_response_not_found`
    pub connection_local: bool,
    /// The account bound to the client's `session-id` header or `prompt_cache_key`
    pub session_account: Option<AccountId>,
    /// Accounts already tried for this response (see `RetryState::tried_accounts`)
    pub exclude: &'a [AccountId],
    /// Each account's pool as a new WebSocket session sees it (none for an HTTP request):
    /// - an account whose pool has no conn for the session now ([`ConnUse::full`]) ranks with
    ///   the accounts whose slots are all taken, so a session goes where it gets a conn at once;
    ///   still eligible: when every account is full, the session waits on one
    ///   (`pool.session_acquire_wait`);
    /// - among accounts otherwise equal (priority, load ratio, waiters) the one with the lower
    ///   share of its conns in use wins, so new sessions spread over equal accounts instead of
    ///   filling the lowest id (idle sessions hold conns but no slots, so their accounts tie on
    ///   load). An account not listed counts as none in use, with room.
    pub conn_use: &'a [ConnUse],
    /// The transport the caller needs: [`Transport::WsV2`] for a WebSocket session (only WS
    /// accounts qualify); [`Transport::Http`] for an HTTP request (any account qualifies: the
    /// gateway serves HTTP over either upstream transport)
    pub transport: Transport,
}

impl ScheduleRequest<'_> {
    /// A request with no bindings and no exclusions
    pub fn fresh(transport: Transport) -> Self {
        Self {
            bound_account: None,
            connection_local: false,
            session_account: None,
            exclude: &[],
            conn_use: &[],
            transport,
        }
    }
}

/// One account's pool as a new WebSocket session sees it (see [`ScheduleRequest::conn_use`])
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnUse {
    /// The account
    pub account: AccountId,
    /// Holders with a conn of the pool (a session keeps its conn between turns) or waiting
    /// for one
    pub in_use: u32,
    /// The pool's cap on conns; zero is treated as one
    pub cap: u32,
    /// No conn for a new session now (every conn leased at its cap, or holders queued)
    pub full: bool,
}

impl ConnUse {
    /// Whether `account`'s pool is listed in `uses` as having no conn for a session now
    pub(crate) fn is_full_in(uses: &[Self], account: AccountId) -> bool {
        uses.iter().any(|u| u.account == account && u.full)
    }

    /// `in_use / cap` of `account` in `uses` (none listed: zero) against `other`'s, compared
    /// exactly (cross-multiplied, no floats)
    pub(crate) fn cmp_in(uses: &[Self], account: AccountId, other: AccountId) -> Ordering {
        let of = |id| {
            uses.iter()
                .find(|u| u.account == id)
                .map_or((0, 1), |u| (u64::from(u.in_use), u64::from(u.cap.max(1))))
        };
        let ((mine, my_cap), (theirs, their_cap)) = (of(account), of(other));
        (mine * their_cap).cmp(&(theirs * my_cap))
    }
}

/// The scheduler's answer
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Use this account
    Schedule(Choice),
    /// Answer the client with this failure instead
    Reject(Reject),
}

/// A chosen account
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The account
    pub account: AccountId,
    /// The account's max concurrency at decision time; the session keeps it and passes it to
    /// `acquire_slot` on every later turn (a reload does not change a running session)
    pub max_concurrency: u32,
    /// Which layer chose it
    pub layer: Layer,
}

/// Which scheduling layer made a choice (logs, metrics, snapshots)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The `previous_response_id` binding
    PreviousResponse,
    /// The session binding (`session-id` or `prompt_cache_key`)
    Session,
    /// The least-loaded usable account
    LeastLoaded,
    /// Nothing was usable: the failing account whose last failure is the oldest
    LastResort,
}

impl Layer {
    /// Stable snake-case name for logs and metric labels
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreviousResponse => "previous_response",
            Self::Session => "session",
            Self::LeastLoaded => "least_loaded",
            Self::LastResort => "last_resort",
        }
    }
}

/// Why no account was chosen; each maps to one client-visible answer
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// A bound create that cannot reach its account: the caller sends upstream's exact
    /// `previous_response_not_found` error (status 400). Given when the chain is connection
    /// local and its account is unusable, when the bound account is no longer configured, or
    /// when it no longer resolves to the transport the caller needs (a `force_http` rollback):
    /// in each case the response cannot be continued anywhere this caller can reach, and the
    /// client's answer to this error is to resend with full context.
    PreviousResponseNotFound,
    /// The bound account is cooling down: status 429 with `Retry-After` at `until`
    RateLimited {
        /// The bound account
        account: AccountId,
        /// When its cooldown ends
        until: Instant,
    },
    /// The bound account is disabled (credentials refused): status 503
    AccountDisabled {
        /// The bound account
        account: AccountId,
    },
    /// Every eligible account that is not disabled is rate limited (429 upstream): status 429
    /// with `Retry-After` at `retry_at`, the earliest reset
    AllRateLimited {
        /// When the first rate limit ends
        retry_at: Instant,
    },
    /// No usable account: status 503, with `Retry-After` at `retry_at` when some otherwise
    /// eligible account is only cooling down. Also given to a bound create whose account is
    /// usable but was already tried for this response (it cannot move).
    NoAccount {
        /// The earliest cooldown end among eligible but cooling accounts
        retry_at: Option<Instant>,
    },
    /// A WebSocket session and every usable account resolves to HTTP: status 426 before the
    /// upgrade, so clients such as Codex switch to HTTP at once (after the upgrade the shell
    /// answers 503, as for [`Reject::NoAccount`])
    UpgradeRequired,
}

impl Reject {
    /// The HTTP status (or the `error` event's `status`) this answer carries
    pub fn status(self) -> u16 {
        match self {
            Self::PreviousResponseNotFound => 400,
            Self::RateLimited { .. } | Self::AllRateLimited { .. } => 429,
            Self::AccountDisabled { .. } | Self::NoAccount { .. } => 503,
            Self::UpgradeRequired => 426,
        }
    }

    /// Stable snake-case code for logs and metric labels
    pub fn code(self) -> &'static str {
        match self {
            Self::PreviousResponseNotFound => "previous_response_not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::AllRateLimited { .. } => "all_rate_limited",
            Self::AccountDisabled { .. } => "account_disabled",
            Self::NoAccount { .. } => "no_account",
            Self::UpgradeRequired => "upgrade_required",
        }
    }

    /// The `Retry-After` value in whole seconds (rounded up, at least 1), if the answer has one
    pub fn retry_after_secs(self, now: Instant) -> Option<u64> {
        let at = match self {
            Self::RateLimited { until, .. } => until,
            Self::NoAccount { retry_at: Some(at) } | Self::AllRateLimited { retry_at: at } => at,
            _ => return None,
        };
        Some(ceil_secs(at.saturating_duration_since(now)).max(1))
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schedule(c) => {
                write!(
                    f,
                    "schedule {} via {} (max {})",
                    c.account,
                    c.layer.as_str(),
                    c.max_concurrency
                )
            }
            Self::Reject(r) => write!(f, "reject {} {}", r.status(), r.code()),
        }
    }
}
