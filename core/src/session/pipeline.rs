//! The create pipeline: account → conn → lane rules → room → slot → upstream, and the
//! bookkeeping that runs after every input (`settle`).

use std::time::Instant;

use super::{
    ContinuationCheck, PendingCreate, Refusal, Session, SessionCommand, SessionEvent, SessionPhase,
    SessionTimer, TurnState,
};
use crate::conn::{CloseReason, ConnState, UpstreamConn};
use crate::errors::GatewayError;
use crate::event::{
    previous_response_not_found_event, rewrite_create_model,
    websocket_connection_limit_reached_event, websocket_stream_limit_reached_event,
};
use crate::scheduler::RetryState;
use crate::turn::{Models, Slot, SlotRequest, TurnFacts, pinning};

/// What the head of the held queue waits for
enum Step {
    Sent,
    Refused(Refusal),
    Rotate,
    Wait,
}

impl Session {
    /// Runs after every input: collects conn outputs, rotates and releases conns, moves held
    /// creates forward, finishes drains and arms the idle timer
    pub(super) fn settle(&mut self, now: Instant) {
        loop {
            self.collect_conn_outputs(now);
            if self.phase == SessionPhase::Finished {
                return;
            }
            self.rotate_and_release(now);
            if self.phase == SessionPhase::Draining && self.unfinished() == 0 {
                // A response that stalled ended the drain as surely as a terminal, not cleanly.
                let clean = !self.drain_stalled;
                self.events.push_back(SessionEvent::DrainFinished { clean });
                return self.finish(now);
            }
            if !self.pump(now) {
                break;
            }
        }
        self.collect_conn_outputs(now);
        if self.close_when_idle
            && matches!(
                self.phase,
                SessionPhase::Active | SessionPhase::AwaitingFirst
            )
            && self.unfinished() == 0
        {
            self.close_client(1012, "gateway restarting");
            return self.finish(now);
        }
        let idle =
            self.phase == SessionPhase::Active && self.pending.is_empty() && self.unfinished() == 0;
        match (idle, self.timers.get(SessionTimer::InterTurnIdle)) {
            (true, None) => self.timers.set(
                SessionTimer::InterTurnIdle,
                now + self.cfg.session.inter_turn_idle_timeout,
            ),
            (false, Some(_)) => self.timers.stop(SessionTimer::InterTurnIdle),
            _ => {}
        }
    }

    /// Moves held creates forward; true if anything changed
    fn pump(&mut self, now: Instant) -> bool {
        let mut progressed = false;
        while !self.pending.is_empty() && self.phase == SessionPhase::Active {
            match self.step_head(now) {
                Step::Sent => progressed = true,
                Step::Refused(refusal) => {
                    let head = self.pending.pop_front().expect("head exists");
                    if head.slot == Slot::Granted {
                        self.release_slot();
                    }
                    self.refuse(&head, refusal);
                    progressed = true;
                }
                Step::Rotate => {
                    let conn = self.active.take().expect("rotation needs an active conn");
                    self.retire_conn(now, conn);
                    progressed = true;
                }
                Step::Wait => break,
            }
        }
        progressed
    }

