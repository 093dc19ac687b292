//! Creates waiting for a concurrency slot on one account, served round-robin by client key.
//!
//! An account's concurrency is shared fairly between client keys and work-conserving: a key
//! alone takes every slot (nothing waits, nothing is held back), but once creates wait, each
//! freed slot goes to the next key in turn, oldest create of that key first. A key queueing
//! hundreds of creates therefore delays another key's create by at most one freed slot per
//! key waiting, never by its whole backlog.
//!
//! ```text
//!   push(w): w joins its key's queue; a key with no queue joins the rotation at the back
//!   head():  oldest create of the key at the front of the rotation
//!   pop_head(): removes it; its key moves to the back of the rotation (or leaves it, empty)
//! ```

use std::collections::VecDeque;

use super::holder::Answer;
use super::{Control, ControlEvent, ControlOutput};
use crate::session::SessionInput;
use crate::turn::SlotRequest;
use crate::{AccountId, SessionId, TurnId};

/// One create waiting for a slot
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotWaiter {
    /// Its holder (a session or an HTTP request)
    pub(super) holder: SessionId,
    /// Its create, in the holder's numbering
    pub(super) turn: TurnId,
    /// The session's max concurrency on the account
    pub(super) max_concurrency: u32,
    /// Its client key ([`SessionInfo::tenant`](super::SessionInfo::tenant))
    pub(super) tenant: u64,
}

/// The waiters of one account, one FIFO per client key, keys in rotation
#[derive(Clone, Debug, Default)]
pub(super) struct SlotQueue {
    keys: VecDeque<(u64, VecDeque<SlotWaiter>)>,
    len: usize,
}

impl SlotQueue {
    /// Waiters in all
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nobody waits
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a waiter behind its key's earlier ones
    pub(super) fn push(&mut self, waiter: SlotWaiter) {
        self.len += 1;
        match self.keys.iter_mut().find(|(k, _)| *k == waiter.tenant) {
            Some((_, queue)) => queue.push_back(waiter),
            None => self
                .keys
                .push_back((waiter.tenant, VecDeque::from([waiter]))),
        }
    }

    /// The waiter the next freed slot goes to
    pub(super) fn head(&self) -> Option<SlotWaiter> {
        self.keys.front().and_then(|(_, q)| q.front().copied())
    }

    /// Removes [`head`](Self::head) (it got its slot); its key goes to the back of the rotation
    pub(super) fn pop_head(&mut self) -> Option<SlotWaiter> {
        let (tenant, mut queue) = self.keys.pop_front()?;
        let waiter = queue.pop_front();
        if !queue.is_empty() {
            self.keys.push_back((tenant, queue));
        }
        if waiter.is_some() {
            self.len -= 1;
        }
        waiter
    }

    /// Removes the waiters `keep` rejects; returns how many
    pub(super) fn remove_where(&mut self, mut reject: impl FnMut(&SlotWaiter) -> bool) -> usize {
        let before = self.len;
        for (_, queue) in &mut self.keys {
            queue.retain(|w| !reject(w));
        }
        self.keys.retain(|(_, q)| !q.is_empty());
        self.len = self.keys.iter().map(|(_, q)| q.len()).sum();
        before - self.len
    }
}

