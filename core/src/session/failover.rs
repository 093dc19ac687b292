//! Creates whose conn never came: a failed dial is retried under the scheduler's retry rules,
//! a slow one (past `pool.dial_wait`) moves the session to another account at once. Nothing
//! of these creates reached upstream, so the client sees neither.

use std::time::Instant;

use super::{Refusal, Session, SessionRequest};
use crate::turn::TurnEvent;

impl Session {
    /// A failed dial: the head create's retry state decides (true: it will be tried again)
    pub(super) fn retry_failed_dial(&mut self, now: Instant) -> bool {
        use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
        let (Some(admission), Some(head)) = (self.admitted_account(), self.pending.front()) else {
            return false;
        };
        let account = admission.account;
        let create = head.create().expect("a held create");
        let pinning = crate::turn::pinning(create.previous.is_some(), create.connection_local);
        let idle = self.unfinished() == 0;
        let head = self.pending.front_mut().expect("head exists");
        head.retry_state(now, account, pinning, &self.cfg.scheduler);
        let decision = head.attempt_failed(now, FailureKind::DialFailed, &mut self.jitter);
        let turn = head.id();
        match decision {
            RetryDecision::RetryAt { at, switch_account } => {
                let tried = head.retry().map(|r| r.tried_accounts().to_vec());
                let switch_account = switch_account && idle;
                // A slot it holds (a re-queued create) is kept on its account, given back when
                // the create leaves the account
                let release = head.hold_again(at, !switch_account);
                self.requests.extend(release.map(SessionRequest::Slot));
                if switch_account {
                    self.exclude = tried.unwrap_or_default();
                    self.drop_admission();
                }
                self.turn_event(TurnEvent::Retrying {
                    turn,
                    account,
                    failure: FailureKind::DialFailed,
                    switch_account,
                });
                true
            }
            RetryDecision::GiveUp(GiveUpReason::ChainLost) => {
                let head = self.pending.pop_front().expect("head exists");
                self.refuse(head, Refusal::PreviousResponseNotFound);
                true
            }
            RetryDecision::GiveUp(_) => false,
        }
    }

    /// A dial that outlasted `pool.dial_wait`: the session moves to another account now (no
    /// back-off: nothing failed); false if it may not move any more
    pub(super) fn move_from_slow_dial(&mut self, now: Instant) -> bool {
        let (Some(admission), Some(head)) = (self.admitted_account(), self.pending.front()) else {
            return false;
        };
        let account = admission.account;
        let chained = head.create().is_some_and(|c| c.previous.is_some());
        if chained || self.unfinished() > 0 || self.exclude.contains(&account) {
            return false;
        }
        let head = self.pending.front_mut().expect("head exists");
        let turn = head.id();
        // A slot it holds (a re-queued create) is the old account's: it goes back now
        let release = head.hold_again(now, false);
        self.requests.extend(release.map(SessionRequest::Slot));
        self.exclude.push(account);
        self.drop_admission();
        self.turn_event(TurnEvent::Retrying {
            turn,
            account,
            failure: crate::scheduler::FailureKind::DialWait,
            switch_account: true,
        });
        true
    }
}
