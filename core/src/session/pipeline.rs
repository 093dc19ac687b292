//! The create pipeline: account → conn → lane rules → room → slot → upstream, and the
//! bookkeeping that runs after every input (`settle`).

use std::time::Instant;

use super::{
    ContinuationCheck, Create, Phase, Refusal, Route, Session, SessionEvent, SessionRequest,
    SessionTimer, Shutdown,
};
use crate::conn::{CloseReason, ConnState, UpstreamConn};
use crate::errors::GatewayError;
use crate::event::{
    previous_response_not_found_event, rewrite_create_model,
    websocket_connection_limit_reached_event, websocket_stream_limit_reached_event,
};
use crate::turn::{Models, Slot, SlotRequest, Turn, TurnEvent, TurnFacts, pinning};

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
            if self.is_finished() {
                return;
            }
            self.rotate_and_release(now);
            if let Phase::Draining { stalled } = self.phase
                && self.unfinished() == 0
            {
                // A response that stalled ended the drain as surely as a terminal, not cleanly.
                let clean = !stalled;
                self.turn_event(TurnEvent::DrainFinished { clean });
                return self.finish(now);
            }
            if !self.pump(now) {
                break;
            }
        }
        self.collect_conn_outputs(now);
        if self.shutdown == Shutdown::CloseWhenIdle
            && self.takes_client_input()
            && self.unfinished() == 0
        {
            self.close_client(1012, "gateway restarting");
            return self.finish(now);
        }
        let idle = self.phase == Phase::Active && self.pending.is_empty() && self.unfinished() == 0;
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
        while !self.pending.is_empty() && self.phase == Phase::Active {
            match self.step_head(now) {
                Step::Sent => progressed = true,
                Step::Refused(refusal) => {
                    let head = self.pending.pop_front().expect("head exists");
                    self.refuse(head, refusal);
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
        let create = head.create().expect("a held create");
        let Some(admission) = self.admitted_account() else {
            if self.route == Route::Unscheduled {
                let request = SessionRequest::Schedule {
                    turn: head.id(),
                    previous: create.previous.clone(),
                    connection_local: create.connection_local,
                    prompt_cache_key: create.prompt_cache_key.clone(),
                    exclude: self.exclude.clone(),
                };
                self.requests.push_back(request);
                self.ask_schedule();
                // The schedule judges the create's previous response by the group rule itself.
                self.head_create().check = ContinuationCheck::NotNeeded;
            }
            return Step::Wait;
        };
        let (account, max_concurrency) = (admission.account, admission.max_concurrency);
        match create.check {
            ContinuationCheck::NotNeeded => {}
            ContinuationCheck::Due => {
                let (turn, previous) = (head.id(), create.previous.clone().expect("checked"));
                self.head_create().check = ContinuationCheck::Asked;
                self.requests
                    .push_back(SessionRequest::CheckContinuation { turn, previous });
                return Step::Wait;
            }
            ContinuationCheck::Asked => return Step::Wait,
        }
        if let Some(at) = head.not_before()
            && at > now
        {
            self.timers.set(SessionTimer::RetryBackoff, at);
            return Step::Wait;
        }
        // A connection-local chain can only continue on the conn whose cache holds it.
        if let (true, Some(prev)) = (create.connection_local, &create.previous)
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
            if create.connection_local
                && create.previous.is_some()
                && self.active.as_ref().is_some_and(UpstreamConn::is_live)
            {
                return Step::Refused(Refusal::ConnectionLimitReached);
            }
            if let Route::Admitted(_) = self.route {
                // Held creates may move to another account only while nothing else of this
                // session runs (its slots and conns belong to the admission's account) and the
                // head is not tied to this account by its previous response.
                let may_move_from = (create.previous.is_none() && self.unfinished() == 0)
                    .then(|| self.exclude.clone());
                self.ask_lease(may_move_from);
            }
            return Step::Wait;
        };
        // Another client socket's store:false chain still cached on the conn this session
        // leased: upstream would continue it, so answer as a fresh socket would be answered.
        if let Some(prev) = &create.previous
            && self.inherited_local.contains(prev)
            && !self.known.iter().any(|k| &k.id == prev)
        {
            return Step::Refused(Refusal::PreviousResponseNotFound);
        }
        if let Some(lane) = &create.lane
            && !conn.has_used_lane(lane)
        {
            let new_for_session = !self.session_lanes.contains(lane);
            if new_for_session && self.session_lanes.len() >= max_lanes {
                return Step::Refused(Refusal::StreamLimitReached);
            }
            if conn.named_lanes_used() >= max_lanes {
                // Upstream counts lanes over the conn's lifetime: earlier holders used them up.
                return match (create.connection_local, self.retiring.is_none()) {
                    (true, _) => Step::Refused(Refusal::StreamLimitReached),
                    (false, true) => Step::Rotate,
                    (false, false) => Step::Wait, // one rotation at a time
                };
            }
        }
        if conn.unfinished() >= self.cfg.upstream.max_inflight_per_conn {
            return Step::Wait;
        }
        match head.slot() {
            // A client that reads nothing now would leave the response's slot held unread:
            // the create waits for the client to read before it asks for one.
            Slot::None if self.backpressured() => Step::Wait,
            Slot::None => {
                let ask = self.pending[0].ask_slot(account, max_concurrency);
                self.requests.push_back(SessionRequest::Slot(ask));
                self.timers.set(
                    SessionTimer::SlotWait,
                    now + self.cfg.session.slot_wait_timeout,
                );
                Step::Wait
            }
            Slot::Waiting(_) => Step::Wait,
            Slot::Granted(_) => {
                self.timers.stop(SessionTimer::SlotWait);
                self.send_head(now);
                Step::Sent
            }
        }
    }

    /// The head create, to amend before it goes upstream
    fn head_create(&mut self) -> &mut Create {
        let head = self.pending.front_mut().expect("head exists");
        head.create_mut().expect("a held create")
    }

    fn send_head(&mut self, now: Instant) {
        let mut head = self.pending.pop_front().expect("head exists");
        let admission = self.admitted_account().expect("admitted");
        let account = admission.account;
        let create = head.create().expect("a held create");
        let model = create
            .client_model
            .clone()
            .or_else(|| self.last_model.clone());
        let client_model = model.clone();
        let models = model.and_then(|client| Models::of(&admission.model_map, client));
        let frame = match (&models, &create.client_model) {
            (Some(models), Some(_)) => rewrite_create_model(&create.frame, models.upstream_str()),
            _ => create.frame.clone(),
        };
        if let Some(lane) = &create.lane
            && !self.session_lanes.contains(lane)
        {
            self.session_lanes.push(lane.clone());
        }
        let (lane, previous) = (create.lane.clone(), create.previous.clone());
        let (accepted_at, trace_parent) = (create.accepted_at, create.trace_parent);
        let pinning = pinning(previous.is_some(), create.connection_local);
        // The accounts a failover avoided were this create's; it goes upstream now, so the
        // next create of the session may use any account again.
        self.exclude.clear();
        let retry = head.retry_state(now, account, pinning, &self.cfg.scheduler);
        retry.attempt_started(account);
        let conn = self.active.as_mut().expect("active conn takes creates");
        conn.send_create(now, head.id(), lane, previous, frame);
        let facts = TurnFacts {
            account,
            client_model,
            models,
            accepted_at,
            trace_parent,
        };
        head.send(conn.id(), facts);
        self.turns.push(head);
    }

    /// Queues an event of a create's life
    pub(super) fn turn_event(&mut self, event: TurnEvent) {
        self.events.push_back(SessionEvent::Turn(event));
    }

    /// Answers a create that will not go upstream; what it holds of a slot goes back
    pub(super) fn refuse(&mut self, mut turn: Turn<Create>, refusal: Refusal) {
        let create = turn.create().expect("a create not yet relayed");
        let lane = create.lane.as_ref();
        let frame = match &refusal {
            Refusal::PreviousResponseNotFound => previous_response_not_found_event(
                create.previous.as_ref().map_or("", |p| p.as_str()),
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
        if self.takes_client_input() {
            self.client_out.push_back(frame);
        }
        self.withdraw(&mut turn);
        self.events.push_back(SessionEvent::Refused {
            turn: turn.id(),
            refusal,
        });
    }

    /// Ends a create that has no response: a slot wait is cancelled, a slot given back
    fn withdraw(&mut self, turn: &mut Turn<Create>) {
        let request = turn.withdraw();
        if let Some(SlotRequest::CancelWait { .. }) = request {
            self.timers.stop(SessionTimer::SlotWait);
        }
        self.requests.extend(request.map(SessionRequest::Slot));
    }

    pub(super) fn slot_wait_expired(&mut self) {
        let waiting = self
            .pending
            .front()
            .is_some_and(|p| matches!(p.slot(), Slot::Waiting(_)));
        if waiting {
            let head = self.pending.pop_front().expect("head exists");
            let refusal = Refusal::Gateway(GatewayError::concurrency_limit_reached());
            self.refuse(head, refusal);
        }
    }

    /// Drops held creates (the client left); slots they hold or wait for are given back
    pub(super) fn drop_pending(&mut self) {
        self.timers.stop(SessionTimer::SlotWait);
        while let Some(mut p) = self.pending.pop_front() {
            self.events
                .push_back(SessionEvent::Dropped { turn: p.id() });
            self.withdraw(&mut p);
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
        self.requests
            .push_back(SessionRequest::Release(conn.into_release()));
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
        if self.is_finished() {
            return;
        }
        self.drop_pending();
        self.enter_finished();
        self.timers.stop_all();
        // A conn with responses still open at the end (e.g. an upstream loss closed the client)
        // goes back not reusable: nobody will read their terminal.
        for conn in [self.active.take(), self.retiring.take()]
            .into_iter()
            .flatten()
        {
            self.release_conn(now, conn);
        }
        self.turn_event(TurnEvent::Finished);
    }

    /// The client's write buffer stayed full for `blocked_client_timeout`: with responses open
    /// (each holding a slot) the control plane learns that their slots may be taken back; with
    /// none open only `client_write_timeout` applies, so look again later
    pub(super) fn blocked_client_due(&mut self, now: Instant) {
        if self.unfinished() == 0 || self.admitted_account().is_none() {
            self.timers.set(
                SessionTimer::BlockedClient,
                now + self.cfg.session.blocked_client_timeout,
            );
            return;
        }
        self.client_blocked();
    }

    /// Creates wait for the slots this blocked client holds: it is closed 1008 and its open
    /// responses are cut, not drained, so the slots come back now
    pub(super) fn yield_slots(&mut self, now: Instant) {
        if !self.backpressured() || self.unfinished() == 0 || self.phase != Phase::Active {
            return;
        }
        self.close_client(1008, "client did not read its events in time");
        self.handle_client_gone(now);
        for conn in self.conns_mut() {
            conn.cut_for_blocked_client();
        }
        self.collect_conn_outputs(now);
        if !self.is_finished() {
            self.turn_event(TurnEvent::DrainFinished { clean: false });
            self.finish(now);
        }
    }

    pub(super) fn drain_expired(&mut self, now: Instant) {
        for conn in self.conns_mut() {
            conn.drain_timed_out();
        }
        self.collect_conn_outputs(now);
        self.turn_event(TurnEvent::DrainFinished { clean: false });
        self.finish(now);
    }
}
