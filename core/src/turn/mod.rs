//! What every create has, whoever holds it — a WebSocket [`Session`](crate::session::Session)
//! (many at a time) or an [`HttpTurn`](crate::http::HttpTurn) (one): its model names, its slot,
//! its retry pinning, the rule for its events once the client left, and its end (bind and
//! report). Both holders take these from here, so the rules hold on both paths by construction.
//!
//! A create's life is one machine, `Turn` (state.rs; its diagram is on its private state),
//! which both holders drive with the same named transitions: a `Session` holds many (held in
//! order, then open on its conns), an `HttpTurn` one. What is the holder's own stays with it:
//! a session's account and conns serve all its turns; an HTTP turn's client answer.

mod holder;
mod state;
mod types;

use std::time::Instant;

use bytes::Bytes;

pub(crate) use holder::holder_input;
pub(crate) use holder::socket_report;
pub use holder::{Answer, Holder, HolderInput, UpstreamInput};
pub(crate) use state::Turn;
pub use types::{ModelMap, ResponseBind, ResponseReport, SessionInfo, SlotRequest, TurnEvent};

use crate::conn::Ended;
use crate::errors::GatewayError;
use crate::event::{ServerEventKind, restore_event_model};
use crate::scheduler::{GiveUpReason, Pinning, RetryNote};
use crate::trace_context::TraceContext;
use crate::{AccountId, ConnId};

/// A create's concurrency slot on its account
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not asked (or given back)
    None,
    /// Asked of the account; the control plane answers with a grant
    Waiting(AccountId),
    /// Held until the response ends or the attempt fails
    Granted(AccountId),
}

/// Whether anyone reads a create's events
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The client is there: events are relayed (the model name restored)
    Client,
    /// The client left: the response is only read to its terminal (seed fix 11)
    Gone,
}

/// The client's and the upstream's name of a create's model, when the account renames it
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Models {
    /// As the client named it
    pub(crate) client: Bytes,
    /// As the account's map names it upstream
    pub(crate) upstream: Bytes,
}

impl Models {
    /// The pair for `client` under `map`, when the map renames it
    pub(crate) fn of(map: &ModelMap, client: Bytes) -> Option<Self> {
        let upstream = map.upstream_of(&client)?;
        (upstream.as_bytes() != &client[..]).then(|| Self {
            upstream: Bytes::copy_from_slice(upstream.as_bytes()),
            client,
        })
    }

    /// The upstream name as text (a model map holds UTF-8 names)
    pub(crate) fn upstream_str(&self) -> &str {
        std::str::from_utf8(&self.upstream).unwrap_or_default()
    }
}

/// The frame a create's upstream event becomes for its client, or `None` when nobody reads it
/// (the client left: no rewrite, nothing written)
///
/// The byte pre-check keeps events that need no rewrite off the rewrite path entirely (no
/// buffer clone, no allocation): the frame leaves as the same buffer.
pub(crate) fn relay(
    models: Option<&Models>,
    kind: ServerEventKind,
    frame: Bytes,
    audience: Audience,
) -> Option<Bytes> {
    if audience == Audience::Gone {
        return None;
    }
    Some(match models {
        Some(m)
            if kind.may_carry_model() && memchr::memmem::find(&frame, &m.upstream).is_some() =>
        {
            restore_event_model(&frame, &m.upstream, &m.client)
        }
        _ => frame,
    })
}

/// The answer to a create lost with its conn once the retry rules gave up on it (`reason`)
pub(crate) fn upstream_lost(reason: GiveUpReason) -> GatewayError {
    GatewayError::upstream_lost(match reason {
        GiveUpReason::BudgetExhausted => {
            "the upstream connection was lost repeatedly within the retry budget"
        }
        GiveUpReason::SwitchLimit => "the upstream connection was lost on every account tried",
        _ => "the upstream connection was lost",
    })
}

/// How a create is tied to its account, for its retries: free, bound by its previous
/// response, or tied to the one conn whose cache holds a `store:false` chain
pub(crate) fn pinning(continues: bool, connection_local: bool) -> Pinning {
    match (continues, connection_local) {
        (false, _) => Pinning::Free,
        (true, true) => Pinning::ConnectionLocal,
        (true, false) => Pinning::Bound,
    }
}

/// What a create's report carries besides its end
#[derive(Clone, Debug)]
pub(crate) struct TurnFacts {
    /// The account it ran on
    pub(crate) account: AccountId,
    /// The model as the client named it (explicit or carried over)
    pub(crate) client_model: Option<Bytes>,
    /// Its model names when the account renames the model
    pub(crate) models: Option<Models>,
    /// When the client's create arrived
    pub(crate) accepted_at: Instant,
    /// The client's trace context
    pub(crate) trace_parent: Option<TraceContext>,
}

impl TurnFacts {
    /// Settles a response that ended on `conn` after `retries`: its bind when upstream
    /// finished it with an id (`store` defaults to `default_store`), and its report
    pub(crate) fn settle(
        &self,
        now: Instant,
        conn: ConnId,
        ended: Ended,
        default_store: bool,
        drained: bool,
        retries: Vec<RetryNote>,
    ) -> (Option<ResponseBind>, ResponseReport) {
        let r = ended.response;
        let bind =
            r.id.clone()
                .filter(|_| ended.outcome.is_upstream_terminal())
                .map(|response| ResponseBind {
                    response,
                    account: self.account,
                    conn,
                    lane: r.lane.clone(),
                    store: ended.store.unwrap_or(default_store),
                });
        let report = ResponseReport {
            turn: r.turn,
            response: r.id,
            lane: r.lane,
            account: self.account,
            conn,
            outcome: ended.outcome,
            usage: ended.usage,
            model: self.client_model.clone(),
            upstream_model: self.models.as_ref().map(|m| m.upstream.clone()),
            accepted_at: self.accepted_at,
            trace_parent: self.trace_parent,
            retries,
            time_to_first_event: r
                .first_event_at
                .map(|t| t.saturating_duration_since(r.sent_at)),
            duration: now.saturating_duration_since(r.sent_at),
            successor: r.successor,
            drained,
            cut_at_conn_limit: ended.cut_at_conn_limit,
        };
        (bind, report)
    }
}
