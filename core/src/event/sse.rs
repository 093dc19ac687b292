//! HTTP-side encoders: SSE framing and the flat / HTTP error shapes.

use bytes::Bytes;

/// Frames one event for SSE: `event: <type>\ndata: <json>\n\n`
pub fn sse_encode(event_type: &str, json: &[u8]) -> Bytes {
    todo!("{event_type}{}", json.len())
}

/// The flat SSE `error` event built from a WebSocket `error` envelope
/// (`{type:"error", code, message, param, sequence_number}`)
pub fn sse_flat_error(ws_error: &[u8]) -> Bytes {
    todo!("{}", ws_error.len())
}

/// The OpenAI HTTP error body `{"error":{"message","type","param","code"}}`
pub fn http_error_body(error_type: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Bytes {
    todo!("{error_type}{code:?}{message}{param:?}")
}