/// The slot path of every holder kind: one queue per account
impl Control {
    /// Takes a slot request of holder `id`, a session or an HTTP request alike
    pub(super) fn handle_slot_request(&mut self, id: SessionId, request: SlotRequest) {
        match request {
            SlotRequest::Acquire {
                turn,
                account,
                max_concurrency,
            } => self.acquire_slot(id, turn, account, max_concurrency),
            SlotRequest::CancelWait { turn, account } => self.cancel_slot_wait(id, turn, account),
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

    /// A concurrency slot of `account` for create `turn` of holder `id`: now, or in its client
    /// key's turn (see [`slots`])
    pub(super) fn acquire_slot(
        &mut self,
        id: SessionId,
        turn: TurnId,
        account: AccountId,
        max_concurrency: u32,
    ) {
        // A holder that closed already (its request overtaken by its close) takes nothing.
        let Some(tenant) = self.holders.get(&id).map(|h| h.info.tenant) else {
            return;
        };
        // A removed account (reload) has no slots left to count, but a holder that still holds
        // one of its conns runs its create there until it releases it.
        if !self.accounts.contains_key(&account) {
            self.answer(id, Answer::SlotGranted(turn));
            return;
        }
        let waiter = SlotWaiter {
            holder: id,
            turn,
            max_concurrency,
            tenant,
        };
        if self.acquire_or_wait(account, waiter) {
            self.grant_slot(id, turn, account);
        } else {
            self.event(ControlEvent::SlotWaiting {
                session: id,
                turn,
                account,
                max_concurrency,
            });
        }
    }

    /// Answers holder `id`'s create `turn` with the slot of `account` just taken for it, and
    /// counts it the holder's until given back or the holder closes (a holder that is gone
    /// gives it back at once)
    fn grant_slot(&mut self, id: SessionId, turn: TurnId, account: AccountId) {
        let Some(holder) = self.holders.get_mut(&id) else {
            self.scheduler.release_slot(account);
            return;
        };
        holder.slots.push(account);
        self.answer(id, Answer::SlotGranted(turn));
    }

    pub(super) fn cancel_slot_wait(&mut self, id: SessionId, turn: TurnId, account: AccountId) {
        if let Some(waiters) = self.slot_waiters.get_mut(&account)
            && waiters.remove_where(|w| w.holder == id && w.turn == turn) > 0
        {
            self.scheduler.waiter_removed(account);
        }
    }

    /// Takes a slot for `waiter` if one is free and no create waits for it (true); else queues
    /// it, and a free slot goes to the head of the rotation instead (no barging past waiters)
    pub(super) fn acquire_or_wait(&mut self, account: AccountId, waiter: SlotWaiter) -> bool {
        let waiters = self.slot_waiters.entry(account).or_default();
        if waiters.is_empty()
            && self
                .scheduler
                .try_acquire_slot(account, waiter.max_concurrency)
        {
            return true;
        }
        self.scheduler.waiter_added(account);
        waiters.push(waiter);
        self.wake_slot_waiter(account);
        self.take_back_blocked_slots(account);
        false
    }

    /// While creates wait for the account's slots, the longest-blocked client holding some of
    /// them gives them up ([`SessionInput::YieldSlots`]); one per call, as each holds at least one
    pub(super) fn take_back_blocked_slots(&mut self, account: AccountId) {
        if self
            .slot_waiters
            .get(&account)
            .is_none_or(SlotQueue::is_empty)
        {
            return;
        }
        if let Some(pos) = self.blocked.iter().position(|(_, a)| *a == account) {
            let (session, _) = self.blocked.remove(pos);
            self.out
                .push_back(ControlOutput::Session(session, SessionInput::YieldSlots));
        }
    }

    /// One freed slot wakes one waiter: the next client key in the rotation, its oldest create
    /// (see [`slots`]); if no slot is free after all, the waiter stays at the head
    pub(super) fn wake_slot_waiter(&mut self, account: AccountId) {
        let Some(waiters) = self.slot_waiters.get_mut(&account) else {
            return;
        };
        let Some(w) = waiters.head() else {
            return;
        };
        if self.scheduler.try_acquire_slot(account, w.max_concurrency) {
            waiters.pop_head();
            self.scheduler.waiter_removed(account);
            self.grant_slot(w.holder, w.turn, account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(tenant: u64, turn: u64) -> SlotWaiter {
        SlotWaiter {
            holder: SessionId(tenant * 100 + turn),
            turn: TurnId(turn),
            max_concurrency: 2,
            tenant,
        }
    }

    fn serve_all(q: &mut SlotQueue) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| q.pop_head().map(|w| (w.tenant, w.turn.0))).collect()
    }

    #[test]
    fn a_key_with_a_long_backlog_takes_turns_with_a_key_that_arrives_later() {
        let mut q = SlotQueue::default();
        for turn in 1..=5 {
            q.push(waiter(1, turn));
        }
        q.push(waiter(2, 1));
        q.push(waiter(2, 2));
        assert_eq!(q.len(), 7);
        assert_eq!(q.head().map(|w| w.tenant), Some(1));
        assert_eq!(
            serve_all(&mut q),
            [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (1, 4), (1, 5)],
            "round-robin by key, FIFO within a key"
        );
        assert!(q.is_empty());
    }

    #[test]
    fn one_key_alone_is_served_in_order() {
        let mut q = SlotQueue::default();
        for turn in 1..=3 {
            q.push(waiter(7, turn));
        }
        assert_eq!(serve_all(&mut q), [(7, 1), (7, 2), (7, 3)]);
    }

    #[test]
    fn removing_waiters_keeps_the_rotation_and_the_count() {
        let mut q = SlotQueue::default();
        q.push(waiter(1, 1));
        q.push(waiter(2, 1));
        q.push(waiter(1, 2));
        q.push(waiter(3, 1));
        assert_eq!(q.remove_where(|w| w.tenant == 2), 1);
        assert_eq!(q.len(), 3);
        assert_eq!(serve_all(&mut q), [(1, 1), (3, 1), (1, 2)]);
    }
}
