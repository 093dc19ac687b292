//! The one catalogue of the errors the gateway itself emits: their `error.type`s, their
//! `error.code`s, and [`GatewayError`], the typed answer (status, type, code, message, param,
//! `Retry-After`) every emitter builds — WebSocket `error` events, HTTP JSON errors, SSE
//! errors and refusals before the 101 alike. [`Refusal`] is why a create is answered by the
//! gateway instead of upstream.
//!
//! A leaf module: it names nothing else of the crate, so every machine can use it. The wire
//! shapes are rendered by [`crate::event`] ([`GatewayError::event`], [`GatewayError::json_body`]).

use std::borrow::Cow;
use std::time::Duration;

/// `error.type` of an error the gateway emits
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `invalid_request_error`: the client's request cannot be served as sent
    InvalidRequest,
    /// `rate_limit_error`: a limit is reached; retry later
    RateLimit,
    /// `server_error`: the gateway or upstream cannot serve it now
    Server,
}

impl ErrorType {
    /// The wire name
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::RateLimit => "rate_limit_error",
            Self::Server => "server_error",
        }
    }
}

/// Defines [`ErrorCode`] and its wire names in one list
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// `error.code` of an error the gateway emits (upstream's exact codes where it answers
        /// for upstream)
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// The wire name
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// The code whose wire name is `wire` (`None`: not one the gateway emits)
            pub fn from_wire(wire: &str) -> Option<Self> {
                match wire {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// Upstream's: the chain's `previous_response_id` is unknown
    PreviousResponseNotFound => "previous_response_not_found",
    /// Upstream's: a WebSocket reached its 60-minute limit
    WebsocketConnectionLimitReached => "websocket_connection_limit_reached",
    /// Upstream's: too many distinct `stream_id`s on one WebSocket
    WebsocketStreamLimitReached => "websocket_stream_limit_reached",
    /// Upstream's: a malformed `stream_id`
    InvalidStreamId => "invalid_stream_id",
    /// Every usable account resolves to HTTP: 426
    UpgradeRequired => "upgrade_required",
    /// The client key is missing or unknown: 401
    InvalidApiKey => "invalid_api_key",
    /// The key holds as many sockets as its `max_sockets`: 429
    TooManySockets => "too_many_sockets",
    /// The listener holds as many client sockets as it may: 503
    TooManyConnections => "too_many_connections",
    /// A request body did not arrive in time: 408
    RequestTimeout => "request_timeout",
    /// Not a valid RFC 6455 handshake: 400
    InvalidWebsocketHandshake => "invalid_websocket_handshake",
    /// A `Sec-WebSocket-Version` other than 13: 426
    UnsupportedWebsocketVersion => "unsupported_websocket_version",
    /// The gateway is shutting down: 503
    GatewayShuttingDown => "gateway_shutting_down",
    /// The account(s) are rate limited: 429
    RateLimitExceeded => "rate_limit_exceeded",
    /// No account concurrency slot within `slot_wait`: 429
    ConcurrencyLimitReached => "concurrency_limit_reached",
    /// Too many creates held on one socket: 429
    TooManyHeldCreates => "too_many_held_creates",
    /// A steer or inject names no response in progress: 400
    ResponseNotFound => "response_not_found",
    /// The account holding the conversation is disabled: 503
    AccountUnavailable => "account_unavailable",
    /// No account is usable: 503
    NoAccountAvailable => "no_account_available",
    /// No upstream conn could be had: 502/503
    UpstreamUnavailable => "upstream_unavailable",
    /// The upstream conn was lost before the answer was complete: 502
    UpstreamConnectionLost => "upstream_connection_lost",
    /// A response sent nothing within `upstream.read_timeout`: 504
    UpstreamTimeout => "upstream_timeout",
}

/// An error the gateway answers itself: the same value whatever its wire shape
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayError {
    /// HTTP status (also the `status` of a WebSocket `error` event)
    pub status: u16,
    /// `error.type`
    pub error_type: ErrorType,
    /// `error.code`
    pub code: Option<ErrorCode>,
    /// `error.message` (never a credential, prompt or frame body)
    pub message: Cow<'static, str>,
    /// `error.param`
    pub param: Option<&'static str>,
    /// `Retry-After` in whole seconds (HTTP answers only; WebSocket events say it in the message)
    pub retry_after: Option<u64>,
}

impl GatewayError {
    /// An error with no param and no `Retry-After`
    pub fn new(
        status: u16,
        error_type: ErrorType,
        code: Option<ErrorCode>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error_type,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// The same error naming the request field it is about
    #[must_use]
    pub fn with_param(mut self, param: Option<&'static str>) -> Self {
        self.param = param;
        self
    }

    /// The same error with a `Retry-After`
    #[must_use]
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// A 400 `invalid_request_error` without a code
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, ErrorType::InvalidRequest, None, message)
    }

    /// A 404 for a path the listener does not serve
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(404, ErrorType::InvalidRequest, None, message)
    }

    /// Upstream's exact `previous_response_not_found` for `previous`
    pub fn previous_response_not_found(previous: &str) -> Self {
        Self::new(
            400,
            ErrorType::InvalidRequest,
            Some(ErrorCode::PreviousResponseNotFound),
            format!("Previous response with id '{previous}' not found."),
        )
        .with_param(Some("previous_response_id"))
    }

    /// Upstream's exact `invalid_stream_id`
    pub fn invalid_stream_id() -> Self {
        Self::stream_id_error(
            ErrorCode::InvalidStreamId,
            "The 'stream_id' field must be a non-empty string with at most 256 characters and may only contain letters, numbers, underscores, hyphens, and periods.",
        )
    }

    /// Upstream's exact `websocket_stream_limit_reached` (its limit is
    /// `upstream.max_named_lanes_per_conn`'s default, 32)
    pub fn websocket_stream_limit_reached() -> Self {
        Self::stream_id_error(
            ErrorCode::WebsocketStreamLimitReached,
            "This WebSocket connection has reached its maximum number of distinct stream IDs (32). Reuse an existing stream_id or open a new WebSocket connection.",
        )
    }

    /// A 400 about the request's `stream_id`, in upstream's shape
    fn stream_id_error(code: ErrorCode, message: &'static str) -> Self {
        Self::new(400, ErrorType::InvalidRequest, Some(code), message).with_param(Some("stream_id"))
    }

    /// A 503 while the gateway shuts down; `advice` says where to go instead
    pub fn shutting_down(advice: &'static str) -> Self {
        Self::new(
            503,
            ErrorType::Server,
            Some(ErrorCode::GatewayShuttingDown),
            advice,
        )
    }

    /// A 503 for a request the gateway can no longer hand to its control plane
    pub fn gateway_gone() -> Self {
        Self::new(503, ErrorType::Server, None, "the gateway is shutting down")
    }

    /// A 429 `rate_limit_exceeded`
    pub fn rate_limited(message: String, retry_after: Option<u64>) -> Self {
        Self::new(
            429,
            ErrorType::RateLimit,
            Some(ErrorCode::RateLimitExceeded),
            message,
        )
        .with_retry_after(retry_after)
    }

    /// A 429 for a create that got no account concurrency slot within `slot_wait`
    pub fn concurrency_limit_reached() -> Self {
        Self::new(
            429,
            ErrorType::RateLimit,
            Some(ErrorCode::ConcurrencyLimitReached),
            "the account's concurrent responses limit was reached; retry shortly",
        )
    }

    /// A 503 for a turn that got no upstream conn in time
    pub fn upstream_unavailable() -> Self {
        Self::new(
            503,
            ErrorType::Server,
            Some(ErrorCode::UpstreamUnavailable),
            "no upstream connection became available in time; retry the request",
        )
    }

    /// A 502 for a conn lost before the answer could be completed; `why` says how
    pub fn upstream_lost(why: &str) -> Self {
        Self::new(
            502,
            ErrorType::Server,
            Some(ErrorCode::UpstreamConnectionLost),
            format!("{why}; retry the request"),
        )
    }

    /// A 504 for a response upstream stopped sending within `upstream.read_timeout`
    pub fn upstream_stalled() -> Self {
        Self::new(
            504,
            ErrorType::Server,
            Some(ErrorCode::UpstreamTimeout),
            "upstream sent nothing for this response within upstream.read_timeout; retry the request",
        )
    }

    /// A 408 for a request whose body did not arrive within `ingress.body_read_timeout`
    pub fn request_timeout(limit: Duration) -> Self {
        Self::new(
            408,
            ErrorType::InvalidRequest,
            Some(ErrorCode::RequestTimeout),
            format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            ),
        )
    }
}

