//! Scheduling a session: store lookups for its bindings, then the scheduler's decision.

use std::time::Instant;

use super::{Control, ControlEvent, ControlOutput, SessionInput};
use crate::conn::CompatKey;
use crate::resolver::Transport;
use crate::scheduler::{Decision, Reject, ScheduleRequest};
use crate::session::{Admission, Refusal};
use crate::store::{Lookup, OpId, ResponseConn};
use crate::{AccountId, ResponseId, SessionId};

/// A schedule waiting for store lookups
#[derive(Clone, Debug)]
pub(super) struct PendingSchedule {
    lookups: BindingLookups,
    /// The session's own view (it only knows its own responses)
    connection_local: bool,
    /// This gateway's record of the previous response's `store` flag
    known_store: Option<bool>,
    /// Accounts the session failed over away from
    exclude: Vec<AccountId>,
}

/// The two bindings a schedule waits for: the account of the previous response and the account
/// of the session key (each answered locally at once, or by a store get)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BindingLookups {
    bound: LookupState,
    session: LookupState,
}

impl BindingLookups {
    /// Records store op `op`'s answer; true if it answered one of the two
    pub(super) fn answer(&mut self, op: OpId, result: Option<AccountId>) -> bool {
        let before = *self;
        self.bound.answer(op, result);
        self.session.answer(op, result);
        before != *self
    }

    /// `(bound account, session account)` once both are known
    pub(super) fn done(&self) -> Option<(Option<AccountId>, Option<AccountId>)> {
        Some((self.bound.done()?, self.session.done()?))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LookupState {
    Done(Option<AccountId>),
    Waiting(OpId),
}

impl LookupState {
    pub(super) fn from_lookup(lookup: Lookup) -> Self {
        match lookup {
            Lookup::Hit(account) => Self::Done(Some(account)),
            Lookup::Miss => Self::Done(None),
            Lookup::Pending(op) => Self::Waiting(op),
        }
    }

    pub(super) fn answer(&mut self, op: OpId, result: Option<AccountId>) {
        if *self == Self::Waiting(op) {
            *self = Self::Done(result);
        }
    }

    pub(super) fn done(self) -> Option<Option<AccountId>> {
        match self {
            Self::Done(account) => Some(account),
            Self::Waiting(_) => None,
        }
    }
}

impl Control {
    pub(super) fn start_schedule(
        &mut self,
        now: Instant,
        id: SessionId,
        previous: Option<ResponseId>,
        connection_local: bool,
        prompt_cache_key: Option<bytes::Bytes>,
        exclude: Vec<AccountId>,
    ) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if entry.session_key.is_none() {
            entry.session_key = prompt_cache_key.and_then(|k| String::from_utf8(k.to_vec()).ok());
        }
        let group = entry.info.group.clone();
        let key = entry.session_key.clone();
        let lookups = self.start_binding_lookups(now, &group, previous.as_ref(), key.as_deref());
        let known_store = previous
            .as_ref()
            .and_then(|p| self.store.response_conn(now, Some(&group), p))
            .map(|rc| rc.store);
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.schedule = Some(PendingSchedule {
                lookups,
                connection_local,
                known_store,
                exclude,
            });
        }
        self.try_decide(now, id);
    }

