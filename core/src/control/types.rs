//! Values that cross the control boundary.

use std::sync::Arc;
use std::time::Duration;

use crate::conn::CompatKey;
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::resolver::AccountProtocol;
use crate::session::SessionInput;
use crate::store::{BindingRef, StoreRequest};
use crate::turn::ModelMap;
use crate::{AccountId, ConnId, SessionId, TurnId};

/// One configured upstream account, as far as decisions go (URLs and credentials stay in the
/// shell)
#[derive(Clone, Debug, PartialEq)]
pub struct AccountSpec {
    /// The account
    pub id: AccountId,
    /// Its name, for logs
    pub name: String,
    /// What the protocol resolver needs
    pub protocol: AccountProtocol,
    /// Unfinished responses allowed on this instance
    pub concurrency: u32,
    /// Higher number = preferred while it has a free slot (see the scheduler)
    pub priority: i32,
    /// Client model name → upstream model name
    pub model_map: Arc<ModelMap>,
}

/// Why an upgrade is answered before the 101
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// No account is usable now: 503, with `Retry-After` when a cooldown's end is known
    NoUsableAccount {
        /// Seconds until the earliest cooldown ends (rounded up, at least 1)
        retry_after: Option<u64>,
    },
    /// Every account that could serve is rate limited: 429 with `Retry-After`
    RateLimited {
        /// Seconds until the earliest rate limit ends (rounded up, at least 1)
        retry_after: u64,
    },
    /// Every usable account resolves to HTTP: 426, so clients such as Codex switch to HTTP
    UpgradeRequired,
}

impl UpgradeRefusal {
    /// The answer before the 101, with `Retry-After` when a cooldown's end is known
    pub fn error(self) -> GatewayError {
        match self {
            Self::NoUsableAccount { retry_after } => GatewayError::new(
                503,
                ErrorType::Server,
                Some(ErrorCode::NoAccountAvailable),
                "no upstream account is usable right now; retry later",
            )
            .with_retry_after(retry_after),
            Self::RateLimited { retry_after } => GatewayError::rate_limited(
                "every upstream account is rate limited; retry after the time in Retry-After"
                    .to_owned(),
                Some(retry_after),
            ),
            Self::UpgradeRequired => GatewayError::new(
                426,
                ErrorType::InvalidRequest,
                Some(ErrorCode::UpgradeRequired),
                "WebSocket mode is not available on this gateway; use HTTP POST /v1/responses",
            ),
        }
    }
}

/// A dial that did not give a usable conn
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialFailure {
    /// The upgrade's HTTP status, when upstream answered one
    pub status: Option<u16>,
    /// The reset upstream named (`Retry-After`, rate-limit headers)
    pub retry_after: Option<Duration>,
    /// What went wrong, for the log (never credentials)
    pub message: String,
    /// The failure is ours, not the account's (out of descriptors or memory, no local port):
    /// it never counts against the account's health
    pub local: bool,
}

/// Something worth a log line or a metric
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlEvent {
    /// A create has to queue for one of its account's concurrency slots: none was free (its
    /// grant comes when one is)
    SlotWaiting {
        /// The session or HTTP request
        session: SessionId,
        /// Its create
        turn: TurnId,
        /// The account
        account: AccountId,
        /// The create's limit on the account
        max_concurrency: u32,
    },
    /// A session was given an account
    Scheduled {
        /// The session
        session: SessionId,
        /// The account
        account: AccountId,
        /// Which layer chose it (`previous_response`, `session`, `least_loaded`)
        layer: &'static str,
    },
    /// A session's create was refused an account
    ScheduleRejected {
        /// The session
        session: SessionId,
        /// Why (`rate_limited`, `no_account`, …)
        code: &'static str,
    },
    /// A create continuing `previous_response_id` was refused by the group rule: answered
    /// `previous_response_not_found`, nothing went upstream
    ContinuationRefused {
        /// The session or HTTP request
        session: SessionId,
        /// Its group
        group: String,
        /// Why: `other_group` (another group created the response) or `no_record`
        /// (`store.unknown_previous_response = "refuse"`)
        reason: &'static str,
    },
    /// A dial failed
    DialFailed {
        /// The account
        account: AccountId,
        /// The conn that was being dialed
        conn: ConnId,
        /// Upstream's status, if any
        status: Option<u16>,
        /// What went wrong
        message: String,
    },
    /// Upstream refused the account's credentials: unusable until the configuration is reloaded
    AccountDisabled {
        /// The account
        account: AccountId,
    },
    /// An account's cooldown ended
    AccountUsable {
        /// The account
        account: AccountId,
    },
    /// A probe dial started for an account cooling down after failed dials
    ProbeStarted {
        /// The account
        account: AccountId,
    },
    /// Writing a binding to the store failed (the local binding still holds): the shell logs
    /// a warning with group, account and what was bound, and counts it by kind
    StoreSetFailed {
        /// The binding's group
        group: String,
        /// The account it bound to
        account: AccountId,
        /// What was bound: a response id, or a session's hashed store key (never client text)
        binding: BindingRef,
    },
    /// The store's breaker opened: decisions stop waiting on it
    StoreBreakerOpened,
    /// The store's breaker closed
    StoreBreakerClosed,
}

/// Work for the shell
#[derive(Clone, Debug, PartialEq)]
pub enum ControlOutput {
    /// Deliver to that session's task (`Session::handle_control`)
    Session(SessionId, SessionInput),
    /// Deliver to that HTTP request's task (`HttpTurn::handle_control`)
    Http(SessionId, crate::http::HttpInput),
    /// Dial a new conn of `account`; per-session headers only when `for_session` is set. Answer
    /// with `handle_dial_ok` / `handle_dial_failed`.
    Dial {
        /// The new conn's handle
        conn: ConnId,
        /// The account to dial
        account: AccountId,
        /// The pool key: its beta header values go on the upgrade
        compat: CompatKey,
        /// The session the dial is for (its per-session headers go on the upgrade)
        for_session: Option<SessionId>,
    },
    /// Ping an idle conn; report its pong with `handle_idle_pong`
    Ping {
        /// The account
        account: AccountId,
        /// The conn
        conn: ConnId,
    },
    /// Close a conn (idle, or released not reusable)
    Close {
        /// The account
        account: AccountId,
        /// The conn
        conn: ConnId,
    },
    /// Execute a store command; answer with `handle_store_reply`
    Store(StoreRequest),
    /// Log or count
    Event(ControlEvent),
}
