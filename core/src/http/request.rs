//! The HTTP request body and the pieces of upstream events an HTTP answer needs.
//!
//! Everything here reads the bytes in place with the event module's validating scanner: the
//! body is validated once ([`parse_request`]), the upstream `response.create` is built in one
//! pass into one buffer of the right size ([`build_create`]), and a terminal event's
//! `response` object is sliced out of the frame without a copy ([`response_object`]).

use std::borrow::Cow;

use bytes::Bytes;

use crate::ResponseId;
use crate::event::ClassifyError;
use crate::event::json_str::{escaped_len, push_escaped};
use crate::event::lex::ValueKind;
use crate::event::scan::{ObjectScan, Value};

/// What the bridge reads from a `POST /v1/responses` body
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpRequest {
    /// The body as the client sent it
    pub(crate) body: Bytes,
    /// Top-level `model`
    pub(crate) model: Bytes,
    /// Top-level `previous_response_id`
    pub(crate) previous: Option<ResponseId>,
    /// Top-level `store` (absent: upstream's default, true)
    pub(crate) store: bool,
    /// Top-level `stream` (absent: false, as in the HTTP API)
    pub(crate) stream: bool,
    /// Top-level `background` is `true`
    pub(crate) background: bool,
    /// Top-level `prompt_cache_key` (the session binding key when no `session-id` header came)
    pub(crate) prompt_cache_key: Option<Bytes>,
    /// A valid `client_metadata.traceparent`: the parent of this response's span
    pub(crate) trace_parent: Option<crate::trace_context::TraceContext>,
}

/// Why a body is answered 400 before anything else happens
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Not a valid JSON object
    Invalid(ClassifyError),
    /// A `stream_id` (WebSocket-only)
    StreamId,
    /// No string `model`
    MissingModel,
}

impl BodyError {
    /// The 400's message
    pub(crate) fn message(self) -> String {
        match self {
            Self::Invalid(e) => format!("the request body is not a valid JSON object: {e}"),
            Self::StreamId => {
                "stream_id is only supported over WebSocket; remove it from the request body"
                    .to_owned()
            }
            Self::MissingModel => "model is required".to_owned(),
        }
    }

    /// The 400's `param`
    pub(crate) fn param(self) -> Option<&'static str> {
        match self {
            Self::Invalid(_) => None,
            Self::StreamId => Some("stream_id"),
            Self::MissingModel => Some("model"),
        }
    }
}

/// Validates `body` and reads the fields the bridge decides on
///
/// A repeated key: the last occurrence wins (as in serde_json). A `stream_id` of any value,
/// `null` included, is refused: HTTP has no lanes.
pub(crate) fn parse_request(body: Bytes) -> Result<HttpRequest, BodyError> {
    let mut scan = ObjectScan::top_level(&body).map_err(BodyError::Invalid)?;
    let mut model = None;
    let mut previous = None;
    let mut store = true;
    let mut stream = false;
    let mut background = false;
    let mut prompt_cache_key = None;
    let mut stream_id = false;
    let mut trace_parent = None;
    while let Some(member) = scan.next_member().map_err(BodyError::Invalid)? {
        let (key, value) = (member.key, member.value);
        if key.eq_text(b"model") {
            model = string_bytes(&body, &value);
        } else if key.eq_text(b"previous_response_id") {
            previous = string_bytes(&body, &value).and_then(ResponseId::new);
        } else if key.eq_text(b"store") {
            store = value.as_bool().unwrap_or(true);
        } else if key.eq_text(b"stream") {
            stream = value.as_bool() == Some(true);
        } else if key.eq_text(b"background") {
            background = value.as_bool() == Some(true);
        } else if key.eq_text(b"prompt_cache_key") {
            prompt_cache_key = string_bytes(&body, &value);
        } else if key.eq_text(b"stream_id") {
            stream_id = true;
        } else if key.eq_text(b"client_metadata") {
            trace_parent = crate::event::client_metadata::trace_parent(&value);
        }
    }
    if stream_id {
        return Err(BodyError::StreamId);
    }
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or(BodyError::MissingModel)?;
    Ok(HttpRequest {
        body,
        model,
        previous,
        store,
        stream,
        background,
        prompt_cache_key,
        trace_parent,
    })
}

