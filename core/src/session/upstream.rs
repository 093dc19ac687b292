//! Upstream frames on their way to the client, and what happens when responses end.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{
    Create, KNOWN_RESPONSES, KnownResponse, Phase, Session, SessionEvent, SessionRequest, Transmit,
};
use crate::conn::{Ended, Outcome, Owner, UpstreamConn};
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::event::{ErrorClass, ServerEventKind, Utf8};
use crate::scheduler::{FailureKind, GiveUpReason, RetryDecision};
use crate::turn::{self, Audience, Turn, TurnEvent, TurnFacts};
use crate::{ConnId, TurnId};

impl Session {
    /// The per-event path: route, restore the model if needed, queue for the client
    ///
    /// The frame moves to the client queue as the same buffer unless its model must be
    /// restored; nothing here allocates for a delta.
    pub(super) fn on_upstream_frame(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        frame: Bytes,
        utf8: Utf8,
    ) {
        let audience = match self.takes_client_input() {
            true => Audience::Client,
            false => Audience::Gone,
        };
        let next = &mut self.next_turn;
        let Some(conn) = self
            .active
            .iter_mut()
            .chain(self.retiring.iter_mut())
            .find(|c| c.id() == conn_id)
        else {
            return;
        };
        let mut alloc_turn = || super::alloc_turn(next);
        let (kind, owner, error_class) = match conn.handle_frame(now, &frame, utf8, &mut alloc_turn)
        {
            Ok(routed) => (
                routed.event.kind,
                routed.owner,
                routed.event.error.as_ref().map(|e| e.class),
            ),
            Err(_) => {
                self.turn_event(TurnEvent::UpstreamGarbage { conn: conn_id });
                return;
            }
        };
        let out = match owner {
            Owner::Response { turn, first } => {
                if first && !self.turns.iter().any(|t| t.id() == turn) {
                    self.adopt_successor(now, turn, conn_id, audience);
                }
                let Some(state) = self.turns.iter_mut().find(|t| t.id() == turn) else {
                    return;
                };
                let movable = state.create().is_some_and(|c| !c.connection_local);
                if kind == ServerEventKind::Error
                    && error_class == Some(ErrorClass::WebsocketConnectionLimitReached)
                    && movable
                {
                    // The conn hit upstream's lifetime limit before this create produced
                    // anything: move it to a fresh conn without the client noticing.
                    state.must_move();
                    return;
                }
                state.reached_client(); // no more transparent retries
                state.relay(kind, frame)
            }
            Owner::Steering | Owner::ConnectionError => turn::relay(None, kind, frame, audience),
            Owner::Tail => {
                self.turn_event(TurnEvent::TailPacket { conn: conn_id });
                return;
            }
        };
        if let Some(out) = out {
            self.client_active_at = now;
            self.client_out.push_back(out);
        }
    }

