//! HTTP requests through the control plane: their requests go down the holders' one path
//! (schedule, acquire, slot, bind, close — see `holder.rs`) with the rules only an HTTP request
//! has stated here: a `store:false` chain continues only on the idle conn caching it (checked
//! before the schedule and for the chosen account), a conn from the pool with that conn
//! preferred, and chain holds on release.
//!
//! An HTTP request is a holder like a session (its [`SessionId`] comes from the same space);
//! its answers leave as [`ControlOutput::Http`].
//!
//! ```text
//! Open ─▶ Schedule ─▶ store:false chain with no idle conn caching it? ─▶ Refused(previous_response_not_found)
//!                  ─▶ store lookups ─▶ scheduler (Transport::Http) ─▶ Admission { transport, preferred }
//! Acquire ─▶ pool.acquire(Http, preferred) ─▶ Lease | LeaseRefused
//! AcquireSlot ─▶ SlotGranted          Release { hold } ─▶ pool (chain hold after store:false)
//! Bind ─▶ store                       Close ─▶ waits cancelled, request forgotten
//! ```

use std::time::Instant;

use super::Control;
use crate::http::{HttpEvent, HttpTurnRequest};
use crate::pool::HolderKind;
use crate::resolver::Transport;
use crate::scheduler::FailureKind;
use crate::store::ResponseConn;
use crate::turn::TurnEvent;
use crate::{AccountId, ResponseId, SessionId};

impl Control {
    /// Takes one request of HTTP request `id`
    pub fn handle_http_request(&mut self, now: Instant, id: SessionId, cmd: HttpTurnRequest) {
        match cmd {
            HttpTurnRequest::Open(info) => self.open_holder(id, HolderKind::Http, info),
            // An HTTP request created nothing: it has no view of its own on the chain.
            HttpTurnRequest::Schedule {
                previous,
                prompt_cache_key,
                exclude,
            } => self.start_schedule(now, id, previous, false, prompt_cache_key, exclude),
            HttpTurnRequest::Acquire {
                account,
                compat,
                preferred,
                may_move_from,
            } => self.acquire(now, id, account, &compat, preferred.as_ref(), may_move_from),
            HttpTurnRequest::Slot(request) => self.handle_slot_request(now, id, request),
            HttpTurnRequest::Release { release, hold } => {
                self.pool.handle_release(now, release, hold)
            }
            HttpTurnRequest::Bind(bind) => self.bind(now, id, bind),
            HttpTurnRequest::Close => self.close_holder(now, id),
            HttpTurnRequest::AbandonWrites { .. } => {} // the shell's
        }
        self.pump(now);
    }

    /// Takes an HTTP turn's event: failed attempts and ended responses feed account health
    pub fn handle_http_event(&mut self, now: Instant, event: &HttpEvent) {
        match event {
            HttpEvent::Turn(TurnEvent::ResponseEnded(report)) => self.response_ended(now, report),
            HttpEvent::Turn(TurnEvent::Retrying {
                account, failure, ..
            }) => self.feed_failure(now, *account, *failure),
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
        self.holders
            .values()
            .filter(|h| h.kind == HolderKind::Http)
            .count()
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
        self.account_failed(now, account, failure);
    }

    /// The idle conn whose lane cache holds `response`, on `account` or on any
    pub(super) fn idle_conn_caching(
        &self,
        account: Option<AccountId>,
        response: &ResponseId,
    ) -> bool {
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

    /// Whether an HTTP request can continue `previous`, recorded here as `at`: a `store:false`
    /// chain lives only in the cache of the conn it ran on, and if no idle conn caches it
    /// (closed, evicted, or leased — to a WebSocket session or another turn, whose
    /// default-lane responses replace the cache entry) nothing upstream can continue it
    pub(super) fn http_chain_continues(&self, previous: &ResponseId, at: &ResponseConn) -> bool {
        at.store || self.idle_conn_caching(self.account_of(at.conn), previous)
    }
}