/// The upstream `response.create` for a validated body, in one pass
///
/// `{"type":"response.create",<members but type and stream>,"stream":true}`; with
/// `upstream_model`, the top-level `model` value is replaced by it (JSON-escaped). Members keep
/// their order and bytes. Call only with a body [`parse_request`] accepted.
pub(crate) fn build_create(body: &Bytes, upstream_model: Option<&str>) -> Bytes {
    const HEAD: &[u8] = br#"{"type":"response.create""#;
    const TAIL: &[u8] = br#","stream":true}"#;
    let extra = upstream_model.map_or(0, |m| escaped_len(m.as_bytes()) + 2);
    let mut out = Vec::with_capacity(HEAD.len() + body.len() + extra + TAIL.len());
    out.extend_from_slice(HEAD);
    if let Ok(mut scan) = ObjectScan::top_level(body) {
        while let Ok(Some(member)) = scan.next_member() {
            let key = member.key;
            if key.eq_text(b"type") || key.eq_text(b"stream") {
                continue;
            }
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.raw);
            out.extend_from_slice(b"\":");
            match upstream_model {
                Some(model) if key.eq_text(b"model") => {
                    out.push(b'"');
                    push_escaped(&mut out, model.as_bytes());
                    out.push(b'"');
                }
                _ => out.extend_from_slice(member.value.bytes()),
            }
        }
    }
    out.extend_from_slice(TAIL);
    Bytes::from(out)
}

/// The `response` object of a terminal event, as a slice of the frame (no copy)
pub(crate) fn response_object(frame: &Bytes) -> Option<Bytes> {
    let mut scan = ObjectScan::top_level(frame).ok()?;
    let mut found = None;
    while let Some(member) = scan.next_member().ok()? {
        if member.key.eq_text(b"response") && member.value.kind == ValueKind::Object {
            found = Some(member.value.range());
        }
    }
    found.map(|range| frame.slice(range))
}

/// The top-level `type` of an upstream event, for the SSE `event:` field
///
/// Upstream writes `type` first and without escapes: that case borrows from the frame without
/// a scan. Any other layout falls back to the scanner (and allocates only for escapes).
pub(crate) fn event_type(frame: &[u8]) -> Cow<'_, str> {
    const PREFIX: &[u8] = br#"{"type":""#;
    if let Some(rest) = frame.strip_prefix(PREFIX)
        && let Some(end) = memchr::memchr(b'"', rest)
        && !rest[..end].contains(&b'\\')
        && let Ok(ty) = std::str::from_utf8(&rest[..end])
    {
        return Cow::Borrowed(ty);
    }
    let Ok(mut scan) = ObjectScan::top_level(frame) else {
        return Cow::Borrowed("message");
    };
    let mut ty = None;
    while let Ok(Some(member)) = scan.next_member() {
        if member.key.eq_text(b"type")
            && let Some(text) = member.value.as_str()
        {
            ty = Some(text);
        }
    }
    match ty {
        Some(text) if !text.escaped => Cow::Owned(String::from_utf8_lossy(text.raw).into_owned()),
        Some(text) => Cow::Owned(String::from_utf8_lossy(&text.to_vec()).into_owned()),
        None => Cow::Borrowed("message"),
    }
}

/// The text of a string value: a slice of `buf`, or a decoded copy when it has escapes
fn string_bytes(buf: &Bytes, value: &Value<'_>) -> Option<Bytes> {
    let text = value.as_str()?;
    if text.escaped {
        Some(Bytes::from(text.to_vec()))
    } else {
        value.str_range().map(|range| buf.slice(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_create_drops_type_and_stream_and_maps_the_model() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-5","stream":false,"type":"x","input":[{"type":"message"}],"store":false}"#,
        );
        let out = build_create(&body, Some("gpt-5-upstream"));
        assert_eq!(
            &out[..],
            br#"{"type":"response.create","model":"gpt-5-upstream","input":[{"type":"message"}],"store":false,"stream":true}"#
        );
        let same = build_create(&body, None);
        let v: serde_json::Value = serde_json::from_slice(&same).unwrap();
        assert_eq!(v["model"], "gpt-5");
        assert_eq!(v["stream"], true);
        assert_eq!(v["type"], "response.create");
    }

    #[test]
    fn parse_request_reads_flags_and_refuses_stream_id() {
        let ok = parse_request(Bytes::from_static(
            br#"{"model":"m","stream":true,"store":false,"previous_response_id":"resp_1"}"#,
        ))
        .unwrap();
        assert!(ok.stream && !ok.store && !ok.background);
        assert_eq!(ok.previous.unwrap().as_str(), "resp_1");
        assert_eq!(
            parse_request(Bytes::from_static(br#"{"model":"m","stream_id":"a"}"#)),
            Err(BodyError::StreamId)
        );
        assert_eq!(
            parse_request(Bytes::from_static(br#"{"input":"hi"}"#)),
            Err(BodyError::MissingModel)
        );
        assert!(matches!(
            parse_request(Bytes::from_static(b"{nope")),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn event_type_fast_path_and_fallback_agree() {
        assert_eq!(
            event_type(br#"{"type":"response.created","x":1}"#),
            "response.created"
        );
        assert_eq!(event_type(br#"{ "x":1, "type":"a\u002eb"}"#), "a.b");
        let frame = Bytes::from_static(br#"{"type":"response.completed","response":{"id":"r"}}"#);
        assert_eq!(&response_object(&frame).unwrap()[..], br#"{"id":"r"}"#);
    }
}
