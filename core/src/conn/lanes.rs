//! The responses open on one upstream connection, per lane, and which response owns each
//! upstream event.
//!
//! Upstream runs each lane FIFO, so an event on lane `L` belongs to the oldest unfinished
//! response on `L`. Two exceptions make lanes more than queues: an accepted steer makes the
//! next `response.created` on its lane an automatic successor (a response no client create
//! asked for), and an `error` event without a lane ends the oldest default-lane response — or,
//! with none open, every response on the conn.

use std::time::Instant;

use crate::event::{ServerEventKind, Usage};
use crate::{FreeWhenEmpty, Lane, ResponseId, TurnId};

/// How a response ended
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `response.completed`
    Completed,
    /// `response.incomplete`
    Incomplete,
    /// `response.failed`
    Failed,
    /// An `error` event with this status ended it
    Error {
        /// The envelope's status (or its class default)
        status: u16,
        /// The reset the error names (rate limits), for the account's cooldown
        retry_after: Option<std::time::Duration>,
    },
    /// The conn was lost (read error, close, abandoned write, timeout) before its terminal
    UpstreamLost,
    /// Upstream sent none of its events for `upstream.read_timeout` while it ran (the head of
    /// its lane), or it was queued behind such a response on its lane: the gateway ended it
    Stalled,
    /// Still open when the gateway's `shutdown_grace` ran out: the gateway ended it
    CutAtShutdown,
}

impl Outcome {
    /// Short lowercase name for traces, logs and metric labels
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
            Self::Error { .. } => "error",
            Self::UpstreamLost => "upstream_lost",
            Self::Stalled => "stalled",
            Self::CutAtShutdown => "cut_at_shutdown",
        }
    }

    /// Whether upstream ended the response with a terminal event of its own (so its id may
    /// be bound and continued), rather than the gateway or a lost conn ending it
    pub fn is_upstream_terminal(&self) -> bool {
        !matches!(
            self,
            Self::UpstreamLost | Self::Stalled | Self::CutAtShutdown
        )
    }
}

/// One response forwarded upstream and not yet ended (or as it stood when it ended)
#[derive(Clone, Debug)]
pub struct OpenResponse {
    /// The session's handle for it
    pub turn: TurnId,
    /// Its lane
    pub lane: Lane,
    /// Its id, once `response.created` named it
    pub id: Option<ResponseId>,
    /// The `previous_response_id` it continues
    pub previous: Option<ResponseId>,
    /// When the create was handed to the shell for writing
    pub sent_at: Instant,
    /// When its first event arrived (time to first event = this − `sent_at`)
    pub first_event_at: Option<Instant>,
    /// An automatic successor after a steer (no client create)
    pub successor: bool,
    /// Start of its current silence: its last event, or when it became the head of its lane
    /// (its send, or its predecessor's end). Only a lane's head runs upstream, so only a
    /// head's silence counts against `upstream.read_timeout`.
    pub quiet_since: Instant,
}

impl OpenResponse {
    fn into_ended(self, outcome: Outcome, store: Option<bool>, usage: Option<Usage>) -> Ended {
        Ended {
            response: self,
            outcome,
            store,
            usage,
            cut_at_conn_limit: false,
        }
    }
}

/// A response that has ended, as reported to the session
#[derive(Clone, Debug)]
pub struct Ended {
    /// The response as it stood when it ended (its id from its terminal event when
    /// `response.created` named none)
    pub response: OpenResponse,
    /// How it ended
    pub outcome: Outcome,
    /// `response.store` of its terminal event
    pub store: Option<bool>,
    /// Usage of its terminal event
    pub usage: Option<Usage>,
    /// Still open when upstream cut its conn at the connection limit: ended by upstream's
    /// `websocket_connection_limit_reached` error, or lost with a conn that had reached it
    pub cut_at_conn_limit: bool,
}

