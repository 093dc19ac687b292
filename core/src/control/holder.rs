//! The holders the control plane serves — WebSocket sessions and HTTP requests — in one map,
//! and the one way its answers reach them.
//!
//! Both kinds go through the same paths (schedule, acquire, slot, bind, close); what differs
//! by kind is stated once, here: how an answer is delivered (`Control::answer`); the pool's
//! [`HolderKind`] says which transport the scheduler picks accounts for and how a holder waits
//! for a conn. The HTTP-only rules of a schedule (a `store:false` chain needs an idle conn
//! caching it) are in `http.rs`.

use std::time::Instant;

use super::{Control, ControlEvent, ControlOutput};
use crate::conn::{CompatKey, UpstreamConn};
use crate::http::HttpInput;
use crate::pool::{HolderKind, Lease};
use crate::scheduler::SlotWaiter;
use crate::session::SessionInput;
use crate::store::{Binding, Lookup, OpId, ResponseConn};
pub(super) use crate::turn::Answer;
use crate::turn::{ResponseBind, SessionInfo, SlotRequest};
use crate::{AccountId, ResponseId, SessionId, TurnId};

/// One session or HTTP request the control plane knows
#[derive(Clone, Debug)]
pub(super) struct Holder {
    pub(super) kind: HolderKind,
    pub(super) info: SessionInfo,
    /// Its schedule waiting for store lookups
    pub(super) schedule: Option<PendingSchedule>,
    /// The account whose pool it is waiting on
    pub(super) acquiring: Option<AccountId>,
    /// Its session key once known (header, else the first `prompt_cache_key`)
    pub(super) session_key: Option<String>,
    /// Continuation checks of its later creates waiting for a store get (sessions only: an
    /// HTTP request's one create is judged by its schedule)
    pub(super) checks: Vec<PendingCheck>,
    /// The accounts of the concurrency slots granted to it and not given back, one entry per
    /// slot: a grant still on its way when the holder ended is never read, and its close
    /// frees what is left here
    pub(super) slots: Vec<AccountId>,
}

impl Holder {
    pub(super) fn new(kind: HolderKind, info: SessionInfo) -> Self {
        Self {
            kind,
            session_key: info.session_key.clone(),
            info,
            schedule: None,
            acquiring: None,
            checks: Vec::new(),
            slots: Vec::new(),
        }
    }
}

/// A schedule waiting for store lookups
#[derive(Clone, Debug)]
pub(super) struct PendingSchedule {
    /// The create's `previous_response_id`
    pub(super) previous: Option<ResponseId>,
    pub(super) lookups: BindingLookups,
    /// The holder's own view (it only knows its own responses)
    pub(super) connection_local: bool,
    /// This gateway's record of the previous response's `store` flag
    pub(super) known_store: Option<bool>,
    /// Accounts the holder failed over away from
    pub(super) exclude: Vec<AccountId>,
}

/// The two bindings a schedule waits for: the previous response's record and the session key's
/// binding (each answered locally at once, or by a store get)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BindingLookups {
    pub(super) bound: LookupState,
    pub(super) session: LookupState,
}

impl BindingLookups {
    /// Records store op `op`'s answer; true if it answered one of the two
    pub(super) fn answer(&mut self, op: OpId, result: Option<Binding>) -> bool {
        let before = *self;
        self.bound.answer(op, result);
        self.session.answer(op, result);
        before != *self
    }

    /// `(previous response's record, session account)` once both are known
    pub(super) fn done(&self) -> Option<(Option<Binding>, Option<AccountId>)> {
        let session = self.session.done()?.map(|b| b.account);
        Some((self.bound.done()?, session))
    }
}

