//! One client session of the reliability workloads: a WebSocket with one or several lanes
//! chaining turns, or a chain of HTTP POSTs (SSE), every event checked by [`ResponseCheck`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use super::integrity::{Counts, Outcome, ResponseCheck};
pub use super::misbehave::{ClientFault, ClientFaultSwitch};
use crate::client::{ConnectError, Credentials, WsClient, WsStream};
use crate::loadgen::histogram::Histogram;
use crate::sse::SseClient;

/// A client's pause before it reconnects after a refused or broken socket.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Turns of one `previous_response_id` chain before a session starts a new one.
const CHAIN_TURNS: usize = 25;

/// What a session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One WebSocket, default lane, `store:false` chain in the connection cache (Codex style).
    Ws,
    /// One WebSocket with this many named lanes, each a `store:false` chain, all concurrent.
    Lanes(usize),
    /// One WebSocket, default lane, `store:true` chain.
    Stored,
    /// `POST /v1/responses` with `stream: true` per turn, `store:true` chain.
    Http,
}

impl Kind {
    /// `ws`, `lanesN`, `stored` or `http` (the mix syntax).
    pub fn label(self) -> String {
        match self {
            Self::Ws => "ws".into(),
            Self::Lanes(n) => format!("lanes{n}"),
            Self::Stored => "stored".into(),
            Self::Http => "http".into(),
        }
    }
}

/// The plan of one session.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `ws://HOST/v1/responses`.
    pub ws_url: String,
    /// `http://HOST/v1`.
    pub http_base: String,
    /// Client key.
    pub key: String,
    /// Unique per session (tags, `session-id` header).
    pub session: u64,
    /// What it does.
    pub kind: Kind,
    /// Turns per lane (at least this many; more when `until` is set).
    pub turns: usize,
    /// Keep taking turns until this instant (load that runs across a fault window).
    pub until: Option<Instant>,
    /// `metadata.mock_deltas`.
    pub deltas: u32,
    /// How long one event may take before the response counts as hung.
    pub event_timeout: Duration,
    /// Misbehaviour a fault row switches on for some sessions.
    pub client_fault: Option<Arc<ClientFaultSwitch>>,
}

/// What one or many sessions saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Integrity and outcome counts.
    pub counts: Counts,
    /// Send → first event, per response (ns).
    pub first_event: Histogram,
    /// Send → terminal (or error / break), per response (ns), but for misbehaving clients'.
    pub turn_time: Histogram,
    /// The same for the responses of clients while they misbehave (by design, no deadline).
    pub misbehaving_turn_time: Histogram,
    /// This session misbehaves (how) and has not completed a response since: its failures are
    /// its own doing (not merged).
    misbehaving: Option<&'static str>,
    /// Start offsets (ms since `epoch`) of responses that did not complete: first and last.
    pub failure_window: Option<(u64, u64)>,
    /// Connects attempted.
    pub connects: u64,
    /// Per second since `epoch` (by start): responses started and how many did not complete.
    pub timeline: std::collections::BTreeMap<u64, (u64, u64)>,
}

impl Tally {
    /// Adds another tally.
    pub fn merge(&mut self, other: &Self) {
        self.counts.add(&other.counts);
        self.first_event.merge(&other.first_event);
        self.turn_time.merge(&other.turn_time);
        self.misbehaving_turn_time
            .merge(&other.misbehaving_turn_time);
        self.connects += other.connects;
        for (second, (started, failed)) in &other.timeline {
            let slot = self.timeline.entry(*second).or_default();
            slot.0 += started;
            slot.1 += failed;
        }
        self.failure_window = match (self.failure_window, other.failure_window) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
    }

    /// Counts how one response ended (`check`: its integrity check, absent for a refused
    /// connect; `stalled`: the client stopped reading while it was in flight). A stalled
    /// response, and any other that fails while this session misbehaves, is the client's own
    /// doing: a failure counts as abandoned, labelled with how it misbehaved and the reason;
    /// its time goes apart. A completion of a response not stalled ends the misbehaviour.
    fn end(
        &mut self,
        check: Option<ResponseCheck>,
        epoch: Instant,
        started: Instant,
        outcome: Outcome,
        stalled: bool,
    ) {
        let own = stalled
            || matches!(outcome, Outcome::Abandoned(_))
            || (self.misbehaving.is_some() && outcome != Outcome::Completed);
        let outcome = match outcome {
            Outcome::Completed => {
                if !stalled {
                    self.misbehaving = None;
                }
                Outcome::Completed
            }
            Outcome::Abandoned(how) => Outcome::Abandoned(how),
            other if own => Outcome::Abandoned(format!(
                "{}, then {}",
                self.misbehaving.unwrap_or("stopped reading"),
                other.reason()
            )),
            other => other,
        };
        match check {
            Some(check) => self.counts.add(&check.finish(&outcome)),
            None => self.counts.outcome(&outcome),
        }
        self.record(epoch, started, &outcome, own);
    }

