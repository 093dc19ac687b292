//! A virtual-time driver for the store machine that records a transition trace: one line per
//! input and one per output.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use wsv2_core::config::{StoreConfig, duration};
use wsv2_core::store::{
    Lookup, MemoryBackend, OpId, RequestKind, Store, StoreEvent, StoreFailure, StoreRequest,
};
use wsv2_core::{AccountId, ResponseId};

use super::trace::Trace;

pub struct Harness {
    pub store: Store,
    pub t0: Instant,
    pub now: Instant,
    pub trace: Trace,
}

impl Harness {
    pub fn new(config: StoreConfig) -> Self {
        Self::with_clock(config, Instant::now())
    }

    /// A harness whose virtual time starts at `t0` (another gateway on the same clock)
    pub fn with_clock(config: StoreConfig, t0: Instant) -> Self {
        Self {
            store: Store::new(config, Duration::from_secs(55 * 60)),
            t0,
            now: t0,
            trace: Trace::new(t0),
        }
    }

    /// Traces an input handed to the store
    pub fn input(&mut self, what: impl std::fmt::Display) {
        self.trace.input(self.now, what);
    }

    fn out(&mut self, what: impl std::fmt::Display) {
        self.trace.output(self.now, what);
    }

    /// Drains commands and events, recording each
    pub fn outputs(&mut self) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        let mut commands = Vec::new();
        while let Some(command) = self.store.poll_request() {
            self.out(format!("{} {}", command.op, render_command(&command.kind)));
            commands.push(command);
        }
        let mut events = Vec::new();
        while let Some(event) = self.store.poll_event() {
            self.out(format!("event {}", render_event(&event)));
            events.push(event);
        }
        (commands, events)
    }

    pub fn lookup_response(&mut self, id: &str) -> (Lookup, Vec<StoreRequest>) {
        let lookup = self.store.lookup_response(self.now, &rid(id));
        self.input(format!("lookup_response {id}"));
        self.out(render_lookup(lookup));
        let (commands, _) = self.outputs();
        (lookup, commands)
    }

    pub fn lookup_session(
        &mut self,
        group: Option<&str>,
        key: &str,
    ) -> (Lookup, Vec<StoreRequest>) {
        let lookup = self.store.lookup_session(self.now, group, key);
        self.input(format!("lookup_session {key} in {}", group_name(group)));
        self.out(render_lookup(lookup));
        let (commands, _) = self.outputs();
        (lookup, commands)
    }

    /// Binds a `store:true` response
    pub fn bind_response(
        &mut self,
        group: Option<&str>,
        id: &str,
        account: u64,
    ) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        self.bind_response_with(group, id, account, true)
    }

    pub fn bind_response_with(
        &mut self,
        group: Option<&str>,
        id: &str,
        account: u64,
        store: bool,
    ) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        let flag = if store { "" } else { " store:false" };
        self.input(format!(
            "bind_response {id}{flag} in {} -> a{account}",
            group_name(group)
        ));
        self.store
            .bind_response(self.now, group, &rid(id), AccountId(account), store);
        self.outputs()
    }

    pub fn bind_session(
        &mut self,
        group: Option<&str>,
        key: &str,
        account: u64,
    ) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        self.input(format!(
            "bind_session {key} in {} -> a{account}",
            group_name(group)
        ));
        self.store
            .bind_session(self.now, group, key, AccountId(account));
        self.outputs()
    }

    pub fn unbind_response(&mut self, id: &str) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        self.input(format!("unbind_response {id}"));
        self.store.unbind_response(self.now, &rid(id));
        self.outputs()
    }

    pub fn reply(
        &mut self,
        op: OpId,
        result: Result<Option<&str>, StoreFailure>,
    ) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        self.input(format!("reply {op} {result:?}"));
        self.store
            .handle_reply(self.now, op, result.map(|v| v.map(str::to_owned)));
        self.outputs()
    }

    /// Moves virtual time to `t0 + ms` and calls `handle_timeout`
    pub fn at(&mut self, ms: u64) -> (Vec<StoreRequest>, Vec<StoreEvent>) {
        self.now = self.t0 + Duration::from_millis(ms);
        self.input("timeout");
        self.store.handle_timeout(self.now);
        self.outputs()
    }

    /// Runs `commands` (already recorded), then every command queued meanwhile, on `backend`
    pub fn run(
        &mut self,
        backend: &mut MemoryBackend,
        commands: Vec<StoreRequest>,
    ) -> Vec<StoreEvent> {
        let mut events = Vec::new();
        let mut queue: std::collections::VecDeque<StoreRequest> = commands.into();
        while let Some(command) = queue.pop_front().or_else(|| {
            let next = self.store.poll_request();
            if let Some(command) = &next {
                self.out(format!("{} {}", command.op, render_command(&command.kind)));
            }
            next
        }) {
            let reply = backend.execute(self.now, &command);
            self.input(format!("memory reply {} {reply:?}", command.op));
            self.store.handle_reply(self.now, command.op, reply);
            while let Some(event) = self.store.poll_event() {
                self.out(format!("event {}", render_event(&event)));
                events.push(event);
            }
        }
        events
    }

    /// Runs every queued command on `backend` (recording each command and reply)
    pub fn drive(&mut self, backend: &mut MemoryBackend) -> Vec<StoreEvent> {
        self.run(backend, Vec::new())
    }
}

pub fn rid(id: &str) -> ResponseId {
    ResponseId::from_str_copy(id).expect("valid response id")
}

fn group_name(group: Option<&str>) -> &str {
    group.unwrap_or("<default>")
}

pub fn render_lookup(lookup: Lookup) -> String {
    match lookup {
        Lookup::Hit(binding) => format!("Hit({binding})"),
        Lookup::Miss => "Miss".to_owned(),
        Lookup::Pending(op) => format!("Pending({op})"),
    }
}

pub fn render_command(kind: &RequestKind) -> String {
    match kind {
        RequestKind::Get { key } => format!("GET {key}"),
        RequestKind::Set { key, value, ttl } => {
            format!("SET {key} {value} ttl={}", duration::format(*ttl))
        }
        RequestKind::Delete { key } => format!("DEL {key}"),
        RequestKind::Expire { key, ttl } => format!("EXPIRE {key} ttl={}", duration::format(*ttl)),
    }
}

pub fn render_event(event: &StoreEvent) -> String {
    match event {
        StoreEvent::Resolved {
            op,
            result: Some(binding),
        } => format!("Resolved {op} = Hit({binding})"),
        StoreEvent::Resolved { op, result: None } => format!("Resolved {op} = Miss"),
        StoreEvent::SetFailed {
            group,
            account,
            binding,
        } => {
            format!("SetFailed group={group} account={account} {binding}")
        }
        StoreEvent::BreakerOpened => "BreakerOpened".to_owned(),
        StoreEvent::BreakerClosed => "BreakerClosed".to_owned(),
    }
}

pub use super::assert_trace as snapshot;
