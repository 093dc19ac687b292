//! The WebSocket `error` envelope: parsing, classes and the exact shapes the gateway sends.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::json_str::{push_opt_string, push_string};
use super::sse::http_error_body;
use crate::StreamId;
use crate::errors::{ErrorCode, ErrorType, GatewayError};

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
        match self {
            Self::PreviousResponseNotFound
            | Self::WebsocketConnectionLimitReached
            | Self::WebsocketStreamLimitReached
            | Self::InvalidStreamId
            | Self::WsUnsupported
            | Self::InvalidEncryptedContent => 400,
            Self::RateLimited => 429,
            Self::UpgradeRequired => 426,
            Self::ServerError => 500,
            Self::Other => 502,
        }
    }

    /// Derives the class from `error.code`, `error.type` and `error.message`
    ///
    /// An exact `code` wins; otherwise the fuzzy rules of the prior art apply in its order
    /// (upgrade, unsupported, connection limit, encrypted content, previous response, rate
    /// limit, server error). Matching ignores case.
    pub fn classify(code: Option<&str>, error_type: Option<&str>, message: Option<&str>) -> Self {
        let code = code.unwrap_or_default().to_ascii_lowercase();
        let ty = error_type.unwrap_or_default().to_ascii_lowercase();
        let msg = message.unwrap_or_default().to_ascii_lowercase();
        // The catalogue's codes by their variant; upstream's other exact codes by name.
        let exact = match (ErrorCode::from_wire(&code), code.as_str()) {
            (Some(ErrorCode::PreviousResponseNotFound), _) => Some(Self::PreviousResponseNotFound),
            (Some(ErrorCode::WebsocketConnectionLimitReached), _) => {
                Some(Self::WebsocketConnectionLimitReached)
            }
            (Some(ErrorCode::WebsocketStreamLimitReached), _) => {
                Some(Self::WebsocketStreamLimitReached)
            }
            (Some(ErrorCode::InvalidStreamId), _) => Some(Self::InvalidStreamId),
            (Some(ErrorCode::UpgradeRequired), _) => Some(Self::UpgradeRequired),
            (_, "websocket_not_supported" | "websocket_unsupported") => Some(Self::WsUnsupported),
            (_, "invalid_encrypted_content") => Some(Self::InvalidEncryptedContent),
            (_, "server_is_overloaded" | "slow_down") => Some(Self::ServerError),
            _ => None,
        };
        if let Some(class) = exact {
            return class;
        }
        let has = |s: &str, needle: &str| s.contains(needle);
        if has(&msg, "upgrade required") || has(&msg, "status 426") || has(&ty, "upgrade") {
            Self::UpgradeRequired
        } else if has(&msg, "websocket") && has(&msg, "unsupported") {
            Self::WsUnsupported
        } else if has(&msg, "connection limit") && has(&msg, "websocket") {
            Self::WebsocketConnectionLimitReached
        } else if has(&msg, "invalid_encrypted_content")
            || (has(&msg, "encrypted content") && has(&msg, "could not be verified"))
        {
            Self::InvalidEncryptedContent
        } else if has(&msg, "previous response") && has(&msg, "not found") {
            Self::PreviousResponseNotFound
        } else if ["rate_limit", "usage_limit", "insufficient_quota"]
            .iter()
            .any(|n| has(&ty, n) || has(&code, n))
            || (has(&msg, "usage limit") && has(&msg, "reached"))
            || (has(&msg, "rate limit") && (has(&msg, "reached") || has(&msg, "exceeded")))
        {
            Self::RateLimited
        } else if has(&ty, ErrorType::Server.as_str()) || has(&code, ErrorType::Server.as_str()) {
            Self::ServerError
        } else {
            Self::Other
        }
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
    /// `error.resets_in_seconds` (ChatGPT backend usage limits)
    pub resets_in_seconds: Option<u64>,
    /// `error.resets_at`: an absolute time in Unix epoch seconds (the core has no clock, so
    /// the caller converts it)
    pub resets_at: Option<u64>,
}

