//! Client input: creates (validated, held, connection-locality, the group check of a chain
//! this socket did not create) and steers.

use std::time::Instant;

use bytes::Bytes;

use super::{Create, Refusal, Session};
use crate::errors::{ErrorCode, ErrorType, GatewayError};
use crate::event::{ClientEventKind, ClientRequest, StreamIdField};
use crate::turn::Turn;
use crate::{ResponseId, TurnId};

/// Whether a held create's `previous_response_id` still has to pass the group rule
///
/// ```text
///   accepted ─┬─ no previous, or a response of this socket ───────────────▶ NotNeeded
///             └─ another socket's ─▶ Due ─┬─ its own Schedule judges it ──▶ NotNeeded
///                                         └─ CheckContinuation ─▶ Asked ─┬─ allowed ─▶ NotNeeded
///                                                                        └─ refused: answered
///                                                                           previous_response_not_found
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ContinuationCheck {
    NotNeeded,
    Due,
    Asked,
}

impl Session {
    /// Takes a client create: every create gets a turn and, later, exactly one outcome
    /// (sent and ended, refused, or dropped when the client leaves)
    pub(super) fn accept_create(&mut self, now: Instant, frame: Bytes, req: ClientRequest) {
        let turn = super::alloc_turn(&mut self.next_turn);
        let (lane, lane_ok) = match req.stream_id {
            StreamIdField::Absent => (None, true),
            StreamIdField::Valid(id) => (Some(id), true),
            StreamIdField::Invalid => (None, false),
        };
        let connection_local = req
            .previous_response_id
            .as_ref()
            .is_some_and(|prev| self.is_connection_local(prev));
        let check = match &req.previous_response_id {
            Some(prev) if !self.created_here(prev) => ContinuationCheck::Due,
            _ => ContinuationCheck::NotNeeded,
        };
        let create = Create {
            frame,
            lane,
            previous: req.previous_response_id,
            check,
            connection_local,
            client_model: req.model,
            prompt_cache_key: req.prompt_cache_key,
            accepted_at: now,
            trace_parent: req.trace_parent,
        };
        let held = self.cfg.session.max_held_creates_per_session;
        let refusal = if self.shutting_down() {
            Some(Refusal::shutting_down())
        } else if !lane_ok {
            Some(Refusal::InvalidStreamId)
        } else if req.background {
            Some(Refusal::bad_request(
                "background responses are not supported over WebSocket",
            ))
        } else if create.client_model.is_none() && self.last_model.is_none() {
            Some(Refusal::bad_request(
                "model is required in the first response.create",
            ))
        } else if self.pending.len() >= held {
            Some(Refusal::Gateway(GatewayError::new(
                429,
                ErrorType::RateLimit,
                Some(ErrorCode::TooManyHeldCreates),
                format!(
                    "too many response.create events waiting on this socket (limit {held}); wait for responses to finish"
                ),
            )))
        } else {
            None
        };
        if refusal.is_none()
            && let Some(model) = &create.client_model
        {
            // A copy: the frame's bytes are a slice of the client socket's read buffer, which a
            // slice kept for the session's life would keep alive (idle too).
            self.last_model = Some(Bytes::copy_from_slice(model));
        }
        let turn = Turn::new(turn, create);
        match refusal {
            Some(refusal) => self.refuse(turn, refusal),
            None => self.pending.push_back(turn),
        }
    }

    /// A chain that only lives in the cache of the conn holding it: the gateway recorded its
    /// previous response as `store:false`, or does not know it at all
    ///
    /// Ids this session has not seen count as unknown — conservative: such a create at worst
    /// gets upstream's exact connection-limit error and the client resends full context.
    fn is_connection_local(&self, previous: &ResponseId) -> bool {
        self.known
            .iter()
            .rev()
            .find(|k| &k.id == previous)
            .is_none_or(|k| !k.store)
    }

    /// Handles the group rule's answer to
    /// [`SessionRequest::CheckContinuation`](super::SessionRequest::CheckContinuation)
    pub fn handle_continuation_judged(&mut self, now: Instant, turn: TurnId, allowed: bool) {
        if let Some(pos) = self.pending.iter().position(|p| p.id() == turn) {
            if allowed {
                let create = self.pending[pos].create_mut().expect("a held create");
                create.check = ContinuationCheck::NotNeeded;
            } else {
                let create = self.pending.remove(pos).expect("found");
                self.refuse(create, Refusal::PreviousResponseNotFound);
            }
        }
        self.settle(now);
    }

    /// Whether `previous` was created on this client socket (ended here, or open on one of its
    /// conns): continuing it needs no store lookup, so no group check
    fn created_here(&self, previous: &ResponseId) -> bool {
        self.known.iter().any(|k| &k.id == previous)
            || self.conns().any(|c| c.lane_of(previous).is_some())
    }

    pub(super) fn forward_steer(&mut self, now: Instant, frame: Bytes, req: ClientRequest) {
        let sent = match (&req.kind, &req.previous_response_id) {
            (ClientEventKind::ResponseSteer, Some(target)) => self
                .conns_mut()
                .any(|c| c.lane_of(target).is_some() && c.send_steer(now, target, frame.clone())),
            (ClientEventKind::ResponseInject, _) => match self.active.as_mut() {
                Some(conn) if conn.is_live() => conn.send_raw(now, frame),
                _ => false,
            },
            _ => false,
        };
        if !sent {
            self.send_client_error(&GatewayError::new(
                400,
                ErrorType::InvalidRequest,
                Some(ErrorCode::ResponseNotFound),
                "the target response is not in progress on this WebSocket",
            ));
        }
    }

    pub(super) fn send_client_error(&mut self, error: &GatewayError) {
        if self.takes_client_input() {
            self.client_out.push_back(error.event(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;

    use crate::{Config, SessionId};

    use super::Session;

    #[test]
    fn the_sessions_model_does_not_keep_the_client_frame_alive() {
        // As the shell reads it: the frame is a slice of the socket's (larger) read buffer.
        let mut buffer = br#"{"type":"response.create","model":"gpt-5","input":"hi"}"#.to_vec();
        buffer.resize(4096, b' ');
        let buffer = Bytes::from(buffer);
        let frame = buffer.slice(..56);
        let now = Instant::now();
        let mut session = Session::new(SessionId(1), Arc::new(Config::default()), now);
        session.handle_client_text(now, frame);
        let model = session.last_model.as_ref().expect("the create's model");
        assert_eq!(&model[..], b"gpt-5");
        assert!(!buffer.as_ptr_range().contains(&model.as_ptr()));
    }
}