    fn record(&mut self, epoch: Instant, started: Instant, outcome: &Outcome, own: bool) {
        let took = started.elapsed().as_nanos() as u64;
        // The client's own by-design misbehaviour is no failure of the service.
        let failed = !matches!(outcome, Outcome::Completed | Outcome::Abandoned(_));
        if own {
            self.misbehaving_turn_time.record(took);
        } else {
            self.turn_time.record(took);
        }
        let slot = self
            .timeline
            .entry(started.saturating_duration_since(epoch).as_secs())
            .or_default();
        slot.0 += 1;
        if failed {
            slot.1 += 1;
        }
        if failed {
            let at = started.saturating_duration_since(epoch).as_millis() as u64;
            self.failure_window = Some(match self.failure_window {
                Some((first, last)) => (first.min(at), last.max(at)),
                None => (at, at),
            });
        }
    }
}

impl Serialize for Tally {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = |h: &Histogram| {
            let p = h.summary_us();
            json!({"count": p.count, "p50_ms": p.p50 / 1e3, "p99_ms": p.p99 / 1e3,
                   "max_ms": p.max / 1e3})
        };
        json!({
            "counts": self.counts,
            "first_event": ms(&self.first_event),
            "turn_time": ms(&self.turn_time),
            "misbehaving_turn_time": ms(&self.misbehaving_turn_time),
            "failure_window_ms": self.failure_window,
            "connects": self.connects,
            "timeline": self.timeline.iter().map(|(s, (n, f))| [*s, *n, *f]).collect::<Vec<_>>(),
        })
        .serialize(s)
    }
}

impl Plan {
    fn creds(&self) -> Credentials {
        let id = format!("rel-{:016x}", self.session);
        Credentials::bearer(&self.key)
            .with_header("session-id", &id)
            .with_header("x-client-request-id", &id)
    }

    fn more(&self, turn: usize) -> bool {
        match self.until {
            Some(until) => Instant::now() < until,
            None => turn < self.turns,
        }
    }

    /// The fault this session acts out now, if any.
    fn misbehaves(&self) -> Option<ClientFault> {
        self.client_fault.as_ref()?.of(self.session)
    }

    /// Whether the response about to be sent is one this client will stop reading.
    fn will_stall(&self) -> Option<Duration> {
        match self.misbehaves()? {
            ClientFault::StopReading { stall, .. } => Some(stall),
            ClientFault::Vanish => None,
        }
    }

    /// Whether the client vanishes at this event of its response.
    fn vanishes_at(&self, kind: &str) -> bool {
        kind == "response.output_text.delta" && self.misbehaves() == Some(ClientFault::Vanish)
    }

    fn create(
        &self,
        lane: Option<&str>,
        turn: usize,
        previous: Option<&str>,
        ws: bool,
        stall: bool,
    ) -> Value {
        let tag = self.tag(lane, turn);
        let deltas = match (stall, self.client_fault.as_ref().map(|f| f.fault())) {
            (true, Some(ClientFault::StopReading { deltas, .. })) => deltas,
            _ => self.deltas,
        };
        let mut body = json!({
            "model": crate::protocol::MODEL,
            "stream": true,
            "store": matches!(self.kind, Kind::Stored | Kind::Http),
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": format!("turn {turn}")}]}],
            "metadata": {"rel_tag": tag, "mock_deltas": deltas.to_string()},
        });
        if ws {
            body["type"] = json!("response.create");
        }
        if let Some(lane) = lane {
            body["stream_id"] = json!(lane);
        }
        // Chains restart every CHAIN_TURNS turns, so a long soak does not grow one context.
        if let Some(id) = previous.filter(|_| !turn.is_multiple_of(CHAIN_TURNS)) {
            body["previous_response_id"] = json!(id);
        }
        body
    }

    fn tag(&self, lane: Option<&str>, turn: usize) -> String {
        format!("s{}.{}.t{turn}", self.session, lane.unwrap_or("-"))
    }
}

