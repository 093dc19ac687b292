//! The way to upstream: account → conn → slot → create (or a forwarded POST), the back-off
//! between attempts, and the end of the turn.

use std::time::Instant;

use super::{
    ErrorAnswer, HttpAdmission, HttpTransmit, HttpTurn, HttpTurnRequest, Stage, TurnTimer, request,
};
use crate::TurnId;
use crate::conn::UpstreamConn;
use crate::errors::GatewayError;
use crate::resolver::Transport;
use crate::turn::{Models, Slot, SlotRequest, TurnEvent, TurnFacts, pinning};

impl HttpTurn {
    /// The one place the stage moves; debug-asserts that the edge is drawn in the diagram
    pub(super) fn move_to(&mut self, next: Stage) {
        use Stage::*;
        debug_assert!(
            matches!(
                (self.stage, next),
                (Scheduling, Acquiring | Attempt | Done)
                    | (Acquiring, Attempt | Backoff | Done)
                    | (Attempt, Forwarding { .. } | Backoff | Done)
                    | (Forwarding { .. }, Backoff | Done)
                    | (Backoff, Acquiring | Scheduling | Done)
            ),
            "HTTP turn: {:?} -> {next:?} is not an edge",
            self.stage
        );
        self.stage = next;
    }

    pub(super) fn previous_str(&self) -> Option<String> {
        self.request
            .as_ref()
            .and_then(|r| r.previous.as_ref())
            .map(|p| p.as_str().to_owned())
    }

    pub(super) fn on_admission(&mut self, now: Instant, admission: HttpAdmission) {
        if self.stage != Stage::Scheduling {
            return;
        }
        let request = self.request.as_ref().expect("a valid body");
        if request.background && admission.transport == Transport::WsV2 {
            self.answer_error(&ErrorAnswer::from(
                GatewayError::bad_request(
                    "background responses are not supported by this account's upstream (WebSocket mode)",
                )
                .with_param(Some("background")),
            ));
            return self.finish();
        }
        let client = request.model.clone();
        self.models = Models::of(&admission.common.model_map, client);
        let pinning = pinning(request.previous.is_some(), admission.connection_local);
        self.turn
            .retry_state(now, admission.common.account, pinning, &self.cfg.scheduler);
        let transport = admission.transport;
        self.admission = Some(admission);
        match transport {
            Transport::WsV2 => self.acquire(),
            Transport::Http => self.ask_slot(now),
        }
    }

    pub(super) fn acquire(&mut self) {
        self.move_to(Stage::Acquiring);
        let admission = self.admission.as_ref().expect("admitted");
        let free = self.request.as_ref().is_some_and(|r| r.previous.is_none());
        self.requests.push_back(HttpTurnRequest::Acquire {
            account: admission.common.account,
            compat: admission.common.compat.clone(),
            preferred: admission.preferred.clone(),
            may_move_from: free.then(|| self.exclude.clone()),
        });
    }

    pub(super) fn ask_slot(&mut self, now: Instant) {
        self.move_to(Stage::Attempt);
        let admission = self.admission.as_ref().expect("admitted");
        // Each attempt has its own handle: its slot and its response on the conn.
        self.turn.renumber(TurnId(self.turn.id().0 + 1));
        let ask = self
            .turn
            .ask_slot(admission.common.account, admission.common.max_concurrency);
        self.requests.push_back(HttpTurnRequest::Slot(ask));
        self.timers.set(
            TurnTimer::SlotWait,
            now + self.cfg.session.slot_wait_timeout,
        );
    }

    pub(super) fn on_lease(&mut self, now: Instant, lease: crate::pool::Lease) {
        let conn = UpstreamConn::new(lease.record, now, &self.cfg.upstream);
        if self.stage != Stage::Acquiring {
            // Gone or answered meanwhile: the conn goes straight back, untouched.
            return self.release(conn, None);
        }
        let admission = self.admission.as_ref().expect("admitted");
        if admission.connection_local && !lease.preferred_hit {
            // The chain's conn was taken between the decision and the lease: no other conn can
            // continue a `store:false` chain, so answer as upstream would, without a create.
            self.release(conn, None);
            let previous = self.previous_str().unwrap_or_default();
            self.answer_error(&ErrorAnswer::from(
                GatewayError::previous_response_not_found(&previous),
            ));
            return self.finish();
        }
        self.conn = Some(conn);
        self.ask_slot(now);
    }

