//! One task per `POST /v1/responses`: it owns the core's [`HttpTurn`], leases a pooled upstream
//! conn through the control task exactly like a session does (the conn's reader lends it the
//! socket's read half while leased), and writes the answer the turn decides.
//!
//! ```text
//!  hyper service ──body──▶ http task (HttpTurn) ──create──▶ conn writer ──▶ upstream
//!       ▲  head (oneshot)     │  ▲   ▲                                       │
//!       └─ SSE / JSON ◀─body──┘  │   └────────── conn's read half ◀──────────┘
//!          (bounded channel)     │ Admission, Lease, SlotGranted
//!                                ▼
//!                          control task (Control::handle_http_request)
//! ```
//!
//! The answer's body is a bounded channel behind an http-body-util `StreamBody`: each `Body`
//! transmit is one chunk, flushed by hyper as it is produced. When the channel is full the turn
//! is told (`handle_client_backpressure`) and stops reading upstream; the few bodies produced
//! meanwhile wait in a spill queue bounded by the frames already in flight.
//!
//! Requests — `Release` above all — go to the control task *before* the task waits for the
//! client to take the last bytes, so a slow client never holds a pooled conn.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::OptionFuture;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Frame;
use hyper::header::HeaderValue;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};
use wsv2_core::http::{HttpEvent, HttpInput, HttpTransmit, HttpTurn, HttpTurnRequest};
use wsv2_core::turn::{Holder, TurnEvent, UpstreamInput};
use wsv2_core::{AccountId, ConnId};

use crate::forward::{ForwardReply, ForwardTarget};
use crate::holder::{HolderIo, HolderStart, Labels, TurnMetrics, log_turn_event};
use crate::metrics_export::ClientTransport;
use crate::runtime::{self, Clock, Rt, timeout};
use crate::shared::ControlMsg;

/// Chunks buffered between the turn and hyper before the turn is told the client is slow
const BODY_QUEUE: usize = 32;
/// Answers of the control task a turn can have outstanding (schedule, lease, slot) plus slack
const INBOX: usize = 8;

/// The body type of every gateway answer
pub(crate) type GatewayBody = UnsyncBoxBody<Bytes, Infallible>;

/// The head of the client's answer
#[derive(Debug)]
pub(crate) struct AnswerHead {
    /// HTTP status
    pub(crate) status: u16,
    /// `Content-Type`
    pub(crate) content_type: Option<HeaderValue>,
    /// `Retry-After` in seconds
    pub(crate) retry_after: Option<u64>,
}

/// What an HTTP task starts with
pub(crate) struct HttpStart {
    /// Its `labels.trace_header`, the POST's `traceparent`, parents the span when the body's
    /// `client_metadata` names none
    pub(crate) holder: HolderStart,
    pub(crate) body: Bytes,
    pub(crate) forward: Arc<HashMap<AccountId, ForwardTarget>>,
}

/// Starts the turn's task; the head comes on the returned channel, the body on `body`
pub(crate) fn spawn(start: HttpStart) -> (oneshot::Receiver<AnswerHead>, mpsc::Receiver<Bytes>) {
    let (head_tx, head_rx) = oneshot::channel();
    let (body_tx, body_rx) = mpsc::channel(BODY_QUEUE);
    let span = info_span!("http", id = %start.holder.id, client = %start.holder.labels.key_name, group = %start.holder.info.group);
    let rt = start.holder.rt.clone();
    runtime::spawn(&rt, run(start, head_tx, body_tx).instrument(span));
    (head_rx, body_rx)
}

/// The response body over the bounded channel: one chunk per event
pub(crate) fn channel_body(rx: mpsc::Receiver<Bytes>) -> GatewayBody {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    UnsyncBoxBody::new(StreamBody::new(stream))
}

/// What the forwarding sub-task reports
enum ForwardMsg {
    Head(ForwardReply),
    Failed(String),
    Ended,
}