impl ErrorInfo {
    /// Seconds until the limit resets, from `retry-after`, `x-ratelimit-reset-*` or `resets_in_seconds`
    ///
    /// Sources in order of precedence (fractions round up to whole seconds):
    /// 1. `retry-after` as delta seconds (an HTTP date needs a clock and is ignored);
    /// 2. `error.resets_in_seconds`;
    /// 3. `x-codex-<window>-reset-after-seconds`: the longest among windows whose
    ///    `x-codex-<window>-used-percent` is at least 100, else the shortest of all;
    /// 4. the longest of `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens`
    ///    (Go durations such as `1s`, `6m0s`, `250ms`).
    ///
    /// `error.resets_at` is absolute: see [`ErrorInfo::resets_at`].
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(parse_seconds)
            .or(self.resets_in_seconds)
            .or_else(|| self.codex_reset_after())
            .or_else(|| {
                ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
                    .iter()
                    .filter_map(|name| self.header(name).and_then(parse_go_duration_secs))
                    .max()
            })
    }

    /// The value of header `name` (lower case)
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The reset time of the exhausted `x-codex-*` window(s)
    fn codex_reset_after(&self) -> Option<u64> {
        let windows = self.headers.iter().filter_map(|(name, value)| {
            let window = name
                .strip_prefix("x-codex-")?
                .strip_suffix("-reset-after-seconds")?;
            let secs = parse_seconds(value)?;
            let used = self
                .headers
                .iter()
                .find(|(n, _)| {
                    n.strip_prefix("x-codex-")
                        .and_then(|rest| rest.strip_suffix("-used-percent"))
                        == Some(window)
                })
                .and_then(|(_, v)| v.trim().parse::<f64>().ok());
            Some((secs, used.is_some_and(|u| u >= 100.0)))
        });
        let longest_exhausted = windows
            .clone()
            .filter_map(|(secs, full)| full.then_some(secs))
            .max();
        longest_exhausted.or_else(|| windows.map(|(secs, _)| secs).min())
    }
}

/// The longest reset hint believed, in seconds (about 136 years)
///
/// Not a policy limit (cooldowns are the scheduler's), but what makes a hint a time at all: a
/// larger one cannot be added to an `Instant` (`1e300` saturates to `u64::MAX`, and
/// `now + hint` panics), so it counts as no hint.
const MAX_RESET_HINT_SECS: u64 = u32::MAX as u64;

/// Seconds rounded up, if they make a believable reset hint
fn reset_hint(secs: f64) -> Option<u64> {
    let secs = secs.ceil();
    (secs.is_finite() && (0.0..=MAX_RESET_HINT_SECS as f64).contains(&secs)).then_some(secs as u64)
}

/// Non-negative seconds, possibly fractional, rounded up
fn parse_seconds(value: &str) -> Option<u64> {
    reset_hint(value.trim().parse().ok()?)
}

/// A Go duration (`1h2m3.5s`, `6m0s`, `250ms`, `1.5s`, plain seconds) rounded up to seconds
fn parse_go_duration_secs(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Some(secs) = parse_seconds(value) {
        return Some(secs);
    }
    let mut rest = value;
    let mut total_ms = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total_ms += number * unit_ms;
        rest = &rest[unit_len..];
    }
    reset_hint(total_ms / 1000.0)
}