    fn try_decide(&mut self, now: Instant, id: SessionId) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(pending) = &entry.schedule else {
            return;
        };
        let Some((bound, session_account)) = pending.lookups.done() else {
            return;
        };
        // Connection-local: recorded here as `store:false`, or unknown to the gateway. A binding
        // from another instance (no local record) counts as known: at worst upstream answers
        // with its exact `previous_response_not_found` and the client resends full context.
        let connection_local = match (pending.known_store, bound) {
            (Some(store), _) => !store,
            (None, Some(_)) => false,
            (None, None) => pending.connection_local,
        };
        let exclude = std::mem::take(&mut entry.schedule.as_mut().expect("checked").exclude);
        entry.schedule = None;
        let request = ScheduleRequest {
            bound_account: bound,
            connection_local,
            session_account,
            exclude: &exclude,
            transport: Transport::WsV2,
        };
        match self.scheduler.schedule(now, &request) {
            Decision::Schedule(choice) => {
                let entry = self.sessions.get(&id).expect("checked");
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
                let model_map = self
                    .accounts
                    .get(&choice.account)
                    .map(|(spec, _)| spec.model_map.clone())
                    .unwrap_or_default();
                self.out
                    .push_back(ControlOutput::Event(ControlEvent::Scheduled {
                        session: id,
                        account: choice.account,
                        layer: choice.layer.as_str(),
                    }));
                let admission = Admission {
                    account: choice.account,
                    max_concurrency: choice.max_concurrency,
                    compat,
                    model_map,
                };
                self.out.push_back(ControlOutput::Session(
                    id,
                    SessionInput::Admission(admission),
                ));
            }
            Decision::Reject(reject) => {
                self.out
                    .push_back(ControlOutput::Event(ControlEvent::ScheduleRejected {
                        session: id,
                        code: reject.code(),
                    }));
                let refusal = refusal_of(reject, now);
                self.out.push_back(ControlOutput::Session(
                    id,
                    SessionInput::AdmissionRefused(refusal),
                ));
            }
        }
    }

    /// Starts the binding lookups of a schedule in `group`: the previous response's account and
    /// the session key's (each `Done(None)` when there is nothing to look up)
    pub(super) fn start_binding_lookups(
        &mut self,
        now: Instant,
        group: &str,
        previous: Option<&ResponseId>,
        session_key: Option<&str>,
    ) -> BindingLookups {
        let bound = match previous {
            Some(prev) => {
                LookupState::from_lookup(self.store.lookup_response(now, Some(group), prev))
            }
            None => LookupState::Done(None),
        };
        let session = match session_key {
            Some(key) => LookupState::from_lookup(self.store.lookup_session(now, Some(group), key)),
            None => LookupState::Done(None),
        };
        BindingLookups { bound, session }
    }

    /// Records `response` → `account` in the store and where it ran, locally
    pub(super) fn bind_response(
        &mut self,
        now: Instant,
        group: Option<&str>,
        response: &ResponseId,
        account: AccountId,
        at: ResponseConn,
    ) {
        self.store.bind_response(now, group, response, account);
        self.store.record_response_conn(now, group, response, at);
    }

    pub(super) fn on_lookup_resolved(&mut self, now: Instant, op: OpId, result: Option<AccountId>) {
        let waiting: Vec<SessionId> = self
            .sessions
            .iter_mut()
            .filter_map(|(id, entry)| {
                let pending = entry.schedule.as_mut()?;
                pending.lookups.answer(op, result).then_some(*id)
            })
            .collect();
        for id in waiting {
            self.try_decide(now, id);
        }
        self.http_lookup_resolved(now, op, result);
    }
}

/// The answer a session sends its client for a scheduler rejection
pub(super) fn refusal_of(reject: Reject, now: Instant) -> Refusal {
    let retry = reject
        .retry_after_secs(now)
        .map_or(String::new(), |s| format!(" (retry after {s}s)"));
    match reject {
        Reject::PreviousResponseNotFound => Refusal::PreviousResponseNotFound,
        Reject::RateLimited { .. } => Refusal::Status {
            status: 429,
            error_type: "rate_limit_error",
            code: Some("rate_limit_exceeded"),
            message: format!("the account holding this conversation is rate limited{retry}"),
        },
        Reject::AccountDisabled { .. } => Refusal::Status {
            status: 503,
            error_type: "server_error",
            code: Some("account_unavailable"),
            message:
                "the account holding this conversation is unavailable; start a new conversation"
                    .to_owned(),
        },
        Reject::NoAccount { .. } | Reject::UpgradeRequired => Refusal::Status {
            status: 503,
            error_type: "server_error",
            code: Some("no_account_available"),
            message: format!("no upstream account is available{retry}"),
        },
    }
}
