//! Upstream events on their way to the HTTP client, the end of a response, retries, and the
//! forwarded POST of an account that resolves to HTTP.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::request::{event_type, response_object};
use super::{
    AnswerState, ContentType, ErrorAnswer, HttpEvent, HttpTransmit, HttpTurn, HttpTurnRequest,
    Stage, TurnTimer,
};
use crate::conn::{Ended, Outcome, Owner, UpstreamConn};
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::event::{ServerEventKind, Utf8, sse_encode};
use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
use crate::turn::{TurnEvent, upstream_lost};
use crate::{ConnId, TurnId};

impl HttpTurn {
    /// The per-event path: route, restore the model, frame as SSE (or keep the terminal's
    /// response object for a `stream:false` reply)
    pub(super) fn on_upstream_frame(&mut self, now: Instant, id: ConnId, frame: Bytes, utf8: Utf8) {
        let current = self.turn.id();
        let Some(conn) = self.conn.as_mut().filter(|c| c.id() == id) else {
            return;
        };
        // HTTP turns never steer, so no upstream event opens a response of its own.
        let mut no_successor = || TurnId(u64::MAX);
        let (kind, owner) = match conn.handle_frame(now, &frame, utf8, &mut no_successor) {
            Ok(routed) => (routed.event.kind, routed.owner),
            Err(_) => {
                self.turn_event(TurnEvent::UpstreamGarbage { conn: id });
                return;
            }
        };
        match owner {
            Owner::Response { turn, .. } if turn == current => {}
            Owner::Tail => {
                self.turn_event(TurnEvent::TailPacket { conn: id });
                return;
            }
            _ => return,
        }
        if kind == ServerEventKind::Error && self.answer != AnswerState::Gone {
            // Its answer depends on whether the attempt is retried: decided when it ends.
            self.last_error = Some(frame);
            return;
        }
        // A client that left gets nothing: the response is read to its terminal for the conn
        // and the usage (both taken by the conn machine), and nothing else is done for it.
        let Some(frame) = self.turn.relay(kind, frame) else {
            return;
        };
        if !self.turn.is_retriable() {
            self.write_sse(&frame);
        } else if self.streams() {
            self.turn.reached_client();
            self.write_head(200, ContentType::EventStream, None);
            self.write_sse(&frame);
        } else if kind.is_terminal() {
            self.final_response = response_object(&frame);
        }
    }

