//! HTTP turns through the control plane: scheduling with [`Transport::Http`] (any usable
//! account), the `store:false` chain check, conns from `acquire_for_http` with the chain's
//! conn preferred, slots, bindings and chain holds.
//!
//! An HTTP request is a holder like a session (its [`SessionId`] comes from the same space);
//! its answers leave as [`ControlOutput::Http`].
//!
//! ```text
//! Open ─▶ Schedule ─▶ store:false chain with no idle conn caching it? ─▶ Refused(previous_response_not_found)
//!                  ─▶ store lookups ─▶ scheduler (Transport::Http) ─▶ Admission { transport, preferred }
//! Acquire ─▶ pool.acquire_for_http(preferred) ─▶ Lease | LeaseRefused
//! AcquireSlot ─▶ SlotGranted          Release { hold } ─▶ pool (chain hold after store:false)
//! Bind ─▶ store                       Close ─▶ waits cancelled, request forgotten
//! ```

use std::time::Instant;

use super::schedule::{BindingLookups, refusal_of};
use super::{Control, ControlEvent, ControlOutput, SessionInfo, SlotWaiter};
use crate::conn::CompatKey;
use crate::http::{HttpAdmission, HttpCommand, HttpEvent, HttpInput};
use crate::pool::{Lease, RefuseReason};
use crate::resolver::Transport;
use crate::scheduler::{Decision, FailureKind, ScheduleRequest};
use crate::session::{Refusal, SessionEvent};
use crate::store::ResponseConn;
use crate::{AccountId, ResponseId, SessionId, TurnId};

/// One HTTP request the control plane knows
#[derive(Clone, Debug)]
pub(super) struct HttpEntry {
    info: SessionInfo,
    schedule: Option<HttpSchedule>,
    /// The account whose pool it waits on
    acquiring: Option<AccountId>,
    /// The session key: the `session-id` header, else the body's `prompt_cache_key`
    session_key: Option<String>,
}

/// A schedule waiting for store lookups
#[derive(Clone, Debug)]
struct HttpSchedule {
    previous: Option<ResponseId>,
    lookups: BindingLookups,
    /// This gateway's record of the previous response's `store` flag
    known_store: Option<bool>,
    exclude: Vec<AccountId>,
}

impl Control {
    /// Takes one command of HTTP request `id`
    pub fn handle_http_command(&mut self, now: Instant, id: SessionId, cmd: HttpCommand) {
        match cmd {
            HttpCommand::Open(info) => {
                let session_key = info.session_key.clone();
                self.http.insert(
                    id,
                    HttpEntry {
                        info,
                        schedule: None,
                        acquiring: None,
                        session_key,
                    },
                );
            }
            HttpCommand::Schedule {
                previous,
                prompt_cache_key,
                exclude,
            } => self.start_http_schedule(now, id, previous, prompt_cache_key, exclude),
            HttpCommand::Acquire {
                account,
                compat,
                preferred,
                may_move_from,
            } => {
                if let Some(entry) = self.http.get_mut(&id) {
                    entry.acquiring = Some(account);
                }
                let dial_wait = may_move_from
                    .and_then(|tried| self.dial_wait_for(now, account, &tried, Transport::Http));
                self.pool
                    .acquire_for_http_within(now, id, &compat, preferred.as_ref(), dial_wait);
            }
            HttpCommand::AcquireSlot {
                account,
                max_concurrency,
            } => {
                let tenant = self.http.get(&id).map_or(0, |e| e.info.tenant);
                let waiter = SlotWaiter {
                    session: id,
                    turn: TurnId(0),
                    max_concurrency,
                    tenant,
                };
                if self.acquire_or_wait(account, waiter) {
                    self.out
                        .push_back(ControlOutput::Http(id, HttpInput::SlotGranted));
                }
            }
            HttpCommand::CancelSlotWait { account } => self.remove_slot_waits(id, Some(account)),
            HttpCommand::ReleaseSlot { account } => self.scheduler.release_slot(account),
            HttpCommand::Release { release, hold } => match hold {
                Some(chain) => self.pool.handle_release_with_hold(now, release, chain),
                None => self.pool.handle_release(now, release),
            },
            HttpCommand::Bind {
                response,
                account,
                conn,
                lane,
                store,
            } => {
                let group = self.http.get(&id).map(|e| e.info.group.clone());
                let at = ResponseConn { conn, lane, store };
                self.bind_response(now, group.as_deref(), &response, account, at);
            }
            HttpCommand::Close => self.close_http(now, id),
            HttpCommand::AbandonWrites { .. } => {} // the shell's
        }
        self.pump(now);
    }

