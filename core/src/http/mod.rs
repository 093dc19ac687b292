//! The HTTP bridge: one `POST /v1/responses` = one turn on a pooled upstream WebSocket.
//!
//! [`HttpTurn`] is a sans-IO machine for one request, in the style of
//! [`Session`](crate::session::Session): it validates the body, asks the control plane for an
//! account, a conn and a slot ([`HttpTurnRequest`] → [`Control::handle_http_request`] →
//! [`HttpInput`]), sends the `response.create` on the leased conn, and answers the client with
//! SSE (`stream:true`, one flushed `Body` per upstream event, framed with
//! [`sse_encode`](crate::event::sse_encode)) or with the final response object as JSON
//! (`stream:false`). Every decision is here; the shell only moves bytes.
//!
//! # Poll order
//!
//! After every `handle_*` call (and after [`HttpTurn::new`]), drain
//! [`HttpTurn::poll_transmit`], then [`HttpTurn::poll_request`], then [`HttpTurn::poll_event`],
//! each until `None`, then read [`HttpTurn::poll_timeout`] and arm one timer for it. Drop the
//! turn after [`TurnEvent::Finished`](crate::turn::TurnEvent::Finished).
//!
//! # Answers
//!
//! Exactly one answer per request: `Head`, then `Body`s, then `End` (or `PassThrough` … `End`
//! for an account that resolves to HTTP), nothing after `End`, nothing at all to a client that
//! left before the head.
//!
//! | when | `stream:true` | `stream:false` |
//! |---|---|---|
//! | body invalid, `stream_id`, no model, `background` on a WS account | 400 + error JSON | same |
//! | refused before upstream (no account, 429, chain gone, no conn, no slot) | status + error JSON | same |
//! | upstream `error` before the first event (after retries) | upstream's status + its error as JSON | same, until the reply |
//! | first event | 200 SSE, each event flushed | collected |
//! | terminal | SSE, then `End` | 200 + the `response` object |
//! | upstream `error` / conn lost after SSE began | flat SSE `error` event, then `End` | — |
//!
//! Retries and failover follow [`RetryState`](crate::scheduler::RetryState): until the first event is written
//! (`stream:false`: until the reply), within `scheduler.retry_total_budget`, at most
//! `scheduler.max_account_switches` account switches.
//!
//! [`Control::handle_http_request`]: crate::control::Control::handle_http_request

mod answer;
mod pipeline;
mod relay;
mod request;
mod types;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use answer::ErrorAnswer;
pub use types::{ContentType, HttpAdmission, HttpEvent, HttpInput, HttpTransmit, HttpTurnRequest};

use crate::conn::UpstreamConn;
use crate::errors::{GatewayError, Refusal};
use crate::rng::Jitter;
use crate::timer::{TimerName, TimerTable};
use crate::turn::{Answer, Holder, Models, SessionInfo, Turn, UpstreamInput, socket_report};
use crate::{AccountId, Config, ConnId, SessionId, TurnId};
use request::HttpRequest;

/// Where an HTTP request stands, besides its create ([`Turn`], which has the create's own
/// states: held, waiting for a slot, sent, relaying, ended)
///
/// ```text
///  new ─▶ Scheduling ─admission (WS account)─▶ Acquiring ─lease─▶ Attempt ─slot─▶ Forwarding
///            │    └─admission (HTTP account): its slot is asked──────▶ ▲  │   (HTTP account)  │
///            │                                    │ dial failed,          │ failed before the │ error reply,
///            │                                    │ dial slow             │ client saw        │ failed:
///            │                                    ▼                       ▼ anything: retry   ▼ retry
///            │                                 Backoff ◀──────────────────┴───────────────────┘
///            │                                    │ timer: Acquiring (same account) or Scheduling
///            ▼
///          Done ◀── from any stage: refused, invalid body, answered, given up, client gone
/// ```
///
/// `Attempt` covers the create's slot wait, its time upstream and its relay; a client that
/// leaves while its response is open leaves the turn in `Attempt`, reading the response to its
/// terminal (the create's events then go nowhere). Only [`HttpTurn::move_to`] moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for an account
    Scheduling,
    /// Waiting for a conn of the account's pool
    Acquiring,
    /// The create is on its way (slot, upstream, relay): its [`Turn`] says where
    Attempt,
    /// The POST went to the account's HTTP upstream (an account that resolves to HTTP)
    Forwarding {
        /// When the POST went
        started: Instant,
        /// The reply's status, once its head came (0 before)
        status: u16,
    },
    /// A failed attempt waits for its back-off
    Backoff,
    /// Over
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TurnTimer {
    SlotWait,
    RetryBackoff,
    Drain,
    ClientWrite,
}