    /// Queues an event of the create's life
    pub(super) fn turn_event(&mut self, event: TurnEvent) {
        self.events.push_back(HttpEvent::Turn(event));
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
        if self.answer != AnswerState::Unsent {
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
        if self.answer == AnswerState::Open {
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
        if matches!(self.answer, AnswerState::Ended | AnswerState::Gone) {
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
        self.requests
            .push_back(HttpTurnRequest::Release { release, hold });
    }

    fn on_ended(&mut self, now: Instant, ended: Ended) {
        if ended.response.turn != self.turn.id() {
            return;
        }
        if self.answer == AnswerState::Gone {
            let clean = matches!(
                ended.outcome,
                Outcome::Completed | Outcome::Incomplete | Outcome::Failed
            );
            self.end_response(now, ended);
            self.turn_event(TurnEvent::DrainFinished { clean });
            return self.finish();
        }
        let streaming = !self.turn.is_retriable();
        let failed = match (&ended.outcome, streaming) {
            (Outcome::Completed | Outcome::Incomplete | Outcome::Failed, _) => None,
            (Outcome::Error { .. }, true) => {
                let frame = self.last_error.take().unwrap_or_default();
                Some(ErrorAnswer::from_upstream_error(&frame))
            }
            (Outcome::Stalled, _) => Some(GatewayError::upstream_stalled().into()),
            // HTTP turns have no shutdown grace of their own: a cut reads as a lost conn.
            (Outcome::UpstreamLost | Outcome::CutAtShutdown, true) => {
                let why = "the upstream connection was lost mid-response";
                Some(GatewayError::upstream_lost(why).into())
            }
            // Nothing reached the client yet: the retry rules decide.
            (
                &Outcome::Error {
                    status,
                    retry_after,
                },
                false,
            ) => {
                let failure = FailureKind::from_status(status, retry_after);
                return self.attempt_failed(now, failure, Some(ended));
            }
            (Outcome::UpstreamLost | Outcome::CutAtShutdown, false) => {
                return self.attempt_failed(now, FailureKind::UpstreamLost, Some(ended));
            }
        };
        if let Some(answer) = failed {
            self.answer_error(&answer);
            self.end_response(now, ended);
        } else if streaming {
            self.end_response(now, ended);
            self.write_end();
        } else {
            let body = self.final_response.take().unwrap_or_else(|| {
                Bytes::from_static(br#"{"object":"response","status":"completed"}"#)
            });
            self.end_response(now, ended);
            self.write_head(200, ContentType::Json, None);
            self.out.push_back(HttpTransmit::Body(body));
            self.write_end();
        }
        self.finish();
    }

    /// A response ended for good: report, bind, release the conn (held for a `store:false`
    /// chain), give the slot back
    fn end_response(&mut self, now: Instant, ended: Ended) {
        let store = self.request.as_ref().is_none_or(|r| r.store);
        let Some(settled) = self.turn.end(now, ended, store) else {
            return;
        };
        // A `store:false` chain's conn is held idle for its next turn.
        let hold = settled
            .bind
            .as_ref()
            .filter(|b| !b.store)
            .map(|b| b.response.clone());
        self.requests
            .extend(settled.bind.map(HttpTurnRequest::Bind));
        if let Some(conn) = self.conn.take() {
            self.release(conn, hold);
        }
        self.requests
            .extend(settled.release.map(HttpTurnRequest::Slot));
        self.turn_event(TurnEvent::ResponseEnded(Box::new(settled.report)));
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
        match self.turn.attempt_failed(now, failure, &mut self.jitter) {
            RetryDecision::RetryAt { at, switch_account } => {
                self.failed_attempt = upstream_error
                    .as_ref()
                    .map(ErrorAnswer::from_upstream_error);
                if let Some(conn) = self.conn.take() {
                    self.release(conn, None);
                }
                self.final_response = None;
                self.enter_backoff(failure, switch_account, at);
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
                    (reason, None) => ErrorAnswer::from(upstream_lost(reason)),
                };
                if let Some(ended) = ended {
                    self.end_response(now, ended);
                }
                self.answer_error(&answer);
                self.finish();
            }
        }
    }

    /// The failed attempt gives its slot back and waits until `at` for the next one, on another
    /// account when `switch_account` (the next schedule excludes every account this turn tried)
    fn enter_backoff(&mut self, failure: FailureKind, switch_account: bool, at: Instant) {
        let release = self.turn.hold_again(at, false);
        self.requests.extend(release.map(HttpTurnRequest::Slot));
        if let Some(account) = self.admission.as_ref().map(|a| a.common.account) {
            self.turn_event(TurnEvent::Retrying {
                turn: self.turn.id(),
                account,
                failure,
                switch_account,
            });
        }
        if switch_account {
            self.exclude = self
                .turn
                .retry()
                .map(|r| r.tried_accounts().to_vec())
                .unwrap_or_default();
            self.admission = None;
        }
        self.move_to(Stage::Backoff);
        self.timers.set(TurnTimer::RetryBackoff, at);
    }

    pub(super) fn on_forward_head(
        &mut self,
        now: Instant,
        status: u16,
        retry_after: Option<Duration>,
    ) {
        if !self.forward_unanswered() {
            return;
        }
        if !(200..300).contains(&status) {
            let failure = FailureKind::from_status(status, retry_after);
            if let RetryDecision::RetryAt { at, switch_account } =
                self.turn.attempt_failed(now, failure, &mut self.jitter)
            {
                // Health is fed from `Retrying`: no `ForwardEnded` for a retried attempt.
                self.out.push_back(HttpTransmit::DiscardForward);
                return self.forward_retry(failure, switch_account, at);
            }
        }
        if let Stage::Forwarding { status: s, .. } = &mut self.stage {
            *s = status;
        }
        if self.answer != AnswerState::Gone {
            self.open_answer();
            self.out.push_back(HttpTransmit::PassThrough);
            self.events.push_back(HttpEvent::Answered {
                status,
                streamed: self.streams(),
            });
        }
    }

    pub(super) fn on_forward_failed(&mut self, now: Instant) {
        if !self.forward_unanswered() {
            return;
        }
        let failure = FailureKind::DialFailed;
        match self.turn.attempt_failed(now, failure, &mut self.jitter) {
            RetryDecision::RetryAt { at, switch_account } => {
                self.forward_retry(failure, switch_account, at)
            }
            RetryDecision::GiveUp(_) => {
                self.forward_ended(now);
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
        if !matches!(self.stage, Stage::Forwarding { .. }) {
            return;
        }
        self.forward_ended(now);
        self.write_end();
        self.finish();
    }

    /// A forwarded POST whose reply head has not come
    fn forward_unanswered(&self) -> bool {
        matches!(self.stage, Stage::Forwarding { .. }) && self.answer == AnswerState::Unsent
    }

    /// A forwarded attempt failed and is retried: its slot goes back, and the next attempt
    /// schedules again (an HTTP account has no pool)
    fn forward_retry(&mut self, failure: FailureKind, switch_account: bool, at: Instant) {
        self.enter_backoff(failure, switch_account, at);
        self.admission = None;
    }

    /// The forwarded attempt is over: its end is reported (its slot goes back with the turn)
    fn forward_ended(&mut self, now: Instant) {
        if let (Some(a), Stage::Forwarding { started, status }) = (&self.admission, self.stage) {
            self.events.push_back(HttpEvent::ForwardEnded {
                account: a.common.account,
                status,
                duration: now.saturating_duration_since(started),
            });
        }
    }
}
