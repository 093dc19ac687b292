//! One gateway around one `Control`, in virtual time: HTTP turns and WebSocket sessions driven
//! the way the shells drive them. One drive loop ([`Gateway::run`], in `drive.rs`) routes every
//! output until nothing moves; every input and output of an HTTP turn is one trace line
//! (`lines.rs`), and what the sessions and the control plane did is recorded for assertions.
//!
//! The control-plane tests (`control::*`), the HTTP turn tests (`http::*`) and `trace_reports`
//! all run on this one gateway.

#![allow(dead_code, unreachable_pub, missing_docs)]

mod drive;
pub mod lines;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::control::{AccountSpec, Control, ControlEvent};
use wsv2_core::event::Utf8;
use wsv2_core::http::{HttpEvent, HttpTransmit, HttpTurn, HttpTurnRequest};
use wsv2_core::resolver::{AccountProtocol, AuthType};
use wsv2_core::session::{Session, SessionEvent};
use wsv2_core::store::MemoryBackend;
use wsv2_core::turn::{Holder, ModelMap, SessionInfo, UpstreamInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use lines::{body_summary, event_summary};

use super::trace::Trace;

/// An API-key account named `acct{id}`
pub fn spec(id: u64, concurrency: u32, force_http: bool) -> AccountSpec {
    AccountSpec {
        id: AccountId(id),
        name: format!("acct{id}"),
        protocol: AccountProtocol {
            auth_type: AuthType::ApiKey,
            force_http,
        },
        concurrency,
        priority: 0,
        model_map: Arc::default(),
    }
}

/// The HTTP tests' account: concurrency 4, `client-model` sent upstream as `upstream-model`
pub fn account(id: u64, force_http: bool) -> AccountSpec {
    AccountSpec {
        model_map: Arc::new(ModelMap::new([(
            "client-model".to_owned(),
            "upstream-model".to_owned(),
        )])),
        ..spec(id, 4, force_http)
    }
}

/// What a dial to an account does
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dial {
    /// Opens at once
    #[default]
    Ok,
    /// Fails at once (connection refused)
    Refused,
    /// Fails at once with a local error (EMFILE)
    Local,
    /// Stays in flight until [`Gateway::finish_hanging`]
    Hang,
}

pub struct Gateway {
    pub t0: Instant,
    pub now: Instant,
    pub cfg: Arc<Config>,
    pub control: Control,
    pub turns: BTreeMap<SessionId, HttpTurn>,
    pub sessions: BTreeMap<SessionId, Session>,
    memory: MemoryBackend,
    /// What dials to each account do (absent: [`Dial::Ok`])
    pub behaviour: HashMap<AccountId, Dial>,
    /// (conn, account, holder it was dialed for) of every dial made
    pub dials: Vec<(ConnId, AccountId, Option<SessionId>)>,
    /// The next this many dials fail, whatever the account
    pub fail_dials: usize,
    /// Dials in flight until [`Gateway::finish_hanging`]
    pub hanging: Vec<(ConnId, AccountId)>,
    pub conn_account: HashMap<ConnId, AccountId>,
    /// Holders whose task ended before their `Close` reached the control plane (true: HTTP)
    ended: BTreeMap<SessionId, bool>,
    /// (holder, conn, create, when) for every text frame a turn or session wrote upstream
    pub creates: Vec<(SessionId, ConnId, Value, Instant)>,
    /// Client-facing transmits of every HTTP request, in order
    pub client: BTreeMap<SessionId, Vec<HttpTransmit>>,
    /// Frames every session sent its client, in order
    pub to_client: Vec<(SessionId, Value)>,
    pub commands: Vec<(SessionId, HttpTurnRequest)>,
    /// HTTP turns' events
    pub events: Vec<(SessionId, HttpEvent)>,
    pub session_events: Vec<SessionEvent>,
    pub control_events: Vec<ControlEvent>,
    /// Store gets, and sessions' continuation checks, asked for
    pub gets: usize,
    pub checks: usize,
    pub trace: Trace,
}

impl Gateway {
    /// A gateway of `accounts` with no warm conns
    pub fn new(accounts: Vec<AccountSpec>) -> Self {
        let mut cfg = Config::default();
        cfg.pool.min_idle_per_account = 0;
        Self::with_config(cfg, accounts)
    }

    pub fn with_config(cfg: Config, accounts: Vec<AccountSpec>) -> Self {
        Self::with_dials(cfg, accounts, HashMap::new())
    }

    /// A gateway whose dials to each account do as `behaviour` says (from the first, warm ones)
    pub fn with_dials(
        cfg: Config,
        accounts: Vec<AccountSpec>,
        behaviour: HashMap<AccountId, Dial>,
    ) -> Self {
        let cfg = Arc::new(cfg);
        let now = Instant::now();
        let mut gw = Self {
            control: Control::new(cfg.clone(), accounts, 7, now),
            cfg,
            t0: now,
            now,
            turns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            memory: MemoryBackend::new(1024),
            behaviour,
            dials: Vec::new(),
            fail_dials: 0,
            hanging: Vec::new(),
            conn_account: HashMap::new(),
            ended: BTreeMap::new(),
            creates: Vec::new(),
            client: BTreeMap::new(),
            to_client: Vec::new(),
            commands: Vec::new(),
            events: Vec::new(),
            session_events: Vec::new(),
            control_events: Vec::new(),
            gets: 0,
            checks: 0,
            trace: Trace::new(now),
        };
        gw.run();
        gw
    }

    /// Dials to `account` do `dial` from now on
    pub fn set_dial(&mut self, account: u64, dial: Dial) {
        self.behaviour.insert(AccountId(account), dial);
    }

    // --- HTTP requests ------------------------------------------------------------------

    pub fn post(&mut self, id: u64, body: Value) -> SessionId {
        self.post_raw(id, Bytes::from(body.to_string()))
    }

    pub fn post_raw(&mut self, id: u64, body: Bytes) -> SessionId {
        let id = SessionId(id);
        self.trace
            .input_to(self.now, id, format!("POST {}", body_summary(&body)));
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
        self.trace.input_to(
            self.now,
            id,
            format!("upstream {conn} {}", event_summary(&v)),
        );
        let frame = Bytes::from(v.to_string());
        self.turns.get_mut(&id).unwrap().handle_upstream(
            self.now,
            conn,
            UpstreamInput::Frame(frame, Utf8::Unchecked),
        );
        self.run();
    }

    pub fn upstream_closed(&mut self, id: SessionId) {
        let conn = self.conn_of(id);
        self.trace
            .input_to(self.now, id, format!("upstream {conn} closed"));
        self.turns
            .get_mut(&id)
            .unwrap()
            .handle_upstream(self.now, conn, UpstreamInput::Closed);
        self.run();
    }

    /// The shell abandoned the write in flight on the conn of request `id` (`started`: part of
    /// it went out)
    pub fn write_abandoned(&mut self, id: SessionId, started: bool) {
        let conn = self.conn_of(id);
        self.trace.input_to(
            self.now,
            id,
            format!("upstream {conn} write abandoned started={started}"),
        );
        self.turns.get_mut(&id).unwrap().handle_upstream(
            self.now,
            conn,
            UpstreamInput::WriteAbandoned,
        );
        self.run();
    }

    /// The client of request or session `id` leaves
    pub fn gone(&mut self, id: SessionId) {
        self.trace.input_to(self.now, id, "client gone");
        match self.turns.get_mut(&id) {
            Some(turn) => turn.handle_client_gone(self.now),
            None => self
                .sessions
                .get_mut(&id)
                .expect("an open request or session")
                .handle_client_gone(self.now),
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

    pub fn creates_of(&self, id: SessionId) -> Vec<&(SessionId, ConnId, Value, Instant)> {
        self.creates.iter().filter(|c| c.0 == id).collect()
    }

    // --- WebSocket sessions -------------------------------------------------------------

    /// A WebSocket session of group `default` opens (its socket was upgraded)
    pub fn open_session(&mut self, id: u64) -> SessionId {
        self.open_session_with(
            id,
            SessionInfo {
                group: "default".into(),
                ..SessionInfo::default()
            },
        )
    }

    pub fn open_session_with(&mut self, id: u64, info: SessionInfo) -> SessionId {
        let id = SessionId(id);
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

    /// Conn `conn` of session `id` sends a frame
    pub fn session_upstream(&mut self, id: SessionId, conn: ConnId, v: Value) {
        self.sessions.get_mut(&id).unwrap().handle_upstream(
            self.now,
            conn,
            UpstreamInput::Frame(Bytes::from(v.to_string()), Utf8::Unchecked),
        );
        self.run();
    }

    /// The conn session `id` sent its last create on
    pub fn create_conn(&self, id: SessionId) -> ConnId {
        self.creates
            .iter()
            .rev()
            .find(|c| c.0 == id)
            .map(|c| c.1)
            .expect("a create was sent")
    }

    // --- Holders' tasks, dials, time ----------------------------------------------------

    /// Holder `id`'s task ends before its `Close` reaches the control plane: answers for it
    /// find no machine to take them ([`Gateway::close`] sends the `Close`)
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
                .handle_http_request(self.now, id, HttpTurnRequest::Close),
            Some(false) => self.control.close_session(self.now, id),
            None => panic!("{id}'s task has not ended"),
        }
        self.run();
    }

    /// The dials in flight open (`ok`) or time out
    pub fn finish_hanging(&mut self, ok: bool) {
        for (conn, account) in std::mem::take(&mut self.hanging) {
            if ok {
                self.dial_traced(conn, account, true);
                self.control.handle_dial_ok(self.now, account, conn);
            } else {
                self.dial_traced(conn, account, false);
                self.control
                    .handle_dial_failed(self.now, account, conn, timed_out());
            }
        }
        self.run();
    }

    /// Moves virtual time forward by `by` at once, then every machine handles its timeouts
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.handle_timeouts();
    }

    /// Moves virtual time to the next deadline of any machine, or by `max` if that is sooner
    pub fn step(&mut self, max: Duration) {
        let limit = self.now + max;
        let next = self
            .sessions
            .values()
            .filter_map(Session::poll_timeout)
            .chain(self.turns.values().filter_map(HttpTurn::poll_timeout))
            .chain(self.control.poll_timeout())
            .filter(|t| *t > self.now)
            .min()
            .map_or(limit, |t| t.min(limit));
        self.now = next;
        self.handle_timeouts();
    }

    /// Steps until `done` holds or `max` has passed
    pub fn step_until(&mut self, max: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + max;
        while !done(self) && self.now < end {
            self.step(end - self.now);
        }
    }

    fn handle_timeouts(&mut self) {
        self.control.handle_timeout(self.now);
        for t in self.turns.values_mut() {
            t.handle_timeout(self.now);
        }
        for s in self.sessions.values_mut() {
            s.handle_timeout(self.now);
        }
        self.run();
    }

    pub fn trace(&self) -> String {
        self.trace.to_string()
    }

    /// Traces the answer to a dial, an input of the control plane
    fn dial_traced(&mut self, conn: ConnId, account: AccountId, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.trace.input_to(
            self.now,
            "control",
            format!("dial {conn} {account} {result}"),
        );
    }
}

/// The failure of a dial that timed out
pub fn timed_out() -> wsv2_core::control::DialFailure {
    wsv2_core::control::DialFailure {
        message: "upstream dial timed out".into(),
        ..Default::default()
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
