//! Error answers of an HTTP turn: one value, two shapes.
//!
//! Before the first byte of an answer an error is an HTTP status with the OpenAI error JSON
//! (`{"error":{"message","type","param","code"}}`, [`http_error_body`]); once SSE has begun it
//! is the flat SSE `error` event ([`sse_flat_error`]). Both are built from one [`ErrorAnswer`],
//! taken from upstream's own `error` envelope when there is one, so an upstream refusal reaches
//! the client as upstream wrote it.

use bytes::Bytes;

use crate::errors::{ErrorCode, ErrorType, GatewayError, Refusal};
use crate::event::{gateway_error_event, http_error_body, parse_error_event, sse_flat_error};

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

impl From<GatewayError> for ErrorAnswer {
    fn from(error: GatewayError) -> Self {
        Self {
            status: error.status,
            error_type: error.error_type.as_str().to_owned(),
            code: error.code.map(|c| c.as_str().to_owned()),
            message: error.message.into_owned(),
            param: error.param.map(str::to_owned),
            retry_after: error.retry_after,
            envelope: None,
        }
    }
}

impl ErrorAnswer {
    /// The answer for a scheduler or gateway refusal of a turn continuing `previous`
    pub fn from_refusal(refusal: &Refusal, previous: Option<&str>) -> Self {
        let error = match refusal {
            Refusal::PreviousResponseNotFound => {
                GatewayError::previous_response_not_found(previous.unwrap_or_default())
            }
            Refusal::ConnectionLimitReached => GatewayError::new(
                400,
                ErrorType::InvalidRequest,
                Some(ErrorCode::WebsocketConnectionLimitReached),
                "the upstream connection reached its lifetime limit; retry with full context",
            ),
            Refusal::StreamLimitReached | Refusal::InvalidStreamId => {
                GatewayError::bad_request("stream_id is only supported over WebSocket")
                    .with_param(Some("stream_id"))
            }
            Refusal::Gateway(error) => error.clone(),
        };
        error.into()
    }

    /// The answer for upstream's `error` event `frame` (status from the envelope or its class)
    pub fn from_upstream_error(frame: &Bytes) -> Self {
        let Some(info) = parse_error_event(frame) else {
            let mut answer = Self::from(GatewayError::new(
                502,
                ErrorType::Server,
                None,
                "upstream sent an invalid error event",
            ));
            answer.envelope = Some(frame.clone());
            return answer;
        };
        Self {
            status: info.status,
            error_type: info
                .error_type
                .clone()
                .unwrap_or_else(|| ErrorType::Server.as_str().to_owned()),
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
                None,
            )),
        }
    }
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
    fn a_refusals_retry_after_reaches_the_answer() {
        let refusal = Refusal::Gateway(GatewayError::rate_limited(
            "the account is rate limited (retry after 12s)".to_owned(),
            Some(12),
        ));
        assert_eq!(
            ErrorAnswer::from_refusal(&refusal, None).retry_after,
            Some(12)
        );
    }
}
