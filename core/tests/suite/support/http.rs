//! A gateway of HTTP turns (and WebSocket sessions) around one `Control`, in virtual time:
//! every output routed like the shells do, every input and output one trace line.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::conn::UpstreamTransmit;
use wsv2_core::control::{AccountSpec, Control, ControlOutput};
use wsv2_core::http::{HttpCommand, HttpEvent, HttpInput, HttpTransmit, HttpTurn};
use wsv2_core::resolver::{AccountProtocol, AuthType};
use wsv2_core::session::{Session, SessionCommand, SessionInput, Transmit};
use wsv2_core::store::MemoryBackend;
use wsv2_core::turn::{ModelMap, ResponseBind, SessionInfo, SlotRequest};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

pub fn account(id: u64, force_http: bool) -> AccountSpec {
    AccountSpec {
        id: AccountId(id),
        name: format!("acct{id}"),
        protocol: AccountProtocol {
            auth_type: AuthType::ApiKey,
            force_http,
        },
        concurrency: 4,
        priority: 0,
        model_map: Arc::new(ModelMap::new([(
            "client-model".to_owned(),
            "upstream-model".to_owned(),
        )])),
    }
}

pub struct Gw {
    pub now: Instant,
    pub cfg: Arc<Config>,
    pub control: Control,
    pub turns: BTreeMap<SessionId, HttpTurn>,
    pub sessions: BTreeMap<SessionId, Session>,
    memory: MemoryBackend,
    pub dials: Vec<(ConnId, AccountId)>,
    /// Dials that fail instead of opening
    pub fail_dials: usize,
    /// Dials stay in flight (in `held_dials`) until [`Gw::finish_dials`]
    pub defer_dials: bool,
    pub held_dials: Vec<(ConnId, AccountId)>,
    /// Holders whose task ended before their `Close` reached the control plane (true: HTTP)
    ended: BTreeMap<SessionId, bool>,
    /// (request, conn, create) for every text frame written upstream by a turn
    pub creates: Vec<(SessionId, ConnId, Value)>,
    /// Client-facing transmits of every request, in order
    pub client: BTreeMap<SessionId, Vec<HttpTransmit>>,
    pub commands: Vec<(SessionId, HttpCommand)>,
    pub events: Vec<(SessionId, HttpEvent)>,
    pub trace: Vec<String>,
}

impl Gw {
    pub fn new(accounts: Vec<AccountSpec>) -> Self {
        let mut cfg = Config::default();
        cfg.pool.min_idle_per_account = 0;
        Self::with_config(cfg, accounts)
    }

    pub fn with_config(cfg: Config, accounts: Vec<AccountSpec>) -> Self {
        let cfg = Arc::new(cfg);
        let now = Instant::now();
        let mut gw = Self {
            control: Control::new(cfg.clone(), accounts, 7, now),
            cfg,
            now,
            turns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            memory: MemoryBackend::new(1024),
            dials: Vec::new(),
            fail_dials: 0,
            defer_dials: false,
            held_dials: Vec::new(),
            ended: BTreeMap::new(),
            creates: Vec::new(),
            client: BTreeMap::new(),
            commands: Vec::new(),
            events: Vec::new(),
            trace: Vec::new(),
        };
        gw.run();
        gw
    }

    pub fn post(&mut self, id: u64, body: Value) -> SessionId {
        self.post_raw(id, Bytes::from(body.to_string()))
    }

    pub fn post_raw(&mut self, id: u64, body: Bytes) -> SessionId {
        let id = SessionId(id);
        self.trace
            .push(format!("{id} <- POST {}", body_summary(&body)));
        let info = SessionInfo {
            group: "default".into(),
            ..SessionInfo::default()
        };
        let turn = HttpTurn::new(id, self.cfg.clone(), self.now, body, info);
        self.turns.insert(id, turn);
        self.run();
        id
    }