impl TimerName for TurnTimer {
    const ALL: &'static [Self] = &[
        Self::SlotWait,
        Self::RetryBackoff,
        Self::Drain,
        Self::ClientWrite,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// How far the client's answer went: exactly one head, then bodies, then one end
///
/// ```text
///   Unsent ──head (or pass-through)──▶ Open ──end──▶ Ended
///      └───────────────┴── client gone ──▶ Gone
/// ```
///
/// Only `open_answer`, `end_answer` (relay.rs) and `handle_client_gone` move it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnswerState {
    /// Nothing written yet
    Unsent,
    /// The head went out; bodies may follow
    Open,
    /// The answer is complete: nothing more is written
    Ended,
    /// The client left: nothing more is written
    Gone,
}

/// One `POST /v1/responses`; see the module doc for the poll order and the answers
#[derive(Debug)]
pub struct HttpTurn {
    id: SessionId,
    cfg: Arc<Config>,
    stage: Stage,
    request: Option<HttpRequest>,
    admission: Option<HttpAdmission>,
    conn: Option<UpstreamConn>,
    /// The create (renumbered for each attempt: its slot and its response on the conn)
    turn: Turn<()>,
    exclude: Vec<AccountId>,
    jitter: Jitter,
    /// Its model names when the account maps the model
    models: Option<Models>,
    /// The last upstream `error` event of the current attempt
    last_error: Option<Bytes>,
    /// Upstream's error of the last failed attempt, for a failover that finds no account
    failed_attempt: Option<ErrorAnswer>,
    /// `stream:false`: the terminal's `response` object
    final_response: Option<Bytes>,
    /// How far the client's answer went
    answer: AnswerState,
    backpressured: bool,
    /// When the request arrived
    started_at: Instant,
    out: VecDeque<HttpTransmit>,
    requests: VecDeque<HttpTurnRequest>,
    events: VecDeque<HttpEvent>,
    timers: TimerTable<4>,
}

impl HttpTurn {
    /// A turn for request `id` with `body` and the request's header info (group, session key,
    /// betas); an invalid body is answered at once (400)
    pub fn new(
        id: SessionId,
        cfg: Arc<Config>,
        now: Instant,
        body: Bytes,
        info: SessionInfo,
    ) -> Self {
        let mut turn = Self {
            id,
            stage: Stage::Scheduling,
            request: None,
            admission: None,
            conn: None,
            turn: Turn::new(TurnId(0), ()),
            exclude: Vec::new(),
            jitter: Jitter::new(0x4854_5450 ^ id.0),
            models: None,
            last_error: None,
            failed_attempt: None,
            final_response: None,
            answer: AnswerState::Unsent,
            backpressured: false,
            started_at: now,
            out: VecDeque::with_capacity(8),
            requests: VecDeque::with_capacity(4),
            events: VecDeque::with_capacity(4),
            timers: TimerTable::default(),
            cfg,
        };
        match request::parse_request(body) {
            Ok(request) => {
                turn.requests.push_back(HttpTurnRequest::Open(info));
                turn.requests.push_back(HttpTurnRequest::Schedule {
                    previous: request.previous.clone(),
                    prompt_cache_key: request.prompt_cache_key.clone(),
                    exclude: Vec::new(),
                });
                turn.request = Some(request);
            }
            Err(e) => {
                turn.answer_error(&ErrorAnswer::from(
                    GatewayError::bad_request(e.message()).with_param(e.param()),
                ));
                turn.finish();
            }
        }
        turn
    }

    /// Handles the client going away (connection closed, or it stopped reading for too long)
    ///
    /// With a response open upstream the turn drains it to its terminal (usage is recorded,
    /// the conn goes back clean); otherwise every wait is cancelled and the turn ends.
    pub fn handle_client_gone(&mut self, now: Instant) {
        if self.answer == AnswerState::Gone || self.stage == Stage::Done {
            return;
        }
        self.answer = AnswerState::Gone;
        self.timers.stop(TurnTimer::ClientWrite);
        let open = self.stage == Stage::Attempt
            && self.turn.is_open()
            && self.conn.as_ref().is_some_and(|c| c.unfinished() > 0);
        self.events
            .push_back(HttpEvent::ClientGone { draining: open });
        if open {
            self.turn.client_left();
            if let Some(conn) = self.conn.as_mut() {
                conn.set_reading(now, true);
                // A create still being written (upstream not reading) must not hold the turn
                // for the write timeout: the shell cancels it and reports the abandoned write.
                self.requests
                    .push_back(HttpTurnRequest::AbandonWrites { conn: conn.id() });
            }
            self.timers
                .set(TurnTimer::Drain, now + self.cfg.session.drain_timeout);
        } else {
            self.finish();
        }
        self.settle(now);
    }

