//! The session machine: one client socket, its turns, and the upstream conns it leases.
//!
//! A session owns the conn machines it leased (at most one active conn taking creates, plus
//! one retiring conn finishing its responses during a rotation), so the per-event path touches
//! nothing shared. Everything else — accounts, pools, slots, bindings — is asked for with a
//! [`SessionRequest`] and answered with a `handle_*` call.
//!
//! # Poll order
//!
//! After every `handle_*` call, drain [`Session::poll_transmit`], then
//! [`Session::poll_request`], then [`Session::poll_event`], each until `None`, then read
//! [`Session::poll_timeout`] and set the task's one timer to it.

mod client;
mod failover;
mod lifecycle;
mod pipeline;
mod state;
mod types;
mod upstream;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use types::{
    Admission, ClientProtocolError, Hop, SessionEvent, SessionInput, SessionRequest, Transmit,
};

pub use crate::pool::Lease;

use crate::FreeWhenEmpty;
use crate::conn::UpstreamConn;
use crate::errors::{GatewayError, Refusal};
use crate::event::{ClientEventKind, classify_client_event};
use crate::rng::Jitter;
use crate::timer::{TimerName, TimerTable};
use crate::trace_context::TraceContext;
use crate::turn::{Answer, Holder, SlotRequest, Turn, UpstreamInput, socket_report};
use crate::{AccountId, Config, ConnId, Lane, ResponseId, SessionId, StreamId, TurnId};
use client::ContinuationCheck;
use state::{ClientWrites, Phase, Route, Shutdown};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionTimer {
    FirstMessage,
    InterTurnIdle,
    SlotWait,
    Drain,
    ClientWrite,
    BlockedClient,
    RetryBackoff,
    ClientPing,
    ClientPong,
    ShutdownGrace,
    ShutdownClose,
}

impl TimerName for SessionTimer {
    const ALL: &'static [Self] = &[
        Self::FirstMessage,
        Self::Drain,
        Self::ClientWrite,
        Self::BlockedClient,
        Self::SlotWait,
        Self::RetryBackoff,
        Self::ShutdownGrace,
        Self::ShutdownClose,
        Self::ClientPong,
        Self::ClientPing,
        Self::InterTurnIdle,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// What a session keeps of a client's create until nothing can send it again
#[derive(Clone, Debug)]
struct Create {
    frame: Bytes,
    lane: Lane,
    previous: Option<ResponseId>,
    /// The group rule for `previous`, when this socket did not create it
    check: ContinuationCheck,
    connection_local: bool,
    client_model: Option<Bytes>,
    prompt_cache_key: Option<Bytes>,
    /// The create arrived (its span starts here)
    accepted_at: Instant,
    /// Its `client_metadata.traceparent`
    trace_parent: Option<TraceContext>,
}

/// A response that ended in this session
#[derive(Clone, Debug)]
struct KnownResponse {
    id: ResponseId,
    conn: ConnId,
    store: bool,
}

/// Ended responses remembered per session to tell connection-local creates apart
const KNOWN_RESPONSES: usize = 256;
/// Conns retired by this session (not lost) remembered to answer their chains correctly
const RETIRED_CONNS: usize = 8;

/// The turn handle `next` holds; `next` moves on
fn alloc_turn(next: &mut u64) -> TurnId {
    *next += 1;
    TurnId(*next - 1)
}

/// One client socket's machine; see the module doc for the poll order
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    cfg: Arc<Config>,
    phase: Phase,
    route: Route,
    active: Option<UpstreamConn>,
    retiring: Option<UpstreamConn>,
    /// Creates held in order until they have an account, a conn, room and a slot
    pending: VecDeque<Turn<Create>>,
    /// Creates sent upstream and not ended
    turns: Vec<Turn<Create>>,
    known: VecDeque<KnownResponse>,
    session_lanes: Vec<StreamId>,
    retired_conns: Vec<ConnId>,
    /// `store:false` responses of earlier holders still in the active conn's cache: another
    /// client socket's private chains, never continued from this one
    inherited_local: Vec<ResponseId>,
    /// Last time the client socket showed life (a frame either way, a pong)
    client_active_at: Instant,
    /// A ping for the client is due
    ping_client: bool,
    client_out: VecDeque<Bytes>,
    upstream_out: VecDeque<Transmit>,
    requests: VecDeque<SessionRequest>,
    events: VecDeque<SessionEvent>,
    timers: TimerTable<11>,
    shutdown: Shutdown,
    /// Accounts the head create's next schedule must avoid (its failover after failed dials or
    /// upstream losses); cleared once that create goes upstream or is refused
    exclude: Vec<AccountId>,
    jitter: Jitter,
    next_turn: u64,
    last_model: Option<Bytes>,
    client_writes: ClientWrites,
}