/// Runs one session to its end; `epoch` is the run's start (failure window offsets).
pub async fn run(plan: &Plan, epoch: Instant) -> Tally {
    match plan.kind {
        Kind::Http => run_http(plan, epoch).await,
        Kind::Ws | Kind::Stored => run_ws(plan, &[None], epoch).await,
        Kind::Lanes(n) => {
            let lanes: Vec<Option<String>> = (0..n.max(1)).map(|i| Some(format!("l{i}"))).collect();
            run_ws(plan, &lanes, epoch).await
        }
    }
}

/// A refused upgrade is a clear error answer; anything else is a broken transport.
pub fn connect_outcome(error: &ConnectError) -> Outcome {
    match error {
        ConnectError::Rejected { status, body } => Outcome::Error {
            status: Some(u64::from(*status)),
            code: serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|b| b["error"]["code"].as_str().map(str::to_owned)),
        },
        ConnectError::Transport(_) => Outcome::Broken("connect failed".into()),
    }
}

/// One lane's chain on a socket.
struct Lane {
    name: Option<String>,
    turn: usize,
    previous: Option<String>,
    /// In flight: the check, when it was sent, whether an event came, the last event's time.
    check: Option<(ResponseCheck, Instant, bool, Instant)>,
    /// The client stops reading at the first event of the response in flight, this long.
    stall: Option<Duration>,
    /// The client stopped reading while the response in flight was (its own doing).
    stalled: bool,
}

async fn run_ws(plan: &Plan, lane_names: &[Option<String>], epoch: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut lanes: Vec<Lane> = lane_names
        .iter()
        .map(|name| Lane {
            name: name.clone(),
            turn: 0,
            previous: None,
            check: None,
            stall: None,
            stalled: false,
        })
        .collect();
    let index: HashMap<Option<String>, usize> = lane_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    while lanes.iter().any(|l| plan.more(l.turn)) {
        tally.connects += 1;
        let started = Instant::now();
        let mut ws = match connect(plan).await {
            Ok(client) => client.into_stream(),
            Err(e) => {
                // The refusal answers this attempt's first turn on every lane.
                let outcome = connect_outcome(&e);
                for lane in lanes.iter_mut().filter(|l| plan.more(l.turn)) {
                    tally.end(None, epoch, started, outcome.clone(), false);
                    lane.turn += 1;
                    lane.previous = None;
                }
                tokio::time::sleep(RECONNECT_PAUSE).await; // a client's back-off, not a sync
                continue;
            }
        };
        let end = on_socket(plan, &mut ws, &mut lanes, &index, &mut tally, epoch).await;
        if end == Outcome::Completed {
            let _ = ws.close(None).await;
            break;
        }
        // Gone before the pause (a vanishing client drops its TCP without a close frame).
        drop(ws);
        tokio::time::sleep(RECONNECT_PAUSE).await; // a client's back-off, not a sync
    }
    tally
}

/// The receive buffer of a WebSocket client that may stop reading: small, so the gateway's
/// client write buffer fills after little data (loopback's default buffers absorb megabytes) and
/// its blocked-client handling, not the client's return, ends the stall.
const STOPPING_CLIENT_RCVBUF: u32 = 4096;

async fn connect(plan: &Plan) -> Result<WsClient, ConnectError> {
    let stops_reading = plan.client_fault.as_ref().is_some_and(|f| {
        matches!(f.fault(), ClientFault::StopReading { .. }) && f.member(plan.session)
    });
    if !stops_reading {
        return WsClient::connect(&plan.ws_url, &plan.creds()).await;
    }
    WsClient::connect_with_recv_buffer(&plan.ws_url, &plan.creds(), STOPPING_CLIENT_RCVBUF).await
}

/// Runs the default lane's turns (from turn 0, no previous response) on an open socket; returns
/// `Completed` when they all ended, or how the socket ended.
pub async fn default_lane_turns(
    plan: &Plan,
    ws: &mut WsStream,
    tally: &mut Tally,
    epoch: Instant,
) -> Outcome {
    let mut lanes = vec![Lane {
        name: None,
        turn: 0,
        previous: None,
        check: None,
        stall: None,
        stalled: false,
    }];
    let index = HashMap::from([(None, 0)]);
    on_socket(plan, ws, &mut lanes, &index, tally, epoch).await
}