    /// An upstream frame on the conn of request `id`
    pub fn upstream(&mut self, id: SessionId, v: Value) {
        let conn = self.conn_of(id);
        self.trace
            .push(format!("{id} <- upstream {conn} {}", event_summary(&v)));
        let frame = Bytes::from(v.to_string());
        self.turns
            .get_mut(&id)
            .unwrap()
            .handle_upstream_frame(self.now, conn, frame);
        self.run();
    }

    pub fn upstream_closed(&mut self, id: SessionId) {
        let conn = self.conn_of(id);
        self.trace.push(format!("{id} <- upstream {conn} closed"));
        self.turns
            .get_mut(&id)
            .unwrap()
            .handle_upstream_closed(self.now, conn);
        self.run();
    }

    /// The shell abandoned the write in flight on the conn of request `id` (`started`: part of
    /// it went out)
    pub fn write_abandoned(&mut self, id: SessionId, started: bool) {
        let conn = self.conn_of(id);
        self.trace.push(format!(
            "{id} <- upstream {conn} write abandoned started={started}"
        ));
        self.turns
            .get_mut(&id)
            .unwrap()
            .handle_upstream_write_abandoned(self.now, conn);
        self.run();
    }

    pub fn gone(&mut self, id: SessionId) {
        self.trace.push(format!("{id} <- client gone"));
        self.turns
            .get_mut(&id)
            .unwrap()
            .handle_client_gone(self.now);
        self.run();
    }

    /// A WebSocket session opens (its socket was upgraded)
    pub fn open_session(&mut self, id: u64) -> SessionId {
        let id = SessionId(id);
        let info = SessionInfo {
            group: "default".into(),
            ..SessionInfo::default()
        };
        self.control.open_session(id, info);
        self.sessions
            .insert(id, Session::new(id, self.cfg.clone(), self.now));
        id
    }

    /// Session `id`'s client sends a text frame
    pub fn session_text(&mut self, id: SessionId, v: Value) {
        self.sessions
            .get_mut(&id)
            .unwrap()
            .handle_client_text(self.now, Bytes::from(v.to_string()));
        self.run();
    }

    /// Holder `id`'s task ends before its `Close` reaches the control plane: answers for it
    /// find no machine to take them ([`Gw::close`] sends the `Close`)
    pub fn task_ended(&mut self, id: SessionId) {
        let http = self.turns.remove(&id).is_some();
        assert!(http || self.sessions.remove(&id).is_some(), "{id} is open");
        self.ended.insert(id, http);
    }

    /// The `Close` of holder `id`, whose task ended, reaches the control plane
    pub fn close(&mut self, id: SessionId) {
        match self.ended.remove(&id) {
            Some(true) => self
                .control
                .handle_http_command(self.now, id, HttpCommand::Close),
            Some(false) => self.control.close_session(self.now, id),
            None => panic!("{id}'s task has not ended"),
        }
        self.run();
    }

    /// The dials held in flight open
    pub fn finish_dials(&mut self) {
        for (conn, account) in std::mem::take(&mut self.held_dials) {
            self.trace.push(format!("dial {conn} {account}"));
            self.dials.push((conn, account));
            self.control.handle_dial_ok(self.now, account, conn);
        }
        self.run();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.trace.push(format!("+{}ms", by.as_millis()));
        self.control.handle_timeout(self.now);
        for t in self.turns.values_mut() {
            t.handle_timeout(self.now);
        }
        for s in self.sessions.values_mut() {
            s.handle_timeout(self.now);
        }
        self.run();
    }

    pub fn conn_of(&self, id: SessionId) -> ConnId {
        self.turns[&id].conn().expect("the turn holds a conn").id()
    }

    /// `response.created` … `response.completed` for request `id`
    pub fn respond(&mut self, id: SessionId, resp: &str, store: bool, deltas: usize) {
        self.upstream(id, created(resp, store));
        for i in 0..deltas {
            self.upstream(id, delta(i));
        }
        self.upstream(id, completed(resp, store));
    }

