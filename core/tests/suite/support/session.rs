//! A deterministic driver for the session machine: virtual time, a scripted pool, scheduler
//! and slot table, and a readable trace of every input and output.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::conn::{CompatKey, ConnRecord, Release, UpstreamTransmit};
use wsv2_core::event::Utf8;
use wsv2_core::session::{Admission, Lease, Session, SessionEvent, SessionRequest, Transmit};
use wsv2_core::turn::{Holder, ModelMap, ResponseBind, SlotRequest, TurnEvent, UpstreamInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId, TurnId};

use super::trace::{Clocked, Trace, advance_to};

/// How the scripted world answers the session's commands
pub struct World {
    pub admit: bool,
    pub lease: bool,
    pub max_concurrency: u32,
    pub model_map: ModelMap,
    /// Records to hand out instead of fresh conns, in order
    pub lease_records: VecDeque<ConnRecord>,
    /// Slots of the account held by others
    pub slots_in_use: u32,
    /// The group rule's answer to every continuation check
    pub continuations_allowed: bool,
}

impl Default for World {
    fn default() -> Self {
        Self {
            admit: true,
            lease: true,
            max_concurrency: 64,
            model_map: ModelMap::default(),
            lease_records: VecDeque::new(),
            slots_in_use: 0,
            continuations_allowed: true,
        }
    }
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub cfg: Arc<Config>,
    pub session: Session,
    pub world: World,
    pub trace: Trace,
    pub to_client: Vec<Value>,
    pub to_upstream: Vec<(ConnId, Value)>,
    pub pings: Vec<ConnId>,
    pub closes: Vec<ConnId>,
    pub released: Vec<Release>,
    pub events: Vec<SessionEvent>,
    pub commands: Vec<SessionRequest>,
    pub client_closed: Option<u16>,
    pub slot_waiters: VecDeque<TurnId>,
    pub slots_held: u32,
    pub client_pings: usize,
    next_conn: u64,
}

pub fn account() -> AccountId {
    AccountId(1)
}

impl Sim {
    pub fn new(cfg: Config) -> Self {
        Self::with_world(cfg, World::default())
    }

    pub fn with_world(cfg: Config, world: World) -> Self {
        let t0 = Instant::now();
        let cfg = Arc::new(cfg);
        Self {
            t0,
            now: t0,
            session: Session::new(SessionId(1), cfg.clone(), t0),
            cfg,
            world,
            trace: Trace::new(t0),
            to_client: Vec::new(),
            to_upstream: Vec::new(),
            pings: Vec::new(),
            closes: Vec::new(),
            released: Vec::new(),
            events: Vec::new(),
            commands: Vec::new(),
            client_closed: None,
            slot_waiters: VecDeque::new(),
            slots_held: 0,
            client_pings: 0,
            next_conn: 1,
        }
    }

    /// Traces an input handed to the session
    pub fn input(&mut self, what: impl std::fmt::Display) {
        self.trace.input(self.now, what);
    }

    /// Traces an output of the session
    fn output(&mut self, what: impl std::fmt::Display) {
        self.trace.output(self.now, what);
    }

    pub fn trace(&self) -> String {
        self.trace.to_string()
    }

    /// The client sends a JSON frame
    pub fn client(&mut self, v: Value) {
        self.input(format!("client {}", summarize(&v)));
        self.session
            .handle_client_text(self.now, Bytes::from(v.to_string()));
        self.drain();
    }

    /// The client sends raw bytes as a text frame
    pub fn client_raw(&mut self, raw: &str) {
        self.input(format!("client raw {raw:?}"));
        self.session
            .handle_client_text(self.now, Bytes::copy_from_slice(raw.as_bytes()));
        self.drain();
    }

    /// Upstream conn `conn` sends a JSON frame
    pub fn upstream(&mut self, conn: u64, v: Value) {
        self.input(format!("upstream c{conn} {}", summarize(&v)));
        self.session.handle_upstream(
            self.now,
            ConnId(conn),
            UpstreamInput::Frame(Bytes::from(v.to_string()), Utf8::Unchecked),
        );
        self.drain();
    }

