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
//! The keys upstream's stream events carry (`type`, `sequence_number`, `item_id`,
//! `output_index`, `content_index`, `delta`, `logprobs`, `obfuscation`, `stream_id`) are
//! recognised by comparing the bytes at the member's start with `"key":` as written, in any
//! order, and the delta's `type` value with `"response.output_text.delta"`: a compare of
//! constant length instead of a scan. Other keys and values are scanned eight bytes per step.
//! Numbers, strings and escapes are validated to the same grammar as `lex`; UTF-8 is checked
//! per string holding a non-ASCII byte, or not at all when the caller already validated the
//! frame ([`classify_server_text`](super::classify_server_text): the WebSocket library checks
//! every text frame, so the encoding is validated once per frame).
//!
//! Anything else returns `None` and the caller runs the full scan, so the answer is always the
//! full scan's: every accepted byte is validated, a flat object has no `response` object to
//! read (the full scan then reports no id, store or usage either), and a repeated key keeps
//! its last value, as there. The property tests (`flat_props.rs` beside this file, on
//! upstream-shaped frames, the fuzz corpus and mutations of both;
//! `core/tests/suite/event/props.rs`) and the fuzz target `events` check the agreement.

use super::lex::{HIGHS, ONES, skip_escape, skip_ws, special_bytes};
use super::server_event::{ServerEvent, ServerEventKind};

/// The top-level keys the classifier reads
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    StreamId,
    Other,
}

/// `type`'s value in the most frequent event, as written: quoted
const DELTA_TYPE: &[u8] = b"\"response.output_text.delta\"";

/// Classifies a flat, compact server event; `None` when the frame has another shape (or is
/// invalid), for the full scan to answer
///
/// `utf8_known`: the caller already validated the whole frame as UTF-8 (a WebSocket text
/// frame), so the encoding is not checked again; otherwise each string holding a non-ASCII
/// byte is.
#[inline]
pub(super) fn classify_flat(frame: &[u8], utf8_known: bool) -> Option<ServerEvent<'_>> {
    if frame.first() != Some(&b'{') {
        return None;
    }
    let mut pos = 1;
    let mut kind = None;
    let mut stream_id = None;
    loop {
        let (key, start) = match known_key(frame.get(pos..)?) {
            Some((key, len)) => (key, pos + len),
            None => {
                if frame.get(pos) != Some(&b'"') {
                    return None;
                }
                let (key_end, key_escaped) = string_end(frame, pos + 1, utf8_known)?;
                if key_escaped || frame.get(key_end + 1) != Some(&b':') {
                    return None;
                }
                let key = match &frame[pos + 1..key_end] {
                    b"type" => Key::Type,
                    b"stream_id" => Key::StreamId,
                    _ => Key::Other,
                };
                (key, key_end + 2)
            }
        };
        let end = match *frame.get(start)? {
            b'"' if key == Key::Type && frame[start..].starts_with(DELTA_TYPE) => {
                kind = Some(ServerEventKind::OutputTextDelta);
                start + DELTA_TYPE.len()
            }
            b'"' => {
                let (close, escaped) = string_end(frame, start + 1, utf8_known)?;
                let contents = &frame[start + 1..close];
                match key {
                    Key::Type if escaped => return None,
                    Key::Type => kind = Some(ServerEventKind::from_type(contents)),
                    Key::StreamId => stream_id = Some(contents),
                    Key::Other => {}
                }
                close + 1
            }
            first => {
                let end = match first {
                    b'-' | b'0'..=b'9' => number_end(frame, start)?,
                    b't' => literal_end(frame, start, b"true")?,
                    b'f' => literal_end(frame, start, b"false")?,
                    b'n' => literal_end(frame, start, b"null")?,
                    b'[' if frame.get(start + 1) == Some(&b']') => start + 2,
                    _ => return None,
                };
                match key {
                    Key::Type => return None,
                    Key::StreamId => stream_id = None,
                    Key::Other => {}
                }
                end
            }
        };
        match frame.get(end) {
            Some(b',') => pos = end + 1,
            Some(b'}') => {
                pos = end + 1;
                break;
            }
            _ => return None,
        }
    }
    if pos != frame.len() && skip_ws(frame, pos) != frame.len() {
        return None;
    }
    match kind? {
        ServerEventKind::Error => None,
        kind => Some(ServerEvent::bare(kind, stream_id)),
    }
}

