//! A whole gateway in virtual time — the real `Control` (scheduler, store, pools, slots), one
//! WebSocket `Session` and any number of `HttpTurn`s — driven by a script decoded from fuzz
//! bytes: client frames, upstream frames on whichever conn is leased, closes, pongs,
//! back-pressure, dial failures and the passing of time.
//!
//! Checked on every step: no panic; routing settles (no livelock) and no timer stays due
//! after it fired; every frame to the client is a JSON object with a string `type`; every frame
//! to upstream is a client event the gateway means to send; each HTTP request gets one
//! well-formed answer (one head, then bodies, then one end; each SSE body one event of valid
//! JSON). At the end every client leaves and time runs on: the session must finish, every turn
//! must end, and the pools must have no conn leased and no waiter left (nothing leaked).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::conn::UpstreamTransmit;
use wsv2_core::control::{AccountSpec, Control, ControlOutput, DialFailure};
use wsv2_core::event::Utf8;
use wsv2_core::event::{ClientEventKind, classify_client_event, classify_server_event};
use wsv2_core::http::{ContentType, HttpEvent, HttpTransmit, HttpTurn};
use wsv2_core::resolver::{AccountProtocol, AuthType};
use wsv2_core::session::{Hop, Session, SessionRequest, Transmit};
use wsv2_core::store::MemoryBackend;
use wsv2_core::turn::{Holder, ModelMap, SessionInfo, TurnEvent, UpstreamInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use crate::input::Input;

/// Routing rounds one input may take before it counts as a livelock
const MAX_ROUNDS: usize = 10_000;
/// Deadlines that may fire at one instant before a timer counts as stuck
const MAX_FIRINGS_AT_ONE_INSTANT: usize = 1_000;
/// Script steps read from one input (bounds the work per input)
const MAX_STEPS: usize = 256;
/// The drain deadline of the simulated gateway (shorter than the default so that settling
/// costs few timer firings per input)
const DRAIN: Duration = Duration::from_secs(60);
/// How long time runs on after everyone left, for drains and pools to settle
const SETTLE: Duration = Duration::from_secs(600);

const WS: SessionId = SessionId(1);
const LANES: [Option<&str>; 4] = [None, Some("a"), Some("b"), Some("bad lane!")];
const IDS: [&str; 4] = ["resp_1", "resp_2", "resp_3", "resp_x"];
const MODELS: [&str; 4] = ["client-model", "gpt-5", "", "upstream-model"];

/// What one HTTP request's client has received
#[derive(Default)]
struct Answer {
    head: Option<ContentType>,
    ended: bool,
    finished: bool,
    gone: bool,
}

struct Sim {
    now: Instant,
    cfg: Arc<Config>,
    control: Control,
    memory: MemoryBackend,
    session: Option<Session>,
    ws_closed: bool,
    turns: BTreeMap<SessionId, (HttpTurn, Answer)>,
    next_turn: u64,
    fail_dials: bool,
}

fn account(id: u64) -> AccountSpec {
    AccountSpec {
        id: AccountId(id),
        name: format!("acct{id}"),
        protocol: AccountProtocol {
            auth_type: AuthType::ApiKey,
            force_http: false,
        },
        concurrency: 2,
        priority: 0,
        model_map: Arc::new(if id == 1 {
            ModelMap::new([("client-model".to_owned(), "upstream-model".to_owned())])
        } else {
            ModelMap::default()
        }),
    }
}

impl Sim {
    fn new(input: &mut Input<'_>) -> Self {
        let mut cfg = Config::default();
        cfg.pool.min_idle_per_account = usize::from(input.byte() % 2);
        cfg.session.drain_timeout = DRAIN;
        let cfg = Arc::new(cfg);
        let now = Instant::now();
        let mut sim = Self {
            control: Control::new(cfg.clone(), vec![account(1), account(2)], 7, now),
            cfg,
            now,
            memory: MemoryBackend::new(64),
            session: None,
            ws_closed: false,
            turns: BTreeMap::new(),
            next_turn: 100,
            fail_dials: false,
        };
        sim.run();
        sim
    }

    fn info() -> SessionInfo {
        SessionInfo {
            group: "default".into(),
            ..SessionInfo::default()
        }
    }

    fn open_session(&mut self) {
        self.control.open_session(WS, Self::info());
        self.session = Some(Session::new(WS, self.cfg.clone(), self.now));
        self.run();
    }

    fn post(&mut self, body: Bytes) {
        let id = SessionId(self.next_turn);
        self.next_turn += 1;
        let turn = HttpTurn::new(id, self.cfg.clone(), self.now, body, Self::info());
        self.turns.insert(id, (turn, Answer::default()));
        self.run();
    }

    /// Every conn a client machine holds: the session's active and retiring ones, each turn's
    fn conns(&self) -> Vec<(Option<SessionId>, ConnId)> {
        let mut out = Vec::new();
        if let Some(s) = &self.session {
            out.extend(s.active_conn().map(|c| (None, c.id())));
            out.extend(s.retiring_conn().map(|c| (None, c.id())));
        }
        for (id, (turn, _)) in &self.turns {
            out.extend(turn.conn().map(|c| (Some(*id), c.id())));
        }
        out
    }

    /// Applies one scripted step
    fn step(&mut self, input: &mut Input<'_>) {
        match input.below(12) {
            0..=2 => {
                let frame = client_frame(input);
                if let Some(s) = &mut self.session {
                    s.handle_client_text(self.now, frame);
                }
            }
            3..=5 => {
                let frame = upstream_frame(input);
                let conns = self.conns();
                if !conns.is_empty() {
                    let (owner, conn) = conns[input.below(conns.len())];
                    self.with_holder(
                        owner,
                        |now, s| {
                            s.handle_upstream(
                                now,
                                conn,
                                UpstreamInput::Frame(frame.clone(), Utf8::Unchecked),
                            )
                        },
                        |now, t| {
                            t.handle_upstream(
                                now,
                                conn,
                                UpstreamInput::Frame(frame.clone(), Utf8::Unchecked),
                            )
                        },
                    );
                }
            }
            6 => {
                let by = match input.byte() {
                    b if b < 200 => Duration::from_millis(u64::from(b) * 50),
                    b => Duration::from_secs(u64::from(b - 199) * 10),
                };
                self.advance(by);
            }
            7 => {
                let conns = self.conns();
                if !conns.is_empty() {
                    let (owner, conn) = conns[input.below(conns.len())];
                    match input.below(3) {
                        0 => self.with_holder(
                            owner,
                            |now, s| s.handle_upstream(now, conn, UpstreamInput::Closed),
                            |now, t| t.handle_upstream(now, conn, UpstreamInput::Closed),
                        ),
                        1 => self.with_holder(
                            owner,
                            |now, s| s.handle_upstream(now, conn, UpstreamInput::Pong),
                            |now, t| t.handle_upstream(now, conn, UpstreamInput::Pong),
                        ),
                        _ => {
                            // The shell's `started` flag: the core does not read it.
                            let _ = input.bool();
                            self.with_holder(
                                owner,
                                |now, s| {
                                    s.handle_upstream(now, conn, UpstreamInput::WriteAbandoned)
                                },
                                |now, t| {
                                    t.handle_upstream(now, conn, UpstreamInput::WriteAbandoned)
                                },
                            );
                        }
                    }
                }
            }
            8 => {
                let full = input.bool();
                let target = input.byte();
                self.for_client(
                    target,
                    |now, s| s.handle_client_backpressure(now, full),
                    |now, t, _| t.handle_client_backpressure(now, full),
                );
            }
            9 => {
                let target = input.byte();
                self.for_client(
                    target,
                    |now, s| s.handle_client_gone(now),
                    |now, t, answer| {
                        t.handle_client_gone(now);
                        answer.gone = true;
                    },
                );
            }
            10 => match (input.below(4), &mut self.session) {
                (0, Some(s)) => s.handle_client_pong(self.now),
                (1, Some(s)) => s.handle_client_binary(self.now),
                (2, Some(s)) => {
                    let hop = match (input.bool(), s.active_conn()) {
                        (true, Some(conn)) => Hop::Upstream(conn.id()),
                        _ => Hop::Client,
                    };
                    s.handle_message_too_big(self.now, hop);
                }
                _ => self.fail_dials = !self.fail_dials,
            },
            _ => {
                if self.turns.len() < 4 {
                    let body = http_body(input);
                    self.post(body);
                }
            }
        }
        self.run();
    }

    /// Calls the WebSocket session (`owner` is `None`) or the turn that holds a conn
    fn with_holder(
        &mut self,
        owner: Option<SessionId>,
        on_session: impl FnOnce(Instant, &mut Session),
        on_turn: impl FnOnce(Instant, &mut HttpTurn),
    ) {
        match owner {
            None => {
                if let Some(s) = &mut self.session {
                    on_session(self.now, s);
                }
            }
            Some(id) => {
                if let Some((t, _)) = self.turns.get_mut(&id) {
                    on_turn(self.now, t);
                }
            }
        }
    }

    /// Calls the session (even `target`) or one of the turns (odd)
    fn for_client(
        &mut self,
        target: u8,
        on_session: impl FnOnce(Instant, &mut Session),
        on_turn: impl FnOnce(Instant, &mut HttpTurn, &mut Answer),
    ) {
        let turns = self.turns.len();
        if target.is_multiple_of(2) || turns == 0 {
            if let Some(s) = &mut self.session {
                on_session(self.now, s);
            }
        } else if let Some((t, answer)) =
            self.turns.values_mut().nth(usize::from(target / 2) % turns)
        {
            on_turn(self.now, t, answer);
        }
    }

    /// The earliest deadline of every machine
    fn next_deadline(&self) -> Option<Instant> {
        let session = self.session.as_ref().and_then(Session::poll_timeout);
        let turns = self.turns.values().filter_map(|(t, _)| t.poll_timeout());
        [self.control.poll_timeout(), session]
            .into_iter()
            .flatten()
            .chain(turns)
            .min()
    }

    /// Moves virtual time on by `by`, firing every deadline on the way, in order
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        let mut stuck = 0;
        while let Some(at) = self.next_deadline().filter(|at| *at <= target) {
            if at <= self.now {
                stuck += 1;
                assert!(
                    stuck < MAX_FIRINGS_AT_ONE_INSTANT,
                    "a deadline stays due after its timeout fired"
                );
            } else {
                stuck = 0;
                self.now = at;
            }
            self.control.handle_timeout(self.now);
            if let Some(s) = &mut self.session {
                s.handle_timeout(self.now);
            }
            for (t, _) in self.turns.values_mut() {
                t.handle_timeout(self.now);
            }
            self.run();
        }
        self.now = target;
    }

    /// Routes every output until nothing moves, like the shells' tasks do
    fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut busy = false;
            while let Some(out) = self.control.poll_output() {
                busy = true;
                self.on_control_output(out);
            }
            busy |= self.drain_session();
            let ids: Vec<_> = self.turns.keys().copied().collect();
            for id in ids {
                busy |= self.drain_turn(id);
            }
            if !busy {
                return;
            }
        }
        panic!("routing did not settle in {MAX_ROUNDS} rounds");
    }

    fn on_control_output(&mut self, out: ControlOutput) {
        match out {
            ControlOutput::Session(_, input) => {
                if let Some(s) = &mut self.session {
                    s.handle_control(self.now, input);
                }
            }
            ControlOutput::Http(id, input) => {
                if let Some((t, _)) = self.turns.get_mut(&id) {
                    t.handle_control(self.now, input);
                }
            }
            ControlOutput::Dial { conn, account, .. } => {
                if self.fail_dials {
                    self.control.handle_dial_failed(
                        self.now,
                        account,
                        conn,
                        DialFailure::default(),
                    );
                } else {
                    self.control.handle_dial_ok(self.now, account, conn);
                }
            }
            ControlOutput::Store(cmd) => {
                let reply = self.memory.execute(self.now, &cmd);
                self.control.handle_store_reply(self.now, cmd.op, reply);
            }
            ControlOutput::Ping { account, conn } => {
                self.control.handle_idle_pong(self.now, account, conn);
            }
            ControlOutput::Close { .. } | ControlOutput::Event(_) => {}
        }
    }

    fn drain_session(&mut self) -> bool {
        let Some(s) = &mut self.session else {
            return false;
        };
        let mut busy = false;
        while let Some(t) = s.poll_transmit() {
            busy = true;
            match t {
                Transmit::Client(frame) => {
                    assert!(!self.ws_closed, "a frame to a client after its close");
                    check_client_frame(&frame);
                }
                Transmit::Upstream { msg, .. } => check_upstream_transmit(&msg),
                Transmit::ClientPing => {}
            }
        }
        let (mut commands, mut events) = (Vec::new(), Vec::new());
        while let Some(c) = s.poll_request() {
            commands.push(c);
        }
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        let finished = s.is_finished();
        for c in commands {
            busy = true;
            match c {
                SessionRequest::CloseClient { .. } => self.ws_closed = true,
                SessionRequest::AbandonWrites { .. } => {}
                c => self.control.handle_session_request(self.now, WS, c),
            }
        }
        for e in events {
            busy = true;
            self.control.handle_session_event(self.now, &e);
        }
        if finished {
            self.control.close_session(self.now, WS);
            self.session = None;
            busy = true;
        }
        busy
    }

    fn drain_turn(&mut self, id: SessionId) -> bool {
        let Some((t, answer)) = self.turns.get_mut(&id) else {
            return false;
        };
        let mut busy = false;
        while let Some(tx) = t.poll_transmit() {
            busy = true;
            match tx {
                HttpTransmit::Upstream { msg, .. } => check_upstream_transmit(&msg),
                other => check_answer(answer, &other),
            }
        }
        let (mut commands, mut events) = (Vec::new(), Vec::new());
        while let Some(c) = t.poll_request() {
            commands.push(c);
        }
        while let Some(e) = t.poll_event() {
            events.push(e);
        }
        for c in commands {
            busy = true;
            self.control.handle_http_request(self.now, id, c);
        }
        for e in events {
            busy = true;
            if e == HttpEvent::Turn(TurnEvent::Finished) {
                answer.finished = true;
            }
            self.control.handle_http_event(self.now, &e);
        }
        busy
    }

    /// Everyone leaves; time runs on; nothing may be left behind
    fn finish(mut self) {
        if let Some(s) = &mut self.session {
            s.handle_client_gone(self.now);
        }
        for (t, answer) in self.turns.values_mut() {
            t.handle_client_gone(self.now);
            answer.gone = true;
        }
        self.run();
        self.advance(SETTLE);
        if let Some(s) = &self.session {
            panic!(
                "the session is still there (draining: {}) long after its client left",
                s.is_draining()
            );
        }
        for (t, answer) in self.turns.values() {
            assert!(t.is_finished(), "a turn outlives its client");
            assert!(answer.finished, "a turn ended without its Finished event");
        }
        let stats = self.control.stats();
        assert_eq!(stats.leased, 0, "a conn is still leased: {stats:?}");
        assert_eq!(stats.waiters, 0, "an acquire is still waiting: {stats:?}");
    }
}

