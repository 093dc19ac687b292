//! Frames on both hops: the validating scanner against serde_json, and the model rewrites.
//!
//! The scanner (`core/src/event/scan.rs`) validates and reads frames without building a tree;
//! serde_json is the reference. For every input: the two agree on whether it is a JSON object
//! (the scanner's one documented difference, numbers too large for an `f64`, is allowed), and
//! on every field the gateway reads from it; the classifier's fast path for flat events answers
//! exactly as the full scan does. The rewrites keep the frame valid and change
//! nothing but the model values they name.

use bytes::Bytes;
use serde_json::Value;
use wsv2_core::event::{
    ClassifyError, ClientEventKind, ServerEventKind, StreamIdField, classify_client_event,
    classify_server_event, classify_server_event_full, classify_server_text, restore_event_model,
    rewrite_create_model,
};

use crate::input::Input;

/// Model names the rewrites are asked to find and write, including ones that need escapes
const MODELS: [&str; 6] = [
    "gpt-5",
    "up-model",
    "m\"q",
    "back\\slash",
    "new\nline",
    "é-ü",
];

pub(crate) fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let pick = input.byte();
    let frame = Bytes::copy_from_slice(input.rest());
    let reference = Reference::parse(&frame);
    check_server_event(&frame, &reference);
    check_client_event(&frame, &reference);
    let upstream = MODELS[usize::from(pick) % MODELS.len()];
    let client = MODELS[usize::from(pick / 8) % MODELS.len()];
    check_restore(&frame, &reference, upstream, client);
    check_rewrite_create(&frame, &reference, client);
    if let Some(info) = wsv2_core::event::parse_error_event(&frame) {
        // Any reset hint must be a duration the scheduler can add to an `Instant`.
        if let Some(secs) = info.retry_after_secs() {
            let now = std::time::Instant::now();
            assert!(
                now.checked_add(std::time::Duration::from_secs(secs))
                    .is_some(),
                "a reset hint of {secs} s overflows a deadline"
            );
        }
    }
}

/// What serde_json makes of a frame
enum Reference {
    Object(serde_json::Map<String, Value>),
    OtherJson,
    Invalid,
    /// serde_json rejects a number the scanner accepts by design (`1e999`): skip comparisons
    NumberOutOfRange,
}

impl Reference {
    fn parse(frame: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(frame) {
            Ok(Value::Object(map)) => Self::Object(map),
            Ok(_) => Self::OtherJson,
            Err(e) if e.to_string().starts_with("number out of range") => Self::NumberOutOfRange,
            Err(_) => Self::Invalid,
        }
    }

    fn check_validity<T>(&self, scanned: &Result<T, ClassifyError>, what: &str) {
        match (self, scanned) {
            (Self::NumberOutOfRange, _) => {}
            (Self::Invalid, Err(ClassifyError::InvalidJson)) => {}
            (Self::Invalid, _) => panic!("{what}: the scanner accepts what serde_json rejects"),
            (_, Err(ClassifyError::InvalidJson)) => {
                panic!("{what}: the scanner rejects valid JSON")
            }
            (Self::OtherJson, Err(ClassifyError::NotAnObject)) => {}
            (Self::OtherJson, _) => panic!("{what}: a non-object was not called one"),
            (Self::Object(_), Err(ClassifyError::NotAnObject)) => {
                panic!("{what}: an object was called a non-object")
            }
            (Self::Object(_), _) => {}
        }
    }
}

/// A string field's text, as serde_json reads it
fn text<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

