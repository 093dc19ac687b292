//! Upstream events on their way to the HTTP client, the end of a response, retries, and the
//! forwarded POST of an account that resolves to HTTP.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::request::{event_type, response_object};
use super::{
    AnswerState, ContentType, ErrorAnswer, HttpCommand, HttpEvent, HttpPhase, HttpTransmit,
    HttpTurn, TurnTimer,
};
use crate::conn::{Ended, Outcome, Owner, UpstreamConn};
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::event::{ServerEventKind, sse_encode};
use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
use crate::turn::{self, Audience, Slot, TurnFacts};
use crate::{ConnId, TurnId};

impl HttpTurn {
    /// The per-event path: route, restore the model, frame as SSE (or keep the terminal's
    /// response object for a `stream:false` reply)
    pub(super) fn on_upstream_frame(&mut self, now: Instant, conn_id: ConnId, frame: Bytes) {
        let current = self.turn;
        let Some(conn) = self.conn.as_mut().filter(|c| c.id() == conn_id) else {
            return;
        };
        // HTTP turns never steer, so no upstream event opens a response of its own.
        let mut no_successor = || TurnId(u64::MAX);
        let (kind, owner) = match conn.handle_frame(now, &frame, &mut no_successor) {
            Ok(routed) => (routed.event.kind, routed.owner),
            Err(_) => {
                self.events
                    .push_back(HttpEvent::UpstreamGarbage { conn: conn_id });
                return;
            }
        };
        match owner {
            Owner::Response { turn, .. } if turn == current => {}
            Owner::Tail => {
                self.events
                    .push_back(HttpEvent::TailPacket { conn: conn_id });
                return;
            }
            _ => return,
        }
        let audience = match self.client_gone {
            true => Audience::Gone,
            false => Audience::Client,
        };
        if kind == ServerEventKind::Error && audience == Audience::Client {
            // Its answer depends on whether the attempt is retried: decided when it ends.
            self.last_error = Some(frame);
            return;
        }
        // A client that left gets nothing: the response is read to its terminal for the conn
        // and the usage (both taken by the conn machine), and nothing else is done for it.
        let Some(frame) = turn::relay(self.models.as_ref(), kind, frame, audience) else {
            return;
        };
        match self.phase {
            HttpPhase::Upstream if self.streams() => {
                self.phase = HttpPhase::Streaming;
                self.write_head(200, ContentType::EventStream, None);
                self.write_sse(&frame);
            }
            HttpPhase::Upstream if kind.is_terminal() => {
                self.final_response = response_object(&frame);
            }
            HttpPhase::Streaming => self.write_sse(&frame),
            _ => {}
        }
    }

    fn write_sse(&mut self, frame: &Bytes) {
        let ty = event_type(frame);
        self.out
            .push_back(HttpTransmit::Body(sse_encode(&ty, frame)));
    }

    pub(super) fn write_head(
        &mut self,
        status: u16,
        content_type: ContentType,
        retry_after: Option<u64>,
    ) {
        if self.answer != AnswerState::Unsent || self.client_gone {
            return;
        }
        self.open_answer();
        self.out.push_back(HttpTransmit::Head {
            status,
            content_type,
            retry_after,
        });
        self.events.push_back(HttpEvent::Answered {
            status,
            streamed: content_type == ContentType::EventStream,
        });
    }

    fn write_end(&mut self) {
        if self.answer == AnswerState::Open && !self.client_gone {
            self.end_answer();
            self.out.push_back(HttpTransmit::End);
        }
    }

    /// Unsent → Open: the head (or the pass-through standing for it) goes out
    fn open_answer(&mut self) {
        debug_assert_eq!(self.answer, AnswerState::Unsent, "one head per answer");
        self.answer = AnswerState::Open;
    }

    /// Open → Ended: the answer is complete
    fn end_answer(&mut self) {
        debug_assert_eq!(self.answer, AnswerState::Open, "an end follows a head");
        self.answer = AnswerState::Ended;
    }

    /// Answers with an error: status + JSON before the head, the flat SSE `error` after it
    pub(super) fn answer_error(&mut self, answer: &ErrorAnswer) {
        if self.client_gone || self.answer == AnswerState::Ended {
            return;
        }
        if self.answer == AnswerState::Open {
            self.out.push_back(HttpTransmit::Body(answer.sse_frame()));
        } else {
            self.write_head(answer.status, ContentType::Json, answer.retry_after);
            self.out.push_back(HttpTransmit::Body(answer.json_body()));
        }
        self.write_end();
    }