    pub fn pong(&mut self, conn: u64) {
        self.input(format!("upstream c{conn} pong"));
        self.session
            .handle_upstream(self.now, ConnId(conn), UpstreamInput::Pong);
        self.drain();
    }

    pub fn upstream_closed(&mut self, conn: u64) {
        self.input(format!("upstream c{conn} socket ended"));
        self.session
            .handle_upstream(self.now, ConnId(conn), UpstreamInput::Closed);
        self.drain();
    }

    pub fn write_abandoned(&mut self, conn: u64, started: bool) {
        self.input(format!(
            "upstream c{conn} write abandoned started={started}"
        ));
        self.session
            .handle_upstream(self.now, ConnId(conn), UpstreamInput::WriteAbandoned);
        self.drain();
    }

    pub fn client_gone(&mut self) {
        self.input("client gone");
        self.session.handle_client_gone(self.now);
        self.drain();
    }

    pub fn client_pong(&mut self) {
        self.input("client pong");
        self.session.handle_client_pong(self.now);
        self.drain();
    }

    pub fn too_big(&mut self, hop: wsv2_core::session::Hop) {
        self.input(format!("{hop:?} message too big"));
        self.session.handle_message_too_big(self.now, hop);
        self.drain();
    }

    pub fn protocol_error(&mut self, error: wsv2_core::session::ClientProtocolError) {
        self.input(format!("client protocol error {error:?}"));
        self.session.handle_client_protocol_error(self.now, error);
        self.drain();
    }

    pub fn backpressure(&mut self, full: bool) {
        self.input(format!(
            "client write buffer {}",
            if full { "full" } else { "drained" }
        ));
        self.session.handle_client_backpressure(self.now, full);
        self.drain();
    }

