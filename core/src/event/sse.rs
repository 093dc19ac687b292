//! HTTP-side encoders: SSE framing and the flat / HTTP error shapes.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use super::json_str::{push_opt_string, push_string};

/// Frames one event for SSE: `event: <type>\ndata: <json>\n\n`
///
/// Compact JSON is one line. Should `json` hold line breaks (pretty-printed JSON), each line
/// gets its own `data:` field, as the SSE spec requires (the client rejoins them with `\n`).
/// CR and LF are dropped from `event_type` so it cannot end its field early.
pub fn sse_encode(event_type: &str, json: &[u8]) -> Bytes {
    let is_break = |b: &u8| *b == b'\n' || *b == b'\r';
    let type_len = event_type.bytes().filter(|b| !is_break(b)).count();
    let lines = split_lines(json).count();
    let mut out = BytesMut::with_capacity(
        b"event: \n".len() + type_len + lines * b"data: \n".len() + json.len() + 1,
    );
    out.put_slice(b"event: ");
    if type_len == event_type.len() {
        out.put_slice(event_type.as_bytes());
    } else {
        for b in event_type.bytes().filter(|b| !is_break(b)) {
            out.put_u8(b);
        }
    }
    out.put_u8(b'\n');
    for line in split_lines(json) {
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// Splits at `\r\n`, `\n` or `\r` (the SSE line terminators); always at least one line
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr2(b'\n', b'\r', current) {
            Some(i) => {
                let skip = if current[i] == b'\r' && current.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The flat SSE `error` event built from a WebSocket `error` envelope
/// (`{type:"error", code, message, param, sequence_number}`)
///
/// Returns the whole SSE frame (`event: error\ndata: {…}\n\n`). `code` and `param` are
/// `null` when absent or not strings, `message` is `""` when absent; `sequence_number`
/// appears only when the envelope has one. An envelope that is not a JSON object gives
/// `code: null` and a generic message.
pub fn sse_flat_error(ws_error: &[u8]) -> Bytes {
    let root: Option<Value> = serde_json::from_slice(ws_error).ok();
    let root = root.as_ref().and_then(Value::as_object);
    let error = root.and_then(|r| r.get("error")).and_then(Value::as_object);
    let field = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str);
    let message = match root {
        Some(_) => field("message").unwrap_or_default(),
        None => "upstream sent an invalid error event",
    };
    let mut json = Vec::with_capacity(96 + message.len());
    json.extend_from_slice(br#"{"type":"error","code":"#);
    push_opt_string(&mut json, field("code"));
    json.extend_from_slice(br#","message":"#);
    push_string(&mut json, message);
    json.extend_from_slice(br#","param":"#);
    push_opt_string(&mut json, field("param"));
    if let Some(seq) = root
        .and_then(|r| r.get("sequence_number"))
        .filter(|v| v.is_number())
    {
        json.extend_from_slice(br#","sequence_number":"#);
        json.extend_from_slice(seq.to_string().as_bytes());
    }
    json.push(b'}');
    sse_encode("error", &json)
}

/// The OpenAI HTTP error body `{"error":{"message","type","param","code"}}`
pub fn http_error_body(
    error_type: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Bytes {
    let mut out = Vec::with_capacity(64 + error_type.len() + message.len());
    out.extend_from_slice(br#"{"error":{"message":"#);
    push_string(&mut out, message);
    out.extend_from_slice(br#","type":"#);
    push_string(&mut out, error_type);
    out.extend_from_slice(br#","param":"#);
    push_opt_string(&mut out, param);
    out.extend_from_slice(br#","code":"#);
    push_opt_string(&mut out, code);
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}