    pub(super) fn on_lease_refused(&mut self, now: Instant, reason: crate::pool::RefuseReason) {
        if self.stage != Stage::Acquiring {
            return;
        }
        if reason == crate::pool::RefuseReason::DialFailed {
            return self.attempt_failed(now, crate::scheduler::FailureKind::DialFailed, None);
        }
        if reason == crate::pool::RefuseReason::DialWait
            && let Some(account) = self.admission.as_ref().map(|a| a.common.account)
            && !self.exclude.contains(&account)
        {
            // The dial outlasted `pool.dial_wait` and another account is usable: move there
            // now (nothing failed: no back-off, and the move counts as `dial_wait`).
            self.exclude.push(account);
            self.admission = None;
            self.turn_event(TurnEvent::Retrying {
                turn: self.turn.id(),
                account,
                failure: crate::scheduler::FailureKind::DialWait,
                switch_account: true,
            });
            self.move_to(Stage::Backoff);
            return self.resume_after_backoff();
        }
        self.answer_error(&ErrorAnswer::from(GatewayError::upstream_unavailable()));
        self.finish();
    }

    pub(super) fn on_slot_granted(&mut self, now: Instant, turn: TurnId) {
        if self.stage != Stage::Attempt || !self.turn.slot_granted(turn) {
            // Not waiting any more (timed out, gone): give it straight back.
            if let Some(a) = &self.admission {
                self.requests
                    .push_back(HttpTurnRequest::Slot(SlotRequest::Release {
                        account: a.common.account,
                    }));
            }
            return;
        }
        self.timers.stop(TurnTimer::SlotWait);
        let admission = self.admission.as_ref().expect("admitted");
        let account = admission.common.account;
        if let Some(retry) = self.turn.retry() {
            retry.attempt_started(account);
        }
        let request = self.request.as_ref().expect("a valid body");
        let upstream_model = self.models.as_ref().map(Models::upstream_str);
        if admission.transport == Transport::Http {
            let body = match upstream_model {
                Some(model) => crate::event::rewrite_create_model(&request.body, model),
                None => request.body.clone(),
            };
            self.out.push_back(HttpTransmit::Forward { account, body });
            let started = now;
            return self.move_to(Stage::Forwarding { started, status: 0 });
        }
        let frame = request::build_create(&request.body, upstream_model);
        let previous = request.previous.clone();
        let Some(conn) = self.conn.as_mut().filter(|c| c.takes_creates()) else {
            // The conn died while the turn waited for its slot.
            return self.attempt_failed(now, crate::scheduler::FailureKind::UpstreamLost, None);
        };
        conn.send_create(now, self.turn.id(), None, previous, frame);
        let facts = TurnFacts {
            account,
            client_model: Some(request.model.clone()),
            models: self.models.clone(),
            accepted_at: self.started_at,
            trace_parent: request.trace_parent,
        };
        self.turn.send(conn.id(), facts);
    }

    pub(super) fn slot_wait_expired(&mut self) {
        if self.stage != Stage::Attempt || !matches!(self.turn.slot(), Slot::Waiting(_)) {
            return;
        }
        self.requests
            .extend(self.turn.withdraw().map(HttpTurnRequest::Slot));
        self.answer_error(&ErrorAnswer::from(GatewayError::concurrency_limit_reached()));
        self.finish();
    }

    pub(super) fn resume_after_backoff(&mut self) {
        if self.stage != Stage::Backoff {
            return;
        }
        if self.admission.is_some() {
            return self.acquire();
        }
        self.move_to(Stage::Scheduling);
        let request = self.request.as_ref().expect("a valid body");
        self.requests.push_back(HttpTurnRequest::Schedule {
            previous: request.previous.clone(),
            prompt_cache_key: request.prompt_cache_key.clone(),
            exclude: self.exclude.clone(),
        });
    }

    /// Ends the turn: the conn and slot go back, the control plane forgets the request
    pub(super) fn finish(&mut self) {
        if self.stage == Stage::Done {
            return;
        }
        self.move_to(Stage::Done);
        self.timers.stop_all();
        // A conn with a response still open goes back not reusable (nobody reads its terminal).
        if let Some(conn) = self.conn.take() {
            self.release(conn, None);
        }
        self.requests
            .extend(self.turn.withdraw().map(HttpTurnRequest::Slot));
        if self.request.is_some() {
            self.requests.push_back(HttpTurnRequest::Close);
        }
        self.turn_event(TurnEvent::Finished);
    }
}
