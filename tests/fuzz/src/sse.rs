//! SSE encoding: whatever the event type and JSON hold, an SSE parser (WHATWG rules) reads
//! back exactly one event with that type (line breaks dropped) and that data (line breaks
//! normalized to `\n`).

use serde_json::Value;
use wsv2_core::event::{sse_encode, sse_flat_error};

use crate::input::Input;

pub(crate) fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let event_type = String::from_utf8_lossy(input.chunk()).into_owned();
    let body = input.rest();

    let frame = sse_encode(&event_type, body);
    let events = parse_sse(&frame);
    assert_eq!(events.len(), 1, "one event per frame: {frame:?}");
    let want_type: String = event_type
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    assert_eq!(events[0].0, want_type, "event type");
    assert_eq!(events[0].1, normalize_breaks(body), "data");

    // The flat error built from any bytes is one `error` event whose data is a JSON object.
    let flat = sse_flat_error(body);
    let events = parse_sse(&flat);
    assert_eq!(events.len(), 1, "one flat error event");
    assert_eq!(events[0].0, "error");
    let json: Value = serde_json::from_slice(&events[0].1).expect("flat error data is JSON");
    assert_eq!(json["type"], "error");
    if let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body)
        && let Some(message) = root
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
    {
        assert_eq!(json["message"], message, "the message survives");
    }
}

/// `\r\n` and `\r` as `\n`
fn normalize_breaks(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\r' => {
                out.push(b'\n');
                if text.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Events of an SSE stream as (type, data), by the WHATWG event-stream rules (bytes, so that
/// data that is not UTF-8 compares exactly)
fn parse_sse(stream: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut events = Vec::new();
    let (mut event_type, mut data, mut has_data) = (String::new(), Vec::new(), false);
    let normalized = normalize_breaks(stream);
    let mut lines: Vec<&[u8]> = normalized.split(|b| *b == b'\n').collect();
    // The text after the last line break is an unterminated line, which a parser ignores.
    lines.pop();
    for line in lines {
        if line.is_empty() {
            if has_data {
                data.pop(); // the last data line's `\n`
                events.push((std::mem::take(&mut event_type), std::mem::take(&mut data)));
            }
            has_data = false;
            continue;
        }
        if line.starts_with(b":") {
            continue;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => event_type = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                data.extend_from_slice(value);
                data.push(b'\n');
                has_data = true;
            }
            _ => {}
        }
    }
    events
}
