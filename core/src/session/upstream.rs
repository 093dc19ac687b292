//! Upstream frames on their way to the client, and what happens when responses end.

use std::time::Instant;

use bytes::Bytes;

use super::{
    KNOWN_RESPONSES, KnownResponse, Session, SessionCommand, SessionEvent, SessionPhase, Transmit,
    TurnState,
};
use crate::conn::{Ended, Outcome, Owner, UpstreamConn};
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::event::{ErrorClass, ServerEventKind};
use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
use crate::turn::{self, Audience, Slot, SlotRequest, TurnFacts};
use crate::{ConnId, TurnId};

impl Session {
    /// The per-event path: route, restore the model if needed, queue for the client
    ///
    /// The frame moves to the client queue as the same buffer unless its model must be
    /// restored; nothing here allocates for a delta.
    pub(super) fn on_upstream_frame(&mut self, now: Instant, conn_id: ConnId, frame: Bytes) {
        let audience = match self.phase {
            SessionPhase::Draining | SessionPhase::Finished => Audience::Gone,
            SessionPhase::AwaitingFirst | SessionPhase::Active => Audience::Client,
        };
        let mut next = self.next_turn;
        let Some(conn) = self
            .active
            .iter_mut()
            .chain(self.retiring.iter_mut())
            .find(|c| c.id() == conn_id)
        else {
            return;
        };
        let mut alloc_turn = || {
            let t = TurnId(next);
            next += 1;
            t
        };
        let (kind, owner, error_class) = match conn.handle_frame(now, &frame, &mut alloc_turn) {
            Ok(routed) => (
                routed.event.kind,
                routed.owner,
                routed.event.error.as_ref().map(|e| e.class),
            ),
            Err(_) => {
                self.events
                    .push_back(SessionEvent::UpstreamGarbage { conn: conn_id });
                return;
            }
        };
        self.next_turn = next;
        let out = match owner {
            Owner::Response { turn, first } => {
                if first && !self.turns.iter().any(|t| t.turn == turn) {
                    self.adopt_successor(now, turn, conn_id);
                }
                let Some(state) = self.turns.iter_mut().find(|t| t.turn == turn) else {
                    return;
                };
                let movable = state.retry.as_ref().is_some_and(|p| !p.connection_local);
                if kind == ServerEventKind::Error
                    && error_class == Some(ErrorClass::WebsocketConnectionLimitReached)
                    && movable
                {
                    // The conn hit upstream's lifetime limit before this create produced
                    // anything: move it to a fresh conn without the client noticing.
                    state.requeue = true;
                    return;
                }
                state.retry = None; // an event reached the client: no more transparent retries
                turn::relay(state.facts.models.as_ref(), kind, frame, audience)
            }
            Owner::Steering | Owner::ConnectionError => turn::relay(None, kind, frame, audience),
            Owner::Tail => {
                self.events
                    .push_back(SessionEvent::TailPacket { conn: conn_id });
                return;
            }
        };
        if let Some(out) = out {
            self.client_active_at = now;
            self.client_out.push_back(out);
        }
    }

    /// An automatic successor after a steer: a response no client create asked for
    fn adopt_successor(&mut self, now: Instant, turn: TurnId, conn: ConnId) {
        let Some(admission) = &self.admission else {
            return;
        };
        // It carries on its predecessor's model (and trace), not its retries.
        let predecessor = self.turns.iter().find(|t| t.conn == conn);
        let facts = TurnFacts {
            account: admission.account,
            client_model: predecessor.and_then(|t| t.facts.client_model.clone()),
            models: predecessor.and_then(|t| t.facts.models.clone()),
            accepted_at: now,
            trace_parent: predecessor.and_then(|t| t.facts.trace_parent),
            retries: Vec::new(),
        };
        self.turns.push(TurnState {
            turn,
            conn,
            facts,
            retry: None,
            requeue: false,
            successor: true,
        });
    }

    /// Moves transmits and ended responses out of every conn the session holds
    pub(super) fn collect_conn_outputs(&mut self, now: Instant) {
        let mut ended = Vec::new();
        let Self {
            active,
            retiring,
            upstream_out,
            ..
        } = self;
        for conn in active.iter_mut().chain(retiring.iter_mut()) {
            let id = conn.id();
            while let Some(msg) = conn.poll_transmit() {
                upstream_out.push_back(Transmit::Upstream { conn: id, msg });
            }
            while let Some(e) = conn.poll_ended() {
                ended.push((id, e));
            }
        }
        self.process_ended(now, ended);
    }

    /// Moves the outputs of a conn the session no longer holds (it is being released)
    pub(super) fn collect_outputs_of(&mut self, conn: &mut UpstreamConn, now: Instant) {
        let id = conn.id();
        while let Some(msg) = conn.poll_transmit() {
            self.upstream_out
                .push_back(Transmit::Upstream { conn: id, msg });
        }
        let mut ended = Vec::new();
        while let Some(e) = conn.poll_ended() {
            ended.push((id, e));
        }
        self.process_ended(now, ended);
    }

    fn process_ended(&mut self, now: Instant, ended: Vec<(ConnId, Ended)>) {
        let mut lost: Vec<(ConnId, Ended)> = Vec::new();
        for (conn, e) in ended {
            if e.outcome == Outcome::UpstreamLost && self.phase == SessionPhase::Active {
                lost.push((conn, e));
            } else {
                self.on_ended(now, conn, e);
            }
        }
        if !lost.is_empty() {
            self.on_lost(now, lost);
        }
    }

