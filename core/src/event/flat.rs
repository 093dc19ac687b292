//! The fast path of [`classify_server_event`](super::classify_server_event): flat events.
//!
//! Nearly every event a turn streams (`response.output_text.delta` and its siblings) is one
//! compact object of scalars: `{"type":"…","sequence_number":7,"delta":"…","logprobs":[]}`.
//! For those the general scanner's machinery (a state per member, whitespace between every
//! token, unescaping keys on the stack, a 64-byte buffer for `type`) is most of the cost.
//! This walk takes only that shape and reads only `type` and `stream_id`:
//!
//! - no whitespace anywhere but after the closing `}`;
//! - keys without escapes;
//! - values that are strings, numbers, `true` / `false` / `null` or `[]`;
//! - a `type` written without escapes, which is not `error` (its envelope needs the full parse).
//!
//! Anything else returns `None` and the caller runs the full scan, so the answer is always the
//! full scan's: every accepted byte is validated by the same token functions (`lex`), a flat
//! object has no `response` object to read (the full scan then reports no id, store or usage
//! either), and a repeated key keeps its last value, as there. The property tests
//! (`core/tests/suite/event/props.rs`) and the fuzz target `events` check the agreement.

use super::lex::{ValueKind, skip_scalar, skip_string, skip_ws};
use super::server_event::{ServerEvent, ServerEventKind};

/// Classifies a flat, compact server event; `None` when the frame has another shape (or is
/// invalid), for the full scan to answer
#[inline]
pub(super) fn classify_flat(frame: &[u8]) -> Option<ServerEvent<'_>> {
    if frame.first() != Some(&b'{') {
        return None;
    }
    let mut pos = 1;
    let mut ty: Option<&[u8]> = None;
    let mut stream_id = None;
    loop {
        if frame.get(pos) != Some(&b'"') {
            return None;
        }
        let (key_end, key_escaped) = skip_string(frame, pos).ok()?;
        if key_escaped || frame.get(key_end) != Some(&b':') {
            return None;
        }
        let key = &frame[pos + 1..key_end - 1];
        let start = key_end + 1;
        let (kind, end) = match frame.get(start) {
            Some(b'[') if frame.get(start + 1) == Some(&b']') => (ValueKind::Array, start + 2),
            _ => skip_scalar(frame, start).ok()??,
        };
        let contents = || &frame[start + 1..end - 1];
        match key {
            b"type" => match kind {
                ValueKind::String { escaped: false } => ty = Some(contents()),
                _ => return None,
            },
            b"stream_id" => {
                stream_id = matches!(kind, ValueKind::String { .. }).then(contents);
            }
            _ => {}
        }
        match frame.get(end) {
            Some(b',') => pos = end + 1,
            Some(b'}') => {
                pos = end + 1;
                break;
            }
            _ => return None,
        }
    }
    if skip_ws(frame, pos) != frame.len() {
        return None;
    }
    let kind = ServerEventKind::from_type(ty?);
    if kind == ServerEventKind::Error {
        return None;
    }
    Some(ServerEvent::bare(kind, stream_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(frame: &[u8]) -> Option<ServerEventKind> {
        classify_flat(frame).map(|e| e.kind)
    }

    #[test]
    fn takes_deltas_as_upstream_and_the_mock_write_them() {
        let openai = br#"{"type":"response.output_text.delta","sequence_number":117,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" the \"answer\"\n","logprobs":[],"obfuscation":"q3Zr"}"#;
        let mock = br#"{"content_index":0,"delta":"lorem ip","item_id":"msg_1","logprobs":[],"mock_ts_ns":1796601234567890123,"output_index":0,"sequence_number":117,"stream_id":"lane-2","type":"response.output_text.delta"}"#;
        assert_eq!(kind(openai), Some(ServerEventKind::OutputTextDelta));
        let event = classify_flat(mock).unwrap();
        assert_eq!(event.kind, ServerEventKind::OutputTextDelta);
        assert_eq!(event.stream_id, Some(&b"lane-2"[..]));
        assert_eq!(
            kind(br#"{"type":"response.output_text.done","text":"x"}  "#),
            Some(ServerEventKind::Other)
        );
    }

    #[test]
    fn leaves_every_other_shape_to_the_full_scan() {
        for frame in [
            &br#"{"type":"error","error":"x"}"#[..],
            br#"{"type":"response.created","response":{"id":"r"}}"#,
            br#"{"type":"x","logprobs":[1]}"#,
            br#"{ "type":"x"}"#,
            br#"{"type" :"x"}"#,
            br#"{"type":"x" }"#,
            br#"{"t\u0079pe":"x"}"#,
            br#"{"type":"resp\u006fnse.created"}"#,
            br#"{"type":1}"#,
            br#"{"delta":"x"}"#,
            br#"{}"#,
            br#" {"type":"x"}"#,
            br#"{"type":"x"}x"#,
            br#"{"type":"x","d":"\x"}"#,
            b"{\"type\":\"x\",\"d\":\"\xff\"}",
            br#"{"type":"x","#,
        ] {
            assert_eq!(kind(frame), None, "{}", String::from_utf8_lossy(frame));
        }
    }
}