/// Who owns an upstream text frame
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A stream event of this response (the head of its lane)
    Response {
        /// The response
        turn: TurnId,
        /// This is the response's first event
        first: bool,
    },
    /// A `response.steer.*` / `response.inject.*` event: belongs to the session, not to a response
    Steering,
    /// An `error` with no response to end: it ended every open response on the conn
    ConnectionError,
    /// A frame no open response or accepted steer can own
    Tail,
}

/// The open responses of one conn, in send order
#[derive(Clone, Debug, Default)]
pub(crate) struct Lanes {
    open: Vec<OpenResponse>,
    /// Lanes whose next `response.created` is an automatic successor (one entry per steer)
    successors_due: Vec<Lane>,
    /// Lanes of steers sent and not yet answered, in send order
    steers_sent: Vec<Lane>,
}

impl Lanes {
    /// Frees the room of the lists that are empty (the conn's holder idles between turns)
    pub(crate) fn free_empty_lists(&mut self) {
        self.open.free_when_empty();
        self.successors_due.free_when_empty();
        self.steers_sent.free_when_empty();
    }

    /// Responses forwarded and not yet ended
    pub(crate) fn unfinished(&self) -> usize {
        self.open.len()
    }

    /// Whether a steer is waiting for its answer or its successor
    pub(crate) fn steering(&self) -> bool {
        !self.steers_sent.is_empty() || !self.successors_due.is_empty()
    }

    /// Records a create written upstream
    pub(crate) fn push(&mut self, response: OpenResponse) {
        self.open.push(response);
    }

    /// Records a steer of `target` written upstream; false if `target` is not open here
    pub(crate) fn steer_sent(&mut self, target: &ResponseId) -> bool {
        match self.open.iter().find(|r| r.id.as_ref() == Some(target)) {
            Some(r) => {
                self.steers_sent.push(r.lane.clone());
                true
            }
            None => false,
        }
    }

    /// The lane of the open response named `id`
    pub(crate) fn lane_of(&self, id: &ResponseId) -> Option<&Lane> {
        self.open
            .iter()
            .find(|r| r.id.as_ref() == Some(id))
            .map(|r| &r.lane)
    }

    /// Finds who owns an event of `kind` on lane `lane` (raw `stream_id` bytes)
    ///
    /// Mutates only bookkeeping (first-event time, successor insertion); ending a response is
    /// [`Lanes::end_head`]'s job, so the caller can read the frame's terminal data first.
    pub(crate) fn route(
        &mut self,
        kind: ServerEventKind,
        lane: Option<&[u8]>,
        now: Instant,
        next_turn: &mut impl FnMut() -> TurnId,
    ) -> Owner {
        if kind.is_steer_or_inject() {
            // Steer answers come in the order the steers were sent. Only an accepted steer
            // announces an automatic successor; pending and failed ones do not.
            let answered = matches!(
                kind,
                ServerEventKind::SteerAccepted
                    | ServerEventKind::SteerFailed
                    | ServerEventKind::SteerPending
            );
            if answered && !self.steers_sent.is_empty() {
                let lane = self.steers_sent.remove(0);
                if kind == ServerEventKind::SteerAccepted {
                    self.successors_due.push(lane);
                }
            }
            return Owner::Steering;
        }
        if kind == ServerEventKind::ResponseCreated
            && let Some(pos) = self.successors_due.iter().position(|l| lane_eq(l, lane))
        {
            let lane = self.successors_due.remove(pos);
            // Before the lane's responses that have not started: upstream starts the successor
            // at once, ahead of creates still queued on the lane.
            let insert_at = self
                .open
                .iter()
                .position(|r| r.lane == lane && r.first_event_at.is_none())
                .unwrap_or(self.open.len());
            self.open.insert(
                insert_at,
                OpenResponse {
                    turn: next_turn(),
                    lane,
                    id: None,
                    previous: None,
                    sent_at: now,
                    first_event_at: Some(now),
                    successor: true,
                    quiet_since: now,
                },
            );
            return Owner::Response {
                turn: self.open[insert_at].turn,
                first: true,
            };
        }
        match self.head_index(lane) {
            Some(i) => {
                let r = &mut self.open[i];
                r.quiet_since = now;
                let first = r.first_event_at.is_none();
                if first {
                    r.first_event_at = Some(now);
                }
                Owner::Response {
                    turn: r.turn,
                    first,
                }
            }
            None if kind == ServerEventKind::Error => Owner::ConnectionError,
            None => Owner::Tail,
        }
    }

