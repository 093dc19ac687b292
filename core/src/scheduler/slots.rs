//! Concurrency slots and the creates waiting for one, per account, served round-robin by
//! client key.
//!
//! An account's concurrency is shared fairly between client keys and work-conserving: a key
//! alone takes every slot (nothing waits, nothing is held back), but once creates wait, each
//! freed slot goes to the next key in turn, oldest create of that key first. A key queueing
//! hundreds of creates therefore delays another key's create by at most one freed slot per
//! key waiting, never by its whole backlog.
//!
//! ```text
//! acquire_slot(w) ─▶ a slot free and nobody waiting ─▶ true (taken)
//!                 └▶ else w joins its key's queue (a key with none joins the rotation at the
//!                    back) ─▶ false
//! release_slot    ─▶ the head (oldest create of the key at the front of the rotation) takes
//!                    the slot if its limit allows ─▶ SlotGranted(w); its key moves to the back
//!                    of the rotation (or leaves it, empty)
//! cancel_slot_waits ─▶ the holder's creates leave their queues
//! ```

use std::collections::VecDeque;

use super::{Scheduler, SchedulerEvent};
use crate::{AccountId, SessionId, TurnId};

/// One create asking for a slot
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotWaiter {
    /// Its holder (a session or an HTTP request)
    pub holder: SessionId,
    /// Its create, in the holder's numbering
    pub turn: TurnId,
    /// The holder's max concurrency on the account ([`Choice::max_concurrency`](super::Choice))
    pub max_concurrency: u32,
    /// Its client key (the holder's `SessionInfo::tenant`)
    pub tenant: u64,
}

/// The waiters of one account, one FIFO per client key, keys in rotation
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotQueue {
    keys: VecDeque<(u64, VecDeque<SlotWaiter>)>,
    len: usize,
}

impl SlotQueue {
    /// Waiters in all
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a waiter behind its key's earlier ones
    fn push(&mut self, waiter: SlotWaiter) {
        self.len += 1;
        match self.keys.iter_mut().find(|(k, _)| *k == waiter.tenant) {
            Some((_, queue)) => queue.push_back(waiter),
            None => self
                .keys
                .push_back((waiter.tenant, VecDeque::from([waiter]))),
        }
    }

    /// The waiter the next freed slot goes to
    fn head(&self) -> Option<SlotWaiter> {
        self.keys.front().and_then(|(_, q)| q.front().copied())
    }

    /// Removes [`head`](Self::head) (it got its slot); its key goes to the back of the rotation
    fn pop_head(&mut self) -> Option<SlotWaiter> {
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

    /// Removes the waiters `reject` picks
    fn remove_where(&mut self, mut reject: impl FnMut(&SlotWaiter) -> bool) {
        for (_, queue) in &mut self.keys {
            queue.retain(|w| !reject(w));
        }
        self.keys.retain(|(_, q)| !q.is_empty());
        self.len = self.keys.iter().map(|(_, q)| q.len()).sum();
    }
}

impl Scheduler {
    /// A slot of `account` for `waiter`: taken now (true) if fewer than its `max_concurrency`
    /// responses are unfinished there (zero counts as one) and no create waits; else it queues
    /// (false) and its slot comes as [`SchedulerEvent::SlotGranted`] in its key's turn. An
    /// account that is not configured (removed by a reload) has no slots left to count: true.
    pub fn acquire_slot(&mut self, account: AccountId, waiter: SlotWaiter) -> bool {
        let Ok(i) = self.index(account) else {
            return true;
        };
        let state = &mut self.accounts[i];
        if state.waiters.len() == 0 && state.take_slot(waiter.max_concurrency) {
            return true;
        }
        state.waiters.push(waiter);
        self.grant_head(i);
        false
    }

    /// Gives back a slot (its response ended): the next waiter in turn takes it
    pub fn release_slot(&mut self, account: AccountId) {
        let Ok(i) = self.index(account) else { return };
        let state = &mut self.accounts[i];
        state.unfinished = state.unfinished.saturating_sub(1);
        self.grant_head(i);
    }

    /// Holder `holder` stops waiting: for create `turn` (its wait timed out or was cancelled),
    /// or for every create (`None`: it closed)
    pub fn cancel_slot_waits(&mut self, holder: SessionId, turn: Option<TurnId>) {
        for state in &mut self.accounts {
            let gone = |w: &SlotWaiter| w.holder == holder && turn.is_none_or(|t| t == w.turn);
            state.waiters.remove_where(gone);
        }
    }

    /// One slot of account `i` for the head of its rotation, if its limit allows
    fn grant_head(&mut self, i: usize) {
        let state = &mut self.accounts[i];
        if let Some(waiter) = state.waiters.head()
            && state.take_slot(waiter.max_concurrency)
        {
            state.waiters.pop_head();
            let account = state.spec.id;
            self.grants
                .push_back(SchedulerEvent::SlotGranted { account, waiter });
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
        assert_eq!(q.len(), 0);
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
        q.remove_where(|w| w.tenant == 2);
        assert_eq!(q.len(), 3);
        assert_eq!(serve_all(&mut q), [(1, 1), (3, 1), (1, 2)]);
    }
}