    /// Runs after every input: moves the conn's transmits out and handles ended responses
    pub(super) fn settle(&mut self, now: Instant) {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let id = conn.id();
            while let Some(msg) = conn.poll_transmit() {
                self.out.push_back(HttpTransmit::Upstream { conn: id, msg });
            }
            match conn.poll_ended() {
                Some(ended) => self.on_ended(now, ended),
                None => return,
            }
        }
    }

    /// Gives a conn back to the pool (held for `hold`'s chain when given and reusable)
    pub(super) fn release(&mut self, mut conn: UpstreamConn, hold: Option<crate::ResponseId>) {
        let id = conn.id();
        while let Some(msg) = conn.poll_transmit() {
            self.out.push_back(HttpTransmit::Upstream { conn: id, msg });
        }
        let release = conn.into_release();
        let hold = hold.filter(|_| release.reusable);
        self.commands
            .push_back(HttpCommand::Release { release, hold });
    }

    fn on_ended(&mut self, now: Instant, ended: Ended) {
        if ended.turn != self.turn {
            return;
        }
        if self.phase == HttpPhase::Draining {
            let clean = matches!(
                ended.outcome,
                Outcome::Completed | Outcome::Incomplete | Outcome::Failed
            );
            self.end_response(now, ended);
            self.events.push_back(HttpEvent::DrainFinished { clean });
            return self.finish();
        }
        match (&ended.outcome, self.phase) {
            (Outcome::Completed | Outcome::Incomplete | Outcome::Failed, HttpPhase::Streaming) => {
                self.end_response(now, ended);
                self.write_end();
                self.finish();
            }
            (Outcome::Completed | Outcome::Incomplete | Outcome::Failed, _) => {
                let body = self.final_response.take().unwrap_or_else(|| {
                    Bytes::from_static(br#"{"object":"response","status":"completed"}"#)
                });
                self.end_response(now, ended);
                self.write_head(200, ContentType::Json, None);
                if !self.client_gone {
                    self.out.push_back(HttpTransmit::Body(body));
                }
                self.write_end();
                self.finish();
            }
            (Outcome::Error { .. }, HttpPhase::Streaming) => {
                let frame = self.last_error.take().unwrap_or_default();
                self.answer_error(&ErrorAnswer::from_upstream_error(&frame));
                self.end_response(now, ended);
                self.finish();
            }
            (
                Outcome::Error {
                    status,
                    retry_after,
                },
                _,
            ) => {
                let failure = FailureKind::from_status(*status, *retry_after);
                self.attempt_failed(now, failure, Some(ended));
            }
            (Outcome::Stalled, _) => {
                self.answer_error(&ErrorAnswer::from(GatewayError::upstream_stalled()));
                self.end_response(now, ended);
                self.finish();
            }
            // HTTP turns have no shutdown grace of their own: a cut reads as a lost conn.
            (Outcome::UpstreamLost | Outcome::CutAtShutdown, HttpPhase::Streaming) => {
                self.answer_error(&ErrorAnswer::from(GatewayError::upstream_lost(
                    "the upstream connection was lost mid-response",
                )));
                self.end_response(now, ended);
                self.finish();
            }
            (Outcome::UpstreamLost | Outcome::CutAtShutdown, _) => {
                self.attempt_failed(now, FailureKind::UpstreamLost, Some(ended));
            }
        }
    }

    /// A response ended for good: report, bind, release the conn (held for a `store:false`
    /// chain), give the slot back
    fn end_response(&mut self, now: Instant, ended: Ended) {
        let Some(admission) = self.admission.clone() else {
            return;
        };
        let conn = self.conn.take();
        let conn_id = conn.as_ref().map_or(ConnId(0), UpstreamConn::id);
        let request = self.request.as_ref();
        let facts = TurnFacts {
            account: admission.account,
            client_model: request.map(|r| r.model.clone()),
            models: self.models.clone(),
            accepted_at: self.started_at,
            trace_parent: request.and_then(|r| r.trace_parent),
            retries: self
                .retry
                .as_ref()
                .map(|r| r.notes().to_vec())
                .unwrap_or_default(),
        };
        let request_store = request.is_none_or(|r| r.store);
        let (bind, report) = facts.settle(now, conn_id, ended, request_store, self.client_gone);
        // A `store:false` chain's conn is held idle for its next turn.
        let hold = bind
            .as_ref()
            .filter(|b| !b.store)
            .map(|b| b.response.clone());
        if let Some(bind) = bind {
            self.commands.push_back(HttpCommand::Bind(bind));
        }
        if let Some(conn) = conn {
            self.release(conn, hold);
        }
        self.give_back_slot();
        self.events
            .push_back(HttpEvent::ResponseEnded(Box::new(report)));
    }

    /// An attempt failed before anything reached the client: retry under the scheduler's rules,
    /// or answer (upstream's own error when it sent one)
    pub(super) fn attempt_failed(
        &mut self,
        now: Instant,
        failure: FailureKind,
        ended: Option<Ended>,
    ) {
        let upstream_error = self.last_error.take();
        let decision = match self.retry.as_mut() {
            Some(retry) => retry.on_failure(now, failure, false, &mut self.jitter),
            None => RetryDecision::GiveUp(GiveUpReason::NotRetryable),
        };
        let account = self.admission.as_ref().map(|a| a.account);
        match decision {
            RetryDecision::RetryAt { at, switch_account } => {
                self.failed_attempt = upstream_error
                    .as_ref()
                    .map(ErrorAnswer::from_upstream_error);
                if let Some(conn) = self.conn.take() {
                    self.release(conn, None);
                }
                self.give_back_slot();
                self.final_response = None;
                self.enter_backoff(account, failure, switch_account, at);
            }
            RetryDecision::GiveUp(reason) => {
                self.events.push_back(HttpEvent::GaveUp { reason });
                let answer = match (reason, &upstream_error) {
                    (GiveUpReason::ChainLost, _) => {
                        ErrorAnswer::from(GatewayError::previous_response_not_found(
                            &self.previous_str().unwrap_or_default(),
                        ))
                    }
                    (_, Some(frame)) => ErrorAnswer::from_upstream_error(frame),
                    (_, None) if failure == FailureKind::DialFailed => {
                        ErrorAnswer::from(GatewayError::upstream_unavailable())
                    }
                    (GiveUpReason::BudgetExhausted, None) => {
                        ErrorAnswer::from(GatewayError::upstream_lost(
                            "the upstream connection was lost repeatedly within the retry budget",
                        ))
                    }
                    (GiveUpReason::SwitchLimit, None) => {
                        ErrorAnswer::from(GatewayError::upstream_lost(
                            "the upstream connection was lost on every account tried",
                        ))
                    }
                    (_, None) => ErrorAnswer::from(GatewayError::upstream_lost(
                        "the upstream connection was lost",
                    )),
                };
                if let Some(ended) = ended {
                    self.end_response(now, ended);
                }
                self.answer_error(&answer);
                self.finish();
            }
        }
    }

    /// Waits until `at` for the next attempt, on another account when `switch_account` (the
    /// next schedule excludes every account this turn tried)
    fn enter_backoff(
        &mut self,
        account: Option<crate::AccountId>,
        failure: FailureKind,
        switch_account: bool,
        at: Instant,
    ) {
        if let Some(account) = account {
            self.events.push_back(HttpEvent::Retrying {
                account,
                failure,
                switch_account,
            });
        }
        if switch_account {
            self.exclude = self
                .retry
                .as_ref()
                .map(|r| r.tried_accounts().to_vec())
                .unwrap_or_default();
            self.admission = None;
        }
        self.phase = HttpPhase::Backoff;
        self.timers.set(TurnTimer::RetryBackoff, at);
    }

    pub(super) fn on_forward_head(
        &mut self,
        now: Instant,
        status: u16,
        retry_after: Option<Duration>,
    ) {
        if self.phase != HttpPhase::Forwarding || self.answer != AnswerState::Unsent {
            return;
        }
        if !(200..300).contains(&status) {
            let failure = FailureKind::from_status(status, retry_after);
            let decision = self
                .retry
                .as_mut()
                .map(|r| r.on_failure(now, failure, false, &mut self.jitter));
            if let Some(RetryDecision::RetryAt { at, switch_account }) = decision {
                // Health is fed from `Retrying`: no `ForwardEnded` for a retried attempt.
                self.out.push_back(HttpTransmit::DiscardForward);
                self.forward_started = None;
                self.give_back_slot();
                let account = self.admission.as_ref().map(|a| a.account);
                self.enter_backoff(account, failure, switch_account, at);
                // An HTTP account has no pool: the next attempt always schedules again.
                self.admission = None;
                return;
            }
        }
        self.forward_status = status;
        if !self.client_gone {
            self.open_answer();
            self.out.push_back(HttpTransmit::PassThrough);
            self.events.push_back(HttpEvent::Answered {
                status,
                streamed: self.streams(),
            });
        }
    }

    pub(super) fn on_forward_failed(&mut self, now: Instant) {
        if self.phase != HttpPhase::Forwarding || self.answer != AnswerState::Unsent {
            return;
        }
        let decision = self
            .retry
            .as_mut()
            .map(|r| r.on_failure(now, FailureKind::DialFailed, false, &mut self.jitter));
        match decision {
            Some(RetryDecision::RetryAt { at, switch_account }) => {
                self.forward_started = None;
                self.give_back_slot();
                let account = self.admission.as_ref().map(|a| a.account);
                self.enter_backoff(account, FailureKind::DialFailed, switch_account, at);
                // An HTTP account has no pool: the next attempt always schedules again.
                self.admission = None;
            }
            _ => {
                self.forward_ended(now, 0);
                self.answer_error(&ErrorAnswer::from(GatewayError::new(
                    502,
                    ErrorType::Server,
                    Some(ErrorCode::UpstreamUnavailable),
                    "the upstream could not be reached; retry the request",
                )));
                self.finish();
            }
        }
    }

    pub(super) fn on_forward_end(&mut self, now: Instant) {
        if self.phase != HttpPhase::Forwarding {
            return;
        }
        let status = self.forward_status;
        self.forward_ended(now, status);
        self.write_end();
        self.finish();
    }

    /// The forwarded attempt is over: its slot goes back, its end is reported
    fn forward_ended(&mut self, now: Instant, status: u16) {
        if let (Some(a), Some(started)) = (&self.admission, self.forward_started.take()) {
            self.events.push_back(HttpEvent::ForwardEnded {
                account: a.account,
                status,
                duration: now.saturating_duration_since(started),
            });
        }
        if self.slot == Slot::Granted {
            self.give_back_slot();
        }
    }
}