async fn run(start: HttpStart, head_tx: oneshot::Sender<AnswerHead>, body_tx: mpsc::Sender<Bytes>) {
    let HttpStart {
        holder: h,
        body,
        forward,
    } = start;
    let (rt, id, cfg, permit) = (h.rt, h.id, h.cfg, h.permit);
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let open = ControlMsg::HttpOpen {
        id,
        headers: h.headers,
        inbox: inbox_tx,
    };
    if h.control.send(open).await.is_err() {
        return; // shutting down
    }
    let model = model_of(&body);
    let (forward_tx, forward_rx) = mpsc::channel(4);
    let now = rt.now();
    let mut task = HttpTask {
        clock: Clock::new(&rt),
        rt,
        write_timeout: cfg.session.client_write_timeout,
        dial_timeout: cfg.upstream.dial_timeout,
        turn: HttpTurn::new(id, cfg, now, body, h.info),
        io: HolderIo::new(id, h.control, inbox),
        forward_tx,
        forward_rx,
        forward_targets: forward,
        forward_reply: None,
        head_tx: Some(head_tx),
        body_tx: Some(body_tx),
        spill: VecDeque::new(),
        end_pending: false,
        backpressured: false,
        client_gone: false,
        finished: false,
        metrics: h
            .metrics
            .map(|m| TurnMetrics::new(m, ClientTransport::Http)),
        model,
        labels: h.labels,
    };
    task.drive().await;
    task.run().await;
    task.io.return_unread_leases().await;
    task.flush_tail().await;
    drop(permit);
}

/// The client model, for the token metric's label (never the prompt)
fn model_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Model<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Model<'_>>(body)
        .ok()
        .and_then(|m| m.model)
        .map_or_else(String::new, |m| m.chars().take(64).collect())
}

struct HttpTask {
    rt: Rt,
    /// The runtime's clock and the turn's one timer (`turn.poll_timeout()`)
    clock: Clock,
    write_timeout: std::time::Duration,
    dial_timeout: std::time::Duration,
    turn: HttpTurn,
    /// The control task's answers, the held conn
    io: HolderIo<HttpInput>,
    forward_tx: mpsc::Sender<ForwardMsg>,
    forward_rx: mpsc::Receiver<ForwardMsg>,
    forward_targets: Arc<HashMap<AccountId, ForwardTarget>>,
    /// A forwarded reply whose head came and whose body waits for `PassThrough`
    forward_reply: Option<ForwardReply>,
    head_tx: Option<oneshot::Sender<AnswerHead>>,
    body_tx: Option<mpsc::Sender<Bytes>>,
    /// Chunks the full channel did not take yet (bounded by the frames already in flight)
    spill: VecDeque<Bytes>,
    /// `End` came: close the body once the spill is written
    end_pending: bool,
    backpressured: bool,
    client_gone: bool,
    finished: bool,
    /// Its overhead histogram: receive → send per relayed event, merged once per turn
    metrics: Option<TurnMetrics>,
    model: String,
    labels: Labels,
}

impl HttpTask {
    async fn run(&mut self) {
        while !self.finished {
            let deadline = self.turn.poll_timeout();
            let read_upstream = self.turn.wants_upstream_read();
            let spilling = !self.spill.is_empty() && !self.client_gone;
            let body_tx = self.body_tx.clone();
            let watch_head = self.head_tx.is_some() && !self.client_gone;
            let watch_body = self.head_tx.is_none() && body_tx.is_some() && !self.client_gone;
            let reserve = OptionFuture::from(body_tx.as_ref().map(|tx| tx.reserve()));
            let head_closed = OptionFuture::from(self.head_tx.as_mut().map(|tx| tx.closed()));
            let body_closed = OptionFuture::from(body_tx.as_ref().map(|tx| tx.closed()));
            tokio::select! {
                biased;
                delivery = self.io.inbox.recv() => match delivery {
                    Some(delivery) => self.io.deliver(&mut self.turn, self.clock.now(), *delivery),
                    None => return, // the control task is gone: shutting down
                },
                Some(msg) = self.io.held.recv(), if read_upstream => {
                    if let Some(now) = self.io.report(&mut self.turn, self.clock.now(), msg).await {
                        // The per-event path ends when its chunk is queued for the client.
                        self.relay_transmits(Some(now));
                    }
                }
                Some(msg) = self.forward_rx.recv() => self.on_forward(msg),
                permit = reserve, if spilling => match permit {
                    Some(Ok(permit)) => {
                        if let Some(chunk) = self.spill.pop_front() {
                            permit.send(chunk);
                        }
                        if self.spill.is_empty() && self.end_pending {
                            self.body_tx = None;
                        }
                    }
                    _ => self.client_left(),
                },
                _ = head_closed, if watch_head => self.client_left(),
                _ = body_closed, if watch_body => self.client_left(),
                () = self.clock.until(deadline) => {
                    // Re-read the clock: the runtime may wake us late or early.
                    self.turn.handle_timeout(self.clock.now());
                }
            }
            self.drive().await;
        }
    }

