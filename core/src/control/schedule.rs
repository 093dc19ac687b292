//! Scheduling a holder's create (a session's or an HTTP request's, one path): store lookups
//! for its bindings, the group rule for its previous response, then the scheduler's decision;
//! and the group rule alone for a later create of a session that continues a response the
//! socket did not create.

use std::time::Instant;

use super::holder::{Answer, BindingLookups, LookupState, PendingCheck, PendingSchedule};
use super::{Control, ControlEvent, ControlOutput};
use crate::conn::CompatKey;
use crate::errors::{ErrorCode, ErrorType, GatewayError, Refusal};
use crate::http::{HttpAdmission, HttpInput};
use crate::pool::HolderKind;
use crate::scheduler::{ConnUse, Decision, Reject, ScheduleRequest};
use crate::session::Admission;
use crate::session::SessionInput;
use crate::store::{Binding, Continuation, Lookup, OpId, judge_continuation};
use crate::{AccountId, ResponseId, SessionId, TurnId};

impl Control {
    /// Schedules holder `id`'s create: store lookups for its bindings, the group rule for its
    /// previous response, then the scheduler; answered with an admission or a refusal
    ///
    /// `connection_local` is the holder's own view of the chain (a session knows the
    /// responses it created `store:false`; an HTTP request created nothing: `false`).
    pub(super) fn start_schedule(
        &mut self,
        now: Instant,
        id: SessionId,
        previous: Option<ResponseId>,
        connection_local: bool,
        prompt_cache_key: Option<bytes::Bytes>,
        exclude: Vec<AccountId>,
    ) {
        let Some(holder) = self.holders.get_mut(&id) else {
            return;
        };
        if holder.session_key.is_none() {
            holder.session_key = prompt_cache_key.and_then(|k| String::from_utf8(k.to_vec()).ok());
        }
        let kind = holder.kind;
        let group = holder.info.group.clone();
        let key = holder.session_key.clone();
        let known = previous
            .as_ref()
            .and_then(|p| self.store.response_conn(now, p));
        if kind == HolderKind::Http
            && let (Some(prev), Some(rc)) = (&previous, &known)
            && !self.http_chain_continues(prev, rc)
        {
            self.answer(id, Answer::Refused(Refusal::PreviousResponseNotFound));
            return;
        }
        let lookups = self.start_binding_lookups(now, &group, previous.as_ref(), key.as_deref());
        if let Some(holder) = self.holders.get_mut(&id) {
            holder.schedule = Some(PendingSchedule {
                previous,
                lookups,
                connection_local,
                known_store: known.map(|rc| rc.store),
                exclude,
            });
        }
        self.try_decide(now, id);
    }

    fn try_decide(&mut self, now: Instant, id: SessionId) {
        let Some(holder) = self.holders.get_mut(&id) else {
            return;
        };
        let Some(pending) = &holder.schedule else {
            return;
        };
        let Some((record, session_account)) = pending.lookups.done() else {
            return;
        };
        let pending = holder.schedule.take().expect("checked");
        let (kind, group) = (holder.kind, holder.info.group.clone());
        let bound = match &pending.previous {
            None => None,
            Some(_) => match self.judge(id, &group, record) {
                Some(continuation) => continuation,
                None => {
                    self.answer(id, Answer::Refused(Refusal::PreviousResponseNotFound));
                    return;
                }
            },
        };
        // Connection-local: recorded here as `store:false`, or unknown to the gateway and so in
        // the holder's own view. A binding from another instance (no local record) counts as
        // known: at worst upstream answers with its exact `previous_response_not_found` and the
        // client resends full context.
        let connection_local = match (pending.known_store, bound) {
            (Some(store), _) => !store,
            (None, Some(_)) => false,
            (None, None) => pending.connection_local,
        };
        // A session holds its conn between turns (an HTTP turn only for the turn, and may
        // queue behind one): only a session is steered away from pools with no free conn, and
        // spread over equal accounts by the conns their pools have in use.
        let conn_use = match kind {
            HolderKind::Session => self.conn_use(),
            HolderKind::Http => Vec::new(),
        };
        let request = ScheduleRequest {
            bound_account: bound,
            connection_local,
            session_account,
            exclude: &pending.exclude,
            conn_use: &conn_use,
            transport: kind.transport(),
        };
        let choice = match self.scheduler.schedule(now, &request) {
            Decision::Schedule(choice) => choice,
            Decision::Reject(reject) => {
                self.event(ControlEvent::ScheduleRejected {
                    session: id,
                    code: reject.code(),
                });
                self.answer(id, Answer::Refused(refusal_of(reject, now)));
                return;
            }
        };
        // An HTTP request continues a `store:false` chain only on the idle conn caching it
        // (a session continues it on the conn it holds, or is answered by its own rules).
        let preferred = match kind {
            HolderKind::Session => None,
            HolderKind::Http => pending
                .previous
                .filter(|p| self.idle_conn_caching(Some(choice.account), p)),
        };
        if kind == HolderKind::Http && connection_local && preferred.is_none() {
            self.answer(id, Answer::Refused(Refusal::PreviousResponseNotFound));
            return;
        }
        let holder = self.holders.get(&id).expect("checked");
        let info = &holder.info;
        let compat = CompatKey::new(
            choice.account,
            info.openai_beta.iter().map(String::as_str),
            info.codex_beta_features.iter().map(String::as_str),
        );
        if let Some(key) = holder.session_key.clone() {
            let group = info.group.clone();
            self.store
                .bind_session(now, Some(&group), &key, choice.account);
        }
        let (model_map, transport) = self
            .accounts
            .get(&choice.account)
            .map(|(spec, transport)| (spec.model_map.clone(), *transport))
            .unwrap_or((Default::default(), kind.transport()));
        self.event(ControlEvent::Scheduled {
            session: id,
            account: choice.account,
            layer: choice.layer.as_str(),
        });
        let common = Admission {
            account: choice.account,
            max_concurrency: choice.max_concurrency,
            compat,
            model_map,
        };
        let admission = match kind {
            HolderKind::Session => ControlOutput::Session(id, SessionInput::Admission(common)),
            HolderKind::Http => ControlOutput::Http(
                id,
                HttpInput::Admission(HttpAdmission {
                    common,
                    transport,
                    connection_local,
                    preferred,
                }),
            ),
        };
        self.out.push_back(admission);
    }