    /// Moves virtual time forward, firing every deadline on the way in order
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        advance_to(self, target);
    }

    /// A slot of the account frees up (another session's response ended)
    pub fn free_external_slot(&mut self) {
        self.world.slots_in_use -= 1;
        self.trace.note("a slot frees up elsewhere");
        self.grant_waiting_slot();
        self.drain();
    }

    fn grant_waiting_slot(&mut self) {
        if self.slots_held + self.world.slots_in_use < self.world.max_concurrency
            && let Some(turn) = self.slot_waiters.pop_front()
        {
            self.slots_held += 1;
            self.input(format!("control slot {turn} granted"));
            self.session.handle_slot_granted(self.now, turn);
        }
    }

    /// Drains every output, answering commands as the world is scripted to
    pub fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.session.poll_transmit() {
                busy = true;
                self.on_transmit(t);
            }
            while let Some(c) = self.session.poll_request() {
                busy = true;
                self.on_command(c);
            }
            while let Some(e) = self.session.poll_event() {
                busy = true;
                self.output(format!("event {}", event_line(&e)));
                self.events.push(e);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_transmit(&mut self, t: Transmit) {
        match t {
            Transmit::ClientPing => {
                self.output("client ping");
                self.client_pings += 1;
            }
            Transmit::Client(frame) => {
                let v: Value = serde_json::from_slice(&frame).expect("client frames are JSON");
                self.output(format!("client {}", summarize(&v)));
                self.to_client.push(v);
            }
            Transmit::Upstream { conn, msg } => match msg {
                UpstreamTransmit::Text { frame, .. } => {
                    let v: Value =
                        serde_json::from_slice(&frame).expect("upstream frames are JSON");
                    self.output(format!("upstream {conn} {}", summarize(&v)));
                    self.to_upstream.push((conn, v));
                }
                UpstreamTransmit::Ping => {
                    self.output(format!("upstream {conn} ping"));
                    self.pings.push(conn);
                }
                UpstreamTransmit::Close => {
                    self.output(format!("upstream {conn} close"));
                    self.closes.push(conn);
                }
            },
        }
    }

    fn on_command(&mut self, c: SessionRequest) {
        self.output(format!("control {}", command_line(&c)));
        self.commands.push(c.clone());
        match c {
            SessionRequest::Schedule { .. } if self.world.admit => {
                let admission = Admission {
                    account: account(),
                    max_concurrency: self.world.max_concurrency,
                    compat: CompatKey::plain(account()),
                    model_map: Arc::new(self.world.model_map.clone()),
                };
                self.input(format!(
                    "control admission {} max={}",
                    admission.account, admission.max_concurrency
                ));
                self.session.handle_admission(self.now, admission);
            }
            SessionRequest::Acquire { compat, .. } if self.world.lease => {
                let record = self.world.lease_records.pop_front().unwrap_or_else(|| {
                    let id = ConnId(self.next_conn);
                    ConnRecord::new(id, compat, self.now)
                });
                self.next_conn = self.next_conn.max(record.id.0 + 1);
                self.input(format!(
                    "control lease {} (named lanes used: {})",
                    record.id,
                    record.named_lanes.len()
                ));
                self.session.handle_lease(
                    self.now,
                    Lease {
                        holder: SessionId(1),
                        record,
                        fresh: true,
                        preferred_hit: false,
                    },
                );
            }
            SessionRequest::Slot(SlotRequest::Acquire { turn, .. }) => {
                self.slot_waiters.push_back(turn);
                self.grant_waiting_slot();
            }
            SessionRequest::Slot(SlotRequest::CancelWait { turn, .. }) => {
                self.slot_waiters.retain(|t| *t != turn)
            }
            SessionRequest::Slot(SlotRequest::Release { .. }) => {
                self.slots_held -= 1;
                self.grant_waiting_slot();
            }
            SessionRequest::Release(r) => self.released.push(r),
            SessionRequest::CloseClient { code, .. } => self.client_closed = Some(code),
            SessionRequest::CheckContinuation { turn, .. } => {
                let allowed = self.world.continuations_allowed;
                self.input(format!("control judged {turn} allowed={allowed}"));
                self.session
                    .handle_continuation_judged(self.now, turn, allowed);
            }
            _ => {}
        }
    }

    /// Frames the client received of a given type
    pub fn client_types(&self) -> Vec<String> {
        self.to_client
            .iter()
            .map(|v| v["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    /// Creates written upstream on `conn`
    pub fn creates_on(&self, conn: u64) -> usize {
        self.to_upstream
            .iter()
            .filter(|(c, v)| c.0 == conn && v["type"] == "response.create")
            .count()
    }

    pub fn ended(&self) -> Vec<&wsv2_core::turn::ResponseReport> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Turn(TurnEvent::ResponseEnded(r)) => Some(&**r),
                _ => None,
            })
            .collect()
    }

    /// Upstream sends a whole text response on `lane`: created … completed
    pub fn respond(&mut self, conn: u64, id: &str, lane: Option<&str>, deltas: usize, store: bool) {
        for ev in text_response(id, lane, deltas, store, "gpt-test") {
            self.upstream(conn, ev);
        }
    }
}