    /// Names the head response of `turn` (from its `response.created`)
    pub(crate) fn name(&mut self, turn: TurnId, id: ResponseId) {
        if let Some(r) = self.open.iter_mut().find(|r| r.turn == turn) {
            r.id = Some(id);
        }
    }

    /// Ends `turn` with `outcome` at `now`; the next response on its lane starts its silence
    /// clock then
    pub(crate) fn end(
        &mut self,
        turn: TurnId,
        outcome: Outcome,
        store: Option<bool>,
        usage: Option<Usage>,
        now: Instant,
    ) -> Option<Ended> {
        let pos = self.open.iter().position(|r| r.turn == turn)?;
        let r = self.open.remove(pos);
        if let Some(next) = self.open[pos..].iter_mut().find(|n| n.lane == r.lane) {
            next.quiet_since = next.quiet_since.max(now);
        }
        Some(r.into_ended(outcome, store, usage))
    }

    /// When the first lane head's silence reaches `limit`
    pub(crate) fn stall_deadline(&self, limit: std::time::Duration) -> Option<Instant> {
        self.heads().map(|r| r.quiet_since + limit).min()
    }

    /// Lanes whose head has been silent for `limit` at `now`
    pub(crate) fn stalled(&self, now: Instant, limit: std::time::Duration) -> Vec<Lane> {
        self.heads()
            .filter(|r| r.quiet_since + limit <= now)
            .map(|r| r.lane.clone())
            .collect()
    }

    /// Ends every response on the lanes `on` picks with `outcome`, oldest first: the whole conn
    /// (lost, a connection-level error), or a lane whose head the gateway gave up on (any later
    /// event on the lane could be the head's, so none is trusted)
    pub(crate) fn end_lanes(
        &mut self,
        on: impl Fn(&Lane) -> bool,
        outcome: &Outcome,
        out: &mut impl FnMut(Ended),
    ) {
        self.steers_sent.retain(|l| !on(l));
        self.successors_due.retain(|l| !on(l));
        for r in self.open.extract_if(.., |r| on(&r.lane)) {
            out(r.into_ended(outcome.clone(), None, None));
        }
    }

    /// Restarts every silence clock at `now` (reading resumed after a pause: what upstream
    /// sent meanwhile was not read, so the silence proves nothing)
    pub(crate) fn restart_clocks(&mut self, now: Instant) {
        for r in &mut self.open {
            r.quiet_since = r.quiet_since.max(now);
        }
    }

    /// The head (oldest open response) of each lane
    fn heads(&self) -> impl Iterator<Item = &OpenResponse> {
        self.open
            .iter()
            .enumerate()
            .filter(|(i, r)| !self.open[..*i].iter().any(|o| o.lane == r.lane))
            .map(|(_, r)| r)
    }

    /// Index of the oldest open response on `lane`
    fn head_index(&self, lane: Option<&[u8]>) -> Option<usize> {
        self.open.iter().position(|r| lane_eq(&r.lane, lane))
    }
}

/// Whether a stored lane equals raw `stream_id` bytes (None = default lane)
pub(crate) fn lane_eq(lane: &Lane, raw: Option<&[u8]>) -> bool {
    match (lane, raw) {
        (None, None) => true,
        (Some(l), Some(r)) => l.as_str().as_bytes() == r,
        _ => false,
    }
}