    fn step_head(&mut self, now: Instant) -> Step {
        let max_lanes = self.cfg.upstream.max_named_lanes_per_conn;
        let Some(head) = self.pending.front() else {
            return Step::Wait;
        };
        let Some(admission) = &self.admission else {
            if !self.scheduling {
                self.scheduling = true;
                // The schedule judges the create's previous response by the group rule itself.
                self.pending[0].check = ContinuationCheck::NotNeeded;
                let head = &self.pending[0];
                self.commands.push_back(SessionCommand::Schedule {
                    turn: head.turn,
                    previous: head.previous.clone(),
                    connection_local: head.connection_local,
                    prompt_cache_key: head.prompt_cache_key.clone(),
                    exclude: self.exclude.clone(),
                });
            }
            return Step::Wait;
        };
        match head.check {
            ContinuationCheck::NotNeeded => {}
            ContinuationCheck::Due => {
                let (turn, previous) = (head.turn, head.previous.clone().expect("checked"));
                self.pending[0].check = ContinuationCheck::Asked;
                self.commands
                    .push_back(SessionCommand::CheckContinuation { turn, previous });
                return Step::Wait;
            }
            ContinuationCheck::Asked => return Step::Wait,
        }
        let account = admission.account;
        if let Some(at) = head.not_before
            && at > now
        {
            self.timers.set(SessionTimer::RetryBackoff, at);
            return Step::Wait;
        }
        // A connection-local chain can only continue on the conn whose cache holds it.
        if let (true, Some(prev)) = (head.connection_local, &head.previous)
            && let Some(known) = self.known.iter().rev().find(|k| &k.id == prev)
        {
            let on_active = self
                .active
                .as_ref()
                .is_some_and(|c| c.id() == known.conn && c.takes_creates());
            if !on_active {
                // Retired (max age, connection limit, lane overflow) ⇒ upstream's limit error;
                // lost ⇒ the cache is gone, as on a new socket.
                let retired = self.retired_conns.contains(&known.conn);
                return Step::Refused(if retired {
                    Refusal::ConnectionLimitReached
                } else {
                    Refusal::PreviousResponseNotFound
                });
            }
        }
        let Some(conn) = self.active.as_ref().filter(|c| c.takes_creates()) else {
            if self.active.as_ref().is_some_and(UpstreamConn::is_live) && self.retiring.is_some() {
                return Step::Wait; // one rotation at a time: the previous retiring conn must end first
            }
            if head.connection_local
                && head.previous.is_some()
                && self.active.as_ref().is_some_and(UpstreamConn::is_live)
            {
                return Step::Refused(Refusal::ConnectionLimitReached);
            }
            if !self.acquiring {
                self.acquiring = true;
                // Held creates may move to another account only while nothing else of this
                // session runs (its slots and conns belong to the admission's account) and the
                // head is not tied to this account by its previous response.
                let may_move_from = (head.previous.is_none() && self.unfinished() == 0)
                    .then(|| self.exclude.clone());
                self.commands.push_back(SessionCommand::Acquire {
                    account,
                    compat: admission.compat.clone(),
                    may_move_from,
                });
            }
            return Step::Wait;
        };
        // Another client socket's store:false chain still cached on the conn this session
        // leased: upstream would continue it, so answer as a fresh socket would be answered.
        if let Some(prev) = &head.previous
            && self.inherited_local.contains(prev)
            && !self.known.iter().any(|k| &k.id == prev)
        {
            return Step::Refused(Refusal::PreviousResponseNotFound);
        }
        if let Some(lane) = &head.lane
            && !conn.has_used_lane(lane)
        {
            let new_for_session = !self.session_lanes.contains(lane);
            if new_for_session && self.session_lanes.len() >= max_lanes {
                return Step::Refused(Refusal::StreamLimitReached);
            }
            if conn.named_lanes_used() >= max_lanes {
                // Upstream counts lanes over the conn's lifetime: earlier holders used them up.
                return match (head.connection_local, self.retiring.is_none()) {
                    (true, _) => Step::Refused(Refusal::StreamLimitReached),
                    (false, true) => Step::Rotate,
                    (false, false) => Step::Wait, // one rotation at a time
                };
            }
        }
        if conn.unfinished() >= self.cfg.upstream.max_inflight_per_conn {
            return Step::Wait;
        }
        match head.slot {
            // A client that reads nothing now would leave the response's slot held unread:
            // the create waits for the client to read before it asks for one.
            Slot::None if self.backpressured => Step::Wait,
            Slot::None => {
                let turn = head.turn;
                self.pending[0].slot = Slot::Waiting;
                self.commands
                    .push_back(SessionCommand::Slot(SlotRequest::Acquire {
                        turn,
                        account,
                        max_concurrency: admission.max_concurrency,
                    }));
                self.timers.set(
                    SessionTimer::SlotWait,
                    now + self.cfg.session.slot_wait_timeout,
                );
                Step::Wait
            }
            Slot::Waiting => Step::Wait,
            Slot::Granted => {
                self.timers.stop(SessionTimer::SlotWait);
                self.send_head(now);
                Step::Sent
            }
        }
    }

