//! Values that cross the HTTP turn's boundary: what the shell writes, what the control plane
//! answers, what is worth a log line.

use std::time::Duration;

use bytes::Bytes;

use crate::conn::{CompatKey, Release, UpstreamTransmit};
use crate::resolver::Transport;
use crate::scheduler::GiveUpReason;
use crate::session::Admission;
use crate::turn::{Answer, ResponseBind, SessionInfo, SlotRequest, TurnEvent};
use crate::{AccountId, ConnId, ResponseId};

/// The `Content-Type` of an answer
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// `text/event-stream` (SSE, `stream:true`)
    EventStream,
    /// `application/json` (errors before the first event, `stream:false` replies)
    Json,
}

impl ContentType {
    /// The header value
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventStream => "text/event-stream",
            Self::Json => "application/json",
        }
    }
}

/// Something for the shell to write: to the client's HTTP response, to the upstream conn, or
/// to the account's HTTP upstream
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpTransmit {
    /// The response head; comes once, before any `Body`
    Head {
        /// HTTP status
        status: u16,
        /// `Content-Type`
        content_type: ContentType,
        /// `Retry-After` in seconds, when the answer names one
        retry_after: Option<u64>,
    },
    /// A piece of the response body: flush it (one SSE event, or the whole JSON)
    Body(Bytes),
    /// The response is complete: finish it (chunked terminator) and drop the request
    End,
    /// Something to write on the leased upstream conn
    Upstream {
        /// The conn
        conn: ConnId,
        /// What to write
        msg: UpstreamTransmit,
    },
    /// The account resolves to HTTP: POST `body` to its `/responses` URL with its credentials
    /// and report the reply's head with `handle_forward_head` (or a failure before it with
    /// `handle_forward_failed`)
    Forward {
        /// The account
        account: AccountId,
        /// The client's body, model mapped; `stream` as the client asked
        body: Bytes,
    },
    /// Relay the upstream reply as it is (status, content type, body, flushed as it arrives),
    /// then call `handle_forward_end`; this stands for `Head` … `End` of the answer
    PassThrough,
    /// Drop the upstream reply unread (a retry follows)
    DiscardForward,
}

/// What an HTTP turn asks of the control plane ([`Control::handle_http_request`])
///
/// [`Control::handle_http_request`]: crate::control::Control::handle_http_request
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpTurnRequest {
    /// Register the request (first request, once)
    Open(SessionInfo),
    /// Choose an account; answered with `HttpInput::Admission` / `Answer::Refused`
    Schedule {
        /// The body's `previous_response_id`
        previous: Option<ResponseId>,
        /// The body's `prompt_cache_key`
        prompt_cache_key: Option<Bytes>,
        /// Accounts not to choose (a failover)
        exclude: Vec<AccountId>,
    },
    /// Lease a conn; answered with `Answer::Lease` / `Answer::LeaseRefused`
    Acquire {
        /// The account
        account: AccountId,
        /// The pool key
        compat: CompatKey,
        /// Prefer the idle conn whose lane cache holds this response
        preferred: Option<ResponseId>,
        /// `Some(accounts already tried)` when the turn may move to another account if the
        /// dial is slow (answered `LeaseRefused(DialWait)` after `pool.dial_wait`)
        may_move_from: Option<Vec<AccountId>>,
    },
    /// A request about a create's concurrency slot; `SlotRequest::Acquire` is answered with
    /// a grant for its turn
    Slot(SlotRequest),
    /// Give the conn back; with `hold`, keep it idle for that `store:false` chain's next turn
    Release {
        /// The conn and whether it is reusable
        release: Release,
        /// The chain to hold it for
        hold: Option<ResponseId>,
    },
    /// Abandon any write in flight on `conn` (the client left); the shell performs it and
    /// reports it with `UpstreamInput::WriteAbandoned` — not a request for the control plane
    AbandonWrites {
        /// The conn
        conn: ConnId,
    },
    /// Record where a response ended up (store: → account; locally: → conn, lane, store)
    Bind(ResponseBind),
    /// The request is over: forget it, cancel any wait (last request, once)
    Close,
}

/// The account chosen for an HTTP turn
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAdmission {
    /// The account, its concurrency limit at decision time, the pool key, the model map
    pub common: Admission,
    /// How the account talks to upstream: WebSocket (a pooled conn) or HTTP (a forwarded POST)
    pub transport: Transport,
    /// The chain lives only in one conn's cache (`store:false` previous response)
    pub connection_local: bool,
    /// An idle conn of the account caches the previous response: prefer it
    pub preferred: Option<ResponseId>,
}

/// An answer of the control plane for one HTTP turn (`ControlOutput::Http`)
#[derive(Clone, Debug, PartialEq)]
pub enum HttpInput {
    /// The account
    Admission(HttpAdmission),
    /// A refusal (no account, or a chain that cannot continue: answer the client), a conn or
    /// none, a slot for this attempt
    Answer(Answer),
}

crate::turn::holder_input!(HttpInput);

/// Something worth a log line or a metric
#[derive(Clone, Debug, PartialEq)]
pub enum HttpEvent {
    /// What every create's life produces (an attempt that failed before anything reached the
    /// client retries: the control plane feeds its failure to the account's health)
    Turn(TurnEvent),
    /// The answer's head went out (or a pass-through began: `status` 0 then)
    Answered {
        /// HTTP status
        status: u16,
        /// SSE (true) or JSON (false)
        streamed: bool,
    },
    /// The turn gave up retrying
    GaveUp {
        /// Why
        reason: GiveUpReason,
    },
    /// A forwarded POST (HTTP account) ended
    ForwardEnded {
        /// The account
        account: AccountId,
        /// Upstream's status (0: no reply)
        status: u16,
        /// How long it took from the POST
        duration: Duration,
    },
    /// The client left; with `draining`, the open response is read to its terminal
    ClientGone {
        /// A response is open and will be drained
        draining: bool,
    },
}