/// Recognises the keys of upstream's stream events by their first letter and bytes (`"key":`
/// as written compactly, which proves them plain, unescaped and followed by the colon), so
/// the common members need no scan of their key; `None` for any other key, which the caller
/// scans
#[inline(always)]
fn known_key(rest: &[u8]) -> Option<(Key, usize)> {
    /// The first of the candidates (`"key":` as written) that `rest` starts with
    macro_rules! first_of {
        ($(($written:literal, $key:expr)),+) => {{
            $(if rest.starts_with($written) {
                return Some(($key, $written.len()));
            })+
            None
        }};
    }
    match rest.get(1)? {
        b't' => first_of!((b"\"type\":", Key::Type)),
        b's' => first_of!(
            (b"\"sequence_number\":", Key::Other),
            (b"\"stream_id\":", Key::StreamId)
        ),
        b'i' => first_of!((b"\"item_id\":", Key::Other)),
        b'o' => first_of!(
            (b"\"output_index\":", Key::Other),
            (b"\"obfuscation\":", Key::Other)
        ),
        b'c' => first_of!((b"\"content_index\":", Key::Other)),
        b'd' => first_of!((b"\"delta\":", Key::Other)),
        b'l' => first_of!((b"\"logprobs\":", Key::Other)),
        _ => None,
    }
}

/// The position of the closing quote of the string whose contents start at `start`, and
/// whether it held an escape (each one validated); `None` at a raw control character, the end
/// of the frame or, unless `utf8_known`, contents that are not UTF-8
///
/// Eight bytes per step while nothing special shows up; UTF-8 is checked once at the end, and
/// only if a non-ASCII byte was seen (escapes are ASCII, so they never split a sequence).
#[inline(always)]
fn string_end(frame: &[u8], start: usize, utf8_known: bool) -> Option<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    let mut non_ascii = 0u64;
    loop {
        while let Some(chunk) = frame.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let special = special_bytes(word);
            if special != 0 {
                // Only the bytes before the special one belong to this stretch.
                let before = (special & special.wrapping_neg()) - 1;
                non_ascii |= word & before;
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            non_ascii |= word;
            i += 8;
        }
        match *frame.get(i)? {
            b'"' => {
                if !utf8_known
                    && non_ascii & HIGHS != 0
                    && std::str::from_utf8(&frame[start..i]).is_err()
                {
                    return None;
                }
                return Some((i, escaped));
            }
            b'\\' => {
                escaped = true;
                i = skip_escape(frame, i).ok()?;
            }
            0..=0x1f => return None,
            b => {
                non_ascii |= u64::from(b) << 56;
                i += 1;
            }
        }
    }
}

/// The position after the number at `pos` (the JSON grammar: `-`, no leading zero, an
/// optional fraction and exponent), `None` when it breaks the grammar
#[inline(always)]
fn number_end(frame: &[u8], mut pos: usize) -> Option<usize> {
    if frame.get(pos) == Some(&b'-') {
        pos += 1;
    }
    pos = match frame.get(pos)? {
        b'0' => pos + 1,
        b'1'..=b'9' => digits_end(frame, pos + 1),
        _ => return None,
    };
    if frame.get(pos) == Some(&b'.') {
        let end = digits_end(frame, pos + 1);
        if end == pos + 1 {
            return None;
        }
        pos = end;
    }
    if let Some(b'e' | b'E') = frame.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = frame.get(pos) {
            pos += 1;
        }
        let end = digits_end(frame, pos);
        if end == pos {
            return None;
        }
        pos = end;
    }
    Some(pos)
}

/// The position of the first byte at or after `pos` that is not an ASCII digit; eight bytes
/// per step (timestamps in nanoseconds have 19 digits)
#[inline(always)]
fn digits_end(frame: &[u8], mut pos: usize) -> usize {
    while let Some(chunk) = frame.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        // Per byte, without carries between bytes: below `0` (the high bit cleared by the
        // subtraction), above `9` (set by the addition) or not ASCII.
        let below = !((word | HIGHS).wrapping_sub(ONES * u64::from(b'0')));
        let above = (word & !HIGHS).wrapping_add(ONES * (0x80 - u64::from(b'9') - 1));
        let not_digit = (below | above | word) & HIGHS;
        if not_digit != 0 {
            return pos + (not_digit.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while frame.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// The position after `literal` when it is written at `pos`
#[inline(always)]
fn literal_end(frame: &[u8], pos: usize, literal: &[u8]) -> Option<usize> {
    let end = pos + literal.len();
    (frame.get(pos..end) == Some(literal)).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(frame: &[u8]) -> Option<ServerEventKind> {
        classify_flat(frame, false).map(|e| e.kind)
    }

    #[test]
    fn takes_deltas_as_upstream_and_the_mock_write_them() {
        let openai = br#"{"type":"response.output_text.delta","sequence_number":117,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" the \"answer\"\n","logprobs":[],"obfuscation":"q3Zr"}"#;
        let mock = br#"{"content_index":0,"delta":"lorem ip","item_id":"msg_1","logprobs":[],"mock_ts_ns":1796601234567890123,"output_index":0,"sequence_number":117,"stream_id":"lane-2","type":"response.output_text.delta"}"#;
        assert_eq!(kind(openai), Some(ServerEventKind::OutputTextDelta));
        let event = classify_flat(mock, false).unwrap();
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
