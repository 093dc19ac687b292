//! The control task: one per process, owning the core's `Control` (scheduler, store, pools,
//! concurrency slots). It sits on the per-turn path only — schedules, leases, slots, releases,
//! dials, idle pings — never on the per-event path, which stays inside each session task.

use std::collections::HashMap;
use std::sync::Arc;

use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use wsv2_core::conn::{CompatKey, UpstreamTransmit};
use wsv2_core::control::{Control, ControlOutput, DialFailure};
use wsv2_core::ingress::COMPAT_HEADERS;
use wsv2_core::session::{Lease, SessionInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use crate::holder::{HolderEntry, deliver};
use crate::runtime::{Clock, Rt, spawn};
use crate::shared::{AccountDial, ControlMsg, ControlTx};
use crate::upstream::{ConnIo, DialRequest, UpstreamInput, dial, spawn_conn};

mod http_glue;
pub(crate) use http_glue::Extension;

/// Messages the control task's inbox holds at most; senders wait when it is full
pub(crate) const CONTROL_INBOX: usize = 4096;

/// The control task's state
pub(crate) struct ControlTask {
    control: Control,
    cfg: Arc<Config>,
    accounts: HashMap<AccountId, AccountDial>,
    sessions: HashMap<SessionId, HolderEntry<SessionInput>>,
    conns: HashMap<ConnId, ConnIo>,
    me: ControlTx,
    /// HTTP turns, the Redis store and metrics (`http_glue`)
    ext: Extension,
    /// Waiting for the last conn to end
    no_conns_waiters: Vec<oneshot::Sender<()>>,
    rt: Rt,
    /// The one timer, set to `control.poll_timeout()`
    clock: Clock,
}

impl ControlTask {
    pub(crate) fn new(
        control: Control,
        cfg: Arc<Config>,
        accounts: HashMap<AccountId, AccountDial>,
        me: ControlTx,
        rt: Rt,
        ext: Extension,
    ) -> Self {
        Self {
            clock: Clock::new(&rt),
            rt,
            ext,
            control,
            cfg,
            accounts,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            me,
            no_conns_waiters: Vec::new(),
        }
    }

    /// Runs until every sender of the inbox is gone
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<ControlMsg>) {
        loop {
            let deadline = self.control.poll_timeout();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                () = self.clock.until(deadline) => {
                    // Re-read the clock: a timer may fire late or early.
                    self.control.handle_timeout(self.clock.now());
                }
            }
            self.drain();
            if self.conns.is_empty() {
                for waiter in self.no_conns_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
    }

    fn handle(&mut self, msg: ControlMsg) {
        let now = self.clock.now();
        match msg {
            ControlMsg::Upgrade { reply } => {
                let _ = reply.send(self.control.check_upgrade(now));
            }
            ControlMsg::Ready { reply } => {
                let _ = reply.send(self.control.check_ready(now));
            }
            ControlMsg::Open {
                id,
                info,
                headers,
                inbox,
            } => {
                self.sessions.insert(id, HolderEntry { inbox, headers });
                self.control.open_session(id, info);
                self.count_session(true);
            }
            ControlMsg::Request { id, request } => {
                self.control.handle_session_request(now, id, request)
            }
            ControlMsg::Event { event } => self.control.handle_session_event(now, &event),
            ControlMsg::UnreadLease { lease } => self.control.handle_unread_lease(now, lease),
            ControlMsg::Close { id } => {
                if self.sessions.remove(&id).is_some() {
                    self.count_session(false);
                }
                self.control.close_session(now, id);
            }
            ControlMsg::Idle { msg } => match msg.input {
                UpstreamInput::Frame(..) => {
                    self.control.handle_idle_frame(now, msg.account, msg.conn)
                }
                UpstreamInput::Pong => self.control.handle_idle_pong(now, msg.account, msg.conn),
                UpstreamInput::Closed | UpstreamInput::TooBig => {
                    self.control.handle_idle_closed(now, msg.account, msg.conn)
                }
                UpstreamInput::WriteAbandoned => {
                    // Only pings and closes are written on an idle conn; a broken one is closed.
                    if let Some(io) = self.conns.get(&msg.conn) {
                        let _ = io.write(UpstreamTransmit::Close);
                    }
                }
            },
            ControlMsg::ConnGone { account, conn } => {
                self.conns.remove(&conn);
                // Frees the capacity of a conn that died while leased; a no-op for conns the
                // pool already forgot (closed by it, or idle and reported closed).
                self.control.handle_conn_closed(now, account, conn);
            }
            ControlMsg::DialDone {
                account,
                conn,
                result,
            } => match result {
                Ok(io) => {
                    self.conns.insert(conn, io);
                    self.control.handle_dial_ok(now, account, conn);
                }
                Err(failure) => {
                    warn!(%account, %conn, status = ?failure.status, message = %failure.message, "upstream dial failed");
                    self.control.handle_dial_failed(now, account, conn, failure);
                }
            },
            ControlMsg::Stats { reply } => {
                let _ = reply.send(self.control.stats());
            }
            ControlMsg::Readiness { reply } => {
                let _ = reply.send(self.control.readiness(now));
            }
            msg @ (ControlMsg::HttpOpen { .. }
            | ControlMsg::Http { .. }
            | ControlMsg::HttpEvent { .. }
            | ControlMsg::StoreReply(_)
            | ControlMsg::Scrape { .. }) => self.handle_ext(msg),
            ControlMsg::Reload {
                accounts,
                dials,
                names,
            } => {
                // Dials already under way keep the route they started with.
                self.accounts = dials;
                if let Some(names) = names {
                    self.set_account_names(names);
                }
                self.control.apply_accounts(now, accounts);
            }
            ControlMsg::WhenNoConns { reply } => self.no_conns_waiters.push(reply),
        }
    }

    /// Performs every output of the control machine (the drive invariant)
    fn drain(&mut self) {
        while let Some(output) = self.control.poll_output() {
            match output {
                ControlOutput::Session(id, input) => {
                    let unread = deliver(&self.sessions, &self.conns, id, "session", input);
                    self.return_unread(unread);
                }
                ControlOutput::Dial {
                    conn,
                    account,
                    compat,
                    for_session,
                } => self.start_dial(conn, account, &compat, for_session),
                ControlOutput::Ping { conn, .. } => {
                    if let Some(io) = self.conns.get(&conn) {
                        let _ = io.write(UpstreamTransmit::Ping);
                    }
                }
                ControlOutput::Close { conn, .. } => {
                    if let Some(io) = self.conns.get(&conn) {
                        let _ = io.write(UpstreamTransmit::Close);
                    }
                }
                ControlOutput::Store(cmd) => self.run_store(cmd),
                ControlOutput::Event(event) => self.report_control_event(&event),
                ControlOutput::Http(id, input) => {
                    let unread = deliver(&self.ext.http, &self.conns, id, "HTTP request", input);
                    self.return_unread(unread);
                }
            }
        }
    }

    /// A lease whose holder ended before it could take it: the core sends it back to the pool
    fn return_unread(&mut self, lease: Option<Lease>) {
        if let Some(lease) = lease {
            self.control.handle_unread_lease(self.clock.now(), lease);
        }
    }

    fn start_dial(
        &mut self,
        conn: ConnId,
        account: AccountId,
        compat: &CompatKey,
        for_session: Option<SessionId>,
    ) {
        let Some(target) = self.accounts.get(&account) else {
            let failure = DialFailure {
                status: None,
                retry_after: None,
                message: format!("no upstream URL for account {account}"),
                local: false,
            };
            self.control
                .handle_dial_failed(self.clock.now(), account, conn, failure);
            return;
        };
        let mut headers = compat_headers(compat);
        let holder_headers = for_session.and_then(|s| {
            let session = self.sessions.get(&s).map(|e| &e.headers);
            session.or_else(|| self.ext.http.get(&s).map(|e| &e.headers))
        });
        if let Some(h) = holder_headers {
            headers.extend(h.per_session.iter().cloned());
        }
        let request = DialRequest {
            url: target.url.clone(),
            token: target.token.clone(),
            headers,
            max_message_size: self.cfg.upstream.max_message_size,
            route: target.route.clone(),
        };
        let timeout = self.cfg.upstream.dial_timeout;
        let close_wait = self.cfg.upstream.close_timeout;
        let control = self.me.clone();
        let observe = self.dial_observer(account);
        let rt = self.rt.clone();
        spawn(&self.rt, async move {
            let started = rt.now();
            let result = dial(&rt, &request, timeout).await;
            observe(rt.now().saturating_duration_since(started).as_secs_f64());
            let result =
                result.map(|ws| spawn_conn(&rt, conn, account, ws, control.clone(), close_wait));
            let _ = control
                .send(ControlMsg::DialDone {
                    account,
                    conn,
                    result,
                })
                .await;
        });
    }
}

/// Capacity of one session's inbox: a session never has more answers outstanding than its held
/// creates (one slot each) plus one schedule and one acquire
pub(crate) fn session_inbox_capacity(cfg: &Config) -> usize {
    cfg.session.max_held_creates_per_session + 8
}

/// The pool key's headers: every dial for the key carries them, warm dials included
fn compat_headers(compat: &CompatKey) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(2);
    let values = [compat.openai_beta(), compat.codex_beta_features()];
    for (name, values) in COMPAT_HEADERS.into_iter().zip(values) {
        if values.is_empty() {
            continue;
        }
        // The key holds values that came in as header values, so they stay valid ones.
        if let Ok(value) = HeaderValue::from_str(&values.join(",")) {
            headers.push((HeaderName::from_static(name), value));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsv2_core::AccountId;

    #[test]
    fn a_compat_key_becomes_its_beta_headers_and_a_plain_key_none() {
        let key = CompatKey::new(
            AccountId(1),
            ["responses_websockets=2026-02-06"],
            ["b, a", "a"],
        );
        let headers: Vec<(String, String)> = compat_headers(&key)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                (
                    "openai-beta".to_owned(),
                    "responses_websockets=2026-02-06".to_owned()
                ),
                ("x-codex-beta-features".to_owned(), "a,b".to_owned()),
            ]
        );
        assert!(compat_headers(&CompatKey::plain(AccountId(1))).is_empty());
    }
}
