//! One load session: a chain of turns over one WebSocket (or over SSE POSTs), measuring each event
//! as it arrives and checking each response's `sequence_number`s.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_util::StreamExt;
use tokio::net::TcpSocket;

use super::config::{LoadConfig, LoadTarget, Mode};
use super::event_head::{EventHead, create_body};
use super::stats::SessionStats;
use super::stream_check::SequenceChecker;
use crate::client::{ConnectError, Credentials, WsClient, WsStream};
use crate::protocol::is_response_terminal;
use crate::sse::{SseClient, SseStream};

/// Wall-clock now in ns since the UNIX epoch (the clock the mock stamps `mock_ts_ns` with).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one turn produced.
enum TurnEnd {
    /// `response.completed` with this id.
    Completed(String),
    /// An error event or a non-completed terminal; the socket is still usable. The string names
    /// it (types and statuses only).
    Failed(String),
    /// The transport broke (send error, close, reset, timeout); the socket must be replaced.
    Broken(String),
}

/// Per-turn bookkeeping shared by the WS and SSE readers.
struct TurnMeter<'a> {
    stats: &'a mut SessionStats,
    measured: bool,
    sent: Instant,
    first: bool,
    checker: SequenceChecker,
    id: Option<String>,
}

impl<'a> TurnMeter<'a> {
    fn new(stats: &'a mut SessionStats, measured: bool) -> Self {
        Self {
            stats,
            measured,
            sent: Instant::now(),
            first: true,
            checker: SequenceChecker::new(),
            id: None,
        }
    }

    /// Feeds one event frame; returns the turn's end once it is known.
    fn event(&mut self, bytes: &[u8]) -> Option<TurnEnd> {
        let received_ns = now_ns();
        let head = match EventHead::parse(bytes) {
            Ok(head) => head,
            Err(e) => return Some(TurnEnd::Failed(format!("unparsable event: {e}"))),
        };
        self.stats.events_all += 1;
        if self.first {
            self.first = false;
            if self.measured {
                self.stats
                    .turn_start
                    .record(self.sent.elapsed().as_nanos() as u64);
            }
        }
        if head.kind == "error" {
            return Some(TurnEnd::Failed(format!(
                "error event status {:?}",
                head.status
            )));
        }
        self.checker.observe(head.sequence_number);
        if self.measured {
            self.stats.events += 1;
            if let Some(ts) = head.mock_ts_ns {
                self.stats
                    .event_latency
                    .record(received_ns.saturating_sub(ts));
            }
        }
        if self.id.is_none() {
            self.id = head.response_id().map(str::to_owned);
        }
        if is_response_terminal(head.kind) {
            return Some(match (head.kind, head.response_id()) {
                ("response.completed", Some(id)) => TurnEnd::Completed(id.to_owned()),
                (kind, _) => TurnEnd::Failed(kind.to_owned()),
            });
        }
        None
    }

    /// Closes the turn: integrity counts, measured window, outcome.
    fn finish(self, end: TurnEnd) -> Option<String> {
        let integrity = self.checker.finish();
        self.stats.integrity.add(&integrity);
        match end {
            TurnEnd::Completed(id) => {
                if self.measured {
                    self.stats.turns_ok += 1;
                    self.stats.cover(self.sent, Instant::now());
                }
                Some(id)
            }
            TurnEnd::Failed(reason) | TurnEnd::Broken(reason) => {
                self.stats.error(reason);
                None
            }
        }
    }
}

/// Everything a session needs to know.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    /// Where to go.
    pub target: LoadTarget,
    /// Credentials including the per-session Codex-like headers.
    pub creds: Credentials,
    /// The load plan.
    pub config: LoadConfig,
    /// Bind the client socket to this source address (`None`: the OS picks).
    pub source: Option<Ipv4Addr>,
    /// Keep the WebSocket open after the last turn and hand it back in the outcome.
    pub hold: bool,
}

/// What a session leaves behind.
pub struct SessionOutcome {
    /// Its measurements.
    pub stats: SessionStats,
    /// The open WebSocket, when the plan said to hold it (WS mode, socket still usable).
    pub held: Option<WsStream>,
}

/// Codex-like per-session headers: a unique `session-id` / `x-client-request-id` and an originator.
pub fn session_credentials(api_key: &str, session_uuid: &str) -> Credentials {
    Credentials::bearer(api_key)
        .with_header("session-id", session_uuid)
        .with_header("x-client-request-id", session_uuid)
        .with_header("originator", "wsv2-loadgen")
}

/// Runs one session to the end and returns its measurements (and its socket when held).
pub async fn run_session(plan: SessionPlan) -> SessionOutcome {
    match plan.config.mode {
        Mode::Ws => run_ws(&plan).await,
        Mode::Sse => SessionOutcome {
            stats: run_sse(&plan).await,
            held: None,
        },
    }
}

