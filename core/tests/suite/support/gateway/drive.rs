//! The gateway's one drive loop: control-plane outputs routed to their holders, dials and the
//! store answered as scripted, and every holder's outputs taken, until nothing moves.

use serde_json::Value;
use wsv2_core::conn::UpstreamTransmit;
use wsv2_core::control::{ControlOutput, DialFailure};
use wsv2_core::http::{HttpInput, HttpTransmit};
use wsv2_core::session::{SessionInput, SessionRequest, Transmit};
use wsv2_core::store::RequestKind;
use wsv2_core::turn::{Answer, Holder};
use wsv2_core::{AccountId, ConnId, SessionId};

use super::lines::{command_summary, create_summary, event_line, input_summary, transmit_summary};
use super::{Dial, Gateway};

impl Gateway {
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
                    .input_to(self.now, id, format!("control {}", input_summary(&input)));
                match self.turns.get_mut(&id) {
                    Some(t) => t.handle_control(self.now, input),
                    // What the shells do with a lease for a task that ended
                    None => {
                        if let HttpInput::Answer(Answer::Lease(lease)) = input {
                            self.control.handle_unread_lease(self.now, lease);
                        }
                    }
                }
            }
            ControlOutput::Session(id, input) => match self.sessions.get_mut(&id) {
                Some(s) => s.handle_control(self.now, input),
                None => {
                    if let SessionInput::Answer(Answer::Lease(lease)) = input {
                        self.control.handle_unread_lease(self.now, lease);
                    }
                }
            },
            ControlOutput::Dial {
                conn,
                account,
                for_session,
                ..
            } => self.dial(conn, account, for_session),
            ControlOutput::Store(cmd) => {
                self.gets += usize::from(matches!(cmd.kind, RequestKind::Get { .. }));
                let reply = self.memory.execute(self.now, &cmd);
                self.control.handle_store_reply(self.now, cmd.op, reply);
            }
            ControlOutput::Close { conn, .. } => {
                self.trace
                    .output_of(self.now, "control", format!("close {conn}"))
            }
            ControlOutput::Event(event) => self.control_events.push(event),
            ControlOutput::Ping { .. } => {}
        }
    }

    /// A dial does what the account's [`Dial`] says (or fails, while `fail_dials` lasts)
    fn dial(&mut self, conn: ConnId, account: AccountId, holder: Option<SessionId>) {
        self.conn_account.insert(conn, account);
        let behaviour = self.behaviour.get(&account).copied().unwrap_or_default();
        let failure = |message: &str, local: bool| DialFailure {
            message: message.into(),
            local,
            ..DialFailure::default()
        };
        if self.fail_dials > 0 {
            self.fail_dials -= 1;
            self.dial_traced(conn, account, false);
            let failure = DialFailure::default();
            self.control
                .handle_dial_failed(self.now, account, conn, failure);
            return;
        }
        self.dials.push((conn, account, holder));
        match behaviour {
            Dial::Ok => {
                self.dial_traced(conn, account, true);
                self.control.handle_dial_ok(self.now, account, conn);
            }
            Dial::Refused | Dial::Local => {
                self.dial_traced(conn, account, false);
                let failure = match behaviour {
                    Dial::Local => failure("too many open files", true),
                    _ => failure("connection refused", false),
                };
                self.control
                    .handle_dial_failed(self.now, account, conn, failure);
            }
            Dial::Hang => self.hanging.push((conn, account)),
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
                    self.trace.output_of(
                        self.now,
                        id,
                        format!("upstream {conn} {}", create_summary(&v)),
                    );
                    self.creates.push((id, *conn, v, self.now));
                }
                HttpTransmit::Upstream { conn, msg } => {
                    self.trace
                        .output_of(self.now, id, format!("upstream {conn} {msg:?}"));
                }
                other => {
                    self.trace.output_of(
                        self.now,
                        id,
                        format!("client {}", transmit_summary(other)),
                    );
                    self.client.entry(id).or_default().push(tx);
                }
            }
        }
        while let Some(c) = t.poll_request() {
            cmds.push(c);
        }
        while let Some(e) = t.poll_event() {
            events.push(e);
        }
        for c in cmds {
            busy = true;
            self.trace
                .output_of(self.now, id, format!("control {}", command_summary(&c)));
            self.commands.push((id, c.clone()));
            self.control.handle_http_request(self.now, id, c);
        }
        for e in events {
            busy = true;
            self.trace
                .output_of(self.now, id, format!("event {}", event_line(&e)));
            self.control.handle_http_event(self.now, &e);
            self.events.push((id, e));
        }
        busy
    }

    fn drain_session(&mut self, id: SessionId) -> bool {
        let mut busy = false;
        let s = self.sessions.get_mut(&id).unwrap();
        let mut cmds = Vec::new();
        let mut sent = Vec::new();
        while let Some(t) = s.poll_transmit() {
            busy = true;
            sent.push(t);
        }
        while let Some(c) = s.poll_request() {
            cmds.push(c);
        }
        let mut events = Vec::new();
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        for t in sent {
            match t {
                Transmit::Client(frame) => self
                    .to_client
                    .push((id, serde_json::from_slice(&frame).unwrap())),
                Transmit::Upstream {
                    conn,
                    msg: UpstreamTransmit::Text { frame, .. },
                } => {
                    self.trace
                        .output_of(self.now, id, format!("upstream {conn} create"));
                    let v = serde_json::from_slice(&frame).unwrap();
                    self.creates.push((id, conn, v, self.now));
                }
                Transmit::Upstream { .. } | Transmit::ClientPing => {}
            }
        }
        for c in cmds {
            busy = true;
            self.checks += usize::from(matches!(c, SessionRequest::CheckContinuation { .. }));
            if !matches!(
                c,
                SessionRequest::AbandonWrites { .. } | SessionRequest::CloseClient { .. }
            ) {
                self.control.handle_session_request(self.now, id, c);
            }
        }
        for e in events {
            busy = true;
            self.control.handle_session_event(self.now, &e);
            self.session_events.push(e);
        }
        busy
    }
}