/// Parses an `error` envelope (full parse: errors are rare)
///
/// `None` when the frame is not a JSON object. Status comes from the envelope's `status`
/// (or `status_code`) when it is an integer in 100..=599; otherwise from the class.
pub fn parse_error_event(frame: &[u8]) -> Option<ErrorInfo> {
    let root: Value = serde_json::from_slice(frame).ok()?;
    let root = root.as_object()?;
    let empty = Map::new();
    let error = root
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    let (error_type, code, message, param) =
        (text("type"), text("code"), text("message"), text("param"));
    let class = ErrorClass::classify(code.as_deref(), error_type.as_deref(), message.as_deref());
    let envelope_status = ["status", "status_code"]
        .iter()
        .filter_map(|key| root.get(*key).and_then(Value::as_u64))
        .find(|s| (100..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok());
    let mut headers = Vec::new();
    for source in [error.get("headers"), root.get("headers")] {
        let Some(map) = source.and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in map {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            headers.push((name.to_ascii_lowercase(), value));
        }
    }
    let secs = |key: &str| error.get(key).and_then(Value::as_f64).and_then(reset_hint);
    Some(ErrorInfo {
        status: envelope_status.unwrap_or_else(|| class.default_status()),
        status_in_envelope: envelope_status.is_some(),
        error_type,
        code,
        message,
        param,
        class,
        headers,
        resets_in_seconds: secs("resets_in_seconds"),
        resets_at: secs("resets_at"),
    })
}

/// `"stream_id":"…",` when the event answers a named lane
fn push_lane(out: &mut Vec<u8>, lane: Option<&StreamId>) {
    if let Some(lane) = lane {
        out.extend_from_slice(br#""stream_id":"#);
        push_string(out, lane.as_str());
        out.push(b',');
    }
}

/// Upstream's exact `previous_response_not_found` error
pub fn previous_response_not_found_event(id: &str, lane: Option<&StreamId>) -> Bytes {
    GatewayError::previous_response_not_found(id).event(lane)
}

/// Upstream's exact `invalid_stream_id` error (no `stream_id` echoed)
pub fn invalid_stream_id_event() -> Bytes {
    GatewayError::invalid_stream_id().event(None)
}

/// Upstream's exact `websocket_stream_limit_reached` error, echoing `lane`
pub fn websocket_stream_limit_reached_event(lane: &StreamId) -> Bytes {
    GatewayError::websocket_stream_limit_reached().event(Some(lane))
}

/// Upstream's exact `websocket_connection_limit_reached` error (`status` last, as upstream
/// writes it), echoing `stream_id` when it answers a create on a named lane (every event of a
/// named lane echoes its lane, or the client cannot tell which create it answers)
pub fn websocket_connection_limit_reached_event(lane: Option<&StreamId>) -> Bytes {
    const MESSAGE: &str = "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.";
    let mut out = Vec::with_capacity(240);
    out.extend_from_slice(br#"{"type":"error","#);
    push_lane(&mut out, lane);
    out.extend_from_slice(br#""error":{"type":"#);
    push_string(&mut out, ErrorType::InvalidRequest.as_str());
    out.extend_from_slice(br#","code":"#);
    push_string(
        &mut out,
        ErrorCode::WebsocketConnectionLimitReached.as_str(),
    );
    out.extend_from_slice(br#","message":"#);
    push_string(&mut out, MESSAGE);
    out.extend_from_slice(br#"},"status":400}"#);
    Bytes::from(out)
}

impl GatewayError {
    /// The WebSocket `error` event, echoing `lane` when it answers a create on a named lane
    pub fn event(&self, lane: Option<&StreamId>) -> Bytes {
        gateway_error_event(
            self.status,
            self.error_type.as_str(),
            self.code.map(ErrorCode::as_str),
            &self.message,
            self.param,
            lane,
        )
    }

    /// The OpenAI HTTP error body
    pub fn json_body(&self) -> Bytes {
        http_error_body(
            self.error_type.as_str(),
            self.code.map(ErrorCode::as_str),
            &self.message,
            self.param,
        )
    }
}

/// An `error` event the gateway itself sends
///
/// `{"type":"error","status":S,["stream_id":…,]"error":{"type":…,"code":…|null,"message":…,"param":…|null}}`
pub fn gateway_error_event(
    status: u16,
    error_type: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
    lane: Option<&StreamId>,
) -> Bytes {
    let mut out = Vec::with_capacity(96 + error_type.len() + message.len());
    out.extend_from_slice(br#"{"type":"error","status":"#);
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b',');
    push_lane(&mut out, lane);
    out.extend_from_slice(br#""error":{"type":"#);
    push_string(&mut out, error_type);
    out.extend_from_slice(br#","code":"#);
    push_opt_string(&mut out, code);
    out.extend_from_slice(br#","message":"#);
    push_string(&mut out, message);
    out.extend_from_slice(br#","param":"#);
    push_opt_string(&mut out, param);
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}