    /// An automatic successor after a steer: a response no client create asked for
    fn adopt_successor(&mut self, now: Instant, turn: TurnId, conn: ConnId, audience: Audience) {
        let Some(admission) = self.admitted_account() else {
            return;
        };
        // It carries on its predecessor's model (and trace), not its retries.
        let predecessor = self.turns.iter().find(|t| t.conn() == Some(conn));
        let predecessor = predecessor.and_then(Turn::facts);
        let facts = TurnFacts {
            account: admission.account,
            client_model: predecessor.and_then(|f| f.client_model.clone()),
            models: predecessor.and_then(|f| f.models.clone()),
            accepted_at: now,
            trace_parent: predecessor.and_then(|f| f.trace_parent),
        };
        let successor = Turn::successor(turn, conn, facts, audience);
        self.turns.push(successor);
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
            drain_conn(conn, upstream_out, &mut ended);
        }
        self.process_ended(now, ended);
    }

    /// Moves the outputs of a conn the session no longer holds (it is being released)
    pub(super) fn collect_outputs_of(&mut self, conn: &mut UpstreamConn, now: Instant) {
        let mut ended = Vec::new();
        drain_conn(conn, &mut self.upstream_out, &mut ended);
        self.process_ended(now, ended);
    }

    fn process_ended(&mut self, now: Instant, ended: Vec<(ConnId, Ended)>) {
        let mut lost: Vec<(ConnId, Ended)> = Vec::new();
        for (conn, e) in ended {
            if e.outcome == Outcome::UpstreamLost && self.phase == Phase::Active {
                lost.push((conn, e));
            } else {
                self.on_ended(now, conn, e);
            }
        }
        if !lost.is_empty() {
            self.on_lost(now, lost);
        }
    }

    /// Takes `turn` out of the open ones
    fn take_turn(&mut self, turn: TurnId) -> Option<Turn<Create>> {
        let pos = self.turns.iter().position(|t| t.id() == turn)?;
        Some(self.turns.remove(pos))
    }

    fn on_ended(&mut self, now: Instant, conn: ConnId, ended: Ended) {
        let Some(mut turn) = self.take_turn(ended.response.turn) else {
            return;
        };
        if turn.moved(now) {
            self.events.push_back(SessionEvent::Rotated { from: conn });
            self.pending.push_front(turn);
            return;
        }
        if ended.outcome == Outcome::Stalled && self.is_draining() {
            self.drain_stalled();
        } else if ended.outcome == Outcome::Stalled {
            self.client_out
                .push_back(GatewayError::upstream_stalled().event(ended.response.lane.as_ref()));
        }
        self.report(now, turn, ended);
    }

    /// Responses lost with their conn: retried on a fresh conn if none has written an event
    /// to the client yet; otherwise each gets a 502 `error` event and the client is closed 1011
    /// (clients such as Codex then resend with full context)
    fn on_lost(&mut self, now: Instant, lost: Vec<(ConnId, Ended)>) {
        let any_written = lost.iter().any(|(_, e)| {
            self.turns
                .iter()
                .find(|t| t.id() == e.response.turn)
                .is_none_or(|t| !t.is_retriable())
        });
        if any_written {
            for (_, ended) in lost {
                let lane = ended.response.lane.clone();
                if let Some(turn) = self.take_turn(ended.response.turn) {
                    let lost = GatewayError::new(
                        502,
                        ErrorType::Server,
                        Some(ErrorCode::UpstreamConnectionLost),
                        "the upstream connection was lost mid-response; retry with full context",
                    );
                    self.client_out.push_back(lost.event(lane.as_ref()));
                    self.report(now, turn, ended);
                }
            }
            self.close_client(1011, "upstream connection lost");
            return self.finish(now);
        }
        // Re-queue in their original order, ahead of creates the client sent later, under the
        // scheduler's retry rules (budget, back-off with jitter, account switches).
        let others_open = self.unfinished() > 0;
        for (_, ended) in lost.into_iter().rev() {
            let Some(mut turn) = self.take_turn(ended.response.turn) else {
                continue;
            };
            let decision = turn.attempt_failed(now, FailureKind::UpstreamLost, &mut self.jitter);
            match decision {
                RetryDecision::RetryAt { at, switch_account } => {
                    let chained = turn.create().is_some_and(|c| c.previous.is_some());
                    let switch = switch_account && !others_open && !chained;
                    if switch {
                        // Fail over: the next schedule avoids every account this create tried.
                        let tried = turn.retry().map(|r| r.tried_accounts().to_vec());
                        self.exclude = tried.unwrap_or_default();
                        self.drop_admission();
                    }
                    let release = turn.hold_again(at, !switch);
                    self.requests.extend(release.map(SessionRequest::Slot));
                    self.pending.push_front(turn);
                }
                RetryDecision::GiveUp(GiveUpReason::ChainLost) => {
                    self.refuse(turn, super::Refusal::PreviousResponseNotFound);
                }
                RetryDecision::GiveUp(reason) => {
                    let lost = turn::upstream_lost(reason);
                    self.client_out
                        .push_back(lost.event(ended.response.lane.as_ref()));
                    self.report(now, turn, ended);
                }
            }
        }
    }

    /// A response ended upstream: its slot goes back, its bind and its report go out
    fn report(&mut self, now: Instant, mut turn: Turn<Create>, ended: Ended) {
        let Some(settled) = turn.end(now, ended, true) else {
            return;
        };
        self.requests
            .extend(settled.release.map(SessionRequest::Slot));
        if let Some(bind) = settled.bind {
            if self.known.len() == KNOWN_RESPONSES {
                self.known.pop_front();
            }
            self.known.push_back(KnownResponse {
                id: bind.response.clone(),
                conn: bind.conn,
                store: bind.store,
            });
            self.requests.push_back(SessionRequest::Bind(bind));
        }
        self.turn_event(TurnEvent::ResponseEnded(Box::new(settled.report)));
    }
}

/// Moves `conn`'s transmits to `out` and its ended responses to `ended`
fn drain_conn(
    conn: &mut UpstreamConn,
    out: &mut VecDeque<Transmit>,
    ended: &mut Vec<(ConnId, Ended)>,
) {
    let id = conn.id();
    out.extend(
        std::iter::from_fn(|| conn.poll_transmit()).map(|msg| Transmit::Upstream { conn: id, msg }),
    );
    ended.extend(std::iter::from_fn(|| conn.poll_ended()).map(|e| (id, e)));
}
