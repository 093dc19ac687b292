//! One upgraded WebSocket connection: the reader loop, lane scheduling, lifetime and the
//! connection-level faults (`stop_reading`, `stop_pong`).
//!
//! ```text
//!   upgraded ──▶ open ──lifetime──▶ expired ──(idle, --unsolicited-limit)──▶ closing (1001)
//!                 │                    │  └───(busy or idle, --cut-at-lifetime)───▶ closing (1001)
//!                 │                    │
//!                 │ client close / EOF / drop / shutdown
//!                 ▼                    ▼
//!               ended: cache, lanes and running responses are dropped
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::emitter::Outgoing;
use crate::errors::ApiError;
use crate::job::{self, ConnShared};
use crate::lanes::LaneScheduler;
use crate::pong_filter::PongFilter;
use crate::record::{CloseSide, Record};
use crate::request::{CreateRequest, Fault, LaneKey, parse_stream_id};
use crate::server::Shared;
use crate::writer::{self, WriterExit};

/// Responses in flight per connection across all lanes (OpenAI's documented limit).
pub(crate) const MAX_IN_FLIGHT: usize = 16;
/// Distinct named lanes per connection lifetime (OpenAI's documented limit).
pub(crate) const MAX_NAMED_LANES: usize = 32;
/// Creates waiting for a lane or slot before the mock refuses more (mock-only bound).
const MAX_QUEUED: usize = 1024;
/// Events waiting for the writer.
const OUT_QUEUE: usize = 1024;
/// Frame and message limit: far above any real request, so size is never the mock's problem.
const MAX_MESSAGE: usize = 256 << 20;
/// How long a server-initiated close waits for the client's close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Reader-side state of one connection.
struct ConnLoop {
    conn: Arc<ConnShared>,
    lanes: LaneScheduler<CreateRequest>,
    named_lanes: HashSet<String>,
    jobs: JoinSet<LaneKey>,
    expiry: Instant,
    expired: bool,
    limit_sent: bool,
    /// `None`: reading. `Some(None)`: stopped for good. `Some(Some(t))`: stopped until `t`.
    paused: Option<Option<Instant>>,
    drop_pongs: Arc<AtomicBool>,
}

/// Serves an upgraded connection until it ends or the mock shuts down.
pub(crate) async fn serve(
    server: Arc<Shared>,
    conn_id: u64,
    upgraded: Upgraded,
    mut shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let drop_pongs = Arc::new(AtomicBool::new(false));
    let _open = OpenGuard::count(&server.switches.open_ws);
    let io = TokioAdapter::new(PongFilter::new(
        TokioIo::new(upgraded),
        drop_pongs.clone(),
        server.switches.clone(),
    ));
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let (sink, mut frames) = ws.split();
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    let server_closed = Arc::new(AtomicBool::new(false));
    let mut writer = tokio::spawn(writer::run(
        sink,
        queue,
        server.recorder.clone(),
        conn_id,
        server_closed.clone(),
    ));
    let max_in_flight = if server.cfg.serial { 1 } else { MAX_IN_FLIGHT };
    let mut state = ConnLoop {
        conn: Arc::new(ConnShared {
            id: conn_id,
            server: server.clone(),
            out,
            cache: Default::default(),
            active: Default::default(),
        }),
        lanes: LaneScheduler::new(max_in_flight),
        named_lanes: HashSet::new(),
        jobs: JoinSet::new(),
        expiry: Instant::now() + server.cfg.lifetime,
        expired: false,
        limit_sent: false,
        paused: None,
        drop_pongs,
    };
    let mut kicks = server.switches.kicks();
    let mut resumes = server.switches.resumes();
    let mut writer_done = false;
    let mut close_deadline: Option<Instant> = None;
    let mut close_recorded = false;
    loop {
        let resume_at = match state.paused {
            Some(Some(at)) => Some(at),
            _ => None,
        };
        if state.paused.is_none() {
            // Only a resume asked while stopped counts.
            resumes.borrow_and_update();
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                if !server_closed.swap(true, Ordering::SeqCst) {
                    server.recorder.push(Record::Close { conn: conn_id, by: CloseSide::Server, code: None });
                }
                break;
            }
            _ = kicks.changed() => {
                // The admin's drop-all: cut the TCP connection, no close frame.
                if !server_closed.swap(true, Ordering::SeqCst) {
                    server.recorder.push(Record::Close { conn: conn_id, by: CloseSide::Server, code: None });
                }
                break;
            }
            exit = &mut writer, if !writer_done => {
                writer_done = true;
                match exit {
                    Ok(WriterExit::Closed) => close_deadline = Some(Instant::now() + CLOSE_GRACE),
                    _ => break,
                }
            }
            () = sleep_until(close_deadline), if close_deadline.is_some() => break,
            Some(done) = state.jobs.join_next(), if !state.jobs.is_empty() => {
                if let Ok(lane) = done {
                    state.lanes.finish(&lane);
                }
                state.dispatch();
                state.maybe_send_limit().await;
            }
            () = tokio::time::sleep_until(state.expiry), if !state.expired => {
                state.expired = true;
                state.maybe_send_limit().await;
            }
            () = sleep_until(resume_at), if resume_at.is_some() => state.paused = None,
            _ = resumes.changed(), if state.paused == Some(None) => state.paused = None,
            frame = frames.next(), if state.paused.is_none() => match frame {
                Some(Ok(Message::Close(frame))) => {
                    // Recorded now, before tungstenite's reply goes out on the next read.
                    if !server_closed.load(Ordering::SeqCst) && !close_recorded {
                        close_recorded = true;
                        let code = frame.map(|f| u16::from(f.code));
                        server.recorder.push(Record::Close { conn: conn_id, by: CloseSide::Client, code });
                    }
                }
                Some(Ok(message)) => state.on_message(message).await,
                Some(Err(_)) | None => break,
            },
        }
    }
    if !server_closed.load(Ordering::SeqCst) && !close_recorded {
        server.recorder.push(Record::Close {
            conn: conn_id,
            by: CloseSide::Client,
            code: None,
        });
    }
    state.jobs.abort_all();
    writer.abort();
}