    pub fn client_of(&self, id: SessionId) -> &[HttpTransmit] {
        self.client.get(&id).map_or(&[], Vec::as_slice)
    }

    pub fn creates_of(&self, id: SessionId) -> Vec<&(SessionId, ConnId, Value)> {
        self.creates.iter().filter(|c| c.0 == id).collect()
    }

    pub fn trace(&self) -> String {
        self.trace.join("\n")
    }

    /// Routes everything until nothing moves, like the shells' tasks do
    pub fn run(&mut self) {
        loop {
            let mut busy = false;
            while let Some(out) = self.control.poll_output() {
                busy = true;
                self.on_control_output(out);
            }
            let ids: Vec<_> = self.turns.keys().copied().collect();
            for id in ids {
                busy |= self.drain_turn(id);
            }
            let ids: Vec<_> = self.sessions.keys().copied().collect();
            for id in ids {
                busy |= self.drain_session(id);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_control_output(&mut self, out: ControlOutput) {
        match out {
            ControlOutput::Http(id, input) => {
                self.trace
                    .push(format!("{id} <- control {}", input_summary(&input)));
                match self.turns.get_mut(&id) {
                    Some(t) => t.handle_control(self.now, input),
                    // What the shells do with a lease for a task that ended
                    None => {
                        if let HttpInput::Lease(lease) = input {
                            self.control.handle_unread_lease(self.now, lease);
                        }
                    }
                }
            }
            ControlOutput::Session(id, input) => match self.sessions.get_mut(&id) {
                Some(s) => s.handle_control(self.now, input),
                None => {
                    if let SessionInput::Lease(lease) = input {
                        self.control.handle_unread_lease(self.now, lease);
                    }
                }
            },
            ControlOutput::Dial { conn, account, .. } => {
                if self.defer_dials {
                    self.held_dials.push((conn, account));
                } else if self.fail_dials > 0 {
                    self.fail_dials -= 1;
                    self.trace.push(format!("dial {conn} {account} failed"));
                    self.control.handle_dial_failed(
                        self.now,
                        account,
                        conn,
                        wsv2_core::control::DialFailure::default(),
                    );
                } else {
                    self.trace.push(format!("dial {conn} {account}"));
                    self.dials.push((conn, account));
                    self.control.handle_dial_ok(self.now, account, conn);
                }
            }
            ControlOutput::Store(cmd) => {
                let reply = self.memory.execute(self.now, &cmd);
                self.control.handle_store_reply(self.now, cmd.op, reply);
            }
            ControlOutput::Close { conn, .. } => self.trace.push(format!("pool closes {conn}")),
            ControlOutput::Ping { .. } | ControlOutput::Event(_) => {}
        }
    }

    fn drain_turn(&mut self, id: SessionId) -> bool {
        let mut busy = false;
        let (mut cmds, mut events) = (Vec::new(), Vec::new());
        let t = self.turns.get_mut(&id).unwrap();
        while let Some(tx) = t.poll_transmit() {
            busy = true;
            match &tx {
                HttpTransmit::Upstream {
                    conn,
                    msg: UpstreamTransmit::Text { frame, .. },
                } => {
                    let v: Value = serde_json::from_slice(frame).unwrap();
                    self.trace
                        .push(format!("{id} -> upstream {conn} {}", create_summary(&v)));
                    self.creates.push((id, *conn, v));
                }
                HttpTransmit::Upstream { conn, msg } => {
                    self.trace.push(format!("{id} -> upstream {conn} {msg:?}"));
                }
                other => {
                    self.trace
                        .push(format!("{id} -> client {}", transmit_summary(other)));
                    self.client.entry(id).or_default().push(tx);
                }
            }
        }
        while let Some(c) = t.poll_command() {
            cmds.push(c);
        }
        while let Some(e) = t.poll_event() {
            events.push(e);
        }
        for c in cmds {
            busy = true;
            self.trace.push(format!("{id} => {}", command_summary(&c)));
            self.commands.push((id, c.clone()));
            self.control.handle_http_command(self.now, id, c);
        }
        for e in events {
            busy = true;
            self.trace.push(format!("{id} event {}", event_line(&e)));
            self.control.handle_http_event(self.now, &e);
            self.events.push((id, e));
        }
        busy
    }

    fn drain_session(&mut self, id: SessionId) -> bool {
        let mut busy = false;
        let s = self.sessions.get_mut(&id).unwrap();
        let mut cmds = Vec::new();
        while let Some(t) = s.poll_transmit() {
            busy = true;
            if let Transmit::Upstream {
                conn,
                msg: UpstreamTransmit::Text { .. },
            } = t
            {
                self.trace
                    .push(format!("{id} (ws) -> upstream {conn} create"));
            }
        }
        while let Some(c) = s.poll_command() {
            cmds.push(c);
        }
        let mut events = Vec::new();
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        for c in cmds {
            busy = true;
            if !matches!(
                c,
                SessionCommand::AbandonWrites { .. } | SessionCommand::CloseClient { .. }
            ) {
                self.control.handle_session_command(self.now, id, c);
            }
        }
        for e in events {
            busy = true;
            self.control.handle_session_event(self.now, &e);
        }
        busy
    }
}

pub fn created(resp: &str, store: bool) -> Value {
    json!({"type": "response.created", "response": {"id": resp, "store": store, "model": "upstream-model"}})
}

pub fn delta(i: usize) -> Value {
    json!({"type": "response.output_text.delta", "delta": format!("d{i}")})
}

pub fn completed(resp: &str, store: bool) -> Value {
    json!({"type": "response.completed", "response": {"id": resp, "store": store, "model": "upstream-model", "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}})
}

pub fn error_event(status: u16, ty: &str, code: &str) -> Value {
    json!({"type": "error", "status": status, "error": {"type": ty, "code": code, "message": format!("upstream says {code}"), "param": null}})
}

pub fn body(stream: bool, store: bool, prev: Option<&str>) -> Value {
    let mut v = json!({"model": "client-model", "input": "hi", "stream": stream, "store": store});
    if let Some(p) = prev {
        v["previous_response_id"] = json!(p);
    }
    v
}

fn body_summary(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let mut parts = Vec::new();
            for key in [
                "stream",
                "store",
                "previous_response_id",
                "stream_id",
                "background",
            ] {
                if let Some(x) = v.get(key) {
                    parts.push(format!("{key}={x}"));
                }
            }
            parts.join(" ")
        }
        Err(_) => "<invalid json>".to_owned(),
    }
}

fn event_summary(v: &Value) -> String {
    let ty = v["type"].as_str().unwrap_or("?");
    match (v["response"]["id"].as_str(), v["error"]["code"].as_str()) {
        (Some(id), _) => format!("{ty} {id}"),
        (_, Some(code)) => format!("{ty} {code}"),
        _ => ty.to_owned(),
    }
}

fn create_summary(v: &Value) -> String {
    let mut s = format!("{} model={}", v["type"].as_str().unwrap_or("?"), v["model"]);
    if let Some(p) = v.get("previous_response_id") {
        s.push_str(&format!(" prev={p}"));
    }
    s
}

pub fn transmit_summary(t: &HttpTransmit) -> String {
    match t {
        HttpTransmit::Head {
            status,
            content_type,
            retry_after,
        } => format!(
            "head {status} {}{}",
            content_type.as_str(),
            retry_after.map_or(String::new(), |r| format!(" retry-after={r}"))
        ),
        HttpTransmit::Body(b) => {
            if let Some(rest) = b.strip_prefix(b"event: ") {
                let end = rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
                format!("sse {}", String::from_utf8_lossy(&rest[..end]))
            } else {
                let v: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
                match v["error"]["code"].as_str() {
                    Some(code) => format!("json error {code}"),
                    None if v["error"].is_object() => "json error null".to_owned(),
                    None => format!("json response {}", v["id"].as_str().unwrap_or("?")),
                }
            }
        }
        HttpTransmit::End => "end".to_owned(),
        HttpTransmit::Forward { account, .. } => format!("forward {account}"),
        HttpTransmit::PassThrough => "pass-through".to_owned(),
        HttpTransmit::DiscardForward => "discard-forward".to_owned(),
        HttpTransmit::Upstream { conn, .. } => format!("upstream {conn}"),
    }
}

fn input_summary(i: &HttpInput) -> String {
    match i {
        HttpInput::Admission(a) => format!(
            "admission {} {} local={} preferred={}",
            a.account,
            a.transport,
            a.connection_local,
            a.preferred.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpInput::Refused(r) => format!("refused {r:?}"),
        HttpInput::Lease(l) => format!(
            "lease {}{}{}",
            l.record.id,
            if l.fresh { " fresh" } else { "" },
            if l.preferred_hit {
                " preferred-hit"
            } else {
                ""
            }
        ),
        HttpInput::LeaseRefused(r) => format!("lease refused {r:?}"),
        HttpInput::SlotGranted(_) => "slot granted".to_owned(),
    }
}

fn command_summary(c: &HttpCommand) -> String {
    match c {
        HttpCommand::Open(_) => "open".to_owned(),
        HttpCommand::Schedule {
            previous, exclude, ..
        } => format!(
            "schedule prev={} exclude={exclude:?}",
            previous.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpCommand::Acquire {
            account, preferred, ..
        } => format!(
            "acquire {account} preferred={}",
            preferred.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpCommand::Slot(SlotRequest::Acquire { account, .. }) => {
            format!("acquire slot {account}")
        }
        HttpCommand::Slot(SlotRequest::CancelWait { account, .. }) => {
            format!("cancel slot wait {account}")
        }
        HttpCommand::Slot(SlotRequest::Release { account }) => format!("release slot {account}"),
        HttpCommand::Release { release, hold } => format!(
            "release {} reusable={} hold={}",
            release.record.id,
            release.reusable,
            hold.as_ref().map_or("-", |h| h.as_str())
        ),
        HttpCommand::Bind(ResponseBind {
            response,
            account,
            conn,
            store,
            ..
        }) => format!("bind {} {account} {conn} store={store}", response.as_str()),
        HttpCommand::Close => "close".to_owned(),
        HttpCommand::AbandonWrites { conn } => format!("abandon writes {conn}"),
    }
}

fn event_line(e: &HttpEvent) -> String {
    match e {
        HttpEvent::ResponseEnded(r) => format!(
            "response ended {} {} usage={:?} drained={}",
            r.response.as_ref().map_or("-", |p| p.as_str()),
            r.outcome.as_str(),
            r.usage.map(|u| u.total_tokens),
            r.drained
        ),
        HttpEvent::Retrying {
            account,
            failure,
            switch_account,
        } => format!(
            "retrying {account} {} switch={switch_account}",
            failure.as_str()
        ),
        HttpEvent::GaveUp { reason } => format!("gave up {}", reason.as_str()),
        other => format!("{other:?}"),
    }
}

/// Checks the one-answer rule on a request's client transmits; returns (head seen, end seen)
pub fn check_answer_shape(t: &[HttpTransmit]) -> (bool, bool) {
    let mut head = false;
    let mut end = false;
    for tx in t {
        assert!(!end, "nothing after End: {t:?}");
        match tx {
            HttpTransmit::Head { .. } | HttpTransmit::PassThrough => {
                assert!(!head, "one head only: {t:?}");
                head = true;
            }
            HttpTransmit::Body(_) => assert!(head, "a body only after the head: {t:?}"),
            HttpTransmit::End => {
                assert!(head, "End only after a head: {t:?}");
                end = true;
            }
            _ => {}
        }
    }
    (head, end)
}