/// `WSV2_FUZZ_TRACE=1` prints what reaches each hop (for reading a replayed crash)
fn trace(what: &str, bytes: &[u8]) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("WSV2_FUZZ_TRACE").is_some()) {
        eprintln!(
            "{what}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
    }
}

/// A frame the client receives must be a JSON object with a string `type`
fn check_client_frame(frame: &Bytes) {
    trace("to client", frame);
    if let Err(e) = classify_server_event(frame) {
        panic!("the client got a frame that is not an event ({e}): {frame:?}");
    }
}

/// A text frame written upstream must be a create, steer or inject
fn check_upstream_transmit(msg: &UpstreamTransmit) {
    if let UpstreamTransmit::Text { frame, .. } = msg {
        trace("to upstream", frame);
        let request = classify_client_event(frame)
            .unwrap_or_else(|e| panic!("upstream got an invalid frame ({e}): {frame:?}"));
        assert_ne!(
            request.kind,
            ClientEventKind::Other,
            "upstream got a frame of an unknown type: {frame:?}"
        );
    }
}

/// One head, then bodies, then one end; nothing after the end nor to a client that left
/// before its head
fn check_answer(answer: &mut Answer, tx: &HttpTransmit) {
    trace("to http client", format!("{tx:?}").as_bytes());
    assert!(!answer.ended, "{tx:?} after the answer's end");
    match tx {
        HttpTransmit::Head {
            status,
            content_type,
            ..
        } => {
            assert!(answer.head.is_none(), "a second head");
            assert!(!answer.gone, "a head for a client that left");
            assert!((100..=599).contains(status), "status {status}");
            answer.head = Some(*content_type);
        }
        HttpTransmit::Body(body) => match answer.head {
            None => panic!("a body before the head"),
            Some(ContentType::Json) => {
                if let Err(e) = serde_json::from_slice::<Value>(body) {
                    assert!(
                        e.to_string().starts_with("number out of range"),
                        "a JSON answer that is not JSON ({e}): {body:?}"
                    );
                }
            }
            Some(ContentType::EventStream) => check_sse_body(body),
        },
        HttpTransmit::End => {
            assert!(
                answer.head.is_some() || answer.gone,
                "an end without a head"
            );
            answer.ended = true;
        }
        HttpTransmit::Forward { .. } | HttpTransmit::PassThrough | HttpTransmit::DiscardForward => {
            panic!("no account here resolves to HTTP")
        }
        HttpTransmit::Upstream { .. } => {}
    }
}