    /// Takes an HTTP turn's event: failed attempts and ended responses feed account health
    pub fn handle_http_event(&mut self, now: Instant, id: SessionId, event: &HttpEvent) {
        match event {
            HttpEvent::ResponseEnded(report) => {
                self.handle_session_event(now, id, &SessionEvent::ResponseEnded(report.clone()));
            }
            HttpEvent::Retrying {
                account, failure, ..
            } => self.feed_failure(now, *account, *failure),
            HttpEvent::ForwardEnded {
                account, status, ..
            } => match *status {
                200..=299 => self.scheduler.handle_success(now, *account),
                0 => {}
                status => self.feed_failure(now, *account, FailureKind::from_status(status, None)),
            },
            _ => {}
        }
        self.pump(now);
    }

    /// HTTP requests in flight
    pub fn http_requests(&self) -> usize {
        self.http.len()
    }

    fn feed_failure(&mut self, now: Instant, account: AccountId, failure: FailureKind) {
        // A pooled account's failed dials were counted where they happened
        // (`handle_dial_failed`); an account without a pool fails its dials in the forward.
        let unpooled = self
            .accounts
            .get(&account)
            .is_some_and(|(_, transport)| *transport == Transport::Http);
        if failure == FailureKind::DialFailed && unpooled {
            self.scheduler.handle_dial_failed(now, account);
        }
        if failure == FailureKind::AuthFailed {
            self.out
                .push_back(ControlOutput::Event(ControlEvent::AccountDisabled {
                    account,
                }));
        }
        self.scheduler.handle_failure(now, account, failure);
    }

    /// Forgets request `id`: its pool wait and slot waits are cancelled
    fn close_http(&mut self, now: Instant, id: SessionId) {
        if let Some(entry) = self.http.remove(&id)
            && let Some(account) = entry.acquiring
        {
            self.pool.cancel(now, account, id);
        }
        self.remove_slot_waits(id, None);
    }

    fn remove_slot_waits(&mut self, id: SessionId, only: Option<AccountId>) {
        for (account, waiters) in &mut self.slot_waiters {
            if only.is_some_and(|a| a != *account) {
                continue;
            }
            for _ in 0..waiters.remove_where(|w| w.session == id) {
                self.scheduler.waiter_removed(*account);
            }
        }
    }

    /// A pool answer for an HTTP holder
    pub(super) fn http_lease(&mut self, answer: Result<Lease, (SessionId, RefuseReason)>) {
        let (holder, input) = match answer {
            Ok(lease) => (lease.holder, HttpInput::Lease(lease)),
            Err((holder, reason)) => (holder, HttpInput::LeaseRefused(reason)),
        };
        if let Some(entry) = self.http.get_mut(&holder) {
            entry.acquiring = None;
        }
        self.out.push_back(ControlOutput::Http(holder, input));
    }

    /// The idle conn whose lane cache holds `response`, on any account
    fn idle_conn_caching(&self, account: Option<AccountId>, response: &ResponseId) -> bool {
        let cached = |a: AccountId| {
            self.pool
                .pool(a)
                .and_then(|p| p.idle_conn_caching(response))
                .is_some()
        };
        match account {
            Some(a) => cached(a),
            None => self.pool.accounts().any(cached),
        }
    }

    fn start_http_schedule(
        &mut self,
        now: Instant,
        id: SessionId,
        previous: Option<ResponseId>,
        prompt_cache_key: Option<bytes::Bytes>,
        exclude: Vec<AccountId>,
    ) {
        let Some(entry) = self.http.get_mut(&id) else {
            return;
        };
        if entry.session_key.is_none() {
            entry.session_key = prompt_cache_key.and_then(|k| String::from_utf8(k.to_vec()).ok());
        }
        let group = entry.info.group.clone();
        let key = entry.session_key.clone();
        let known = previous
            .as_ref()
            .and_then(|p| self.store.response_conn(now, p));
        if let (Some(prev), Some(rc)) = (&previous, &known)
            && !rc.store
        {
            // A `store:false` chain lives only in the cache of the conn it ran on. If no idle
            // conn caches it (closed, evicted, or leased — to a WebSocket session or another
            // turn, whose default-lane responses replace the cache entry), nothing upstream can
            // continue it: answer as upstream would, without a create.
            let account = self.account_of(rc.conn);
            if !self.idle_conn_caching(account, prev) {
                self.out.push_back(ControlOutput::Http(
                    id,
                    HttpInput::Refused(Refusal::PreviousResponseNotFound),
                ));
                return;
            }
        }
        let lookups = self.start_binding_lookups(now, &group, previous.as_ref(), key.as_deref());
        if let Some(entry) = self.http.get_mut(&id) {
            entry.schedule = Some(HttpSchedule {
                previous,
                lookups,
                known_store: known.map(|rc| rc.store),
                exclude,
            });
        }
        self.try_decide_http(now, id);
    }