/// A continuation check of a later create, waiting for its record
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PendingCheck {
    pub(super) turn: TurnId,
    pub(super) op: OpId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LookupState {
    Done(Option<Binding>),
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

    pub(super) fn answer(&mut self, op: OpId, result: Option<Binding>) {
        if *self == Self::Waiting(op) {
            *self = Self::Done(result);
        }
    }

    pub(super) fn done(self) -> Option<Option<Binding>> {
        match self {
            Self::Done(account) => Some(account),
            Self::Waiting(_) => None,
        }
    }
}

/// The one path of every holder kind
impl Control {
    pub(super) fn open_holder(&mut self, id: SessionId, kind: HolderKind, info: SessionInfo) {
        self.holders.insert(id, Holder::new(kind, info));
    }

    /// Forgets holder `id`: its pool wait and slot waits are cancelled, and the slots granted
    /// to it that it did not give back (grants it never read) are freed
    pub(super) fn close_holder(&mut self, now: Instant, id: SessionId) {
        let holder = self.holders.remove(&id);
        if let Some(account) = holder.as_ref().and_then(|h| h.acquiring) {
            self.pool.cancel(now, account, id);
        }
        self.scheduler.cancel_slot_waits(id, None);
        self.blocked.retain(|(s, _)| *s != id);
        for account in holder.map(|h| h.slots).unwrap_or_default() {
            self.scheduler.release_slot(account);
        }
    }

    /// A lease that reached its holder after the holder finished: the driver could not hand it
    /// over (the holder's task had ended, or ended with the lease unread in its inbox). The conn
    /// goes back to the pool untouched, whichever kind the holder was: an ended holder sends no
    /// release, and the pool counts a conn leased until a release comes.
    pub fn handle_unread_lease(&mut self, now: Instant, lease: Lease) {
        let release = UpstreamConn::new(lease.record, now, &self.cfg.upstream).into_release();
        self.pool.handle_release(now, release, None);
        self.pump(now);
    }

    /// Delivers `answer` to holder `id` in its kind's terms; a holder that is gone gets nothing
    pub(super) fn answer(&mut self, id: SessionId, answer: Answer) {
        if let Some(holder) = self.holders.get(&id) {
            self.out.push_back(match holder.kind {
                HolderKind::Session => ControlOutput::Session(id, SessionInput::Answer(answer)),
                HolderKind::Http => ControlOutput::Http(id, HttpInput::Answer(answer)),
            });
        }
    }

    /// Takes a slot request of holder `id`: the scheduler grants slots and queues the creates
    /// waiting for one; here its grants reach their holder, counted the holder's
    pub(super) fn handle_slot_request(
        &mut self,
        now: Instant,
        id: SessionId,
        request: SlotRequest,
    ) {
        match request {
            SlotRequest::Acquire {
                turn,
                account,
                max_concurrency,
            } => {
                // A holder that closed already (its request overtaken by its close) takes nothing.
                let Some(tenant) = self.holders.get(&id).map(|h| h.info.tenant) else {
                    return;
                };
                let waiter = SlotWaiter {
                    holder: id,
                    turn,
                    max_concurrency,
                    tenant,
                };
                if self.scheduler.acquire_slot(account, waiter) {
                    self.grant_slot(account, waiter);
                    return;
                }
                self.take_back_blocked_slots(now, account);
                self.event(ControlEvent::SlotWaiting {
                    session: id,
                    turn,
                    account,
                    max_concurrency,
                });
            }
            SlotRequest::CancelWait { turn, .. } => {
                self.scheduler.cancel_slot_waits(id, Some(turn))
            }
            SlotRequest::Release { account } => {
                if let Some(holder) = self.holders.get_mut(&id)
                    && let Some(i) = holder.slots.iter().position(|a| *a == account)
                {
                    holder.slots.swap_remove(i);
                }
                self.scheduler.release_slot(account);
            }
        }
    }

    /// Answers `waiter` with the slot of `account` the scheduler took for it, and counts it its
    /// holder's until given back or the holder closes (a holder that is gone gives it back)
    pub(super) fn grant_slot(&mut self, account: AccountId, waiter: SlotWaiter) {
        let Some(holder) = self.holders.get_mut(&waiter.holder) else {
            self.scheduler.release_slot(account);
            return;
        };
        holder.slots.push(account);
        self.answer(waiter.holder, Answer::SlotGranted(waiter.turn));
    }

    /// While creates wait for `account`'s slots, the longest-blocked client holding some of
    /// them gives them up ([`SessionInput::YieldSlots`]); one per call, as each holds at least one
    pub(super) fn take_back_blocked_slots(&mut self, now: Instant, account: AccountId) {
        if self
            .scheduler
            .account(account, now)
            .is_none_or(|view| view.waiters == 0)
        {
            return;
        }
        if let Some(pos) = self.blocked.iter().position(|(_, a)| *a == account) {
            let (session, _) = self.blocked.remove(pos);
            self.out
                .push_back(ControlOutput::Session(session, SessionInput::YieldSlots));
        }
    }

    /// Leases holder `id` a conn of `account` (an HTTP request prefers the idle conn caching
    /// `preferred`); with `may_move_from`, a slow dial is answered `DialWait` when another
    /// account is usable
    pub(super) fn acquire(
        &mut self,
        now: Instant,
        id: SessionId,
        account: AccountId,
        compat: &CompatKey,
        preferred: Option<&ResponseId>,
        may_move_from: Option<Vec<AccountId>>,
    ) {
        let Some(holder) = self.holders.get_mut(&id) else {
            return;
        };
        holder.acquiring = Some(account);
        let kind = holder.kind;
        let dial_wait = may_move_from
            .and_then(|tried| self.dial_wait_for(now, account, &tried, kind.transport()));
        self.pool
            .acquire(now, id, kind, compat, preferred, dial_wait);
    }

    /// Binds a response of holder `id` in its group: response → account in the store, and
    /// where it ran, locally
    pub(super) fn bind(&mut self, now: Instant, id: SessionId, bind: ResponseBind) {
        let group = self.holders.get(&id).map(|h| h.info.group.clone());
        let ResponseBind {
            response,
            account,
            conn,
            lane,
            store,
        } = bind;
        self.store
            .bind_response(now, group.as_deref(), &response, account, store);
        let at = ResponseConn { conn, lane, store };
        self.store.record_response_conn(now, &response, at);
    }
}
