//! One task per client socket: it owns the core's `Session`, reads the client and the frames of
//! its leased conns, writes both hops, and keeps one timer (`session.poll_timeout()`).
//!
//! The per-event path — an upstream delta relayed to the client — runs entirely here: the task
//! reads the frame from the read half its conn's reader lent it, the session routes it, and the
//! outbox feeds that same buffer to the client socket's write buffer at once (which lets the
//! upstream read buffer be reused), flushed once per wake-up.

use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_util::io::AsyncReadExt;

use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::{WebSocketReceiver, WebSocketStream};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::Either;
use tokio::sync::mpsc;
use tracing::{Span, debug, info, info_span};
use wsv2_core::ConnId;
use wsv2_core::conn::Outcome;
use wsv2_core::errors::ErrorCode;
use wsv2_core::session::{
    ClientProtocolError, Hop, Session, SessionEvent, SessionInput, SessionRequest, Transmit,
};
use wsv2_core::turn::{Holder, TurnEvent, UpstreamInput};

use crate::client::{ClientIo, ClientOutbox};
use crate::control_task::session_inbox_capacity;
use crate::holder::{HolderIo, HolderStart, Labels, TurnMetrics, log_turn_event};
use crate::log_limit::{ClientLine, LogLimits, limited};
use crate::metrics_export::ClientTransport;
use crate::runtime::{Clock, Rt, Sending, timeout};
use crate::shared::ControlMsg;
use crate::upstream::UpstreamMsg;

/// Upstream reports handled in one wake-up before the client socket is written
const UPSTREAM_BATCH: usize = 32;

/// What a session task starts with
pub(crate) struct SessionStart {
    pub(crate) holder: HolderStart,
    /// Rate limits of the lines a client can trigger
    pub(crate) logs: Arc<LogLimits>,
}

/// Runs one client socket to its end. Nothing here waits: the task is built, the control task
/// told, and the future returned holds the task and its run only (a spawned task's future
/// is kept for the socket's life, so what it holds is paid per idle session). Its log lines
/// carry the session's span: the task enters it where it logs, not around every poll (an enter
/// and exit per relayed event otherwise).
pub(crate) fn run_session(
    ws: WebSocketStream<ClientIo>,
    start: SessionStart,
) -> impl Future<Output = ()> + Send + 'static {
    let span = info_span!("session", id = %start.holder.id, client = %start.holder.labels.key_name, group = %start.holder.info.group);
    run(ws, start, span)
}

fn run(ws: WebSocketStream<ClientIo>, start: SessionStart, span: Span) -> impl Future<Output = ()> {
    let SessionStart { holder: h, logs } = start;
    let (rt, id, cfg, mut permit) = (h.rt, h.id, h.cfg, h.permit);
    let (inbox_tx, inbox) = mpsc::channel(session_inbox_capacity(&cfg));
    let close_linger = cfg.session.close_linger;
    let (info, headers) = (h.info, h.headers);
    let open = ControlMsg::Open {
        id,
        info,
        headers,
        inbox: inbox_tx,
    };
    let opened = Sending::new(&h.control, open);
    let (sink, client) = ws.split();
    let outbox = ClientOutbox::new(
        sink,
        cfg.session.client_write_buffer,
        cfg.session.client_write_timeout,
        cfg.session.close_linger,
    );
    let mut task = SessionTask {
        session: Session::new(id, cfg, rt.now()),
        clock: Clock::new(&rt),
        io: HolderIo::new(id, h.control, inbox),
        client,
        client_open: true,
        client_read: ClientRead::Open,
        outbox,
        backpressured: false,
        finished: false,
        buffers_released: false,
        shutdown: permit.take_shutdown(),
        metrics: h.metrics.map(|m| TurnMetrics::new(m, ClientTransport::Ws)),
        labels: h.labels,
        logs,
        span,
    };
    async move {
        if !opened.await {
            return; // shutting down
        }
        task.run().await;
        task.io.return_unread_leases().await;
        task.io.send(ControlMsg::Close { id }).await;
        let SessionTask {
            outbox,
            client,
            session,
            client_read,
            ..
        } = task;
        drop(session);
        if let Some(sink) = outbox.finish(&rt).await {
            match client_read {
                // The client closed and was answered: the handshake is complete, and the server
                // closes the TCP connection first (RFC 6455 §7.1.1): clients wait for it.
                ClientRead::CloseReceived => {}
                ClientRead::Open => await_close_reply(&rt, sink, client, close_linger).await,
                ClientRead::Broken => linger(&rt, sink, client, close_linger).await,
            }
        }
        drop(permit);
    }
}