fn check_server_event(frame: &Bytes, reference: &Reference) {
    let scanned = classify_server_event(frame);
    // The fast path for flat events gives exactly the full scan's answer, also when told the
    // frame is UTF-8 (where that holds).
    assert_eq!(scanned, classify_server_event_full(frame), "fast path");
    if std::str::from_utf8(frame).is_ok() {
        assert_eq!(scanned, classify_server_text(frame), "fast path, text");
    }
    reference.check_validity(&scanned, "server event");
    let Reference::Object(map) = reference else {
        return;
    };
    let Ok(event) = scanned else {
        assert_eq!(scanned, Err(ClassifyError::MissingType));
        assert!(
            text(map, "type").is_none(),
            "MissingType with a string type"
        );
        return;
    };
    let ty = text(map, "type").expect("a classified event has a string type");
    assert_eq!(
        event.kind,
        ServerEventKind::from_type(ty.as_bytes()),
        "kind"
    );
    // Ids are raw string contents; without escapes they equal the text.
    let raw_matches = |raw: Option<&[u8]>, text: Option<&str>| match raw {
        Some(raw) if !raw.contains(&b'\\') => assert_eq!(Some(raw), text.map(str::as_bytes)),
        Some(_) => {}
        None => assert!(text.is_none(), "a string field was missed"),
    };
    raw_matches(event.stream_id, text(map, "stream_id"));
    let response = map.get("response").and_then(Value::as_object);
    if event.kind == ServerEventKind::ResponseCreated || event.kind.is_terminal() {
        raw_matches(event.response_id, response.and_then(|r| text(r, "id")));
        assert_eq!(
            event.store,
            response
                .and_then(|r| r.get("store"))
                .and_then(Value::as_bool)
        );
    }
    if event.kind.is_terminal()
        && let Some(usage) = response
            .and_then(|r| r.get("usage"))
            .and_then(Value::as_object)
    {
        let got = event.usage.expect("a usage object is read");
        let count = |v: Option<&Value>, got: u64| {
            if let Some(n) = v.and_then(Value::as_u64) {
                assert_eq!(n, got, "usage count");
            }
        };
        count(usage.get("input_tokens"), got.input_tokens);
        count(usage.get("output_tokens"), got.output_tokens);
        count(usage.get("total_tokens"), got.total_tokens);
    }
    assert_eq!(event.error.is_some(), event.kind == ServerEventKind::Error);
}

fn check_client_event(frame: &Bytes, reference: &Reference) {
    let scanned = classify_client_event(frame);
    reference.check_validity(&scanned, "client event");
    let (Reference::Object(map), Ok(request)) = (reference, scanned) else {
        return;
    };
    let ty = text(map, "type").expect("a classified event has a string type");
    assert_eq!(request.type_name, ty.as_bytes(), "type");
    assert_eq!(request.kind, ClientEventKind::from_type(ty.as_bytes()));
    assert_eq!(
        request.model.as_deref(),
        text(map, "model").map(str::as_bytes),
        "model"
    );
    assert_eq!(
        request.store,
        map.get("store").and_then(Value::as_bool),
        "store"
    );
    match (&request.stream_id, map.get("stream_id")) {
        (StreamIdField::Absent, None | Some(Value::Null)) => {}
        (StreamIdField::Valid(lane), Some(Value::String(s))) => assert_eq!(lane.as_str(), s),
        (StreamIdField::Invalid, Some(_)) => {}
        (got, want) => panic!("stream_id {got:?} for {want:?}"),
    }
}

/// How many times `needle` appears anywhere in the frame
fn occurrences(frame: &[u8], needle: &[u8]) -> usize {
    frame.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Whether the frame may hold more than 8 `model` keys, the most a rewrite replaces (each
/// `\u` escape might spell one)
fn may_exceed_replacements(frame: &[u8]) -> bool {
    occurrences(frame, b"\"model\"") + occurrences(frame, b"\\u") > 8
}

fn check_restore(frame: &Bytes, reference: &Reference, upstream: &str, client: &str) {
    let out = restore_event_model(frame, upstream.as_bytes(), client.as_bytes());
    let map = match reference {
        Reference::Object(map) => map,
        Reference::NumberOutOfRange => return,
        Reference::OtherJson | Reference::Invalid => {
            assert_eq!(out, *frame, "only an object is ever rewritten");
            return;
        }
    };
    if out == *frame {
        return;
    }
    let mut want = map.clone();
    let restore = |obj: &mut serde_json::Map<String, Value>| {
        if text(obj, "model") == Some(upstream) {
            obj.insert("model".into(), Value::String(client.into()));
        }
    };
    restore(&mut want);
    if let Some(Value::Object(response)) = want.get_mut("response") {
        restore(response);
    }
    let got: Value = serde_json::from_slice(&out).expect("a rewritten frame is valid JSON");
    // Beyond 8 duplicate `model` keys the rewrite leaves the rest alone (documented).
    if !may_exceed_replacements(frame) {
        assert_eq!(got, Value::Object(want), "only the model values changed");
    }
}

fn check_rewrite_create(frame: &Bytes, reference: &Reference, model: &str) {
    let out = rewrite_create_model(frame, model);
    let map = match reference {
        Reference::Object(map) => map,
        Reference::NumberOutOfRange => return,
        Reference::OtherJson | Reference::Invalid => {
            assert_eq!(out, *frame, "only an object is ever rewritten");
            return;
        }
    };
    let got: Value = serde_json::from_slice(&out).expect("a rewritten create is valid JSON");
    let mut want = map.clone();
    if want.contains_key("model") {
        want.insert("model".into(), Value::String(model.into()));
    }
    if !may_exceed_replacements(frame) {
        assert_eq!(got, Value::Object(want), "only the top-level model changed");
    }
}