    fn client_left(&mut self) {
        if !self.client_gone {
            self.client_gone = true;
            self.spill.clear();
            self.body_tx = None;
            self.turn.handle_client_gone(self.clock.now());
        }
    }

    fn on_forward(&mut self, msg: ForwardMsg) {
        let now = self.clock.now();
        match msg {
            ForwardMsg::Head(reply) => {
                let (status, retry_after) = (reply.status, reply.retry_after);
                self.forward_reply = Some(reply);
                self.turn.handle_forward_head(now, status, retry_after);
            }
            ForwardMsg::Failed(reason) => {
                warn!(%reason, "forwarded POST failed");
                self.turn.handle_forward_failed(now);
            }
            ForwardMsg::Ended => self.turn.handle_forward_end(now),
        }
    }

    /// Performs every output of the turn (the drive invariant)
    async fn drive(&mut self) {
        loop {
            self.relay_transmits(None);
            while let Some(request) = self.turn.poll_request() {
                self.route_request(request).await;
            }
            while let Some(event) = self.turn.poll_event() {
                self.on_event(event).await;
            }
            let full = !self.spill.is_empty();
            if full != self.backpressured && !self.client_gone && !self.finished {
                self.backpressured = full;
                self.turn.handle_client_backpressure(self.clock.now(), full);
                continue;
            }
            return;
        }
    }

    /// Writes the turn's transmits; `received` is when the frame that produced them arrived
    fn relay_transmits(&mut self, received: Option<Instant>) {
        let mut unwritable: Vec<ConnId> = Vec::new();
        let mut relayed = false;
        while let Some(transmit) = self.turn.poll_transmit() {
            match transmit {
                HttpTransmit::Head {
                    status,
                    content_type,
                    retry_after,
                } => self.send_head(AnswerHead {
                    status,
                    content_type: Some(HeaderValue::from_static(content_type.as_str())),
                    retry_after,
                }),
                HttpTransmit::Body(chunk) => {
                    relayed = true;
                    self.push_body(chunk);
                }
                HttpTransmit::End => {
                    self.end_pending = true;
                    if self.spill.is_empty() {
                        self.body_tx = None;
                    }
                }
                HttpTransmit::Upstream { conn, msg } => {
                    if !self.io.held.write(conn, msg) {
                        unwritable.push(conn);
                    }
                }
                HttpTransmit::Forward { account, body } => self.start_forward(account, body),
                HttpTransmit::PassThrough => self.pass_through(),
                HttpTransmit::DiscardForward => self.forward_reply = None,
            }
        }
        if let (Some(at), true, Some(m)) = (received, relayed, &mut self.metrics) {
            m.overhead
                .record(self.clock.now().saturating_duration_since(at));
        }
        for conn in unwritable {
            // The writer's queue is full (upstream stopped reading) or the conn is gone.
            let abandoned = UpstreamInput::WriteAbandoned;
            self.turn.handle_upstream(self.clock.now(), conn, abandoned);
        }
    }

    fn send_head(&mut self, head: AnswerHead) {
        if let Some(tx) = self.head_tx.take()
            && tx.send(head).is_err()
        {
            self.client_left();
        }
    }

