//! Error answers of an HTTP turn: one value, two shapes.
//!
//! Before the first byte of an answer an error is an HTTP status with the OpenAI error JSON
//! (`{"error":{"message","type","param","code"}}`, [`http_error_body`]); once SSE has begun it
//! is the flat SSE `error` event ([`sse_flat_error`]). Both are built from one [`ErrorAnswer`],
//! taken from upstream's own `error` envelope when there is one, so an upstream refusal reaches
//! the client as upstream wrote it.

use bytes::Bytes;

use crate::event::{gateway_error_event, http_error_body, parse_error_event, sse_flat_error};
use crate::session::Refusal;

/// `error.code` of a response that stalled (`upstream.read_timeout` without one of its events)
pub const STALLED_CODE: &str = "upstream_timeout";
/// `error.message` of a response that stalled
pub const STALLED_MESSAGE: &str =
    "upstream sent nothing for this response within upstream.read_timeout; retry the request";

/// An error an HTTP turn answers with
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// HTTP status
    pub status: u16,
    /// `error.type`
    pub error_type: String,
    /// `error.code`
    pub code: Option<String>,
    /// `error.message`
    pub message: String,
    /// `error.param`
    pub param: Option<String>,
    /// `Retry-After` in whole seconds, when upstream or the scheduler named one
    pub retry_after: Option<u64>,
    /// Upstream's envelope, kept so the SSE shape is built from upstream's own bytes
    envelope: Option<Bytes>,
}

impl ErrorAnswer {
    /// A gateway error
    pub fn new(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
            code: code.map(str::to_owned),
            message: message.to_owned(),
            param: None,
            retry_after: None,
            envelope: None,
        }
    }

    /// A 400 `invalid_request_error`
    pub fn bad_request(message: &str, param: Option<&str>) -> Self {
        let mut answer = Self::new(400, "invalid_request_error", None, message);
        answer.param = param.map(str::to_owned);
        answer
    }

    /// Upstream's exact `previous_response_not_found` for `previous`
    pub fn previous_response_not_found(previous: &str) -> Self {
        let message = format!("Previous response with id '{previous}' not found.");
        let mut answer = Self::new(
            400,
            "invalid_request_error",
            Some("previous_response_not_found"),
            &message,
        );
        answer.param = Some("previous_response_id".to_owned());
        answer
    }

    /// A 502 for a conn lost before the answer could be completed
    pub fn upstream_lost(why: &str) -> Self {
        Self::new(
            502,
            "server_error",
            Some("upstream_connection_lost"),
            &format!("{why}; retry the request"),
        )
    }

    /// A 504 for a response upstream stopped sending within `upstream.read_timeout`
    pub fn upstream_stalled() -> Self {
        Self::new(504, "server_error", Some(STALLED_CODE), STALLED_MESSAGE)
    }

    /// A 503 for a turn that got no upstream conn
    pub fn upstream_unavailable() -> Self {
        Self::new(
            503,
            "server_error",
            Some("upstream_unavailable"),
            "no upstream connection became available in time; retry the request",
        )
    }

    /// The answer for a scheduler or gateway refusal of a turn continuing `previous`
    pub fn from_refusal(refusal: &Refusal, previous: Option<&str>) -> Self {
        match refusal {
            Refusal::PreviousResponseNotFound => {
                Self::previous_response_not_found(previous.unwrap_or_default())
            }
            Refusal::ConnectionLimitReached => Self::new(
                400,
                "invalid_request_error",
                Some("websocket_connection_limit_reached"),
                "the upstream connection reached its lifetime limit; retry with full context",
            ),
            Refusal::StreamLimitReached | Refusal::InvalidStreamId => Self::bad_request(
                "stream_id is only supported over WebSocket",
                Some("stream_id"),
            ),
            Refusal::Status {
                status,
                error_type,
                code,
                message,
            } => {
                let mut answer = Self::new(*status, error_type, *code, message);
                answer.retry_after = retry_after_in(message);
                answer
            }
        }
    }

    /// The answer for upstream's `error` event `frame` (status from the envelope or its class)
    pub fn from_upstream_error(frame: &Bytes) -> Self {
        let Some(info) = parse_error_event(frame) else {
            let mut answer = Self::new(
                502,
                "server_error",
                None,
                "upstream sent an invalid error event",
            );
            answer.envelope = Some(frame.clone());
            return answer;
        };
        Self {
            status: info.status,
            error_type: info
                .error_type
                .clone()
                .unwrap_or_else(|| "server_error".to_owned()),
            code: info.code.clone(),
            message: info.message.clone().unwrap_or_default(),
            param: info.param.clone(),
            retry_after: info.retry_after_secs(),
            envelope: Some(frame.clone()),
        }
    }

    /// The OpenAI HTTP error body
    pub fn json_body(&self) -> Bytes {
        http_error_body(
            &self.error_type,
            self.code.as_deref(),
            &self.message,
            self.param.as_deref(),
        )
    }

    /// The flat SSE `error` event (the whole SSE frame)
    pub fn sse_frame(&self) -> Bytes {
        match &self.envelope {
            Some(envelope) => sse_flat_error(envelope),
            None => sse_flat_error(&gateway_error_event(
                self.status,
                &self.error_type,
                self.code.as_deref(),
                &self.message,
                None,
            )),
        }
    }
}

/// The `(retry after Ns)` the control plane writes into rate-limit messages
fn retry_after_in(message: &str) -> Option<u64> {
    let rest = &message[message.find("(retry after ")? + "(retry after ".len()..];
    rest[..rest.find('s')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_error_keeps_its_fields_in_both_shapes() {
        let frame = Bytes::from_static(
            br#"{"type":"error","status":429,"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down","param":null,"headers":{"retry-after":"7"}}}"#,
        );
        let answer = ErrorAnswer::from_upstream_error(&frame);
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after, Some(7));
        let body: serde_json::Value = serde_json::from_slice(&answer.json_body()).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(answer.sse_frame(), sse_flat_error(&frame));
    }

    #[test]
    fn refusal_retry_after_is_read_back() {
        let refusal = Refusal::Status {
            status: 429,
            error_type: "rate_limit_error",
            code: Some("rate_limit_exceeded"),
            message: "the account is rate limited (retry after 12s)".to_owned(),
        };
        assert_eq!(
            ErrorAnswer::from_refusal(&refusal, None).retry_after,
            Some(12)
        );
    }
}
