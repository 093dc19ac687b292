//! Property tests: the byte-level classifier and the model restore agree with serde_json on
//! random events (random keys, nesting, key order, whitespace and escapes).

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};
use wsv2_core::event::{
    ClassifyError, ServerEventKind, Usage, classify_server_event, classify_server_event_full,
    classify_server_text, restore_event_model,
};

/// More cases for the fast path's agreement: cheap, and its shapes are many
fn fast_path_config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        ..crate::support::proptest_config()
    }
}

const KINDS: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
    "response.steer.accepted",
    "response.steer.pending",
    "response.steer.failed",
    "response.inject.created",
    "response.inject.failed",
    "response.output_text.delta",
    "response.output_item.added",
    "codex.rate_limits",
];
const UPSTREAM_MODELS: &[&str] = &["gpt-up", "gp\"t\\up", "é-model"];
const CLIENT_MODELS: &[&str] = &["client", "cl\"ient\n", "ü"];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z_.]{0,10}",
        any::<String>(),
        Just("type".to_owned()),
        Just(r#"{"type":"error","model":"gpt-up"}"#.to_owned()),
        Just("gpt-up".to_owned()),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        select(
            &[
                "type",
                "model",
                "stream_id",
                "response",
                "id",
                "usage",
                "store",
                "sequence_number",
                "item_id",
                "delta",
                "obfuscation"
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z]{1,6}",
        any::<String>(),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Dyadic fractions with few digits: serde_json reads them back exactly.
        (-1_000_000i32..1_000_000, select(&[1.0, 8.0, 1024.0][..]))
            .prop_map(|(a, b)| Value::from(f64::from(a) / b)),
        text().prop_map(Value::String),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Value::Array),
                vec((key(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

fn count() -> BoxedStrategy<Option<Value>> {
    prop::option::of(prop_oneof![4 => (0u32..100_000).prop_map(Value::from), 1 => leaf()]).boxed()
}

fn usage() -> BoxedStrategy<Value> {
    let details = |names: &'static [&'static str]| {
        (vec(count(), names.len()), vec((key(), json_value()), 0..2)).prop_map(
            move |(counts, extra)| {
                let mut map: Map<String, Value> = extra.into_iter().collect();
                for (name, c) in names.iter().zip(counts) {
                    if let Some(c) = c {
                        map.insert((*name).to_owned(), c);
                    }
                }
                Value::Object(map)
            },
        )
    };
    (
        vec(count(), 3),
        prop::option::of(details(&["cached_tokens", "cache_write_tokens"])),
        prop::option::of(details(&["reasoning_tokens"])),
    )
        .prop_map(|(counts, input, output)| {
            let mut map = Map::new();
            for (name, c) in ["input_tokens", "output_tokens", "total_tokens"]
                .iter()
                .zip(counts)
            {
                if let Some(c) = c {
                    map.insert((*name).to_owned(), c);
                }
            }
            if let Some(d) = input {
                map.insert("input_tokens_details".into(), d);
            }
            if let Some(d) = output {
                map.insert("output_tokens_details".into(), d);
            }
            Value::Object(map)
        })
        .boxed()
}

fn model_value() -> BoxedStrategy<Value> {
    prop_oneof![
        select(UPSTREAM_MODELS).prop_map(Value::from),
        select(CLIENT_MODELS).prop_map(Value::from),
        leaf(),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<Value> {
    let object = (
        vec((key(), json_value()), 0..4),
        prop::option::of(prop_oneof![text().prop_map(Value::String), leaf()]),
        prop::option::of(leaf()),
        prop::option::of(model_value()),
        prop::option::of(prop_oneof![3 => usage(), 1 => leaf()]),
    )
        .prop_map(|(extra, id, store, model, usage)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            for (name, v) in [
                ("id", id),
                ("store", store),
                ("model", model),
                ("usage", usage),
            ] {
                if let Some(v) = v {
                    map.insert(name.to_owned(), v);
                }
            }
            Value::Object(map)
        });
    prop_oneof![4 => object, 1 => json_value()].boxed()
}

/// A random top-level event object
fn event() -> BoxedStrategy<Map<String, Value>> {
    let ty = prop_oneof![
        6 => select(KINDS).prop_map(Value::from),
        1 => text().prop_map(Value::String),
        1 => leaf(),
    ];
    let stream_id = prop_oneof![
        "[A-Za-z0-9_.-]{1,20}".prop_map(Value::String),
        text().prop_map(Value::String),
        leaf(),
    ];
    (
        vec((key(), json_value()), 0..6),
        prop::option::of(ty),
        prop::option::of(stream_id),
        prop::option::of(response()),
        prop::option::of(model_value()),
    )
        .prop_map(|(extra, ty, stream_id, response, model)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            for (name, v) in [
                ("type", ty),
                ("stream_id", stream_id),
                ("response", response),
                ("model", model),
            ] {
                if let Some(v) = v {
                    map.insert(name.to_owned(), v);
                }
            }
            map
        })
        .boxed()
}

/// A flat event as upstream streams it: scalar members (and `[]`), a `type` of any kind, often
/// a `stream_id`; the shape `classify_server_event`'s fast path takes
fn flat_event() -> BoxedStrategy<Map<String, Value>> {
    let scalar = prop_oneof![
        3 => leaf(),
        1 => Just(Value::Array(Vec::new())),
        1 => "[ -~]{0,12}".prop_map(Value::String),
    ];
    let ty = prop_oneof![
        8 => select(KINDS).prop_map(Value::from),
        1 => text().prop_map(Value::String),
        1 => leaf(),
    ];
    (
        vec((key(), scalar), 0..8),
        prop::option::of(ty),
        prop::option::of(prop_oneof![
            "[A-Za-z0-9_.-]{1,20}".prop_map(Value::String),
            leaf()
        ]),
    )
        .prop_map(|(extra, ty, stream_id)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            for (name, v) in [("type", ty), ("stream_id", stream_id)] {
                if let Some(v) = v {
                    map.insert(name.to_owned(), v);
                }
            }
            map
        })
        .boxed()
}

/// Starts of frames for the arbitrary-bytes property: nothing, and ever more of a delta
const PREFIXES: &[&[u8]] = &[
    b"",
    b"{",
    b"{\"type\":\"",
    b"{\"type\":\"response.output_text.delta\",",
    b"{\"type\":\"response.output_text.delta\",\"a\":",
];

/// A frame written compactly (as upstream writes it, the fast path's shape), `type` first or
/// where the key order puts it, or with random whitespace and escapes
fn flat_frame() -> BoxedStrategy<Vec<u8>> {
    (flat_event(), any::<u64>(), 0u8..3)
        .prop_map(|(map, seed, style)| match style {
            0 => serde_json::to_vec(&map).expect("a map serializes"),
            1 => {
                let mut ordered = Map::new();
                if let Some(ty) = map.get("type") {
                    ordered.insert("type".into(), ty.clone());
                }
                let mut out = serde_json::to_vec(&ordered).expect("a map serializes");
                let rest: Map<String, Value> =
                    map.into_iter().filter(|(k, _)| k != "type").collect();
                let rest = serde_json::to_vec(&rest).expect("a map serializes");
                if rest.len() > 2 {
                    out.pop();
                    if out.len() > 1 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&rest[1..]);
                }
                out
            }
            _ => write(&map, seed, true).into_bytes(),
        })
        .boxed()
}

/// Writes JSON with random key order, random whitespace and (optionally) needless escapes
struct Writer {
    state: u64,
    needless_escapes: bool,
    out: String,
}

impl Writer {
    fn new(seed: u64, needless_escapes: bool) -> Self {
        Self {
            state: seed | 1,
            needless_escapes,
            out: String::new(),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn ws(&mut self) {
        const WS: [&str; 8] = ["", "", "", "", " ", "\n", "\t ", "\r\n  "];
        let pick = WS[(self.next() % 8) as usize];
        self.out.push_str(pick);
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let canonical = serde_json::to_string(&c.to_string()).unwrap();
            let canonical = &canonical[1..canonical.len() - 1];
            if canonical.len() != c.len_utf8()
                || !self.needless_escapes
                || !self.next().is_multiple_of(4)
            {
                self.out.push_str(canonical);
            } else if c == '/' {
                self.out.push_str("\\/");
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    self.out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
        self.out.push('"');
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                for i in (1..entries.len()).rev() {
                    let j = (self.next() % (i as u64 + 1)) as usize;
                    entries.swap(i, j);
                }
                self.out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws();
                    self.string(k);
                    self.ws();
                    self.out.push(':');
                    self.ws();
                    self.value(v);
                    self.ws();
                }
                self.out.push('}');
            }
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(item);
                    self.ws();
                }
                self.out.push(']');
            }
            Value::String(s) => self.string(s),
            other => self.out.push_str(&other.to_string()),
        }
    }
}

