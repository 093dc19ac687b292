//! Values that cross the session boundary: what the shell feeds in and what it must do.

use std::sync::Arc;

use bytes::Bytes;

use crate::conn::{CompatKey, Release, UpstreamTransmit};
use crate::errors::Refusal;
use crate::turn::{Answer, ModelMap, ResponseBind, SlotRequest, TurnEvent};
use crate::{AccountId, ConnId, ResponseId, TurnId};

/// A frame for one of the session's two hops
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// A text frame for the client socket (often the very buffer read from upstream)
    Client(Bytes),
    /// A WebSocket ping for the client (keepalive); answer its pong with `handle_client_pong`
    ClientPing,
    /// Something to write on an upstream conn
    Upstream {
        /// The conn
        conn: ConnId,
        /// What to write
        msg: UpstreamTransmit,
    },
}

/// One of the session's two hops
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// The client socket
    Client,
    /// One of the session's upstream conns
    Upstream(ConnId),
}

/// How a client broke the WebSocket protocol (RFC 6455)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientProtocolError {
    /// A text message (or a close reason) that is not UTF-8: close 1007
    InvalidUtf8,
    /// Any other violation — reserved bits, an unmasked frame, a stray continuation, a
    /// fragmented or over-long control frame, an unknown opcode: close 1002
    Violation,
}

impl ClientProtocolError {
    /// The close code RFC 6455 §7.4.1 gives it
    pub fn close_code(self) -> u16 {
        match self {
            Self::InvalidUtf8 => 1007,
            Self::Violation => 1002,
        }
    }
}

/// What the scheduler decided for a session: its account and the terms of every turn
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The account
    pub account: AccountId,
    /// Concurrency limit applied to every turn of the session (seed fix: first and later)
    pub max_concurrency: u32,
    /// Pool key for this session's conns
    pub compat: CompatKey,
    /// The account's model map
    pub model_map: Arc<ModelMap>,
}

/// An answer of the control plane for one session (`ControlOutput::Session`)
#[derive(Clone, Debug, PartialEq)]
pub enum SessionInput {
    /// The account chosen for the session
    Admission(Admission),
    /// A refusal (no account: the create that asked gets it), a conn or none, a slot
    Answer(Answer),
    /// Creates wait for a slot of the account this blocked client holds: give the slots up
    /// (close the client 1008, cut its open responses)
    YieldSlots,
    /// The group rule's answer to `SessionRequest::CheckContinuation`
    ContinuationJudged {
        /// The create
        turn: TurnId,
        /// False: answer it `previous_response_not_found`, nothing goes upstream
        allowed: bool,
    },
}

crate::turn::holder_input!(SessionInput);

/// What the session asks of the rest of the gateway; the shell routes each to its machine
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionRequest {
    /// Choose an account (store lookup + scheduler); answer with `handle_admission`
    Schedule {
        /// The create that needs it
        turn: TurnId,
        /// Its `previous_response_id`
        previous: Option<ResponseId>,
        /// Whether its chain only lives on the conn that holds it
        connection_local: bool,
        /// Its `prompt_cache_key` (the session binding key when no `session-id` header was sent)
        prompt_cache_key: Option<Bytes>,
        /// Accounts not to choose (this session failed over away from them)
        exclude: Vec<AccountId>,
    },
    /// Judge a later create that continues a response this session did not create by the
    /// group rule (its record's group must be the session's); answer with
    /// `SessionInput::ContinuationJudged`
    CheckContinuation {
        /// The create
        turn: TurnId,
        /// Its `previous_response_id`
        previous: ResponseId,
    },
    /// Lease a conn from the account's pool; answer with `handle_lease` / `handle_lease_refused`
    Acquire {
        /// The account
        account: AccountId,
        /// The compatibility key
        compat: CompatKey,
        /// `Some(accounts already tried)` when the waiting creates may move to another account
        /// if the dial is slow (the pool then answers `LeaseRefused(DialWait)` after
        /// `pool.dial_wait`); `None` when they must stay
        may_move_from: Option<Vec<AccountId>>,
    },
    /// A request about a create's concurrency slot; `SlotRequest::Acquire` is answered with
    /// a grant for its turn
    Slot(SlotRequest),
    /// The client has read nothing for `session.blocked_client_timeout` while responses of
    /// `account` hold slots (`blocked`), or reads again (`!blocked`): while blocked, a create
    /// waiting for one of the account's slots makes the control plane answer
    /// `SessionInput::YieldSlots`
    ClientBlocked {
        /// The account whose slots it holds
        account: AccountId,
        /// Blocked (true) or reading again (false)
        blocked: bool,
    },
    /// Give a conn back to the pool
    Release(Release),
    /// Abandon any write in flight on `conn` (the session was cancelled); report it with
    /// `UpstreamInput::WriteAbandoned`
    AbandonWrites {
        /// The conn
        conn: ConnId,
    },
    /// Record where a response ended up (store: → account; locally: → conn, lane, store)
    Bind(ResponseBind),
    /// Close the client socket with this code (after the queued client frames)
    CloseClient {
        /// WebSocket close code
        code: u16,
        /// Close reason
        reason: &'static str,
    },
}

/// Something worth a log line or a metric
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// What every create's life produces
    Turn(TurnEvent),
    /// A create was answered by the gateway itself
    Refused {
        /// The create
        turn: TurnId,
        /// The answer
        refusal: Refusal,
    },
    /// A held create was dropped because the client left before it went upstream
    Dropped {
        /// The create
        turn: TurnId,
    },
    /// The active conn stopped taking creates; new ones go to a fresh conn
    Rotated {
        /// The conn that retires
        from: ConnId,
    },
    /// The client left; the session drains open responses if there are any
    ClientGone {
        /// Open responses that will be drained
        draining: usize,
    },
}
