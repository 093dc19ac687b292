//! Lifecycle inputs that are not turns: shutdown, client keepalive, over-size messages,
//! protocol errors.

use std::time::Instant;

use super::{ClientProtocolError, Hop, Refusal, Session, SessionTimer};

impl Session {
    /// Handles the gateway shutting down (SIGTERM/SIGINT)
    ///
    /// Creates not yet sent upstream, and any the client sends from now on, get a 503 `error`
    /// event; responses in flight may finish for `shutdown_grace`; then, or as soon as nothing
    /// is in flight, the client is closed with 1012 so it reconnects elsewhere. A session idle
    /// at shutdown closes at a random instant within `shutdown_close_spread`, so that the
    /// clients of all idle sockets do not reconnect at one instant (busy sessions spread their
    /// closes on their own, as their responses end).
    ///
    /// ```text
    ///   handle_shutdown ─┬─ idle ─▶ wait until now + spread × U[0,1] ─▶ close 1012
    ///                    └─ busy ─▶ last response ends ──────────────▶ close 1012
    ///   either, at shutdown_grace: open responses end as cut_at_shutdown ─▶ close 1012
    /// ```
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.shutting_down() || !self.takes_client_input() {
            return;
        }
        self.timers.set(
            SessionTimer::ShutdownGrace,
            now + self.cfg.session.shutdown_grace,
        );
        while let Some(head) = self.pending.pop_front() {
            self.refuse(head, Refusal::shutting_down());
        }
        let spread = self
            .cfg
            .session
            .shutdown_close_spread
            .min(self.cfg.session.shutdown_grace);
        let close_at = now + spread.mul_f64(self.jitter.factor(0.0));
        let close_when_idle = self.unfinished() > 0 || close_at <= now;
        self.enter_shutdown(close_when_idle);
        if !close_when_idle {
            self.timers.set(SessionTimer::ShutdownClose, close_at);
        }
        self.settle(now);
    }

    /// The grace is over: every response still open ends as cut (and is reported), then the
    /// client is closed 1012 and the session finishes, releasing its conns dirty
    pub(super) fn shutdown_grace_expired(&mut self, now: Instant) {
        for conn in self.conns_mut() {
            conn.cut_at_shutdown();
        }
        self.collect_conn_outputs(now);
        self.close_client(1012, "gateway restarting");
        self.finish(now);
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
        if self.is_finished() {
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

    /// Handles a client that broke the WebSocket protocol: it is closed with the code RFC 6455
    /// gives the error (1007 for invalid UTF-8, 1002 otherwise) instead of a bare TCP close;
    /// its stream cannot be read past the error, so open responses are drained as if it had left
    pub fn handle_client_protocol_error(&mut self, now: Instant, error: ClientProtocolError) {
        if self.is_finished() {
            return;
        }
        let reason = match error {
            ClientProtocolError::InvalidUtf8 => "invalid UTF-8 in a text message",
            ClientProtocolError::Violation => "WebSocket protocol error",
        };
        self.close_client(error.close_code(), reason);
        self.handle_client_gone(now);
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
        if !self.backpressured() && self.timers.get(SessionTimer::ClientPong).is_none() {
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
