//! The upstream connection machine: one leased upstream WebSocket, its lanes and its liveness.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::lanes::{Ended, Lanes, OpenResponse, Outcome, Owner};
use super::record::{ConnRecord, Release};
use super::state::ConnState;
use super::types::{CloseReason, Routed, UpstreamTransmit};
use crate::config::UpstreamConfig;
use crate::event::{
    ClassifyError, ErrorClass, ServerEvent, ServerEventKind, Utf8, classify_server_event,
    classify_server_text,
};
use crate::timer::{TimerName, TimerTable};
use crate::{ConnId, FreeWhenEmpty, Lane, ResponseId, StreamId, TurnId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnTimer {
    Ping,
    PongTimeout,
    MaxAge,
    ReadTimeout,
}

impl TimerName for ConnTimer {
    const ALL: &'static [Self] = &[
        Self::MaxAge,
        Self::PongTimeout,
        Self::ReadTimeout,
        Self::Ping,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// One upstream connection while a session holds it
///
/// Sans-IO: the session feeds it frames, pongs and timeouts with `now`, and drains
/// [`poll_transmit`](Self::poll_transmit) and [`poll_ended`](Self::poll_ended) after each input.
#[derive(Debug)]
pub struct UpstreamConn {
    record: ConnRecord,
    state: ConnState,
    lanes: Lanes,
    timers: TimerTable<4>,
    transmits: VecDeque<UpstreamTransmit>,
    ended: VecDeque<Ended>,
    /// False while the session deliberately stops reading (slow client)
    reading: bool,
    closed_by: Option<CloseReason>,
    /// Upstream's connection limit was reached: its error arrived, or the socket ended at
    /// `upstream.connection_limit` or later (responses it ends count as cut at the limit)
    at_conn_limit: bool,
    /// `opened_at + upstream.connection_limit`
    limit_at: Instant,
    ping_interval: std::time::Duration,
    pong_timeout: std::time::Duration,
    read_timeout: std::time::Duration,
    write_timeout: std::time::Duration,
}

impl UpstreamConn {
    /// A leased conn, open, built from the record the pool handed out
    pub fn new(record: ConnRecord, now: Instant, cfg: &UpstreamConfig) -> Self {
        let mut conn = Self {
            state: ConnState::Open,
            lanes: Lanes::default(),
            timers: TimerTable::default(),
            transmits: VecDeque::with_capacity(4),
            ended: VecDeque::with_capacity(4),
            reading: true,
            closed_by: None,
            at_conn_limit: false,
            limit_at: record.opened_at + cfg.connection_limit,
            ping_interval: cfg.ping_interval,
            pong_timeout: cfg.pong_timeout,
            read_timeout: cfg.read_timeout,
            write_timeout: cfg.write_timeout,
            record,
        };
        conn.timers
            .set(ConnTimer::MaxAge, conn.record.opened_at + cfg.max_age);
        conn.timers.set(
            ConnTimer::Ping,
            conn.record.last_read.max(now) + conn.ping_interval,
        );
        if conn.timers.is_expired(ConnTimer::MaxAge, now) {
            conn.retire();
        }
        conn
    }

    /// Handles one upstream text frame (`utf8`: whether the shell's WebSocket library already
    /// validated its encoding)
    ///
    /// Call after the shell read a text frame from this conn's socket; then drain
    /// [`poll_ended`](Self::poll_ended). Error events make the conn dirty (every branch),
    /// a frame no response can own is a tail packet and makes it dirty too.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        frame: &'a [u8],
        utf8: Utf8,
        next_turn: &mut impl FnMut() -> TurnId,
    ) -> Result<Routed<'a>, ClassifyError> {
        self.note_read(now);
        // A frame proves the conn alive as well as a pong would: a peer busy streaming may
        // read (and answer) the ping only after its response, and a backlog read late (a
        // slow client held the reading back) must not make upstream look dead.
        self.timers.stop(ConnTimer::PongTimeout);
        let classified = match utf8 {
            Utf8::Validated => classify_server_text(frame),
            Utf8::Unchecked => classify_server_event(frame),
        };
        let event = match classified {
            Ok(event) => event,
            Err(e) => {
                // Upstream never sends non-JSON: the stream can no longer be trusted.
                self.mark_dirty();
                return Err(e);
            }
        };
        let owner = self
            .lanes
            .route(event.kind, event.stream_id, now, next_turn);
        match owner {
            Owner::Response { turn, .. } => self.apply_to_response(turn, &event, now),
            Owner::ConnectionError => {
                let at_limit = is_limit_error(&event);
                self.mark_dirty();
                self.at_conn_limit |= at_limit;
                self.end_all(error_outcome(&event));
                if at_limit {
                    self.retire();
                }
            }
            Owner::Tail => self.mark_dirty(),
            Owner::Steering => {}
        }
        Ok(Routed { event, owner })
    }

    fn apply_to_response(&mut self, turn: TurnId, event: &ServerEvent<'_>, now: Instant) {
        let kind = event.kind;
        if kind == ServerEventKind::ResponseCreated
            && let Some(id) = event
                .response_id
                .and_then(|raw| ResponseId::new(Bytes::copy_from_slice(raw)))
        {
            self.lanes.name(turn, id);
        }
        let outcome = match kind {
            ServerEventKind::ResponseCompleted => Outcome::Completed,
            ServerEventKind::ResponseIncomplete => Outcome::Incomplete,
            ServerEventKind::ResponseFailed => Outcome::Failed,
            ServerEventKind::Error => {
                self.mark_dirty();
                error_outcome(event)
            }
            _ => return self.arm_read_timeout(),
        };
        let Some(mut ended) = self
            .lanes
            .end(turn, outcome.clone(), event.store, event.usage, now)
        else {
            return;
        };
        let r = &mut ended.response;
        if r.id.is_none() {
            r.id = event
                .response_id
                .and_then(|raw| ResponseId::new(Bytes::copy_from_slice(raw)));
        }
        let failed_continuation = !matches!(outcome, Outcome::Completed | Outcome::Incomplete);
        match (&r.id, failed_continuation) {
            (Some(id), false) => {
                self.record
                    .cache(r.lane.clone(), id.clone(), ended.store.unwrap_or(true))
            }
            (_, true) => {
                // Upstream evicts the referenced response after a failed same-lane continuation.
                if let Some(prev) = &r.previous
                    && self
                        .record
                        .lane_cache
                        .iter()
                        .any(|c| &c.response == prev && c.lane == r.lane)
                {
                    self.record.evict(prev);
                }
            }
            _ => {}
        }
        if is_limit_error(event) {
            self.at_conn_limit = true;
            ended.cut_at_conn_limit = true;
            self.move_to_retiring();
        }
        self.ended.push_back(ended);
        self.arm_read_timeout();
        self.close_if_retired();
    }

    /// Handles a pong from upstream
    pub fn handle_pong(&mut self, now: Instant) {
        self.note_read(now);
        self.timers.stop(ConnTimer::PongTimeout);
    }

    /// Handles the end of the socket (read error, close frame, EOF)
    ///
    /// Every open response ends as [`Outcome::UpstreamLost`]; at `upstream.connection_limit`
    /// or later each counts as cut at the limit (upstream may close without its error).
    pub fn handle_closed(&mut self, now: Instant) {
        self.at_conn_limit |= now >= self.limit_at;
        self.close_now(CloseReason::SocketEnded);
    }

    /// Handles a write the shell abandoned (deadline passed or session cancelled)
    ///
    /// A write abandoned after its first byte breaks the WebSocket framing. One abandoned
    /// before it leaves a frame upstream will never see, so the lanes cannot be trusted either:
    /// both close the conn and count as upstream lost.
    pub fn handle_write_abandoned(&mut self) {
        self.close_now(CloseReason::AbandonedWrite);
    }

    /// Fires expired timers; call when the shell's timer for [`poll_timeout`](Self::poll_timeout) fires
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired::<ConnTimer>(now) {
            match timer {
                ConnTimer::MaxAge => self.retire(),
                ConnTimer::Ping => {
                    if self.is_live() {
                        self.transmits.push_back(UpstreamTransmit::Ping);
                        if self.reading {
                            self.timers
                                .set(ConnTimer::PongTimeout, now + self.pong_timeout);
                        }
                        self.timers.set(ConnTimer::Ping, now + self.ping_interval);
                    }
                }
                ConnTimer::PongTimeout => self.close_now(CloseReason::PongTimeout),
                ConnTimer::ReadTimeout => self.end_stalled(now),
            }
        }
    }

    /// Writes a `response.create` for `turn` on `lane`
    ///
    /// Call only while [`takes_creates`](Self::takes_creates); records the lane as used.
    pub fn send_create(
        &mut self,
        now: Instant,
        turn: TurnId,
        lane: Lane,
        previous: Option<ResponseId>,
        frame: Bytes,
    ) {
        if let Some(name) = &lane
            && !self.record.has_used_lane(name)
        {
            self.record.named_lanes.push(name.clone());
        }
        self.lanes.push(OpenResponse {
            turn,
            lane,
            id: None,
            previous,
            sent_at: now,
            first_event_at: None,
            successor: false,
            quiet_since: now,
        });
        self.queue_text(now, frame);
        self.arm_read_timeout();
    }

    /// Writes a `response.steer` / `response.inject` frame; false if `target` is not open here
    pub fn send_steer(&mut self, now: Instant, target: &ResponseId, frame: Bytes) -> bool {
        self.is_live() && self.lanes.steer_sent(target) && self.send_raw(now, frame)
    }

    /// Takes no new creates from now on; closes when its unfinished responses have ended
    pub fn retire(&mut self) {
        self.move_to_retiring();
        self.close_if_retired();
    }

    /// Open or Dirty → Retiring; a conn already retiring or closing stays as it is
    fn move_to_retiring(&mut self) {
        if matches!(self.state, ConnState::Open | ConnState::Dirty) {
            self.move_to(ConnState::Retiring);
        }
    }

    /// The one place the state changes: debug-asserts the edge is in the diagram
    fn move_to(&mut self, next: ConnState) {
        debug_assert!(
            self.state.has_edge_to(next),
            "conn {}: no edge {:?} -> {:?}",
            self.record.id,
            self.state,
            next
        );
        self.state = next;
    }

    /// Marks the conn dirty: its holder may keep it, nobody else ever gets it
    pub fn mark_dirty(&mut self) {
        if self.state == ConnState::Open {
            self.move_to(ConnState::Dirty);
        }
    }

    /// Sends a close frame (unless the socket already ended)
    pub fn close(&mut self) {
        if !matches!(self.state, ConnState::Closing | ConnState::Closed) {
            self.move_to(ConnState::Closing);
            self.closed_by.get_or_insert(CloseReason::Retired);
            self.transmits.push_back(UpstreamTransmit::Close);
            self.timers.stop_all();
        }
    }

    /// Pauses (false) or resumes (true) reading this conn's socket
    ///
    /// While paused (a slow client), neither the pong timeout nor the read timeout runs: the
    /// shell is not reading, so their absence proves nothing; on resume every response's
    /// silence counts from then.
    pub fn set_reading(&mut self, now: Instant, reading: bool) {
        if self.reading == reading {
            return;
        }
        self.reading = reading;
        if reading {
            self.lanes.restart_clocks(now);
            self.note_read(now);
            self.arm_read_timeout();
        } else {
            self.timers.stop(ConnTimer::PongTimeout);
            self.timers.stop(ConnTimer::ReadTimeout);
        }
    }

    /// Ends a drain that hit its time limit: the conn is closed, and its open responses end as
    /// upstream lost
    pub fn drain_timed_out(&mut self) {
        self.close_now(CloseReason::DrainTimeout);
    }

    /// Cuts a conn whose holder's client stopped reading: closed, its open responses end as
    /// upstream lost (their slots are released with them)
    pub fn cut_for_blocked_client(&mut self) {
        self.close_now(CloseReason::ClientBlocked);
    }

    /// Ends every open response as [`Outcome::CutAtShutdown`] (the gateway's shutdown grace ran
    /// out); the conn is dirty, so its holder's release closes it
    pub fn cut_at_shutdown(&mut self) {
        self.mark_dirty();
        self.end_all(Outcome::CutAtShutdown);
    }

    /// Writes a frame that opens no response (`response.inject`)
    pub fn send_raw(&mut self, now: Instant, frame: Bytes) -> bool {
        if !self.is_live() {
            return false;
        }
        self.queue_text(now, frame);
        true
    }

    /// Next frame to write, in order
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<UpstreamTransmit> {
        self.transmits.pop_front()
    }

    /// Next response that ended, in the order they ended
    #[must_use]
    pub fn poll_ended(&mut self) -> Option<Ended> {
        self.ended.pop_front()
    }

    /// The earliest armed deadline
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Gives the conn back: the record and whether the pool may lease it again
    pub fn into_release(self) -> Release {
        let reusable = self.is_reusable();
        Release {
            record: self.record,
            reusable,
        }
    }

    /// The conn's handle
    pub fn id(&self) -> ConnId {
        self.record.id
    }

    /// Its lifecycle state
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Why its own machine closed it, if it did
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed_by
    }

    /// Its history (lanes used, cache)
    pub fn record(&self) -> &ConnRecord {
        &self.record
    }

    /// Open, and with nothing unfinished: the pool may lease it again
    pub fn is_reusable(&self) -> bool {
        self.state == ConnState::Open && self.lanes.unfinished() == 0 && !self.lanes.steering()
    }

    /// Whether it takes new creates (Open or Dirty)
    pub fn takes_creates(&self) -> bool {
        matches!(self.state, ConnState::Open | ConnState::Dirty)
    }

    /// Whether the socket is still usable (not closing or closed)
    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            ConnState::Open | ConnState::Dirty | ConnState::Retiring
        )
    }

    /// Gives back the room of its empty queues (see [`Session::free_idle_room`])
    ///
    /// [`Session::free_idle_room`]: crate::session::Session::free_idle_room
    pub fn free_idle_room(&mut self) {
        self.transmits.free_when_empty();
        self.ended.free_when_empty();
        self.lanes.free_empty_lists();
    }

    /// Responses forwarded and not yet ended
    pub fn unfinished(&self) -> usize {
        self.lanes.unfinished()
    }

    /// Distinct named lanes used over the conn's lifetime
    pub fn named_lanes_used(&self) -> usize {
        self.record.named_lanes.len()
    }

    /// Whether `lane` has been used on this conn
    pub fn has_used_lane(&self, lane: &StreamId) -> bool {
        self.record.has_used_lane(lane)
    }

    /// Whether the lane of `raw` has an open response here
    pub fn lane_of(&self, id: &ResponseId) -> Option<&Lane> {
        self.lanes.lane_of(id)
    }

    /// Queues a text frame, to be written within `upstream.write_timeout`
    fn queue_text(&mut self, now: Instant, frame: Bytes) {
        self.transmits.push_back(UpstreamTransmit::Text {
            frame,
            deadline: now + self.write_timeout,
        });
    }

    fn note_read(&mut self, now: Instant) {
        self.record.last_read = now;
        if self.is_live() {
            self.timers.set(ConnTimer::Ping, now + self.ping_interval);
        }
    }

    /// Arms the read timeout at the moment the first running response's silence reaches
    /// `read_timeout` (only that response's own events restart its clock)
    fn arm_read_timeout(&mut self) {
        match self.lanes.stall_deadline(self.read_timeout) {
            Some(at) if self.reading && self.is_live() => {
                self.timers.set(ConnTimer::ReadTimeout, at)
            }
            _ => self.timers.stop(ConnTimer::ReadTimeout),
        }
    }

    /// Ends each stalled lane with one [`Outcome::Stalled`] per response; the conn turns dirty
    /// and retires, so its other lanes finish first
    fn end_stalled(&mut self, now: Instant) {
        let stalled = self.lanes.stalled(now, self.read_timeout);
        if !stalled.is_empty() && self.is_live() {
            let ended = &mut self.ended;
            let mut out = |e| ended.push_back(e);
            for lane in &stalled {
                self.lanes
                    .end_lanes(|l| l == lane, &Outcome::Stalled, &mut out);
            }
            self.mark_dirty();
            self.closed_by.get_or_insert(CloseReason::ReadTimeout);
            self.retire();
        }
        self.arm_read_timeout();
    }

    fn end_all(&mut self, outcome: Outcome) {
        let cut =
            self.at_conn_limit && matches!(outcome, Outcome::UpstreamLost | Outcome::Error { .. });
        let ended = &mut self.ended;
        self.lanes.end_lanes(|_| true, &outcome, &mut |mut e| {
            e.cut_at_conn_limit = cut;
            ended.push_back(e)
        });
        self.arm_read_timeout();
    }

    fn close_if_retired(&mut self) {
        if self.lanes.unfinished() == 0 {
            self.timers.stop(ConnTimer::ReadTimeout);
            if self.state == ConnState::Retiring && !self.lanes.steering() {
                self.close();
            }
        }
    }

    fn close_now(&mut self, reason: CloseReason) {
        if self.state == ConnState::Closed {
            return;
        }
        let was_live = self.is_live();
        self.move_to(ConnState::Closed);
        self.closed_by.get_or_insert(reason);
        self.timers.stop_all();
        self.end_all(Outcome::UpstreamLost);
        if was_live && reason != CloseReason::SocketEnded {
            // Tell the shell to drop the socket; a close frame may never get through.
            self.transmits.push_back(UpstreamTransmit::Close);
        }
    }
}

/// Whether `event` is upstream's `websocket_connection_limit_reached` error
fn is_limit_error(event: &ServerEvent<'_>) -> bool {
    event
        .error
        .as_ref()
        .is_some_and(|e| e.class == ErrorClass::WebsocketConnectionLimitReached)
}

/// How an `error` event ends a response
fn error_outcome(event: &ServerEvent<'_>) -> Outcome {
    Outcome::Error {
        status: event.error.as_ref().map_or(502, |e| e.status),
        retry_after: event
            .error
            .as_ref()
            .and_then(|e| e.retry_after_secs())
            .map(std::time::Duration::from_secs),
    }
}