impl Clocked for Sim {
    fn now_mut(&mut self) -> &mut Instant {
        &mut self.now
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn fire(&mut self) {
        self.input("timeout");
        self.session.handle_timeout(self.now);
        self.drain();
    }
}

/// The canonical event sequence of a text response
pub fn text_response(
    id: &str,
    lane: Option<&str>,
    deltas: usize,
    store: bool,
    model: &str,
) -> Vec<Value> {
    let mut seq = 0;
    let mut out = Vec::new();
    let mut push = |mut v: Value| {
        v["sequence_number"] = json!(seq);
        if let Some(lane) = lane {
            v["stream_id"] = json!(lane);
        }
        seq += 1;
        out.push(v);
    };
    let resp = |status: &str| json!({"id": id, "object": "response", "status": status, "model": model, "store": store, "output": []});
    push(json!({"type": "response.created", "response": resp("in_progress")}));
    for i in 0..deltas {
        push(
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": format!("d{i} ")}),
        );
    }
    let mut done = resp("completed");
    done["usage"] = json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": deltas, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10 + deltas});
    push(json!({"type": "response.completed", "response": done}));
    out
}

pub fn create(model: Option<&str>, prev: Option<&str>, lane: Option<&str>, store: bool) -> Value {
    let mut v = json!({"type": "response.create", "input": [{"role": "user", "content": "hi"}], "store": store, "stream": true});
    if let Some(m) = model {
        v["model"] = json!(m);
    }
    if let Some(p) = prev {
        v["previous_response_id"] = json!(p);
    }
    if let Some(l) = lane {
        v["stream_id"] = json!(l);
    }
    v
}

/// One readable line for a frame: its type and the fields the gateway cares about
pub fn summarize(v: &Value) -> String {
    let mut s = v["type"].as_str().unwrap_or("?").to_owned();
    let mut field = |name: &str, val: &Value| {
        if !val.is_null() {
            s.push_str(&format!(
                " {name}={}",
                val.as_str().map_or_else(|| val.to_string(), str::to_owned)
            ));
        }
    };
    field("lane", &v["stream_id"]);
    field("model", &v["model"]);
    field("prev", &v["previous_response_id"]);
    field("id", &v["response"]["id"]);
    field("model", &v["response"]["model"]);
    field("status", &v["status"]);
    field("code", &v["error"]["code"]);
    field("seq", &v["sequence_number"]);
    s
}

fn command_line(c: &SessionRequest) -> String {
    match c {
        SessionRequest::Schedule {
            turn,
            previous,
            connection_local,
            ..
        } => {
            format!(
                "schedule {turn} prev={} local={connection_local}",
                previous.as_ref().map_or("-", |p| p.as_str())
            )
        }
        SessionRequest::Acquire { account, .. } => format!("acquire {account}"),
        SessionRequest::Slot(SlotRequest::Acquire {
            turn,
            account,
            max_concurrency,
        }) => format!("slot {turn} {account} max={max_concurrency}"),
        SessionRequest::Slot(SlotRequest::CancelWait { turn, .. }) => {
            format!("cancel slot wait {turn}")
        }
        SessionRequest::Slot(SlotRequest::Release { account }) => format!("release slot {account}"),
        SessionRequest::Release(r) => format!(
            "release {} reusable={} named_lanes={}",
            r.record.id,
            r.reusable,
            r.record.named_lanes.len()
        ),
        SessionRequest::AbandonWrites { conn } => format!("abandon writes {conn}"),
        SessionRequest::Bind(ResponseBind {
            response,
            conn,
            lane,
            store,
            ..
        }) => {
            format!(
                "bind {response} {conn} lane={} store={store}",
                lane.as_ref().map_or("-", |l| l.as_str())
            )
        }
        SessionRequest::CloseClient { code, reason } => format!("close client {code} {reason:?}"),
        SessionRequest::ClientBlocked { account, blocked } => {
            format!("client blocked {account} {blocked}")
        }
        SessionRequest::CheckContinuation { turn, previous } => {
            format!("check continuation {turn} prev={previous}")
        }
    }
}

fn event_line(e: &SessionEvent) -> String {
    match e {
        SessionEvent::Turn(TurnEvent::ResponseEnded(r)) => format!(
            "ended {} {} {} lane={} usage_out={} successor={} drained={}",
            r.turn,
            r.response.as_ref().map_or("-", |id| id.as_str()),
            r.outcome.as_str(),
            r.lane.as_ref().map_or("-", |l| l.as_str()),
            r.usage.map_or(0, |u| u.output_tokens),
            r.successor,
            r.drained
        ),
        SessionEvent::Turn(other) => format!("{other:?}"),
        other => format!("{other:?}"),
    }
}
