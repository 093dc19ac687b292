//! Creates whose conn never came: a failed dial is retried under the scheduler's retry rules,
//! a slow one (past `pool.dial_wait`) moves the session to another account at once. Nothing
//! of these creates reached upstream, so the client sees neither.

use std::time::Instant;

use super::{Refusal, Session, SessionEvent};
use crate::scheduler::RetryState;

impl Session {
    /// A failed dial: the head create's retry state decides (true: it will be tried again)
    pub(super) fn retry_failed_dial(&mut self, now: Instant) -> bool {
        use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
        let (Some(admission), Some(head)) = (&self.admission, self.pending.front_mut()) else {
            return false;
        };
        let account = admission.account;
        let pinning = crate::turn::pinning(head.previous.is_some(), head.connection_local);
        let retry = head
            .retry
            .get_or_insert_with(|| RetryState::new(now, account, pinning, &self.cfg.scheduler));
        let decision = retry.on_failure(now, FailureKind::DialFailed, false, &mut self.jitter);
        let turn = head.turn;
        match decision {
            RetryDecision::RetryAt { at, switch_account } => {
                let tried = retry.tried_accounts().to_vec();
                head.not_before = Some(at);
                let switch_account = switch_account && self.unfinished() == 0;
                if switch_account {
                    self.exclude = tried;
                    self.admission = None;
                }
                self.events.push_back(SessionEvent::Retrying {
                    turn,
                    account,
                    failure: FailureKind::DialFailed,
                    switch_account,
                });
                true
            }
            RetryDecision::GiveUp(GiveUpReason::ChainLost) => {
                let head = self.pending.pop_front().expect("head exists");
                self.refuse(&head, Refusal::PreviousResponseNotFound);
                true
            }
            RetryDecision::GiveUp(_) => false,
        }
    }

    /// A dial that outlasted `pool.dial_wait`: the session moves to another account now (no
    /// back-off: nothing failed); false if it may not move any more
    pub(super) fn move_from_slow_dial(&mut self) -> bool {
        let (Some(admission), Some(head)) = (&self.admission, self.pending.front()) else {
            return false;
        };
        let account = admission.account;
        if head.previous.is_some() || self.unfinished() > 0 || self.exclude.contains(&account) {
            return false;
        }
        self.exclude.push(account);
        self.admission = None;
        self.events.push_back(SessionEvent::Retrying {
            turn: head.turn,
            account,
            failure: crate::scheduler::FailureKind::DialFailed,
            switch_account: true,
        });
        true
    }
}
