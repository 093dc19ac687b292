//! The values a create's life produces, exchanged by its holders, the control plane and the
//! driver: the account's model map, where a response ended up (its bind), and its report.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::conn::Outcome;
use crate::event::Usage;
use crate::scheduler::{FailureKind, RetryNote};
use crate::trace_context::TraceContext;
use crate::{AccountId, ConnId, Lane, ResponseId, TurnId};

/// Client model name → upstream model name, per account
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelMap(HashMap<String, String>);

impl ModelMap {
    /// A map from `(client, upstream)` pairs
    pub fn new<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The client model names this map knows
    pub fn client_models(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The upstream name of `client_model`, if the account maps it
    pub fn upstream_of(&self, client_model: &[u8]) -> Option<&str> {
        let name = std::str::from_utf8(client_model).ok()?;
        self.0.get(name).map(String::as_str)
    }
}

/// What the gateway knows about a create's client from its upgrade or POST request: the terms
/// every create of that client is scheduled with (group, client key, session key, pool-key
/// headers)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// Stickiness scope of the client key (`store.default_group` when it names none)
    pub group: String,
    /// The client key's identity (any value equal for all sockets of one key and distinct
    /// between keys): an account's slot waiters are served round-robin by it
    pub tenant: u64,
    /// The `session-id` header (the session binding key; else `prompt_cache_key`)
    pub session_key: Option<String>,
    /// `OpenAI-Beta` header values (part of the pool key)
    pub openai_beta: Vec<String>,
    /// `x-codex-beta-features` header values (part of the pool key)
    pub codex_beta_features: Vec<String>,
}

/// What a holder asks the control plane about a create's concurrency slot (a session's and an
/// HTTP turn's requests carry the same requests); a grant answers `Acquire` for its `turn`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRequest {
    /// Take one of the account's concurrency slots for `turn`
    Acquire {
        /// The create (a session's turn, an HTTP request's attempt)
        turn: TurnId,
        /// The account
        account: AccountId,
        /// The admission's limit
        max_concurrency: u32,
    },
    /// Stop waiting for a slot for `turn`
    CancelWait {
        /// The create
        turn: TurnId,
        /// The account
        account: AccountId,
    },
    /// Give a slot back (a response of the account ended, or an attempt failed)
    Release {
        /// The account
        account: AccountId,
    },
}

/// Where a response ended up: `response` → account for the store, and locally → conn, lane,
/// `store` flag (the cache that can continue it)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseBind {
    /// The response
    pub response: ResponseId,
    /// Its account
    pub account: AccountId,
    /// The conn whose cache holds it
    pub conn: ConnId,
    /// Its lane (always the default lane over HTTP)
    pub lane: Lane,
    /// Its `store` flag
    pub store: bool,
}

/// One ended response, for logs, metrics and billing
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseReport {
    /// The create's handle in its holder (a session's turn, an HTTP request's attempt)
    pub turn: TurnId,
    /// Upstream's id
    pub response: Option<ResponseId>,
    /// Its lane
    pub lane: Lane,
    /// Its account
    pub account: AccountId,
    /// The conn that carried it
    pub conn: ConnId,
    /// How it ended
    pub outcome: Outcome,
    /// Its usage
    pub usage: Option<Usage>,
    /// The model as the client named it (before any account model map), for per-model
    /// metrics; `None` when unknown (e.g. an automatic successor of an unnamed model)
    pub model: Option<Bytes>,
    /// The model sent upstream when the account's model map renamed it (else the client's)
    pub upstream_model: Option<Bytes>,
    /// The create arrived from the client (before any retry): the start of its span
    pub accepted_at: Instant,
    /// The client's trace context from the create's `client_metadata.traceparent`; the
    /// shell falls back to the upgrade's or POST's `traceparent` header
    pub trace_parent: Option<TraceContext>,
    /// Retries and failovers before the attempt that ended (the first
    /// [`MAX_RETRY_NOTES`](crate::scheduler::MAX_RETRY_NOTES))
    pub retries: Vec<RetryNote>,
    /// Create sent → first event
    pub time_to_first_event: Option<Duration>,
    /// Create sent → end
    pub duration: Duration,
    /// An automatic successor after a steer
    pub successor: bool,
    /// Ended while its holder drained after the client left
    pub drained: bool,
    /// Still open when upstream cut its conn at the connection limit
    /// (`wsv2_responses_cut_at_conn_limit_total`)
    pub cut_at_conn_limit: bool,
}

/// What a create's life produces alike under both holders, worth a log line or a metric; each
/// holder's event carries these as its `Turn` variant
#[derive(Clone, Debug, PartialEq)]
pub enum TurnEvent {
    /// A response ended (usage is billed even when the client had left)
    ResponseEnded(Box<ResponseReport>),
    /// A create that reached no upstream, or an attempt that failed before anything reached
    /// the client, is tried again
    Retrying {
        /// The create (a session's turn, an HTTP request's attempt)
        turn: TurnId,
        /// The account of the failed attempt
        account: AccountId,
        /// What failed
        failure: FailureKind,
        /// Whether the next attempt goes to another account
        switch_account: bool,
    },
    /// A frame from upstream no response could own; the conn is now dirty
    TailPacket {
        /// The conn
        conn: ConnId,
    },
    /// A frame from upstream that was not valid JSON; the conn is now dirty
    UpstreamGarbage {
        /// The conn
        conn: ConnId,
    },
    /// The drain after the client left ended
    DrainFinished {
        /// All responses reached their terminal in time
        clean: bool,
    },
    /// The holder is over; drop it
    Finished,
}