async fn connect(plan: &SessionPlan, stats: &mut SessionStats) -> Option<WsStream> {
    let started = Instant::now();
    let connected = match plan.source {
        None => WsClient::connect(&plan.target.ws_url, &plan.creds).await,
        Some(source) => connect_from(source, plan).await,
    };
    match connected {
        Ok(client) => {
            stats.connect.record(started.elapsed().as_nanos() as u64);
            Some(client.into_stream())
        }
        Err(e) => {
            stats.error(format!("connect: {}", crate::Failure::from(e)));
            None
        }
    }
}

/// Connects from a given loopback source address (the OS picks the port).
async fn connect_from(source: Ipv4Addr, plan: &SessionPlan) -> Result<WsClient, ConnectError> {
    let transport = |e: std::io::Error| ConnectError::Transport(e.to_string());
    let authority = plan
        .target
        .ws_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or_default();
    let peer = tokio::net::lookup_host(authority)
        .await
        .map_err(transport)?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| ConnectError::Transport(format!("no IPv4 address for {authority}")))?;
    let socket = TcpSocket::new_v4().map_err(transport)?;
    socket
        .bind(SocketAddr::from((source, 0)))
        .map_err(transport)?;
    let tcp = socket.connect(peer).await.map_err(transport)?;
    WsClient::connect_over(
        tcp,
        &plan.target.ws_url,
        &plan.creds,
        WebSocketConfig::default(),
    )
    .await
}

async fn run_ws(plan: &SessionPlan) -> SessionOutcome {
    let cfg = &plan.config;
    let mut stats = SessionStats::default();
    let mut ws: Option<WsStream> = None;
    let mut previous: Option<String> = None;
    for turn in 0..cfg.warmup_turns + cfg.turns {
        if turn > 0 && !cfg.think_time.is_zero() {
            tokio::time::sleep(cfg.think_time).await; // simulated user think time, not a sync
        }
        if ws.is_none() {
            // First turn, or the socket broke: (re)connect and start a new chain, as Codex would.
            // A failed connect is this turn's error.
            previous = None;
            ws = connect(plan, &mut stats).await;
        }
        let Some(stream) = ws.as_mut() else { continue };
        let measured = turn >= cfg.warmup_turns;
        let body = create_body(true, previous.as_deref(), cfg.deltas, turn);
        let mut meter = TurnMeter::new(&mut stats, measured);
        let end = match stream.send(Message::text(body)).await {
            Err(e) => TurnEnd::Broken(format!("send: {e}")),
            Ok(()) => read_ws_turn(stream, &mut meter, cfg.event_timeout).await,
        };
        let broken = matches!(end, TurnEnd::Broken(_));
        previous = meter.finish(end);
        if broken {
            ws = None;
        }
    }
    if plan.hold {
        return SessionOutcome { stats, held: ws };
    }
    if let Some(mut stream) = ws {
        let _ = stream.close(None).await;
    }
    SessionOutcome { stats, held: None }
}

async fn read_ws_turn(
    stream: &mut WsStream,
    meter: &mut TurnMeter<'_>,
    timeout: Duration,
) -> TurnEnd {
    loop {
        let frame = match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => return TurnEnd::Broken(format!("timeout: no event within {timeout:?}")),
            Ok(frame) => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Some(end) = meter.event(text.as_bytes()) {
                    return end;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return TurnEnd::Broken(format!(
                    "socket closed {:?}",
                    frame.map(|f| u16::from(f.code))
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return TurnEnd::Broken(format!("socket error: {e}")),
            None => return TurnEnd::Broken("socket ended".into()),
        }
    }
}

async fn run_sse(plan: &SessionPlan) -> SessionStats {
    let cfg = &plan.config;
    let http = SseClient::new();
    let mut stats = SessionStats::default();
    let mut previous: Option<String> = None;
    for turn in 0..cfg.warmup_turns + cfg.turns {
        if turn > 0 && !cfg.think_time.is_zero() {
            tokio::time::sleep(cfg.think_time).await; // simulated user think time, not a sync
        }
        let measured = turn >= cfg.warmup_turns;
        let body: serde_json::Value =
            serde_json::from_str(&create_body(false, previous.as_deref(), cfg.deltas, turn))
                .unwrap_or_default();
        let mut meter = TurnMeter::new(&mut stats, measured);
        let end = match http.post(&plan.target.http_base, &plan.creds, &body).await {
            Err(e) => TurnEnd::Failed(format!("POST: {e}")),
            Ok(stream) if stream.status() != 200 => {
                TurnEnd::Failed(format!("POST status {}", stream.status()))
            }
            Ok(stream) => read_sse_turn(stream, &mut meter).await,
        };
        previous = meter.finish(end);
    }
    stats
}

async fn read_sse_turn(mut stream: SseStream, meter: &mut TurnMeter<'_>) -> TurnEnd {
    loop {
        match stream.next_data().await {
            Err(e) => return TurnEnd::Failed(format!("SSE: {e}")),
            Ok(None) => return TurnEnd::Failed("SSE body ended before a terminal event".into()),
            Ok(Some(data)) => {
                if let Some(end) = meter.event(&data) {
                    return end;
                }
            }
        }
    }
}