impl Session {
    /// A session for a client socket that has just been upgraded
    pub fn new(id: SessionId, cfg: Arc<Config>, now: Instant) -> Self {
        let mut timers = TimerTable::default();
        timers.set(
            SessionTimer::FirstMessage,
            now + cfg.session.first_message_timeout,
        );
        timers.set(
            SessionTimer::ClientPing,
            now + cfg.session.client_ping_interval,
        );
        Self {
            id,
            phase: Phase::AwaitingFirst,
            route: Route::Unscheduled,
            active: None,
            retiring: None,
            pending: VecDeque::new(),
            // Grown on use: an idle session keeps no room for turns it is not running.
            turns: Vec::new(),
            known: VecDeque::new(),
            session_lanes: Vec::new(),
            retired_conns: Vec::new(),
            inherited_local: Vec::new(),
            client_active_at: now,
            ping_client: false,
            shutdown: Shutdown::Running,
            client_out: VecDeque::new(),
            upstream_out: VecDeque::new(),
            requests: VecDeque::new(),
            events: VecDeque::new(),
            timers,
            exclude: Vec::new(),
            jitter: Jitter::new(0x5e55_1011 ^ id.0),
            next_turn: 1,
            last_model: None,
            client_writes: ClientWrites::Reading,
            cfg,
        }
    }

    /// Handles one text frame from the client
    pub fn handle_client_text(&mut self, now: Instant, frame: Bytes) {
        if !self.takes_client_input() {
            return;
        }
        self.timers.stop(SessionTimer::FirstMessage);
        self.timers.stop(SessionTimer::InterTurnIdle);
        self.client_active_at = now;
        self.client_spoke();
        let req = match classify_client_event(&frame) {
            Ok(req) => req,
            Err(e) => {
                let message = format!("invalid websocket message: {e}");
                self.send_client_error(&GatewayError::bad_request(message));
                return self.settle(now);
            }
        };
        match req.kind {
            ClientEventKind::ResponseCreate => self.accept_create(now, frame, req),
            ClientEventKind::ResponseSteer | ClientEventKind::ResponseInject => {
                self.forward_steer(now, frame, req)
            }
            ClientEventKind::Other => {
                let ty = String::from_utf8_lossy(&req.type_name);
                let message = format!("unsupported websocket event type: {ty:?}");
                self.send_client_error(&GatewayError::bad_request(message));
            }
        }
        self.settle(now);
    }

    /// Handles a binary frame from the client (the protocol is text only)
    pub fn handle_client_binary(&mut self, now: Instant) {
        if !self.takes_client_input() {
            return;
        }
        self.timers.stop(SessionTimer::FirstMessage);
        self.client_active_at = now;
        self.client_spoke();
        self.send_client_error(&GatewayError::bad_request(
            "binary frames are not supported; send JSON text frames",
        ));
        self.settle(now);
    }

    /// Handles the client's departure (close, EOF, read or write error)
    ///
    /// Open responses are drained: no client writes, no rewrites, held creates dropped.
    pub fn handle_client_gone(&mut self, now: Instant) {
        if !self.takes_client_input() {
            return;
        }
        self.client_out.clear();
        self.ping_client = false;
        self.timers.stop(SessionTimer::BlockedClient);
        self.client_reads();
        self.timers.stop(SessionTimer::ClientPing);
        self.timers.stop(SessionTimer::ClientPong);
        self.drop_pending();
        self.timers.stop(SessionTimer::ClientWrite);
        for conn in self.conns_mut() {
            conn.set_reading(now, true);
        }
        let draining = self.unfinished();
        self.events.push_back(SessionEvent::ClientGone { draining });
        if draining == 0 {
            return self.finish(now);
        }
        for conn in [&self.active, &self.retiring].into_iter().flatten() {
            self.requests
                .push_back(SessionRequest::AbandonWrites { conn: conn.id() });
        }
        for turn in &mut self.turns {
            turn.client_left();
        }
        self.start_draining();
        self.timers.stop(SessionTimer::InterTurnIdle);
        self.timers.stop(SessionTimer::FirstMessage);
        self.timers
            .set(SessionTimer::Drain, now + self.cfg.session.drain_timeout);
        self.settle(now);
    }

