//! Lifecycle inputs that are not turns: shutdown, client keepalive, over-size messages.

use std::time::Instant;

use super::{Hop, Refusal, Session, SessionPhase, SessionTimer, SlotState};

impl Session {
    /// Handles the gateway shutting down (SIGTERM/SIGINT)
    ///
    /// Creates not yet sent upstream, and any the client sends from now on, get a 503 `error`
    /// event; responses in flight may finish for `shutdown_grace`; then, or as soon as nothing
    /// is in flight, the client is closed with 1012 so it reconnects elsewhere.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.shutting_down
            || matches!(self.phase, SessionPhase::Draining | SessionPhase::Finished)
        {
            return;
        }
        self.shutting_down = true;
        self.timers.set(
            SessionTimer::ShutdownGrace,
            now + self.cfg.session.shutdown_grace,
        );
        while let Some(head) = self.pending.pop_front() {
            if head.slot == SlotState::Granted {
                self.release_slot();
            }
            self.refuse(&head, Refusal::shutting_down());
        }
        self.settle(now);
    }

    /// Handles a pong from the client
    pub fn handle_client_pong(&mut self, now: Instant) {
        self.client_active_at = now;
        self.timers.stop(SessionTimer::ClientPong);
    }

    /// Handles a message over `upstream.max_message_size` on either hop
    ///
    /// The client is closed with 1009 (one limit, both hops); open responses are drained as if
    /// the client had left. An over-size upstream message also ends that conn: its stream
    /// cannot be followed past a message the gateway refused to read.
    pub fn handle_message_too_big(&mut self, now: Instant, hop: Hop) {
        if self.phase == SessionPhase::Finished {
            return;
        }
        self.close_client(1009, "message too big");
        self.handle_client_gone(now);
        if let Hop::Upstream(conn) = hop
            && let Some(c) = self.conn_mut(conn)
        {
            c.handle_closed(now);
        }
        self.settle(now);
    }

    /// Pings the client if it has been silent for `client_ping_interval`, else re-arms
    pub(super) fn client_ping_due(&mut self, now: Instant) {
        let due = self.client_active_at + self.cfg.session.client_ping_interval;
        if now < due {
            self.timers.set(SessionTimer::ClientPing, due);
            return;
        }
        self.ping_client = true;
        // The first unanswered ping starts the pong deadline; later pings must not move it.
        if !self.backpressured && self.timers.get(SessionTimer::ClientPong).is_none() {
            self.timers.set(
                SessionTimer::ClientPong,
                now + self.cfg.session.client_pong_timeout,
            );
        }
        self.timers.set(
            SessionTimer::ClientPing,
            now + self.cfg.session.client_ping_interval,
        );
    }
}