/// Counts one open connection for as long as it lives.
pub(crate) struct OpenGuard<'a>(&'a AtomicU64);

impl<'a> OpenGuard<'a> {
    pub(crate) fn count(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl ConnLoop {
    fn dispatch(&mut self) {
        while let Some((lane, request)) = self.lanes.pop_ready() {
            self.jobs
                .spawn(job::run_job(self.conn.clone(), lane, request));
        }
    }

    /// With `--unsolicited-limit`, an expired idle socket gets the limit error and a 1001 close.
    /// With `--cut-at-lifetime`, so does a busy one, at once: each response still running or
    /// queued is stopped and gets the limit error on its lane before the close.
    async fn maybe_send_limit(&mut self) {
        let cfg = &self.conn.server.cfg;
        let cut = cfg.cut_at_lifetime;
        if !(self.expired
            && !self.limit_sent
            && (cut || (cfg.unsolicited_limit && self.lanes.is_idle())))
        {
            return;
        }
        self.limit_sent = true;
        self.jobs.abort_all();
        let mut lanes = self.lanes.cut_all();
        if lanes.is_empty() {
            lanes.push(None);
        }
        for lane in lanes {
            let mut em = self.conn.emitter(lane);
            if em
                .error(&ApiError::connection_limit_reached())
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = self
            .conn
            .emitter(None)
            .control(Outgoing::Close {
                code: 1001,
                reason: "connection limit reached",
            })
            .await;
    }

    async fn on_message(&mut self, message: Message) {
        let recorder = &self.conn.server.recorder;
        let conn = self.conn.id;
        let parsed = match &message {
            Message::Text(text) => {
                let value = serde_json::from_str::<Value>(text.as_str());
                let frame = value
                    .as_ref()
                    .map_or_else(|_| Value::String(text.as_str().to_owned()), Clone::clone);
                recorder.push(Record::Frame { conn, frame });
                value.ok()
            }
            Message::Binary(bytes) => {
                recorder.push(Record::Frame {
                    conn,
                    frame: json!({"binary_len": bytes.len()}),
                });
                let error = ApiError::invalid_frame(
                    "Binary frames are not supported; send JSON text frames.".into(),
                );
                let _ = self.conn.emitter(None).error(&error).await;
                return;
            }
            Message::Ping(_) => {
                // tungstenite queued the pong already; the pong filter may still drop it.
                self.conn.server.switches.ping_received();
                return;
            }
            _ => return,
        };
        let Some(Value::Object(frame)) = parsed else {
            let error = ApiError::invalid_frame("The frame is not a JSON object.".into());
            let _ = self.conn.emitter(None).error(&error).await;
            return;
        };
        match frame.get("type").and_then(Value::as_str) {
            Some("response.create") => self.on_create(frame).await,
            Some("response.steer") => {
                let _ = job::steer(&self.conn, &frame).await;
            }
            other => {
                let error = ApiError::unknown_event_type(other.unwrap_or("<missing>"));
                let _ = self.conn.emitter(None).error(&error).await;
            }
        }
    }

    async fn on_create(&mut self, frame: Map<String, Value>) {
        let Ok(lane) = parse_stream_id(frame.get("stream_id")) else {
            let _ = self
                .conn
                .emitter(None)
                .error(&ApiError::invalid_stream_id())
                .await;
            return;
        };
        let refusal = if self.expired || Instant::now() >= self.expiry {
            self.expired = true;
            Some(ApiError::connection_limit_reached())
        } else if let Some(name) = &lane
            && !self.named_lanes.contains(name)
            && self.named_lanes.len() >= MAX_NAMED_LANES
        {
            Some(ApiError::stream_limit_reached())
        } else if self.lanes.queued() >= MAX_QUEUED {
            Some(ApiError::queue_full())
        } else {
            None
        };
        if let Some(error) = refusal {
            let _ = self.conn.emitter(lane).error(&error).await;
            return;
        }
        if let Some(name) = &lane {
            self.named_lanes.insert(name.clone());
        }
        let mut request = CreateRequest::parse(frame);
        request.inherit(self.conn.server.switches.get());
        match request.known_fault() {
            Some(Fault::StopReading) => {
                self.paused = Some(request.delay.map(|d| Instant::now() + d));
            }
            Some(Fault::StopPong) => self.drop_pongs.store(true, Ordering::SeqCst),
            _ => {}
        }
        self.lanes.push(lane, request);
        self.dispatch();
    }
}