/// Why the gateway answers a create itself instead of sending it upstream
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Upstream's exact `previous_response_not_found` (the chain's cache is gone)
    PreviousResponseNotFound,
    /// Upstream's exact `websocket_connection_limit_reached` (the client resends full context)
    ConnectionLimitReached,
    /// Upstream's exact `websocket_stream_limit_reached`
    StreamLimitReached,
    /// Upstream's exact `invalid_stream_id`
    InvalidStreamId,
    /// Any other error the gateway answers with
    Gateway(GatewayError),
}

impl Refusal {
    /// The answer to creates while the gateway shuts down
    pub fn shutting_down() -> Self {
        Self::Gateway(GatewayError::shutting_down(
            "this gateway is shutting down; reconnect and resend",
        ))
    }

    /// A 400 `invalid_request_error`
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Gateway(GatewayError::bad_request(message))
    }

    /// The catalogue's code of the refusal
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::PreviousResponseNotFound => Some(ErrorCode::PreviousResponseNotFound),
            Self::ConnectionLimitReached => Some(ErrorCode::WebsocketConnectionLimitReached),
            Self::StreamLimitReached => Some(ErrorCode::WebsocketStreamLimitReached),
            Self::InvalidStreamId => Some(ErrorCode::InvalidStreamId),
            Self::Gateway(error) => error.code,
        }
    }
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        Self::Gateway(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeout_names_the_limit_in_milliseconds() {
        let error = GatewayError::request_timeout(Duration::from_millis(1500));
        assert_eq!(error.status, 408);
        assert_eq!(error.code, Some(ErrorCode::RequestTimeout));
        assert_eq!(
            error.message,
            "the request body did not arrive within 1500 ms"
        );
    }

    #[test]
    fn wire_names_are_snake_case() {
        for code in [
            ErrorCode::PreviousResponseNotFound,
            ErrorCode::TooManySockets,
            ErrorCode::UpstreamTimeout,
        ] {
            let name = code.as_str();
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(ErrorType::RateLimit.as_str(), "rate_limit_error");
    }
}