fn write(map: &Map<String, Value>, seed: u64, needless_escapes: bool) -> String {
    let mut w = Writer::new(seed, needless_escapes);
    w.ws();
    w.value(&Value::Object(map.clone()));
    w.ws();
    w.out
}

fn unescape(raw: &[u8]) -> String {
    serde_json::from_slice(&[b"\"", raw, b"\""].concat()).expect("valid string contents")
}

fn expected_usage(usage: &Map<String, Value>) -> Usage {
    let n = |m: Option<&Map<String, Value>>, name: &str| {
        m.and_then(|m| m.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let input = usage.get("input_tokens_details").and_then(Value::as_object);
    let output = usage
        .get("output_tokens_details")
        .and_then(Value::as_object);
    Usage {
        input_tokens: n(Some(usage), "input_tokens"),
        cached_tokens: n(input, "cached_tokens"),
        cache_write_tokens: n(input, "cache_write_tokens"),
        output_tokens: n(Some(usage), "output_tokens"),
        reasoning_tokens: n(output, "reasoning_tokens"),
        total_tokens: n(Some(usage), "total_tokens"),
    }
}

/// What serde_json says about `bytes`, in the classifier's terms
fn serde_verdict(bytes: &[u8]) -> Result<(), ClassifyError> {
    match serde_json::from_slice::<Value>(bytes) {
        Err(_) => Err(ClassifyError::InvalidJson),
        Ok(Value::Object(map)) if map.get("type").is_some_and(Value::is_string) => Ok(()),
        Ok(Value::Object(_)) => Err(ClassifyError::MissingType),
        Ok(_) => Err(ClassifyError::NotAnObject),
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    #[test]
    fn classify_agrees_with_serde_json(map in event(), seed in any::<u64>()) {
        let frame = write(&map, seed, true);
        let parsed: Value = serde_json::from_str(&frame).expect("writer emits valid JSON");
        prop_assert_eq!(parsed.as_object(), Some(&map));
        let result = classify_server_event(frame.as_bytes());
        let Some(ty) = map.get("type").and_then(Value::as_str) else {
            prop_assert_eq!(result.map(|e| e.kind), Err(ClassifyError::MissingType));
            return Ok(());
        };
        let event = result.expect("valid event");
        let kind = ServerEventKind::from_type(ty.as_bytes());
        prop_assert_eq!(event.kind, kind);
        let stream_id = event.stream_id.map(unescape);
        prop_assert_eq!(stream_id.as_deref(), map.get("stream_id").and_then(Value::as_str));
        let response = map.get("response").and_then(Value::as_object);
        if kind == ServerEventKind::ResponseCreated || kind.is_terminal() {
            let id = response.and_then(|r| r.get("id")).and_then(Value::as_str);
            let response_id = event.response_id.map(unescape);
            prop_assert_eq!(response_id.as_deref(), id);
            prop_assert_eq!(event.store, response.and_then(|r| r.get("store")).and_then(Value::as_bool));
        } else {
            prop_assert_eq!((event.response_id, event.store), (None, None));
        }
        let usage = response.and_then(|r| r.get("usage")).and_then(Value::as_object);
        let expected = if kind.is_terminal() { usage.map(expected_usage) } else { None };
        prop_assert_eq!(event.usage, expected);
        prop_assert_eq!(event.error.is_some(), kind == ServerEventKind::Error);
    }

    #[test]
    fn restore_changes_only_the_model_fields(
        map in event(),
        seed in any::<u64>(),
        upstream in select(UPSTREAM_MODELS),
        client in select(CLIENT_MODELS),
    ) {
        let frame = Bytes::from(write(&map, seed, false));
        let out = restore_event_model(&frame, upstream.as_bytes(), client.as_bytes());
        let mut expected = map.clone();
        if expected.get("model").and_then(Value::as_str) == Some(upstream) {
            expected.insert("model".into(), Value::from(client));
        }
        if let Some(response) = expected.get_mut("response").and_then(Value::as_object_mut)
            && response.get("model").and_then(Value::as_str) == Some(upstream)
        {
            response.insert("model".into(), Value::from(client));
        }
        let restored: Value = serde_json::from_slice(&out).expect("restored frame is valid JSON");
        prop_assert_eq!(restored.as_object(), Some(&expected));
        prop_assert_eq!(out.as_ptr() == frame.as_ptr(), expected == map, "same buffer iff nothing to restore");
        let again = restore_event_model(&out, upstream.as_bytes(), client.as_bytes());
        prop_assert_eq!(again.as_ptr(), out.as_ptr(), "never rewrites twice");
    }

    #[test]
    fn damaged_frames_get_serde_jsons_verdict(
        map in event(),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![any::<u8>(), select(&b"{}[]\",:\\ 0-.eEtfnu"[..])],
        how in 0u8..3,
    ) {
        let mut frame = write(&map, seed, true).into_bytes();
        let i = at.index(frame.len());
        match how {
            0 => frame.truncate(i),
            1 => frame[i] = byte,
            _ => frame.insert(i, byte),
        }
        let verdict = classify_server_event(&frame).map(|_| ());
        // By design the scanner checks numbers against the grammar only; serde_json also
        // rejects a grammatical number too large for an f64 (a mutation can make `1e999`).
        let out_of_range = serde_json::from_slice::<Value>(&frame)
            .is_err_and(|e| e.to_string().starts_with("number out of range"));
        prop_assume!(!out_of_range);
        prop_assert_eq!(verdict, serde_verdict(&frame), "{}", String::from_utf8_lossy(&frame));
    }
}

/// `classify_server_event` (fast path first) and the full scan give the same answer, and so
/// does `classify_server_text` on UTF-8
fn fast_path_agrees(frame: &[u8]) -> Result<(), TestCaseError> {
    let full = classify_server_event_full(frame);
    let show = String::from_utf8_lossy(frame);
    prop_assert_eq!(&classify_server_event(frame), &full, "{}", show);
    if std::str::from_utf8(frame).is_ok() {
        prop_assert_eq!(&classify_server_text(frame), &full, "text: {}", show);
    }
    Ok(())
}

proptest! {
    #![proptest_config(fast_path_config())]

    #[test]
    fn the_fast_path_agrees_with_the_full_scan(frame in flat_frame()) {
        fast_path_agrees(&frame)?;
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_scan_on_damaged_frames(
        frame in flat_frame(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![1 => any::<u8>(), 3 => select(&b"{}[]\",:\\ 0-.eEtfnu\x7f\x80\xc3"[..])],
        how in 0u8..3,
    ) {
        let mut frame = frame;
        let i = at.index(frame.len().max(1)).min(frame.len());
        match how {
            0 => frame.truncate(i),
            1 if i < frame.len() => frame[i] = byte,
            _ => frame.insert(i, byte),
        }
        fast_path_agrees(&frame)?;
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_scan_on_arbitrary_bytes(
        prefix in select(PREFIXES),
        bytes in vec(prop_oneof![1 => any::<u8>(), 3 => select(&b"{}[]\",:\\ 0tfn"[..])], 0..64),
    ) {
        fast_path_agrees(&[prefix, &bytes[..]].concat())?;
    }
}
