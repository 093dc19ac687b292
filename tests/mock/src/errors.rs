//! The error shapes the mock sends: WebSocket `error` envelopes (protocol.md §3.6, §4.4) and
//! OpenAI HTTP error bodies.

use serde_json::{Map, Value, json};

/// Headers a 429 carries: a 50 ms reset so gateway cooldowns stay short in tests.
pub(crate) const RATE_LIMIT_HEADERS: [(&str, &str); 8] = [
    ("retry-after", "1"),
    ("retry-after-ms", "50"),
    ("x-ratelimit-limit-requests", "500"),
    ("x-ratelimit-remaining-requests", "0"),
    ("x-ratelimit-reset-requests", "50ms"),
    ("x-ratelimit-limit-tokens", "30000"),
    ("x-ratelimit-remaining-tokens", "0"),
    ("x-ratelimit-reset-tokens", "50ms"),
];

/// The inner `error` object of an OpenAI error.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) r#type: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) param: Option<&'static str>,
    /// Response headers of the equivalent HTTP error (429 rate-limit headers).
    pub(crate) headers: Option<Vec<(&'static str, &'static str)>>,
}

impl ApiError {
    fn invalid(code: &'static str, message: String, param: Option<&'static str>) -> Self {
        Self {
            status: 400,
            r#type: "invalid_request_error",
            code: Some(code),
            message,
            param,
            headers: None,
        }
    }

    /// `previous_response_not_found` (exact text of protocol.md §4.4).
    pub(crate) fn previous_response_not_found(id: &str) -> Self {
        Self::invalid(
            "previous_response_not_found",
            format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
        )
    }

    /// `invalid_stream_id` (exact text of protocol.md §4.4).
    pub(crate) fn invalid_stream_id() -> Self {
        Self::invalid(
            "invalid_stream_id",
            "The 'stream_id' field must be a non-empty string with at most 256 characters and may only contain letters, numbers, underscores, hyphens, and periods.".to_owned(),
            Some("stream_id"),
        )
    }

    /// `websocket_stream_limit_reached` (exact text of protocol.md §4.4).
    pub(crate) fn stream_limit_reached() -> Self {
        Self::invalid(
            "websocket_stream_limit_reached",
            "This WebSocket connection has reached its maximum number of distinct stream IDs (32). Reuse an existing stream_id or open a new WebSocket connection.".to_owned(),
            Some("stream_id"),
        )
    }

    /// `websocket_connection_limit_reached`; the text always says 60 minutes, as OpenAI's does,
    /// even when `--lifetime` compresses the limit for tests.
    pub(crate) fn connection_limit_reached() -> Self {
        Self::invalid(
            "websocket_connection_limit_reached",
            "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.".to_owned(),
            None,
        )
    }

    /// `background: true` is not supported over WebSocket (exact text undocumented).
    pub(crate) fn background_unsupported() -> Self {
        Self::invalid(
            "unsupported_parameter",
            "The 'background' parameter is not supported over WebSocket.".to_owned(),
            Some("background"),
        )
    }

    /// A frame that is not a JSON object, or a binary frame.
    pub(crate) fn invalid_frame(message: String) -> Self {
        Self::invalid("invalid_json", message, None)
    }

    /// A JSON frame whose `type` the mock does not know.
    pub(crate) fn unknown_event_type(found: &str) -> Self {
        Self::invalid(
            "unknown_event_type",
            format!(
                "Invalid value: '{found}'. Supported values are: 'response.create' and 'response.steer'."
            ),
            Some("type"),
        )
    }

    /// More queued `response.create` events than the mock keeps per connection (mock-only).
    pub(crate) fn queue_full() -> Self {
        Self {
            status: 429,
            r#type: "requests",
            code: Some("rate_limit_exceeded"),
            message: "Too many queued responses on this connection (mock limit).".to_owned(),
            param: None,
            headers: Some(RATE_LIMIT_HEADERS.to_vec()),
        }
    }