    fn send_head(&mut self, now: Instant) {
        let mut head = self.pending.pop_front().expect("head exists");
        let admission = self.admission.as_ref().expect("admitted");
        let model = head
            .client_model
            .clone()
            .or_else(|| self.last_model.clone());
        let client_model = model.clone();
        let models = model.and_then(|client| Models::of(&admission.model_map, client));
        let frame = match (&models, &head.client_model) {
            (Some(models), Some(_)) => rewrite_create_model(&head.frame, models.upstream_str()),
            _ => head.frame.clone(),
        };
        if let Some(lane) = &head.lane
            && !self.session_lanes.contains(lane)
        {
            self.session_lanes.push(lane.clone());
        }
        let account = admission.account;
        // The accounts a failover avoided were this create's; it goes upstream now, so the
        // next create of the session may use any account again.
        self.exclude.clear();
        match &mut head.retry {
            Some(retry) => retry.attempt_started(account),
            None => {
                let pinning = pinning(head.previous.is_some(), head.connection_local);
                head.retry = Some(RetryState::new(now, account, pinning, &self.cfg.scheduler));
            }
        }
        head.not_before = None;
        let conn = self.active.as_mut().expect("active conn takes creates");
        conn.send_create(
            now,
            head.turn,
            head.lane.clone(),
            head.previous.clone(),
            frame,
        );
        let retries = head
            .retry
            .as_ref()
            .map(|r| r.notes().to_vec())
            .unwrap_or_default();
        self.turns.push(TurnState {
            turn: head.turn,
            conn: conn.id(),
            facts: TurnFacts {
                account,
                client_model,
                models,
                accepted_at: head.accepted_at,
                trace_parent: head.trace_parent,
                retries,
            },
            retry: Some(head),
            requeue: false,
            successor: false,
        });
    }

    /// Answers a create that will not go upstream
    pub(super) fn refuse(&mut self, head: &PendingCreate, refusal: Refusal) {
        let lane = head.lane.as_ref();
        let frame = match &refusal {
            Refusal::PreviousResponseNotFound => previous_response_not_found_event(
                head.previous.as_ref().map_or("", |p| p.as_str()),
                lane,
            ),
            Refusal::ConnectionLimitReached => websocket_connection_limit_reached_event(lane),
            Refusal::StreamLimitReached => match lane {
                Some(lane) => websocket_stream_limit_reached_event(lane),
                None => GatewayError::bad_request("stream limit reached").event(None),
            },
            Refusal::InvalidStreamId => crate::event::invalid_stream_id_event(),
            Refusal::Gateway(error) => error.event(lane),
        };
        if matches!(
            self.phase,
            SessionPhase::Active | SessionPhase::AwaitingFirst
        ) {
            self.client_out.push_back(frame);
        }
        if head.slot == Slot::Waiting
            && let Some(admission) = &self.admission
        {
            self.timers.stop(SessionTimer::SlotWait);
            self.commands
                .push_back(SessionCommand::Slot(SlotRequest::CancelWait {
                    turn: head.turn,
                    account: admission.account,
                }));
        }
        self.events.push_back(SessionEvent::Refused {
            turn: head.turn,
            refusal,
        });
    }

    pub(super) fn release_slot(&mut self) {
        if let Some(admission) = &self.admission {
            self.commands
                .push_back(SessionCommand::Slot(SlotRequest::Release {
                    account: admission.account,
                }));
        }
    }

    pub(super) fn slot_wait_expired(&mut self) {
        let waiting = self
            .pending
            .front()
            .is_some_and(|p| p.slot == Slot::Waiting);
        if waiting {
            let head = self.pending.pop_front().expect("head exists");
            let refusal = Refusal::Gateway(GatewayError::concurrency_limit_reached());
            self.refuse(&head, refusal);
        }
    }

    /// Drops held creates (the client left); slots they hold or wait for are given back
    pub(super) fn drop_pending(&mut self) {
        self.timers.stop(SessionTimer::SlotWait);
        while let Some(p) = self.pending.pop_front() {
            self.events
                .push_back(SessionEvent::Dropped { turn: p.turn });
            match (p.slot, &self.admission) {
                (Slot::Waiting, Some(a)) => {
                    self.commands
                        .push_back(SessionCommand::Slot(SlotRequest::CancelWait {
                            turn: p.turn,
                            account: a.account,
                        }))
                }
                (Slot::Granted, Some(a)) => {
                    self.commands
                        .push_back(SessionCommand::Slot(SlotRequest::Release {
                            account: a.account,
                        }))
                }
                _ => {}
            }
        }
    }