    /// Handles the client write buffer filling (`full`) or draining
    ///
    /// While full the session stops reading upstream data (TCP backpressure) and suspends the
    /// conns' pong and read timeouts; if it stays full for `client_write_timeout`, the client
    /// counts as gone. If it stays full for `blocked_client_timeout` while responses are open
    /// upstream, they hold account concurrency slots for a client that reads nothing: the
    /// control plane is told, and as soon as another create waits for one of those slots it
    /// answers [`SessionInput::YieldSlots`].
    pub fn handle_client_backpressure(&mut self, now: Instant, full: bool) {
        if !self.takes_client_input() || self.backpressured() == full {
            return;
        }
        match full {
            true => self.client_full(),
            false => self.client_reads(),
        }
        for conn in self.conns_mut() {
            conn.set_reading(now, !full);
        }
        if full {
            // A client that reads nothing cannot read a pong either: the write timeout covers it.
            self.timers.stop(SessionTimer::ClientPong);
            self.timers.set(
                SessionTimer::ClientWrite,
                now + self.cfg.session.client_write_timeout,
            );
            self.timers.set(
                SessionTimer::BlockedClient,
                now + self.cfg.session.blocked_client_timeout,
            );
        } else {
            self.timers.stop(SessionTimer::ClientWrite);
            self.timers.stop(SessionTimer::BlockedClient);
        }
        // Held creates wait for the client to read before they ask for a slot.
        self.settle(now);
    }

    /// Handles the scheduler's answer to [`SessionRequest::Schedule`]
    pub fn handle_admission(&mut self, now: Instant, admission: Admission) {
        if self.is_finished() {
            return;
        }
        self.admitted(admission);
        self.settle(now);
    }

    /// Handles the scheduler refusing [`SessionRequest::Schedule`]: the create that asked is answered
    pub fn handle_admission_refused(&mut self, now: Instant, refusal: Refusal) {
        self.drop_admission();
        if let Some(head) = self.pending.pop_front() {
            self.refuse(head, refusal);
            // The accounts this create's failover avoided are not the next create's to avoid.
            self.exclude.clear();
        }
        self.settle(now);
    }

    /// Handles a conn the pool granted for [`SessionRequest::Acquire`]
    pub fn handle_lease(&mut self, now: Instant, lease: Lease) {
        self.lease_answered();
        self.inherited_local = lease
            .record
            .lane_cache
            .iter()
            .filter(|c| !c.store)
            .map(|c| c.response.clone())
            .collect();
        let conn = UpstreamConn::new(lease.record, now, &self.cfg.upstream);
        if !self.takes_client_input() {
            self.requests
                .push_back(SessionRequest::Release(conn.into_release()));
            return;
        }
        if let Some(old) = self.active.take() {
            self.retire_conn(now, old);
        }
        self.active = Some(conn);
        self.settle(now);
    }

    /// Handles the pool refusing [`SessionRequest::Acquire`]. Nothing of the held creates has
    /// reached upstream, so a failed dial is retried under the scheduler's retry rules (on
    /// another account when they allow and nothing else of the session runs) and a slow one
    /// moves the session to another account at once (the control plane gives a `dial_wait`
    /// only when one is usable); otherwise every held create gets a 503
    pub fn handle_lease_refused(&mut self, now: Instant, reason: crate::pool::RefuseReason) {
        use crate::pool::RefuseReason;
        self.lease_answered();
        let retried = match reason {
            RefuseReason::DialFailed => self.retry_failed_dial(now),
            RefuseReason::DialWait => self.move_from_slow_dial(now),
            _ => false,
        };
        if !retried {
            let refusal = Refusal::Gateway(GatewayError::upstream_unavailable());
            while let Some(head) = self.pending.pop_front() {
                self.refuse(head, refusal.clone());
            }
        }
        self.settle(now);
    }

    /// Handles the control plane taking back the slots of this blocked client (see
    /// [`handle_client_backpressure`](Self::handle_client_backpressure)); a client that reads
    /// again by now keeps them
    pub fn handle_yield_slots(&mut self, now: Instant) {
        self.yield_slots(now);
        self.settle(now);
    }

    /// Handles a concurrency slot granted for `turn`
    pub fn handle_slot_granted(&mut self, now: Instant, turn: TurnId) {
        let granted = self.pending.iter_mut().any(|p| p.slot_granted(turn));
        if !granted {
            // The create is gone (refused, client left): give the slot straight back.
            if let Some(admission) = self.admitted_account() {
                let account = admission.account;
                self.requests
                    .push_back(SessionRequest::Slot(SlotRequest::Release { account }));
            }
        }
        self.settle(now);
    }