    /// Fault `error_400`.
    pub(crate) fn fault_400() -> Self {
        Self {
            status: 400,
            r#type: "invalid_request_error",
            code: None,
            message: "Invalid request (mock fault error_400).".to_owned(),
            param: None,
            headers: None,
        }
    }

    /// Fault `error_429`.
    pub(crate) fn fault_429() -> Self {
        Self {
            status: 429,
            r#type: "requests",
            code: Some("rate_limit_exceeded"),
            message:
                "Rate limit reached for requests (mock fault error_429). Please try again in 50ms."
                    .to_owned(),
            param: None,
            headers: Some(RATE_LIMIT_HEADERS.to_vec()),
        }
    }

    /// Fault `error_500`.
    pub(crate) fn fault_500() -> Self {
        Self {
            status: 500,
            r#type: "server_error",
            code: Some("server_error"),
            message: "The server had an error while processing your request. Sorry about that! (mock fault error_500)".to_owned(),
            param: None,
            headers: None,
        }
    }

    /// 401 for a missing or wrong bearer token; the key is never echoed.
    pub(crate) fn unauthorized(provided: bool) -> Self {
        let message = if provided {
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
        } else {
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        };
        Self {
            status: 401,
            r#type: "invalid_request_error",
            code: if provided {
                Some("invalid_api_key")
            } else {
                None
            },
            message: message.to_owned(),
            param: None,
            headers: None,
        }
    }

    /// The body of an upgrade answered by the `--upgrade-status` switch.
    pub(crate) fn upgrade_switch(status: u16) -> Self {
        match status {
            429 => Self {
                headers: Some(RATE_LIMIT_HEADERS.to_vec()),
                ..Self::fault_429()
            },
            426 => Self {
                status,
                r#type: "invalid_request_error",
                code: Some("upgrade_required"),
                message: "WebSocket mode is not available; use HTTP POST /v1/responses.".to_owned(),
                param: None,
                headers: None,
            },
            401 => Self::unauthorized(true),
            status if status >= 500 => Self {
                status,
                ..Self::fault_500()
            },
            status => Self {
                status,
                r#type: "invalid_request_error",
                code: None,
                message: format!("Upgrade refused with status {status} (mock switch)."),
                param: None,
                headers: None,
            },
        }
    }

    /// The inner object: `{type, code, message, param[, headers]}`.
    pub(crate) fn inner(&self) -> Value {
        let mut inner = json!({
            "type": self.r#type,
            "code": self.code,
            "message": self.message,
        });
        // OpenAI's verbatim connection-limit error has no `param` member at all; every other
        // error carries `param`, null or not.
        if self.param.is_some() || self.code != Some("websocket_connection_limit_reached") {
            inner["param"] = self.param.into();
        }
        if let Some(headers) = self.header_object() {
            inner["headers"] = headers;
        }
        inner
    }

    fn header_object(&self) -> Option<Value> {
        let headers = self.headers.as_ref()?;
        Some(Value::Object(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect::<Map<_, _>>(),
        ))
    }

    /// The WebSocket envelope `{type:"error", status, [stream_id], error:{…}}`.
    ///
    /// `headers` sits inside `error` (the SDK's `ResponseWsError` schema) and is repeated at the
    /// top level, where Codex's wrapped-error reader looks for it.
    pub(crate) fn ws_event(&self, stream_id: Option<&str>) -> Map<String, Value> {
        let mut event = Map::new();
        event.insert("type".into(), "error".into());
        event.insert("status".into(), self.status.into());
        if let Some(stream_id) = stream_id {
            event.insert("stream_id".into(), stream_id.into());
        }
        event.insert("error".into(), self.inner());
        if let Some(headers) = self.header_object() {
            event.insert("headers".into(), headers);
        }
        event
    }

    /// The HTTP body `{"error":{…}}` (without the WebSocket-only `headers` member).
    pub(crate) fn http_body(&self) -> Value {
        let mut inner = self.inner();
        if let Some(map) = inner.as_object_mut() {
            map.remove("headers");
        }
        json!({ "error": inner })
    }
}