/// One SSE event: `event: <type>`, `data:` lines of one JSON object, a blank line
fn check_sse_body(body: &[u8]) {
    let text = std::str::from_utf8(body).expect("SSE is UTF-8 (upstream frames were validated)");
    let block = text
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("an SSE event ends with a blank line: {text:?}"));
    assert!(
        !block.contains("\n\n") && !block.contains('\r'),
        "one event: {text:?}"
    );
    let mut lines = block.split('\n');
    let event = lines.next().unwrap_or_default();
    assert!(event.starts_with("event: "), "event field first: {text:?}");
    let data: Vec<&str> = lines
        .map(|l| {
            l.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("data line: {l:?}"))
        })
        .collect();
    let json = data.join("\n");
    if let Err(e) = serde_json::from_str::<Value>(&json) {
        assert!(
            e.to_string().starts_with("number out of range"),
            "SSE data is JSON ({e}): {json:?}"
        );
    }
}

/// A client frame: mostly a `response.create` with fields picked from small sets (so turns
/// really run), sometimes a steer, sometimes raw bytes
fn client_frame(input: &mut Input<'_>) -> Bytes {
    match input.below(8) {
        0 => Bytes::copy_from_slice(input.chunk()),
        1 => {
            let v =
                json!({"type": "response.steer", "response_id": input.pick(&IDS), "input": "more"});
            Bytes::from(v.to_string())
        }
        _ => {
            let mut v =
                json!({"type": "response.create", "input": [{"role": "user", "content": "hi"}]});
            let flags = input.byte();
            if flags & 1 != 0 {
                v["model"] = json!(input.pick(&MODELS));
            }
            if flags & 2 != 0 {
                v["previous_response_id"] = json!(input.pick(&IDS));
            }
            if let Some(lane) = input.pick(&LANES).filter(|_| flags & 4 != 0) {
                v["stream_id"] = json!(lane);
            }
            if flags & 8 != 0 {
                v["store"] = json!(flags & 16 != 0);
            }
            if flags & 32 != 0 {
                v["generate"] = json!(false);
            }
            if flags & 64 != 0 {
                v["background"] = json!(true);
            }
            Bytes::from(v.to_string())
        }
    }
}