    fn push_body(&mut self, chunk: Bytes) {
        let Some(tx) = &self.body_tx else {
            return;
        };
        if !self.spill.is_empty() {
            self.spill.push_back(chunk);
            return;
        }
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(chunk)) => self.spill.push_back(chunk),
            Err(mpsc::error::TrySendError::Closed(_)) => self.client_left(),
        }
    }

    fn start_forward(&mut self, account: AccountId, body: Bytes) {
        let tx = self.forward_tx.clone();
        let Some(target) = self.forward_targets.get(&account) else {
            let _ = tx.try_send(ForwardMsg::Failed(format!("no URL for account {account}")));
            return;
        };
        let target = target.clone();
        let limit = self.dial_timeout;
        let rt = self.rt.clone();
        runtime::spawn(&self.rt, async move {
            let msg = match crate::forward::post(&rt, &target, body, limit).await {
                Ok(reply) => ForwardMsg::Head(reply),
                Err(reason) => ForwardMsg::Failed(reason),
            };
            let _ = tx.send(msg).await;
        });
    }

    /// Relays the forwarded reply as it is: its status and content type, then its body
    fn pass_through(&mut self) {
        let Some(reply) = self.forward_reply.take() else {
            return;
        };
        self.send_head(AnswerHead {
            status: reply.status,
            content_type: reply.content_type,
            retry_after: None,
        });
        let body_tx = self.body_tx.clone();
        let done = self.forward_tx.clone();
        runtime::spawn(&self.rt, async move {
            use http_body_util::BodyExt;
            let mut body = reply.body;
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                // Awaiting the channel is the backpressure: upstream is read as fast as the
                // client takes it.
                if let Some(tx) = &body_tx
                    && tx.send(chunk).await.is_err()
                {
                    break;
                }
            }
            let _ = done.send(ForwardMsg::Ended).await;
        });
    }

    async fn route_request(&mut self, request: HttpTurnRequest) {
        let released = match &request {
            HttpTurnRequest::AbandonWrites { conn } => return self.io.held.abandon_writes(*conn),
            HttpTurnRequest::Release { release, .. } => Some(release.record.id),
            _ => None,
        };
        let id = self.io.id;
        (self.io.request(ControlMsg::Http { id, request }, released)).await;
    }

    async fn on_event(&mut self, event: HttpEvent) {
        match &event {
            HttpEvent::Turn(TurnEvent::Finished) => {
                self.finished = true;
                return;
            }
            HttpEvent::Turn(TurnEvent::ResponseEnded(r)) => {
                // Counted before the line is written: whoever reads the line sees the counts.
                if let Some(m) = &mut self.metrics {
                    m.response_ended(r, &self.labels, Some(self.model.as_bytes()));
                }
                let labels = &self.labels;
                labels.export_span("http", self.io.id, r, self.clock.now());
                info!(
                    client = %labels.key_name,
                    account = labels.account(&r.account),
                    conn = %r.conn,
                    response = r.response.as_ref().map_or("", |id| id.as_str()),
                    outcome = r.outcome.as_str(),
                    first_event_ms = r.time_to_first_event.map(|d| d.as_millis() as u64),
                    duration_ms = r.duration.as_millis() as u64,
                    drained = r.drained,
                    "http response ended"
                );
            }
            HttpEvent::Turn(TurnEvent::Retrying {
                failure,
                switch_account,
                ..
            }) => {
                debug!(?failure, switch_account, "http attempt retried");
                if let Some(m) = &self.metrics {
                    m.retried(*failure, *switch_account);
                }
            }
            HttpEvent::ForwardEnded {
                account, status, ..
            } => {
                if let Some(m) = &self.metrics {
                    let outcome = if (200..300).contains(status) {
                        "completed"
                    } else {
                        "error"
                    };
                    let key = &self.labels.key_name;
                    m.metrics
                        .response_ended(ClientTransport::Http, outcome, key);
                }
                debug!(%account, status, "forwarded POST ended");
            }
            HttpEvent::Turn(event) => log_turn_event(event, "http turn"),
            other => debug!(?other, "http turn"),
        }
        if matches!(
            event,
            HttpEvent::Turn(TurnEvent::ResponseEnded(_) | TurnEvent::Retrying { .. })
                | HttpEvent::ForwardEnded { .. }
        ) {
            self.io.send(ControlMsg::HttpEvent { event }).await;
        }
    }

    /// After the turn: the last chunks go to the client (within the client write timeout),
    /// and conns still held go home
    async fn flush_tail(&mut self) {
        self.io.held.release_all();
        let Some(tx) = self.body_tx.take() else {
            return;
        };
        let spill = std::mem::take(&mut self.spill);
        let _ = timeout(&self.rt, self.write_timeout, async move {
            for chunk in spill {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}