/// Starts every lane that has turns left, drives the socket, and ends what is left in flight
/// with the socket's end (chains restart on a new socket).
async fn on_socket(
    plan: &Plan,
    ws: &mut WsStream,
    lanes: &mut [Lane],
    index: &HashMap<Option<String>, usize>,
    tally: &mut Tally,
    epoch: Instant,
) -> Outcome {
    for lane in lanes.iter_mut() {
        if plan.more(lane.turn) && !send(plan, ws, lane).await {
            break;
        }
    }
    let end = drive(plan, ws, lanes, index, tally, epoch).await;
    for lane in lanes.iter_mut() {
        lane.previous = None;
        if let Some((check, sent, _, _)) = lane.check.take() {
            tally.end(Some(check), epoch, sent, end.clone(), lane.stalled);
            lane.turn += 1;
        }
    }
    end
}

/// Sends the next create of `lane`; false when the socket failed.
async fn send(plan: &Plan, ws: &mut WsStream, lane: &mut Lane) -> bool {
    lane.stall = plan.will_stall();
    lane.stalled = false;
    let body = plan.create(
        lane.name.as_deref(),
        lane.turn,
        lane.previous.as_deref(),
        true,
        lane.stall.is_some(),
    );
    let tag = plan.tag(lane.name.as_deref(), lane.turn);
    let now = Instant::now();
    lane.check = Some((ResponseCheck::new(tag, lane.name.clone()), now, false, now));
    ws.send(Message::text(body.to_string())).await.is_ok()
}