    /// Moves a conn that stopped taking creates to the retiring slot; releases conns that are done
    pub(super) fn rotate_and_release(&mut self, now: Instant) {
        if self.retiring.as_ref().is_some_and(|c| !c.is_live()) {
            let conn = self.retiring.take().expect("checked");
            self.release_conn(now, conn);
        }
        if self.active.as_ref().is_none_or(UpstreamConn::takes_creates) {
            return;
        }
        let conn = self.active.take().expect("checked");
        if !conn.is_live() {
            self.release_conn(now, conn);
        } else if self.retiring.is_none() {
            self.retire_conn(now, conn);
        } else {
            self.active = Some(conn); // one rotation at a time
        }
    }

    pub(super) fn retire_conn(&mut self, now: Instant, mut conn: UpstreamConn) {
        if conn.is_live() {
            self.events
                .push_back(SessionEvent::Rotated { from: conn.id() });
        }
        conn.retire();
        if conn.unfinished() == 0 || !conn.is_live() {
            self.release_conn(now, conn);
        } else {
            self.note_retired(conn.id());
            self.retiring = Some(conn);
        }
    }

    /// Gives a conn back to the pool after collecting its last outputs; remembers conns that
    /// retired (rather than died) so their chains get the right answer
    pub(super) fn release_conn(&mut self, now: Instant, mut conn: UpstreamConn) {
        self.collect_outputs_of(&mut conn, now);
        if conn.state() == ConnState::Retiring
            || matches!(
                conn.close_reason(),
                Some(CloseReason::Retired | CloseReason::ReadTimeout)
            )
        {
            self.note_retired(conn.id());
        }
        self.commands
            .push_back(SessionCommand::Release(conn.into_release()));
    }

    pub(super) fn note_retired(&mut self, conn: crate::ConnId) {
        if self.retired_conns.contains(&conn) {
            return;
        }
        if self.retired_conns.len() == super::RETIRED_CONNS {
            self.retired_conns.remove(0);
        }
        self.retired_conns.push(conn);
    }

    /// Ends the session: every conn goes back (reusable only if clean)
    pub(super) fn finish(&mut self, now: Instant) {
        if self.phase == SessionPhase::Finished {
            return;
        }
        self.drop_pending();
        self.phase = SessionPhase::Finished;
        self.timers.stop_all();
        for mut conn in [self.active.take(), self.retiring.take()]
            .into_iter()
            .flatten()
        {
            if conn.unfinished() > 0 {
                // Responses still open at the end (e.g. an upstream loss closed the client):
                // nobody will read their terminal, so the conn cannot be trusted.
                conn.mark_dirty();
            }
            self.release_conn(now, conn);
        }
        self.events.push_back(SessionEvent::Finished);
    }

    /// The client's write buffer stayed full for `blocked_client_timeout`: with responses open
    /// (each holding a slot) the control plane learns that their slots may be taken back; with
    /// none open only `client_write_timeout` applies, so look again later
    pub(super) fn blocked_client_due(&mut self, now: Instant) {
        if self.unfinished() == 0 || self.admission.is_none() {
            self.timers.set(
                SessionTimer::BlockedClient,
                now + self.cfg.session.blocked_client_timeout,
            );
            return;
        }
        self.announce_blocked(true);
    }

    /// Tells the control plane the client is blocked holding slots, or no longer is
    pub(super) fn announce_blocked(&mut self, blocked: bool) {
        if self.announced_blocked == blocked {
            return;
        }
        let Some(admission) = &self.admission else {
            return;
        };
        self.announced_blocked = blocked;
        self.commands.push_back(SessionCommand::ClientBlocked {
            account: admission.account,
            blocked,
        });
    }

    /// Creates wait for the slots this blocked client holds: it is closed 1008 and its open
    /// responses are cut, not drained, so the slots come back now
    pub(super) fn yield_slots(&mut self, now: Instant) {
        if !self.backpressured || self.unfinished() == 0 || self.phase != SessionPhase::Active {
            return;
        }
        self.close_client(1008, "client did not read its events in time");
        self.handle_client_gone(now);
        for conn in self.conns_mut() {
            conn.cut_for_blocked_client(now);
        }
        self.collect_conn_outputs(now);
        if self.phase != SessionPhase::Finished {
            self.events
                .push_back(SessionEvent::DrainFinished { clean: false });
            self.finish(now);
        }
    }

    pub(super) fn drain_expired(&mut self, now: Instant) {
        for conn in self.conns_mut() {
            conn.drain_timed_out(now);
        }
        self.collect_conn_outputs(now);
        self.events
            .push_back(SessionEvent::DrainFinished { clean: false });
        self.finish(now);
    }
}
