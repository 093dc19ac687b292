//! The WebSocket `error` envelope: parsing, classes and the exact shapes the gateway sends.

use bytes::Bytes;

use crate::StreamId;

/// What an `error` event means to the gateway; fills a missing status and decides what to do
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `previous_response_not_found`
    PreviousResponseNotFound,
    /// `websocket_connection_limit_reached`
    WebsocketConnectionLimitReached,
    /// `websocket_stream_limit_reached`
    WebsocketStreamLimitReached,
    /// `invalid_stream_id`
    InvalidStreamId,
    /// rate or usage limits (type/code containing `rate_limit`, `usage_limit`, `insufficient_quota`)
    RateLimited,
    /// `upgrade_required`
    UpgradeRequired,
    /// WebSocket mode not supported
    WsUnsupported,
    /// `invalid_encrypted_content`
    InvalidEncryptedContent,
    /// `server_error` and friends
    ServerError,
    /// Anything else
    Other,
}

impl ErrorClass {
    /// The status used when the envelope has none
    pub fn default_status(self) -> u16 {
        todo!()
    }
}

/// A parsed `error` envelope
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorInfo {
    /// The envelope's `status`, or the class's default when absent
    pub status: u16,
    /// Whether `status` came from the envelope
    pub status_in_envelope: bool,
    /// `error.type`
    pub error_type: Option<String>,
    /// `error.code`
    pub code: Option<String>,
    /// `error.message`
    pub message: Option<String>,
    /// `error.param`
    pub param: Option<String>,
    /// Derived from code, type and message
    pub class: ErrorClass,
    /// `error.headers` (and top-level `headers`), lower-cased names
    pub headers: Vec<(String, String)>,
}

impl ErrorInfo {
    /// Seconds until the limit resets, from `retry-after`, `x-ratelimit-reset-*` or `resets_in_seconds`
    pub fn retry_after_secs(&self) -> Option<u64> {
        todo!()
    }
}

/// Parses an `error` envelope (full parse: errors are rare)
pub fn parse_error_event(frame: &[u8]) -> Option<ErrorInfo> {
    todo!("{}", frame.len())
}

/// Upstream's exact `previous_response_not_found` error
pub fn previous_response_not_found_event(id: &str, lane: Option<&StreamId>) -> Bytes {
    todo!("{id}{lane:?}")
}

/// Upstream's exact `invalid_stream_id` error (no `stream_id` echoed)
pub fn invalid_stream_id_event() -> Bytes {
    todo!()
}

/// Upstream's exact `websocket_stream_limit_reached` error, echoing `lane`
pub fn websocket_stream_limit_reached_event(lane: &StreamId) -> Bytes {
    todo!("{lane:?}")
}

/// Upstream's exact `websocket_connection_limit_reached` error
pub fn websocket_connection_limit_reached_event() -> Bytes {
    todo!()
}

/// An `error` event the gateway itself sends
pub fn gateway_error_event(
    status: u16,
    error_type: &str,
    code: Option<&str>,
    message: &str,
    lane: Option<&StreamId>,
) -> Bytes {
    todo!("{status}{error_type}{code:?}{message}{lane:?}")
}