/// The RFC 6455 violation a client read error is, if it is one (not a reset, an EOF or an I/O
/// error: those leave nobody to send a close to)
fn protocol_error(error: &WsError) -> Option<ClientProtocolError> {
    match error {
        WsError::Utf8(_) => Some(ClientProtocolError::InvalidUtf8),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some(ClientProtocolError::Violation),
        _ => None,
    }
}

/// How the client's read side ended; decides how the socket is let go after the last write
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientRead {
    /// Still readable (the gateway closed first, or the session ended on its own)
    Open,
    /// The client's close frame was read (and answered)
    CloseReceived,
    /// EOF, a read error, or a message over the limit: frames cannot be parsed any more
    Broken,
}

/// After the gateway's close frame: reads the client's frames until its close reply, EOF or
/// `session.close_linger`, then lets the socket go
async fn await_close_reply(
    rt: &Rt,
    sink: async_tungstenite::WebSocketSender<ClientIo>,
    mut client: WebSocketReceiver<ClientIo>,
    close_linger: std::time::Duration,
) {
    let _ = timeout(rt, close_linger, async {
        while let Some(Ok(msg)) = client.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
    drop(sink);
}

/// Reads and discards the client's remaining bytes until EOF or `session.close_linger`, so
/// the client gets the gateway's close frame instead of a TCP reset, e.g. while it is still
/// sending an over-size message the WebSocket reader refused
async fn linger(
    rt: &Rt,
    sink: async_tungstenite::WebSocketSender<ClientIo>,
    client: WebSocketReceiver<ClientIo>,
    close_linger: std::time::Duration,
) {
    let Ok(ws) = WebSocketStream::reunite(sink, client) else {
        return;
    };
    let mut io = ws.into_inner();
    // On the heap: an array here would sit in every session task's future for its whole life.
    let mut scratch = vec![0u8; 8192];
    let _ = timeout(rt, close_linger, async {
        while let Ok(n) = io.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

struct SessionTask {
    session: Session,
    /// The runtime's clock and the session's one timer (`session.poll_timeout()`)
    clock: Clock,
    /// The control task's answers, the held conns
    io: HolderIo<SessionInput>,
    client: WebSocketReceiver<ClientIo>,
    client_open: bool,
    client_read: ClientRead,
    outbox: ClientOutbox,
    /// What the session was last told about the client's write buffer
    backpressured: bool,
    finished: bool,
    /// The sockets' buffers were let go since the last frame either way (between turns)
    buffers_released: bool,
    /// Fires once when the gateway shuts down
    shutdown: crate::lifecycle::ShutdownSignal,
    metrics: Option<TurnMetrics>,
    labels: Labels,
    logs: Arc<LogLimits>,
    /// The session's span (id, client key name, group): entered by every line the task logs
    span: Span,
}

impl SessionTask {
    async fn run(&mut self) {
        while !self.finished {
            let deadline = (self.session.poll_timeout().into_iter())
                .chain(self.outbox.deadline())
                .min();
            let read_upstream = self.session.wants_upstream_read();
            let read_client = self.client_open && !self.outbox.is_full();
            let write_client = self.outbox.has_work();
            // One clock read per wake-up (after it: the runtime may wake us late or early),
            // given to everything this wake-up hands the session.
            let now = tokio::select! {
                biased;
                delivery = self.io.inbox.recv() => match delivery {
                    Some(delivery) => {
                        self.buffers_released = false;
                        let now = self.clock.now();
                        self.io.deliver(&mut self.session, now, *delivery);
                        now
                    }
                    None => return, // the control task is gone: shutting down
                },
                () = self.shutdown.requested() => {
                    let now = self.clock.now();
                    self.session.handle_shutdown(now);
                    now
                }
                // What the last drive queued goes out before anything more is read.
                () = std::future::poll_fn(|cx| self.outbox.poll_write(cx)), if write_client => {
                    self.clock.now()
                }
                Some(msg) = self.io.held.recv(), if read_upstream => {
                    let now = self.clock.now();
                    self.relay_upstream(now, msg).await;
                    now
                }
                msg = self.client.next(), if read_client => {
                    let now = self.clock.now();
                    self.on_client(now, msg);
                    now
                }
                () = self.clock.until(deadline) => {
                    let now = self.clock.now();
                    self.outbox.handle_timeout(now);
                    self.session.handle_timeout(now);
                    now
                }
            };
            self.drive(now, None).await;
            // What the drive queued goes out in this wake-up when the socket takes it, not in
            // another turn of the loop (at low load: one relayed event, one wake-up).
            if self.outbox.has_work() && self.write_once().await {
                self.drive(now, None).await;
            }
            self.release_buffers_when_idle();
        }
        self.io.held.release_all();
    }

    /// Polls the client write once: true when everything queued was written (or the socket
    /// failed); otherwise the socket wakes the task when it can take more
    async fn write_once(&mut self) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(self.outbox.poll_write(cx).is_ready())).await
    }

    /// Between turns (no response under way or waiting, nothing left to write to the client)
    /// the session's queues, the client socket and the held conns let their empty buffers go,
    /// so an idle session holds none; the next frame either way allocates them again (once per turn, not per
    /// event)
    fn release_buffers_when_idle(&mut self) {
        if self.buffers_released
            || self.session.unfinished() > 0
            || self.session.held_creates() > 0
            || self.outbox.has_work()
        {
            return;
        }
        self.buffers_released = true;
        self.session.free_idle_room();
        self.outbox.release_buffers();
        self.io.held.release_buffers();
    }

    /// Handles `msg` and, under load, the reports already queued behind it (up to
    /// [`UPSTREAM_BATCH`]), driving the session after each, so one client flush carries them all;
    /// at low load the queue is empty and the frame goes out at once
    async fn relay_upstream(&mut self, now: Instant, msg: UpstreamMsg) {
        self.buffers_released = false;
        let mut next = Some(msg);
        let mut handled = 0;
        while let Some(msg) = next.take() {
            self.io.report(&mut self.session, now, msg).await;
            self.drive(now, Some(now)).await;
            handled += 1;
            if handled < UPSTREAM_BATCH
                && self.session.wants_upstream_read()
                && !self.outbox.is_full()
                && !self.finished
            {
                next = self.io.held.try_recv().await;
            }
        }
    }

    fn on_client(&mut self, now: Instant, msg: Option<Result<Message, WsError>>) {
        self.buffers_released = false;
        match msg {
            Some(Ok(Message::Text(text))) => {
                self.session.handle_client_text(now, Bytes::from(text))
            }
            Some(Ok(Message::Binary(_))) => self.session.handle_client_binary(now),
            Some(Ok(Message::Close(_))) => {
                self.client_read = ClientRead::CloseReceived;
                self.outbox.answer_close(now);
                self.client_gone(now)
            }
            Some(Ok(Message::Pong(_))) => self.session.handle_client_pong(now),
            Some(Ok(_)) => {} // a ping: tungstenite answers it
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                // The session closes the client with 1009 (CloseClient) and drains.
                self.client_read = ClientRead::Broken;
                self.client_open = false;
                self.session.handle_message_too_big(now, Hop::Client);
            }
            Some(Err(e)) => {
                self.span.in_scope(|| {
                    limited!(
                        self.logs,
                        now,
                        ClientLine::ClientReadEnded,
                        debug!(error = %e, "client read ended")
                    )
                });
                self.client_read = ClientRead::Broken;
                match protocol_error(&e) {
                    // The client is closed with the RFC's code, then the rest is read and
                    // dropped (its frames cannot be parsed past the error).
                    Some(error) if self.client_open => {
                        self.client_open = false;
                        self.session.handle_client_protocol_error(now, error);
                    }
                    _ => self.client_gone(now),
                }
            }
            None => {
                self.client_read = ClientRead::Broken;
                self.client_gone(now);
            }
        }
    }

    fn client_gone(&mut self, now: Instant) {
        if self.client_open {
            self.client_open = false;
            self.session.handle_client_gone(now);
        }
    }

    /// Performs every output of the session (the drive invariant), then feeds back what the
    /// I/O learned meanwhile (full queues, a failed client writer) until nothing changes;
    /// `now` is the wake-up's time, `received` when the upstream frame that started this drive
    /// arrived
    async fn drive(&mut self, mut now: Instant, mut received: Option<Instant>) {
        let mut unwritable: Vec<ConnId> = Vec::new();
        loop {
            while let Some(transmit) = self.session.poll_transmit() {
                match transmit {
                    Transmit::Client(frame) => {
                        self.outbox.push(now, frame);
                        // One observation per relayed upstream frame, at its first client write.
                        if let (Some(at), Some(m)) = (received.take(), &mut self.metrics) {
                            m.overhead
                                .record(self.clock.now().saturating_duration_since(at));
                        }
                    }
                    Transmit::ClientPing => self.outbox.ping(now),
                    Transmit::Upstream { conn, msg } => {
                        if !self.io.held.write(conn, msg) {
                            unwritable.push(conn);
                        }
                    }
                }
            }
            if self.outbox.has_work() {
                self.outbox.feed().await;
            }
            while let Some(request) = self.session.poll_request() {
                self.route_request(request).await;
            }
            while let Some(event) = self.session.poll_event() {
                self.log_event(&event);
                if let SessionEvent::Turn(TurnEvent::Retrying {
                    failure,
                    switch_account,
                    ..
                }) = event
                    && let Some(m) = &self.metrics
                {
                    m.retried(failure, switch_account);
                }
                if let SessionEvent::Turn(TurnEvent::ResponseEnded(r)) = &event {
                    if r.outcome == Outcome::CutAtShutdown {
                        self.shutdown.count_cut_response();
                    }
                    if let Some(m) = &mut self.metrics {
                        m.response_ended(r, &self.labels, r.model.as_deref());
                    }
                    (self.labels).export_span("websocket", self.io.id, r, now);
                }
                if event == SessionEvent::Turn(TurnEvent::Finished) {
                    self.finished = true;
                } else {
                    self.io.send(ControlMsg::Event { event }).await;
                }
            }
            let mut changed = false;
            for conn in unwritable.drain(..) {
                // The writer's queue is full (upstream stopped reading) or the conn is gone.
                let abandoned = UpstreamInput::WriteAbandoned;
                self.session.handle_upstream(now, conn, abandoned);
                changed = true;
            }
            if self.outbox.failed() && self.client_open {
                self.client_gone(now);
                changed = true;
            }
            let full = self.outbox.is_full();
            if full != self.backpressured && self.client_open {
                self.backpressured = full;
                self.session.handle_client_backpressure(now, full);
                changed = true;
            }
            if !changed {
                return;
            }
            // Another round: what the session was told may have taken time to route.
            now = self.clock.now();
        }
    }

    /// Performs a request; the future returned (awaited at once) holds no request, so the
    /// task's future keeps no room for one
    fn route_request(&mut self, request: SessionRequest) -> impl Future<Output = ()> + '_ {
        let released = match &request {
            SessionRequest::AbandonWrites { conn } => {
                self.io.held.abandon_writes(*conn);
                return Either::Left(std::future::ready(()));
            }
            SessionRequest::CloseClient { code, reason } => {
                self.outbox.close(self.clock.now(), *code, reason);
                self.client_open = false;
                return Either::Left(std::future::ready(()));
            }
            SessionRequest::Release(release) => Some(release.record.id),
            _ => None,
        };
        let id = self.io.id;
        Either::Right(
            self.io
                .request(ControlMsg::Request { id, request }, released),
        )
    }

    fn log_event(&self, event: &SessionEvent) {
        let _session = self.span.enter();
        match event {
            SessionEvent::Turn(TurnEvent::ResponseEnded(r)) => {
                let account = self.labels.account(&r.account);
                let usage = r.usage.as_ref();
                let span = info_span!(
                    "turn",
                    turn = %r.turn,
                    account,
                    conn = %r.conn,
                    response = r.response.as_ref().map_or("", |id| id.as_str()),
                    lane = r.lane.as_ref().map_or("", |l| l.as_str()),
                );
                span.in_scope(|| {
                    info!(
                        client = %self.labels.key_name,
                        outcome = r.outcome.as_str(),
                        input_tokens = usage.map(|u| u.input_tokens),
                        output_tokens = usage.map(|u| u.output_tokens),
                        total_tokens = usage.map(|u| u.total_tokens),
                        first_event_ms = r.time_to_first_event.map(|d| d.as_millis() as u64),
                        duration_ms = r.duration.as_millis() as u64,
                        drained = r.drained,
                        successor = r.successor,
                        "response ended"
                    )
                });
            }
            SessionEvent::Refused { turn, refusal }
                if refusal.code() == Some(ErrorCode::ConcurrencyLimitReached) =>
            {
                limited!(
                    self.logs,
                    self.clock.now(),
                    ClientLine::SlotRefused,
                    warn!(%turn, "create refused: no account concurrency slot within slot_wait")
                )
            }
            SessionEvent::Refused { turn, refusal } => limited!(
                self.logs,
                self.clock.now(),
                ClientLine::CreateAnswered,
                debug!(%turn, ?refusal, "create answered by the gateway")
            ),
            SessionEvent::Turn(event) => log_turn_event(event, "session"),
            other => debug!(?other, "session"),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future `f` returns, without calling it
    fn future_size<A, B, F: Future>(_: impl FnOnce(A, B) -> F) -> usize {
        size_of::<F>()
    }

    #[test]
    fn the_session_future_holds_its_task_and_little_more() {
        // A spawned session's future stays allocated for the socket's life, idle or not: its
        // awaits must not keep room for messages (a `ControlMsg` and its send per nested
        // await, 3 KiB in all before) nor for the arguments it started from.
        let task = size_of::<super::SessionTask>();
        let future = future_size(super::run_session);
        assert!(
            future <= task + 1024,
            "the session future is {future} bytes for a {task}-byte task"
        );
    }
}