    fn on_ended(&mut self, now: Instant, conn: ConnId, ended: Ended) {
        let Some(pos) = self.turns.iter().position(|t| t.turn == ended.turn) else {
            return;
        };
        let state = self.turns.remove(pos);
        if state.requeue
            && let Some(mut create) = state.retry
        {
            self.events.push_back(SessionEvent::Rotated { from: conn });
            create.slot = Slot::Granted;
            self.pending.push_front(create);
            return;
        }
        if ended.outcome == Outcome::Stalled && self.phase == SessionPhase::Draining {
            self.drain_stalled = true;
        } else if ended.outcome == Outcome::Stalled {
            self.client_out
                .push_back(GatewayError::upstream_stalled().event(ended.lane.as_ref()));
        }
        self.report(now, conn, &state, ended);
    }

    /// Responses lost with their conn: retried on a fresh conn if none has written an event
    /// to the client yet; otherwise each gets a 502 `error` event and the client is closed 1011
    /// (clients such as Codex then resend with full context)
    fn on_lost(&mut self, now: Instant, lost: Vec<(ConnId, Ended)>) {
        let any_written = lost.iter().any(|(_, e)| {
            self.turns
                .iter()
                .find(|t| t.turn == e.turn)
                .is_none_or(|t| t.retry.is_none())
        });
        if any_written {
            for (conn, ended) in lost {
                let lane = ended.lane.clone();
                if let Some(pos) = self.turns.iter().position(|t| t.turn == ended.turn) {
                    let state = self.turns.remove(pos);
                    let lost = GatewayError::new(
                        502,
                        ErrorType::Server,
                        Some(ErrorCode::UpstreamConnectionLost),
                        "the upstream connection was lost mid-response; retry with full context",
                    );
                    self.client_out.push_back(lost.event(lane.as_ref()));
                    self.report(now, conn, &state, ended);
                }
            }
            self.close_client(1011, "upstream connection lost");
            return self.finish(now);
        }
        // Re-queue in their original order, ahead of creates the client sent later, under the
        // scheduler's retry rules (budget, back-off with jitter, account switches).
        let others_open = self.unfinished() > 0;
        for (conn, ended) in lost.into_iter().rev() {
            let Some(pos) = self.turns.iter().position(|t| t.turn == ended.turn) else {
                continue;
            };
            let state = self.turns.remove(pos);
            let Some(mut create) = state.retry.clone() else {
                self.lost_for_good(now, conn, &state, ended, "the upstream connection was lost");
                continue;
            };
            let decision = match &mut create.retry {
                Some(retry) => {
                    retry.on_failure(now, FailureKind::UpstreamLost, false, &mut self.jitter)
                }
                None => RetryDecision::GiveUp(GiveUpReason::NotRetryable),
            };
            match decision {
                RetryDecision::RetryAt { at, switch_account } => {
                    if switch_account && !others_open && create.previous.is_none() {
                        // Fail over: the next schedule avoids every account this create tried.
                        self.exclude = create
                            .retry
                            .as_ref()
                            .map(|r| r.tried_accounts().to_vec())
                            .unwrap_or_default();
                        self.admission = None;
                        self.release_slot_of(state.facts.account);
                        create.slot = Slot::None;
                    } else {
                        create.slot = Slot::Granted;
                    }
                    create.not_before = Some(at);
                    self.pending.push_front(create);
                }
                RetryDecision::GiveUp(GiveUpReason::ChainLost) => {
                    self.release_slot();
                    self.refuse(&create, super::Refusal::PreviousResponseNotFound);
                }
                RetryDecision::GiveUp(reason) => {
                    let why = match reason {
                        GiveUpReason::BudgetExhausted => {
                            "the upstream connection was lost repeatedly within the retry budget"
                        }
                        GiveUpReason::SwitchLimit => {
                            "the upstream connection was lost on every account tried"
                        }
                        _ => "the upstream connection was lost",
                    };
                    self.lost_for_good(now, conn, &state, ended, why);
                }
            }
        }
    }

    /// Answers a lost response that will not be retried with a 502 `error` event
    fn lost_for_good(
        &mut self,
        now: Instant,
        conn: ConnId,
        state: &TurnState,
        ended: Ended,
        why: &str,
    ) {
        self.client_out
            .push_back(GatewayError::upstream_lost(why).event(ended.lane.as_ref()));
        self.report(now, conn, state, ended);
    }

    fn release_slot_of(&mut self, account: crate::AccountId) {
        self.commands
            .push_back(SessionCommand::Slot(SlotRequest::Release { account }));
    }

    fn report(&mut self, now: Instant, conn: ConnId, state: &TurnState, ended: Ended) {
        if !state.successor {
            self.release_slot();
        }
        let drained = self.phase == SessionPhase::Draining;
        let (bind, report) = state.facts.settle(now, conn, ended, true, drained);
        if let Some(bind) = bind {
            if self.known.len() == KNOWN_RESPONSES {
                self.known.pop_front();
            }
            self.known.push_back(KnownResponse {
                id: bind.response.clone(),
                conn,
                store: bind.store,
            });
            self.commands.push_back(SessionCommand::Bind(bind));
        }
        self.events
            .push_back(SessionEvent::ResponseEnded(Box::new(report)));
    }
}