/// An HTTP body: a create-like object, or raw bytes
fn http_body(input: &mut Input<'_>) -> Bytes {
    if input.below(4) == 0 {
        return Bytes::copy_from_slice(input.chunk());
    }
    let mut v = json!({"input": "hi"});
    let flags = input.byte();
    if flags & 1 == 0 {
        v["model"] = json!(input.pick(&MODELS));
    }
    if flags & 2 != 0 {
        v["previous_response_id"] = json!(input.pick(&IDS));
    }
    if flags & 4 != 0 {
        v["stream"] = json!(true);
    }
    if flags & 8 != 0 {
        v["store"] = json!(flags & 16 != 0);
    }
    if flags & 32 != 0 {
        v["stream_id"] = json!("a");
    }
    if flags & 64 != 0 {
        v["background"] = json!(true);
    }
    Bytes::from(v.to_string())
}

/// An upstream event: one of the protocol's shapes with ids, lanes and counts picked by the
/// input, or raw bytes
fn upstream_frame(input: &mut Input<'_>) -> Bytes {
    let kind = input.below(12);
    if kind == 0 {
        return Bytes::copy_from_slice(input.chunk());
    }
    let id = input.pick(&IDS);
    let store = input.bool();
    let mut v = match kind {
        1 | 2 => {
            json!({"type": "response.created", "response": {"id": id, "store": store, "model": "upstream-model", "status": "in_progress"}})
        }
        3 => json!({"type": "response.in_progress", "response": {"id": id}}),
        4..=6 => json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "x"}),
        7 | 8 => {
            let terminal = input.pick(&[
                "response.completed",
                "response.incomplete",
                "response.failed",
            ]);
            let usage = json!({"input_tokens": input.byte(), "output_tokens": input.byte(), "total_tokens": 300});
            json!({"type": terminal, "response": {"id": id, "store": store, "model": "upstream-model", "usage": usage}})
        }
        9 | 10 => {
            let status = input.pick(&[400u16, 401, 404, 429, 500, 503]);
            let code = input.pick(&[
                "rate_limit_exceeded",
                "server_error",
                "previous_response_not_found",
                "websocket_connection_limit_reached",
                "invalid_request_error",
            ]);
            let mut v = json!({"type": "error", "status": status, "error": {"type": code, "code": code, "message": "m"}});
            match input.below(4) {
                0 => {
                    v["error"]["headers"] =
                        json!({"retry-after": String::from_utf8_lossy(input.chunk())})
                }
                1 => v["error"]["resets_in_seconds"] = json!(u64::from(input.byte()) * 1000),
                2 => {
                    v["error"]["headers"] = json!({"x-ratelimit-reset-requests": String::from_utf8_lossy(input.chunk())})
                }
                _ => {}
            }
            v
        }
        _ => {
            json!({"type": input.pick(&["response.steer.accepted", "response.steer.failed", "response.inject.created", "response.queued"]), "response_id": id})
        }
    };
    if let Some(lane) = input.pick(&LANES) {
        v["stream_id"] = json!(lane);
    }
    Bytes::from(v.to_string())
}

fn play(data: &[u8], http_first: bool) {
    let mut input = Input::new(data);
    let mut sim = Sim::new(&mut input);
    if http_first {
        let body = http_body(&mut input);
        sim.post(body);
    } else {
        sim.open_session();
    }
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        sim.step(&mut input);
    }
    sim.finish();
}

/// The `session` target: a WebSocket session first, HTTP turns may join
pub(crate) fn run_session(data: &[u8]) {
    play(data, false);
}

/// The `http` target: an HTTP turn first, more may join (no WebSocket session)
pub(crate) fn run_http(data: &[u8]) {
    play(data, true);
}