    /// Handles the client's write buffer filling (`full`) or draining
    ///
    /// While full the turn stops reading upstream (TCP backpressure) and the conn's read and
    /// pong timeouts pause; full for `session.client_write_timeout` counts as the client gone.
    pub fn handle_client_backpressure(&mut self, now: Instant, full: bool) {
        if self.backpressured == full
            || self.answer == AnswerState::Gone
            || self.stage == Stage::Done
        {
            return;
        }
        self.backpressured = full;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_reading(now, !full);
        }
        if full {
            self.timers.set(
                TurnTimer::ClientWrite,
                now + self.cfg.session.client_write_timeout,
            );
        } else {
            self.timers.stop(TurnTimer::ClientWrite);
        }
    }

    /// The account's HTTP upstream answered a [`HttpTransmit::Forward`] with `status`
    /// (`retry_after`: its `Retry-After` / rate-limit reset, if any)
    pub fn handle_forward_head(
        &mut self,
        now: Instant,
        status: u16,
        retry_after: Option<std::time::Duration>,
    ) {
        self.on_forward_head(now, status, retry_after);
        self.settle(now);
    }

    /// The forwarded POST failed before a reply head (connect, TLS, timeout)
    pub fn handle_forward_failed(&mut self, now: Instant) {
        self.on_forward_failed(now);
        self.settle(now);
    }

    /// The passed-through reply ended (or the shell gave up on it)
    pub fn handle_forward_end(&mut self, now: Instant) {
        self.on_forward_end(now);
        self.settle(now);
    }

    /// Fires expired timers of the turn and its conn
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired::<TurnTimer>(now) {
            match timer {
                TurnTimer::SlotWait => self.slot_wait_expired(),
                TurnTimer::RetryBackoff => self.resume_after_backoff(),
                TurnTimer::Drain => {
                    if let Some(conn) = self.conn.as_mut() {
                        conn.drain_timed_out();
                    }
                }
                TurnTimer::ClientWrite => self.handle_client_gone(now),
            }
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_timeout(now);
        }
        self.settle(now);
    }

    /// Next thing to write (client answer, upstream frame, forwarded POST)
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<HttpTransmit> {
        self.out.pop_front()
    }

    /// Next request for the control plane
    #[must_use]
    pub fn poll_request(&mut self) -> Option<HttpTurnRequest> {
        self.requests.pop_front()
    }

    /// Next event for logs and metrics
    #[must_use]
    pub fn poll_event(&mut self) -> Option<HttpEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of the turn and its conn
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = self.conn.as_ref().and_then(UpstreamConn::poll_timeout);
        self.timers.next_timeout_with([conn])
    }

    /// The request's handle
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the turn is over ([`HttpEvent::Finished`] was emitted)
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Whether the shell should read the upstream conn now (false while the client is slow)
    pub fn wants_upstream_read(&self) -> bool {
        !self.backpressured
    }

    /// The conn the turn holds
    pub fn conn(&self) -> Option<&UpstreamConn> {
        self.conn.as_ref()
    }

    /// Whether the client asked for SSE
    pub fn streams(&self) -> bool {
        self.request.as_ref().is_some_and(|r| r.stream)
    }
}

impl Holder for HttpTurn {
    type Input = HttpInput;

    /// Handles an answer of the control plane
    fn handle_control(&mut self, now: Instant, input: HttpInput) {
        match input {
            HttpInput::Admission(admission) => self.on_admission(now, admission),
            HttpInput::Answer(Answer::Refused(refusal)) => {
                if self.stage == Stage::Scheduling {
                    // A failover that finds no other account answers with what the last
                    // account said (upstream's 429 or 5xx), not with the gateway's own 503 or
                    // 429.
                    let answer = match self.failed_attempt.take() {
                        Some(answer)
                            if matches!(
                                refusal,
                                Refusal::Gateway(GatewayError {
                                    status: 503 | 429,
                                    ..
                                })
                            ) =>
                        {
                            answer
                        }
                        _ => ErrorAnswer::from_refusal(&refusal, self.previous_str().as_deref()),
                    };
                    self.answer_error(&answer);
                    self.finish();
                }
            }
            HttpInput::Answer(Answer::Lease(lease)) => self.on_lease(now, lease),
            HttpInput::Answer(Answer::LeaseRefused(reason)) => self.on_lease_refused(now, reason),
            HttpInput::Answer(Answer::SlotGranted(turn)) => self.on_slot_granted(now, turn),
        }
        self.settle(now);
    }

    fn handle_upstream(&mut self, now: Instant, conn: ConnId, input: UpstreamInput) {
        match input {
            UpstreamInput::Frame(frame, utf8) => self.on_upstream_frame(now, conn, frame, utf8),
            // An over-size message ends the conn as a closed socket does.
            input => {
                if let Some(c) = self.conn.as_mut().filter(|c| c.id() == conn) {
                    socket_report(c, now, input);
                }
            }
        }
        self.settle(now);
    }
}