    /// Store lookup `op` answered: decide for the HTTP requests that waited on it
    pub(super) fn http_lookup_resolved(
        &mut self,
        now: Instant,
        op: crate::store::OpId,
        result: Option<crate::store::Binding>,
    ) {
        let waiting: Vec<SessionId> = self
            .http
            .iter_mut()
            .filter_map(|(id, entry)| {
                let pending = entry.schedule.as_mut()?;
                pending.lookups.answer(op, result).then_some(*id)
            })
            .collect();
        for id in waiting {
            self.try_decide_http(now, id);
        }
    }

    fn try_decide_http(&mut self, now: Instant, id: SessionId) {
        let Some(entry) = self.http.get_mut(&id) else {
            return;
        };
        let Some(pending) = &entry.schedule else {
            return;
        };
        let Some((record, session_account)) = pending.lookups.done() else {
            return;
        };
        let pending = entry.schedule.take().expect("checked");
        let group = entry.info.group.clone();
        let bound = match &pending.previous {
            None => None,
            Some(_) => match self.judge(id, &group, record) {
                Some(bound) => bound,
                None => {
                    self.out.push_back(ControlOutput::Http(
                        id,
                        HttpInput::Refused(Refusal::PreviousResponseNotFound),
                    ));
                    return;
                }
            },
        };
        // Connection-local only when this gateway recorded the previous response as
        // `store:false`; an id it does not know goes to the account and upstream answers.
        let connection_local = pending.known_store == Some(false);
        let request = ScheduleRequest {
            bound_account: bound,
            connection_local,
            session_account,
            exclude: &pending.exclude,
            transport: Transport::Http,
        };
        let decision = self.scheduler.schedule(now, &request);
        let choice = match decision {
            Decision::Schedule(choice) => choice,
            Decision::Reject(reject) => {
                self.out
                    .push_back(ControlOutput::Event(ControlEvent::ScheduleRejected {
                        session: id,
                        code: reject.code(),
                    }));
                let refusal = refusal_of(reject, now);
                self.out
                    .push_back(ControlOutput::Http(id, HttpInput::Refused(refusal)));
                return;
            }
        };
        let preferred = pending
            .previous
            .filter(|p| self.idle_conn_caching(Some(choice.account), p));
        if connection_local && preferred.is_none() {
            self.out.push_back(ControlOutput::Http(
                id,
                HttpInput::Refused(Refusal::PreviousResponseNotFound),
            ));
            return;
        }
        let entry = self.http.get(&id).expect("checked");
        let info = &entry.info;
        let compat = CompatKey::new(
            choice.account,
            info.openai_beta.iter().map(String::as_str),
            info.codex_beta_features.iter().map(String::as_str),
        );
        let group = info.group.clone();
        if let Some(key) = entry.session_key.clone() {
            self.store
                .bind_session(now, Some(&group), &key, choice.account);
        }
        let (model_map, transport) = self
            .accounts
            .get(&choice.account)
            .map(|(spec, transport)| (spec.model_map.clone(), *transport))
            .unwrap_or((Default::default(), Transport::Http));
        self.out
            .push_back(ControlOutput::Event(ControlEvent::Scheduled {
                session: id,
                account: choice.account,
                layer: choice.layer.as_str(),
            }));
        self.out.push_back(ControlOutput::Http(
            id,
            HttpInput::Admission(HttpAdmission {
                account: choice.account,
                max_concurrency: choice.max_concurrency,
                compat,
                model_map,
                transport,
                connection_local,
                preferred,
            }),
        ));
    }
}