/// Reads the socket until every lane is done (`Completed`) or the socket ends (its reason).
async fn drive(
    plan: &Plan,
    ws: &mut WsStream,
    lanes: &mut [Lane],
    index: &HashMap<Option<String>, usize>,
    tally: &mut Tally,
    epoch: Instant,
) -> Outcome {
    loop {
        if lanes.iter().all(|l| l.check.is_none()) {
            return Outcome::Completed;
        }
        // Hung: some response in flight has had no event for event_timeout (pings and pongs
        // keep a socket alive but are no progress).
        let deadline = lanes
            .iter()
            .filter_map(|l| l.check.as_ref().map(|c| c.3))
            .min()
            .unwrap_or_else(Instant::now)
            + plan.event_timeout;
        let frame = match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return Outcome::Timeout,
            Ok(frame) => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1006, |f| u16::from(f.code));
                return Outcome::Broken(format!("close {code}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Outcome::Broken("close 1006".into()),
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            tally.counts.misrouted += 1;
            continue;
        };
        let lane_key = event
            .get("stream_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kind = event["type"].as_str().unwrap_or_default();
        let idle_lane = index
            .get(&lane_key)
            .is_none_or(|&at| lanes[at].check.is_none());
        if kind == "error" && idle_lane {
            tally.counts.unsolicited(&event);
            continue;
        }
        let Some(&at) = index.get(&lane_key) else {
            // A lane this socket never opened.
            tally.counts.events += 1;
            tally.counts.misrouted += 1;
            continue;
        };
        let lane = &mut lanes[at];
        let Some((check, sent, seen_first, last)) = lane.check.as_mut() else {
            // Nothing in flight on this lane: a late event of its last response.
            tally.counts.events += 1;
            tally.counts.after_terminal += 1;
            continue;
        };
        if !check.started() && kind != "response.created" && kind != "error" {
            tally.counts.events += 1;
            tally.counts.after_terminal += 1;
            continue;
        }
        *last = Instant::now();
        if !*seen_first {
            *seen_first = true;
            tally.first_event.record(sent.elapsed().as_nanos() as u64);
        }
        let Some(outcome) = check.event(&event) else {
            if let Some(stall) = lane.stall.take() {
                // The misbehaviour itself: this client does not read for `stall`.
                tally.misbehaving = Some("stopped reading");
                tokio::time::sleep(stall).await;
                // Every response in flight on this socket waited with it.
                for lane in lanes.iter_mut() {
                    if let Some(check) = lane.check.as_mut() {
                        check.3 = Instant::now();
                        lane.stalled = true;
                    }
                }
            } else if plan.vanishes_at(kind) {
                tally.misbehaving = Some("vanished");
                return Outcome::Abandoned("client vanished mid-stream".into());
            }
            continue;
        };
        let (check, sent, _, _) = lane.check.take().expect("checked above");
        tally.end(Some(check), epoch, sent, outcome.clone(), lane.stalled);
        lane.previous = match &outcome {
            Outcome::Completed => event["response"]["id"].as_str().map(str::to_owned),
            _ => None,
        };
        lane.turn += 1;
        if plan.more(lane.turn) && !send(plan, ws, lane).await {
            return Outcome::Broken("send failed".into());
        }
    }
}

async fn run_http(plan: &Plan, epoch: Instant) -> Tally {
    let http = SseClient::new();
    let creds = plan.creds();
    let mut tally = Tally::default();
    let mut previous: Option<String> = None;
    let mut turn = 0;
    while plan.more(turn) {
        let mut stall = plan.will_stall();
        let body = plan.create(None, turn, previous.as_deref(), false, stall.is_some());
        let stalled = stall.is_some();
        let mut check = ResponseCheck::new(plan.tag(None, turn), None);
        let sent = Instant::now();
        let mut first = true;
        let outcome = match http.post(&plan.http_base, &creds, &body).await {
            // Bounded labels: the client's own deadline on the response head, or the transport.
            Err(e) if e.0.contains("no HTTP response head") => {
                Outcome::Broken("POST: no response head in 10 s".into())
            }
            Err(_) => Outcome::Broken("POST: connection error".into()),
            Ok(stream) if stream.status() != 200 => {
                let status = stream.status();
                let text = stream.text().await.unwrap_or_default();
                Outcome::Error {
                    status: Some(u64::from(status)),
                    code: serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|b| b["error"]["code"].as_str().map(str::to_owned)),
                }
            }
            Ok(mut stream) => loop {
                match tokio::time::timeout(plan.event_timeout, stream.next_event()).await {
                    Err(_) => break Outcome::Timeout,
                    Ok(Err(_)) => break Outcome::Broken("SSE body broke".into()),
                    Ok(Ok(None)) => break Outcome::Broken("SSE ended before a terminal".into()),
                    Ok(Ok(Some(event))) => {
                        if first {
                            first = false;
                            tally.first_event.record(sent.elapsed().as_nanos() as u64);
                        }
                        if let Some(stall) = stall.take() {
                            // The misbehaviour itself: this client does not read for `stall`.
                            tally.misbehaving = Some("stopped reading");
                            tokio::time::sleep(stall).await;
                        }
                        if plan.vanishes_at(event["type"].as_str().unwrap_or_default()) {
                            // Dropping the body closes its connection mid-stream.
                            tally.misbehaving = Some("vanished");
                            break Outcome::Abandoned("client vanished mid-stream".into());
                        }
                        if let Some(outcome) = check.event(&event) {
                            if outcome == Outcome::Completed {
                                previous = event["response"]["id"].as_str().map(str::to_owned);
                            }
                            // Anything after the terminal on this body is a violation.
                            while let Ok(Ok(Some(_))) =
                                tokio::time::timeout(plan.event_timeout, stream.next_event()).await
                            {
                                check.late_event();
                            }
                            break outcome;
                        }
                    }
                }
            },
        };
        if outcome != Outcome::Completed {
            previous = None;
        }
        tally.end(Some(check), epoch, sent, outcome, stalled);
        turn += 1;
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misbehaving_sessions_failures_are_its_own_until_it_completes_again() {
        let epoch = Instant::now();
        let mut tally = Tally {
            misbehaving: Some("stopped reading"),
            ..Tally::default()
        };
        // Two lanes stalled: one cut, one completed late; both the client's own.
        tally.end(
            None,
            epoch,
            epoch,
            Outcome::Broken("close 1011".into()),
            true,
        );
        tally.end(None, epoch, epoch, Outcome::Completed, true);
        // Still misbehaving: the next failure is its own too.
        tally.end(
            None,
            epoch,
            epoch,
            Outcome::Broken("close 1006".into()),
            false,
        );
        // A response not stalled completes: from then on failures are the service's.
        tally.end(None, epoch, epoch, Outcome::Completed, false);
        tally.end(
            None,
            epoch,
            epoch,
            Outcome::Broken("close 1006".into()),
            false,
        );
        let c = &tally.counts;
        assert_eq!((c.abandoned, c.completed, c.broken), (2, 2, 1));
        assert_eq!(c.reasons["stopped reading, then close 1011"], 1);
        assert_eq!(c.reasons["stopped reading, then close 1006"], 1);
        assert_eq!(tally.misbehaving_turn_time.summary_us().count, 3);
        assert_eq!(tally.turn_time.summary_us().count, 2);
        assert_eq!(tally.timeline[&0], (5, 1));
    }
}