    /// Every pool as a new session sees it, for the scheduler to rank
    fn conn_use(&self) -> Vec<ConnUse> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.pool
            .pools()
            .map(|(account, pool)| {
                let (in_use, cap) = pool.conns_in_use();
                ConnUse {
                    account,
                    in_use: count(in_use),
                    cap: count(cap),
                    full: !pool.has_room_for_session(),
                }
            })
            .collect()
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
            Some(prev) => LookupState::from_lookup(self.store.lookup_response(now, prev)),
            None => LookupState::Done(None),
        };
        let session = match session_key {
            Some(key) => LookupState::from_lookup(self.store.lookup_session(now, Some(group), key)),
            None => LookupState::Done(None),
        };
        BindingLookups { bound, session }
    }

    /// The group rule for a continuation by `holder` of `group`: `Some(bound account)` to go
    /// on, `None` when refused (the refusal is logged here; the caller answers its holder)
    pub(super) fn judge(
        &mut self,
        holder: SessionId,
        group: &str,
        record: Option<Binding>,
    ) -> Option<Option<AccountId>> {
        match judge_continuation(record, group, self.cfg.store.unknown_previous_response) {
            Continuation::Bound(account) => Some(Some(account)),
            Continuation::Unknown => Some(None),
            Continuation::Refused(reason) => {
                self.event(ControlEvent::ContinuationRefused {
                    session: holder,
                    group: group.to_owned(),
                    reason: reason.as_str(),
                });
                None
            }
        }
    }

    /// A later create of session `id` continues `previous`, which the session did not create:
    /// judge it by its record (answered with [`SessionInput::ContinuationJudged`])
    pub(super) fn check_continuation(
        &mut self,
        now: Instant,
        id: SessionId,
        turn: TurnId,
        previous: &ResponseId,
    ) {
        if !self.holders.contains_key(&id) {
            return;
        }
        match self.store.lookup_response(now, previous) {
            Lookup::Hit(record) => self.answer_check(id, turn, Some(record)),
            Lookup::Miss => self.answer_check(id, turn, None),
            Lookup::Pending(op) => {
                if let Some(holder) = self.holders.get_mut(&id) {
                    holder.checks.push(PendingCheck { turn, op });
                }
            }
        }
    }

    fn answer_check(&mut self, id: SessionId, turn: TurnId, record: Option<Binding>) {
        let Some(group) = self.holders.get(&id).map(|h| h.info.group.clone()) else {
            return;
        };
        let allowed = self.judge(id, &group, record).is_some();
        self.out.push_back(ControlOutput::Session(
            id,
            SessionInput::ContinuationJudged { turn, allowed },
        ));
    }

    pub(super) fn on_lookup_resolved(&mut self, now: Instant, op: OpId, result: Option<Binding>) {
        let mut checks = Vec::new();
        let waiting: Vec<SessionId> = self
            .holders
            .iter_mut()
            .filter_map(|(id, holder)| {
                holder.checks.retain(|check| {
                    let answered = check.op == op;
                    if answered {
                        checks.push((*id, check.turn));
                    }
                    !answered
                });
                let pending = holder.schedule.as_mut()?;
                pending.lookups.answer(op, result).then_some(*id)
            })
            .collect();
        for (id, turn) in checks {
            self.answer_check(id, turn, result);
        }
        for id in waiting {
            self.try_decide(now, id);
        }
    }
}

/// The answer a holder sends its client for a scheduler rejection
pub(super) fn refusal_of(reject: Reject, now: Instant) -> Refusal {
    let seconds = reject.retry_after_secs(now);
    let retry = seconds.map_or(String::new(), |s| format!(" (retry after {s}s)"));
    let error = match reject {
        Reject::PreviousResponseNotFound => return Refusal::PreviousResponseNotFound,
        Reject::RateLimited { .. } => GatewayError::rate_limited(
            format!("the account holding this conversation is rate limited{retry}"),
            seconds,
        ),
        Reject::AllRateLimited { .. } => GatewayError::rate_limited(
            format!("every upstream account is rate limited{retry}"),
            seconds,
        ),
        Reject::AccountDisabled { .. } => GatewayError::new(
            503,
            ErrorType::Server,
            Some(ErrorCode::AccountUnavailable),
            "the account holding this conversation is unavailable; start a new conversation",
        ),
        Reject::NoAccount { .. } | Reject::UpgradeRequired => GatewayError::new(
            503,
            ErrorType::Server,
            Some(ErrorCode::NoAccountAvailable),
            format!("no upstream account is available{retry}"),
        )
        .with_retry_after(seconds),
    };
    Refusal::Gateway(error)
}