    /// Fires expired timers of the session and its conns
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired::<SessionTimer>(now) {
            match timer {
                SessionTimer::FirstMessage => {
                    self.close_client(1008, "missing first response.create message");
                    self.finish(now);
                }
                SessionTimer::InterTurnIdle => {
                    self.close_client(1000, "websocket idle timeout");
                    self.finish(now);
                }
                SessionTimer::SlotWait => self.slot_wait_expired(),
                SessionTimer::ClientWrite => {
                    self.close_client(1008, "client did not read its events in time");
                    self.handle_client_gone(now);
                }
                SessionTimer::Drain => self.drain_expired(now),
                SessionTimer::BlockedClient => self.blocked_client_due(now),
                SessionTimer::RetryBackoff => {} // settle sends the create whose back-off ended
                SessionTimer::ClientPing => self.client_ping_due(now),
                SessionTimer::ShutdownGrace => self.shutdown_grace_expired(now),
                SessionTimer::ShutdownClose => self.close_when_idle(),
                SessionTimer::ClientPong => {
                    self.close_client(1001, "client did not answer a ping");
                    self.handle_client_gone(now);
                }
            }
        }
        for conn in self.conns_mut() {
            conn.handle_timeout(now);
        }
        self.settle(now);
    }

    /// Next frame to write, for the client or an upstream conn
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if std::mem::take(&mut self.ping_client) {
            return Some(Transmit::ClientPing);
        }
        if let Some(frame) = self.client_out.pop_front() {
            return Some(Transmit::Client(frame));
        }
        self.upstream_out.pop_front()
    }

    /// Next request for the rest of the gateway
    #[must_use]
    pub fn poll_request(&mut self) -> Option<SessionRequest> {
        self.requests.pop_front()
    }

    /// Next event for logs and metrics
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of the session and its conns
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns().map(UpstreamConn::poll_timeout);
        self.timers.next_timeout_with(conns)
    }

    /// Whether the shell should read data frames from this session's upstream conns now
    /// (false while the client's write buffer is full)
    pub fn wants_upstream_read(&self) -> bool {
        !self.backpressured()
    }

    /// The session's handle
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The conn taking new creates
    pub fn active_conn(&self) -> Option<&UpstreamConn> {
        self.active.as_ref()
    }

    /// The conn finishing its responses during a rotation
    pub fn retiring_conn(&self) -> Option<&UpstreamConn> {
        self.retiring.as_ref()
    }

    /// Between turns (nothing unfinished upstream, no create held), gives back the room the
    /// session's and its conns' queues grew to during the turns that ended; a no-op otherwise.
    /// Call when the driver finds the session idle with its outputs drained; the next turn
    /// allocates its queues again (once per turn, not per event), and an idle session holds none.
    pub fn free_idle_room(&mut self) {
        if self.unfinished() > 0 || !self.pending.is_empty() {
            return;
        }
        self.turns.free_when_empty();
        self.pending.free_when_empty();
        self.exclude.free_when_empty();
        self.client_out.free_when_empty();
        self.upstream_out.free_when_empty();
        self.requests.free_when_empty();
        self.events.free_when_empty();
        for conn in self.conns_mut() {
            conn.free_idle_room();
        }
    }

    /// Creates held by the session (waiting for an account, a conn, room or a slot)
    pub fn held_creates(&self) -> usize {
        self.pending.len()
    }

    /// Responses sent upstream and not ended, on every conn of the session
    pub fn unfinished(&self) -> usize {
        self.conns().map(UpstreamConn::unfinished).sum()
    }

    fn conns(&self) -> impl Iterator<Item = &UpstreamConn> {
        self.active.iter().chain(self.retiring.iter())
    }

    fn conns_mut(&mut self) -> impl Iterator<Item = &mut UpstreamConn> {
        self.active.iter_mut().chain(self.retiring.iter_mut())
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut UpstreamConn> {
        self.conns_mut().find(|c| c.id() == id)
    }

    fn close_client(&mut self, code: u16, reason: &'static str) {
        self.requests
            .push_back(SessionRequest::CloseClient { code, reason });
    }
}

impl Holder for Session {
    type Input = SessionInput;

    /// Handles an answer from the control plane (dispatches to the `handle_*` it stands for)
    fn handle_control(&mut self, now: Instant, input: SessionInput) {
        match input {
            SessionInput::Admission(admission) => self.handle_admission(now, admission),
            SessionInput::Answer(Answer::Refused(refusal)) => {
                self.handle_admission_refused(now, refusal)
            }
            SessionInput::Answer(Answer::Lease(lease)) => self.handle_lease(now, lease),
            SessionInput::Answer(Answer::LeaseRefused(reason)) => {
                self.handle_lease_refused(now, reason)
            }
            SessionInput::Answer(Answer::SlotGranted(turn)) => self.handle_slot_granted(now, turn),
            SessionInput::YieldSlots => self.handle_yield_slots(now),
            SessionInput::ContinuationJudged { turn, allowed } => {
                self.handle_continuation_judged(now, turn, allowed)
            }
        }
    }

    fn handle_upstream(&mut self, now: Instant, conn: ConnId, input: UpstreamInput) {
        match input {
            UpstreamInput::Frame(frame, utf8) => self.on_upstream_frame(now, conn, frame, utf8),
            // One limit for both hops: the client is closed 1009, its responses drained.
            UpstreamInput::TooBig => return self.handle_message_too_big(now, Hop::Upstream(conn)),
            input => {
                if let Some(c) = self.conn_mut(conn) {
                    socket_report(c, now, input);
                }
            }
        }
        self.settle(now);
    }
}
