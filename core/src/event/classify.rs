//! Server → client events: top-level `type`, `stream_id`, response id, store flag, usage.

use std::ops::Range;

use super::flat::classify_flat;
use super::json_str::JsonStr;
use super::lex::ValueKind;
use super::scan::ObjectScan;
use super::server_event::{ServerEvent, ServerEventKind};
use super::{ClassifyError, Usage, parse_error_event};

/// Room for an escaped key: longer than any key the classifier looks for
const KEY_BUF_LEN: usize = 16;

/// What the scan keeps of the `response` object
#[derive(Default)]
struct ResponseFields<'a> {
    id: Option<&'a [u8]>,
    store: Option<bool>,
    usage: Option<Range<usize>>,
}

/// Classifies a server event from its bytes without a full parse
///
/// Reads only top-level keys (nested `"type"` keys, whitespace, escapes and key order do not
/// fool it) and, for `response.created` and terminal events, the `response` object's `id`,
/// `store` and `usage`. The whole frame is validated in the same single pass. Allocates
/// nothing for events other than `error`.
///
/// - `type` must be a string ([`ClassifyError::MissingType`] otherwise); one written with
///   escapes is unescaped on the stack before mapping.
/// - `stream_id` and `response.id` are the raw string contents: upstream writes them
///   without escapes (lane names are `[A-Za-z0-9_.-]`); a value with escapes stays escaped
///   and so matches no lane. A non-string or `null` `stream_id` is `None` (default lane).
/// - A repeated key: the last occurrence wins, as in serde_json.
///
/// Flat, compact events (deltas and most stream events) take a shorter walk first
/// (`flat.rs`) that gives the same answer; [`classify_server_event_full`] is the scan alone.
#[inline]
pub fn classify_server_event(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    classify_flat(frame, false).map_or_else(|| classify_server_event_full(frame), Ok)
}

/// [`classify_server_event`] for a frame the caller already validated as UTF-8 (the payload
/// of a WebSocket text frame, which the WebSocket library checks on read): the fast path does
/// not check the encoding a second time
///
/// Everything else is validated as by [`classify_server_event`], and the answer is the same
/// for every UTF-8 frame. Bytes that are not UTF-8 break the caller's promise: a flat frame
/// with an invalid sequence inside a string may then be classified instead of refused.
#[inline]
pub fn classify_server_text(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    classify_flat(frame, true).map_or_else(|| classify_server_event_full(frame), Ok)
}

/// [`classify_server_event`] without its fast path for flat events: the full scan, which the
/// fast path is tested against
pub fn classify_server_event_full(frame: &[u8]) -> Result<ServerEvent<'_>, ClassifyError> {
    let mut scan = ObjectScan::top_level(frame)?;
    let mut ty: Option<Option<JsonStr<'_>>> = None;
    let mut stream_id = None;
    let mut response = ResponseFields::default();
    let mut scratch = [0u8; KEY_BUF_LEN];
    while let Some(key) = scan.next_key()? {
        match key.name(&mut scratch) {
            b"type" => ty = Some(scan.skip_value()?.as_str()),
            b"stream_id" => stream_id = scan.skip_value()?.as_str().map(|s| s.raw),
            b"response" => {
                response = match scan.nested_object()? {
                    Some(mut child) => {
                        let fields = read_response(&mut child)?;
                        scan.resume_after(child)?;
                        fields
                    }
                    None => {
                        scan.skip_value()?;
                        ResponseFields::default()
                    }
                };
            }
            _ => {
                scan.skip_value()?;
            }
        }
    }
    let ty = ty.flatten().ok_or(ClassifyError::MissingType)?;
    let kind = ServerEventKind::from_json_str(ty);
    let mut event = ServerEvent::bare(kind, stream_id);
    if kind == ServerEventKind::ResponseCreated || kind.is_terminal() {
        event.response_id = response.id;
        event.store = response.store;
    }
    if kind.is_terminal() {
        event.usage = match response.usage {
            Some(range) => Some(Usage::from_json(&frame[range])?),
            None => None,
        };
    }
    if kind == ServerEventKind::Error {
        event.error = parse_error_event(frame).map(Box::new);
    }
    Ok(event)
}

/// Reads `id`, `store` and the range of `usage` from the `response` object
fn read_response<'a>(child: &mut ObjectScan<'a>) -> Result<ResponseFields<'a>, ClassifyError> {
    let mut fields = ResponseFields::default();
    let mut scratch = [0u8; KEY_BUF_LEN];
    while let Some(member) = child.next_member()? {
        let value = member.value;
        match member.key.name(&mut scratch) {
            b"id" => fields.id = value.as_str().map(|s| s.raw),
            b"store" => fields.store = value.as_bool(),
            b"usage" => fields.usage = (value.kind == ValueKind::Object).then(|| value.range()),
            _ => {}
        }
    }
    Ok(fields)
}
