//! The control task's part of HTTP turns, the state store and metrics: HTTP requests'
//! inboxes, their commands and events routed to `Control::handle_http_request` /
//! `handle_http_event`, store commands run on the configured backend, and the control plane's
//! snapshot for `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{info, warn};
use wsv2_core::http::HttpInput;
use wsv2_core::store::{BindingRef, StoreRequest};
use wsv2_core::{AccountId, SessionId};

use super::ControlTask;
use crate::holder::HolderEntry;
use crate::metrics_export::{ControlSnapshot, Metrics};
use crate::shared::ControlMsg;
use crate::store_backend::StoreBackend;
use wsv2_core::control::ControlEvent;

/// The control task's HTTP, store and metrics state
pub(crate) struct Extension {
    /// The HTTP requests' tasks
    pub(super) http: HashMap<SessionId, HolderEntry<HttpInput>>,
    store: StoreBackend,
    metrics: Option<Arc<Metrics>>,
    names: Arc<HashMap<AccountId, String>>,
}

impl Extension {
    /// Runs store commands on `store`, counts into `metrics` and names accounts in log lines and
    /// metric labels by `names`
    pub(crate) fn new(
        store: StoreBackend,
        metrics: Option<Arc<Metrics>>,
        names: Arc<HashMap<AccountId, String>>,
    ) -> Self {
        Self {
            http: HashMap::new(),
            store,
            metrics,
            names,
        }
    }
}

impl ControlTask {
    /// The accounts' names after a reload (the bind-failure lines and metric labels use them)
    pub(crate) fn set_account_names(&mut self, names: Arc<HashMap<AccountId, String>>) {
        self.ext.names = names;
    }

    /// Handles the messages this extension added to the inbox
    pub(crate) fn handle_ext(&mut self, msg: ControlMsg) {
        let now = self.clock.now();
        match msg {
            ControlMsg::HttpOpen { id, headers, inbox } => {
                self.ext.http.insert(id, HolderEntry { inbox, headers });
            }
            ControlMsg::Http { id, request } => {
                let close = matches!(request, wsv2_core::http::HttpTurnRequest::Close);
                self.control.handle_http_request(now, id, request);
                if close {
                    self.ext.http.remove(&id);
                }
            }
            ControlMsg::HttpEvent { event } => self.control.handle_http_event(now, &event),
            ControlMsg::StoreReply(reply) => {
                self.control.handle_store_reply(now, reply.op, reply.result)
            }
            ControlMsg::Scrape { reply } => {
                let _ = reply.send(self.snapshot(now));
            }
            _ => {}
        }
    }

    /// A session opened (`true`) or closed
    pub(crate) fn count_session(&self, opened: bool) {
        if let Some(m) = &self.ext.metrics {
            if opened {
                m.session_opened();
            } else {
                m.session_closed();
            }
        }
    }

    /// Logs a control event and counts it. A binding the store did not take is a WARN naming
    /// its group, account and response id (a session's hashed store key), never a credential
    /// or a body, and counts in `wsv2_bind_failures_total{kind="response"|"session"}`
    pub(crate) fn report_control_event(&self, event: &ControlEvent) {
        let name = |a: &AccountId| self.ext.names.get(a).map_or("?", String::as_str).to_owned();
        match event {
            ControlEvent::StoreSetFailed {
                group,
                account,
                binding,
            } => {
                let account = name(account);
                let kind = match binding {
                    BindingRef::Response(id) => {
                        warn!(group = %group, account = %account, response = %id,
                            "response binding not written to the store (this gateway still routes by it)");
                        "response"
                    }
                    BindingRef::Session(key) => {
                        warn!(group = %group, account = %account, session_key = %key,
                            "session binding not written to the store (this gateway still routes by it)");
                        "session"
                    }
                };
                if let Some(m) = &self.ext.metrics {
                    m.bind_failure(kind);
                }
            }
            ControlEvent::SlotWaiting {
                session,
                turn,
                account,
                max_concurrency,
            } => info!(
                %session,
                %turn,
                %account,
                max_concurrency,
                "create waits for an account concurrency slot"
            ),
            ControlEvent::AccountUsable { account } => {
                info!(?event, "control");
                if let Some(m) = &self.ext.metrics {
                    m.cooldown(&name(account));
                }
            }
            _ => info!(?event, "control"),
        }
    }

    /// Observes a dial's latency
    pub(crate) fn dial_observer(&self, account: AccountId) -> impl FnOnce(f64) + Send + 'static {
        let metrics = self.ext.metrics.clone();
        let name = self.ext.names.get(&account).cloned().unwrap_or_default();
        move |seconds| {
            if let Some(m) = metrics {
                m.dial(&name, seconds);
            }
        }
    }

    /// Runs one store command on the configured backend
    pub(crate) fn run_store(&mut self, cmd: StoreRequest) {
        let reply = self
            .ext
            .store
            .execute(cmd, self.ext.metrics.as_ref(), &self.me);
        if let Some(reply) = reply {
            self.control
                .handle_store_reply(self.clock.now(), reply.op, reply.result);
        }
    }

    fn snapshot(&self, now: std::time::Instant) -> ControlSnapshot {
        let pools = self
            .control
            .accounts()
            .filter_map(|spec| {
                self.control
                    .pool_stats(spec.id)
                    .map(|stats| (spec.name.clone(), stats))
            })
            .collect();
        let store = self.control.store();
        let accounts = self
            .control
            .readiness(now)
            .accounts
            .into_iter()
            .map(|a| (a.name, a.state))
            .collect();
        ControlSnapshot {
            pools,
            accounts,
            store: store.stats(),
            breaker_open: !matches!(
                store.breaker().state(),
                wsv2_core::store::BreakerState::Closed { .. }
            ),
        }
    }
}
