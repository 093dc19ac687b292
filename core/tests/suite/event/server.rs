//! Server-event classification and model restoring on hand-written edge cases.

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::event::{
    ClassifyError, ErrorClass, ServerEventKind, Usage, classify_server_event, restore_event_model,
};

const DELTA: &str = r#"{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","logprobs":[]}"#;

/// A `response.completed` of at least 50 KiB: long escaped texts, nested `"type"` and
/// `"model"` keys everywhere, `type` as the last top-level key
fn completed_50k(model: &str) -> String {
    let text = "Some output with \\\"quotes\\\", a backslash \\\\, unicode \\u00e9 \\ud83d\\ude00 and \\n newlines. "
        .repeat(8);
    let item = format!(
        r#"{{"type":"message","id":"msg_x","status":"completed","role":"assistant","content":[{{"type":"output_text","annotations":[],"text":"{text} \"type\":\"error\" \"model\":\"{model}\""}}]}}"#
    );
    let mut items = Vec::new();
    while items.len() * item.len() < 52 * 1024 {
        items.push(item.clone());
    }
    format!(
        r#"{{"sequence_number":99,"response":{{"id":"resp_big","object":"response","created_at":1,"status":"completed","model":"{model}","output":[{}],"tools":[{{"type":"function","name":"pick","parameters":{{"type":"object","properties":{{"model":{{"type":"string"}}}}}}}}],"store":false,"usage":{{"input_tokens":1200,"input_tokens_details":{{"cached_tokens":1024,"cache_write_tokens":16}},"output_tokens":345,"output_tokens_details":{{"reasoning_tokens":100}},"total_tokens":1545}}}},"type":"response.completed"}}"#,
        items.join(",")
    )
}

#[test]
fn a_delta_on_the_default_lane_has_only_its_kind() {
    let event = classify_server_event(DELTA.as_bytes()).unwrap();
    assert_eq!(event.kind, ServerEventKind::OutputTextDelta);
    assert_eq!(event.stream_id, None);
    assert_eq!(event.response_id, None);
    assert_eq!(event.store, None);
    assert_eq!(event.usage, None);
    assert!(event.error.is_none());
}

#[test]
fn stream_id_is_read_from_the_top_level_only() {
    let frame = br#"{"item":{"stream_id":"nested"},"type":"response.output_text.delta","delta":"x","stream_id":"agent_7"}"#;
    assert_eq!(
        classify_server_event(frame).unwrap().stream_id,
        Some(&b"agent_7"[..])
    );
    let nested_only = br#"{"item":{"stream_id":"nested"},"type":"response.output_text.delta"}"#;
    assert_eq!(classify_server_event(nested_only).unwrap().stream_id, None);
    let null = br#"{"type":"response.output_text.delta","stream_id":null}"#;
    assert_eq!(classify_server_event(null).unwrap().stream_id, None);
    let number = br#"{"type":"response.output_text.delta","stream_id":5}"#;
    assert_eq!(classify_server_event(number).unwrap().stream_id, None);
}

#[test]
fn nested_type_keys_do_not_fool_the_classifier() {
    let frame = br#"{"item":{"type":"response.completed","content":[{"type":"error"}]},"part":{"type":"x"},"type":"response.output_item.added","response":{"type":"error"}}"#;
    assert_eq!(
        classify_server_event(frame).unwrap().kind,
        ServerEventKind::Other
    );
    let no_top_level_type =
        br#"{"item":{"type":"response.completed"},"delta":"\"type\":\"error\""}"#;
    assert_eq!(
        classify_server_event(no_top_level_type),
        Err(ClassifyError::MissingType)
    );
    let type_inside_string =
        br#"{"delta":"{\"type\":\"error\"}","type":"response.output_text.delta"}"#;
    assert_eq!(
        classify_server_event(type_inside_string).unwrap().kind,
        ServerEventKind::OutputTextDelta
    );
}

#[test]
fn type_after_a_50k_response_is_found_and_usage_parsed() {
    let frame = completed_50k("gpt-upstream");
    assert!(frame.len() >= 50 * 1024, "fixture is {} bytes", frame.len());
    serde_json::from_str::<Value>(&frame).expect("fixture is valid JSON");
    let event = classify_server_event(frame.as_bytes()).unwrap();
    assert_eq!(event.kind, ServerEventKind::ResponseCompleted);
    assert_eq!(event.response_id, Some(&b"resp_big"[..]));
    assert_eq!(event.store, Some(false));
    assert_eq!(
        event.usage,
        Some(Usage {
            input_tokens: 1200,
            cached_tokens: 1024,
            cache_write_tokens: 16,
            output_tokens: 345,
            reasoning_tokens: 100,
            total_tokens: 1545,
        })
    );
}

#[test]
fn usage_is_parsed_only_for_terminal_events() {
    let with_usage = |ty: &str| {
        format!(
            r#"{{"type":"{ty}","response":{{"id":"resp_1","store":true,"usage":{{"input_tokens":5,"output_tokens":6,"total_tokens":11}}}}}}"#
        )
    };
    for ty in [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ] {
        let frame = with_usage(ty);
        let event = classify_server_event(frame.as_bytes()).unwrap();
        assert!(event.kind.is_terminal());
        assert_eq!(event.usage.map(|u| u.total_tokens), Some(11), "{ty}");
        assert_eq!(event.response_id, Some(&b"resp_1"[..]));
        assert_eq!(event.store, Some(true));
    }
    let created = with_usage("response.created");
    let event = classify_server_event(created.as_bytes()).unwrap();
    assert_eq!(event.usage, None, "created carries an id but no usage");
    assert_eq!(event.response_id, Some(&b"resp_1"[..]));
    assert_eq!(event.store, Some(true));
    for ty in [
        "response.in_progress",
        "response.queued",
        "response.output_text.delta",
        "something.else",
    ] {
        let frame = with_usage(ty);
        let event = classify_server_event(frame.as_bytes()).unwrap();
        assert_eq!(event.usage, None, "{ty}");
        assert_eq!(event.response_id, None, "{ty}");
        assert_eq!(event.store, None, "{ty}");
    }
}

#[test]
fn whitespace_between_every_token_is_accepted() {
    let frame = b" \r\n\t{ \"response\" :\n{ \"id\" : \"resp_ws\" ,\t\"store\" : true , \"usage\" : { \"input_tokens\" : 3 } } ,\n\"type\"\r\n:\t\"response.completed\" \n} \n\t";
    let event = classify_server_event(frame).unwrap();
    assert_eq!(event.kind, ServerEventKind::ResponseCompleted);
    assert_eq!(event.response_id, Some(&b"resp_ws"[..]));
    assert_eq!(event.store, Some(true));
    assert_eq!(event.usage.map(|u| u.input_tokens), Some(3));
}

#[test]
fn escaped_keys_and_type_values_are_unescaped() {
    let key =
        br#"{"t\u0079pe":"response.created","response":{"\u0069d":"resp_e","st\u006fre":false}}"#;
    let event = classify_server_event(key).unwrap();
    assert_eq!(event.kind, ServerEventKind::ResponseCreated);
    assert_eq!(event.response_id, Some(&b"resp_e"[..]));
    assert_eq!(event.store, Some(false));
    let value = br#"{"type":"response.output_text.d\u0065lta","delta":"\ud83d\ude00\"\\"}"#;
    assert_eq!(
        classify_server_event(value).unwrap().kind,
        ServerEventKind::OutputTextDelta
    );
    let solidus = br#"{"type":"response.completed\/x"}"#;
    assert_eq!(
        classify_server_event(solidus).unwrap().kind,
        ServerEventKind::Other
    );
    let long_escaped = format!(r#"{{"type":"\u0065{}"}}"#, "x".repeat(100));
    assert_eq!(
        classify_server_event(long_escaped.as_bytes()).unwrap().kind,
        ServerEventKind::Other
    );
}

#[test]
fn invalid_json_is_rejected() {
    let cases: &[&[u8]] = &[
        b"",
        b"   ",
        br#"{"type":"response.output_text.delta""#,
        br#"{"type":"response.output_text.delta"}}"#,
        br#"{"type":"response.output_text.delta"} x"#,
        br#"{"type":"response.output_text.delta",}"#,
        br#"{"type":"response.output_text.delta","delta":"\q"}"#,
        br#"{"type":"response.output_text.delta","delta":"\u00"}"#,
        br#"{"type":"response.output_text.delta","delta":"\ud83d"}"#,
        br#"{"type":"response.output_text.delta","n":1.e5}"#,
        br#"{"type":"response.output_text.delta","n":[1,2}"#,
        b"{\"type\":\"response.output_text.delta\",\"delta\":\"\x00\"}",
        b"{\"type\":\"response.output_text.delta\",\"delta\":\"\xc3\x28\"}",
        br#"{"type" "response.output_text.delta"}"#,
        br#"{"type":response.output_text.delta}"#,
    ];
    for case in cases {
        assert_eq!(
            classify_server_event(case).map(|e| e.kind),
            Err(ClassifyError::InvalidJson),
            "{}",
            String::from_utf8_lossy(case)
        );
        assert!(serde_json::from_slice::<Value>(case).is_err());
    }
    // Every proper prefix of a valid event is invalid.
    for end in 0..DELTA.len() {
        assert_eq!(
            classify_server_event(&DELTA.as_bytes()[..end]).map(|e| e.kind),
            Err(ClassifyError::InvalidJson),
            "prefix {end}"
        );
    }
}

#[test]
fn lone_values_are_not_objects() {
    for lone in [
        &b"[]"[..],
        b"[{\"type\":\"error\"}]",
        b"\"error\"",
        b"42",
        b"null",
        b"true",
    ] {
        assert_eq!(
            classify_server_event(lone).map(|e| e.kind),
            Err(ClassifyError::NotAnObject)
        );
    }
}

#[test]
fn a_missing_or_non_string_type_is_reported() {
    for frame in [
        &br#"{}"#[..],
        br#"{"type":null}"#,
        br#"{"type":3}"#,
        br#"{"type":{"a":1}}"#,
    ] {
        assert_eq!(
            classify_server_event(frame).map(|e| e.kind),
            Err(ClassifyError::MissingType)
        );
    }
}

#[test]
fn null_fields_count_as_absent() {
    let frame = br#"{"type":"response.completed","stream_id":null,"response":{"id":null,"store":null,"usage":null}}"#;
    let event = classify_server_event(frame).unwrap();
    assert_eq!(event.kind, ServerEventKind::ResponseCompleted);
    assert_eq!(
        (event.stream_id, event.response_id, event.store, event.usage),
        (None, None, None, None)
    );
    let null_response = br#"{"type":"response.completed","response":null}"#;
    let event = classify_server_event(null_response).unwrap();
    assert_eq!((event.response_id, event.usage), (None, None));
}

#[test]
fn a_repeated_key_takes_its_last_value_like_serde_json() {
    let frame =
        br#"{"type":"error","stream_id":"a","type":"response.output_text.delta","stream_id":"b"}"#;
    let event = classify_server_event(frame).unwrap();
    assert_eq!(event.kind, ServerEventKind::OutputTextDelta);
    assert_eq!(event.stream_id, Some(&b"b"[..]));
}

#[test]
fn error_events_carry_the_parsed_envelope() {
    let frame = br#"{"type":"error","status":400,"stream_id":"main","error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"Previous response with id 'resp_abc' not found.","param":"previous_response_id"}}"#;
    let event = classify_server_event(frame).unwrap();
    assert_eq!(event.kind, ServerEventKind::Error);
    assert_eq!(event.stream_id, Some(&b"main"[..]));
    let error = event.error.expect("error envelope");
    assert_eq!(error.class, ErrorClass::PreviousResponseNotFound);
    assert_eq!(error.status, 400);
    let delta = classify_server_event(DELTA.as_bytes()).unwrap();
    assert!(delta.error.is_none());
}

#[test]
fn every_kind_maps_to_its_wire_name_and_back() {
    let all = [
        ServerEventKind::ResponseCreated,
        ServerEventKind::ResponseInProgress,
        ServerEventKind::ResponseQueued,
        ServerEventKind::ResponseCompleted,
        ServerEventKind::ResponseIncomplete,
        ServerEventKind::ResponseFailed,
        ServerEventKind::Error,
        ServerEventKind::SteerAccepted,
        ServerEventKind::SteerPending,
        ServerEventKind::SteerFailed,
        ServerEventKind::InjectCreated,
        ServerEventKind::InjectFailed,
        ServerEventKind::OutputTextDelta,
    ];
    for kind in all {
        assert_eq!(
            ServerEventKind::from_type(kind.as_str().as_bytes()),
            kind,
            "{kind:?}"
        );
        let frame = format!(r#"{{"type":"{}"}}"#, kind.as_str());
        assert_eq!(classify_server_event(frame.as_bytes()).unwrap().kind, kind);
    }
    assert_eq!(ServerEventKind::Other.as_str(), "other");
    assert_eq!(ServerEventKind::from_type(b"other"), ServerEventKind::Other);
    assert_eq!(
        ServerEventKind::from_type(b"response.output_item.added"),
        ServerEventKind::Other
    );
    assert_eq!(
        ServerEventKind::from_type(b"Response.Completed"),
        ServerEventKind::Other
    );
    let terminal: Vec<_> = all
        .iter()
        .filter(|k| k.is_terminal())
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        terminal,
        [
            "response.completed",
            "response.incomplete",
            "response.failed"
        ]
    );
    let steer: Vec<_> = all
        .iter()
        .filter(|k| k.is_steer_or_inject())
        .map(|k| k.as_str())
        .collect();
    assert_eq!(steer.len(), 5);
    assert!(
        steer
            .iter()
            .all(|s| s.starts_with("response.steer.") || s.starts_with("response.inject."))
    );
}

// ---- restore_event_model ----

fn restore(frame: &str, upstream: &str, client: &str) -> (Bytes, Bytes) {
    let frame = Bytes::copy_from_slice(frame.as_bytes());
    let out = restore_event_model(&frame, upstream.as_bytes(), client.as_bytes());
    (frame, out)
}

fn same_buffer(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

#[test]
fn restore_replaces_top_level_and_response_model_only() {
    let frame = r#"{"type":"response.created","model":"gpt-up","response":{"id":"r","model":"gpt-up","output":[{"model":"gpt-up"}],"tools":[{"type":"function","parameters":{"properties":{"model":{"type":"string","default":"gpt-up"}}}}],"instructions":"say \"model\":\"gpt-up\""},"input":[{"model":"gpt-up","text":"gpt-up"}]}"#;
    let (input, out) = restore(frame, "gpt-up", "my-model");
    assert!(!same_buffer(&input, &out));
    let mut expected: Value = serde_json::from_str(frame).unwrap();
    expected["model"] = json!("my-model");
    expected["response"]["model"] = json!("my-model");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
    // Untouched bytes stay byte-identical: only the two values changed.
    let rewritten = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(
        rewritten.replacen(r#""model":"my-model""#, r#""model":"gpt-up""#, 2),
        frame
    );
}

#[test]
fn restore_returns_the_same_buffer_when_nothing_matches() {
    let cases = [
        (DELTA, "gpt-up", "client"),
        (
            r#"{"type":"response.in_progress","response":{"model":"client"}}"#,
            "gpt-up",
            "client",
        ),
        (
            r#"{"type":"response.in_progress","response":{"model":"gpt-up-2"}}"#,
            "gpt-up",
            "client",
        ),
        (
            r#"{"type":"x","input":"gpt-up","tools":[{"model":"gpt-up"}]}"#,
            "gpt-up",
            "client",
        ),
        (
            r#"{"type":"response.in_progress","response":{"model":"gpt-up"}}"#,
            "gpt-up",
            "gpt-up",
        ),
        (
            r#"{"type":"x","response":"gpt-up","model":null}"#,
            "gpt-up",
            "client",
        ),
        (r#"{"type":"x","model":"gpt-up""#, "gpt-up", "client"),
    ];
    for (frame, upstream, client) in cases {
        let (input, out) = restore(frame, upstream, client);
        assert!(same_buffer(&input, &out), "{frame}");
    }
}

#[test]
fn restore_never_rewrites_twice() {
    let frame = r#"{"type":"response.created","response":{"model":"gpt-up"}}"#;
    let (_, once) = restore(frame, "gpt-up", "client");
    let twice = restore_event_model(&once, b"gpt-up", b"client");
    assert!(same_buffer(&once, &twice));
    assert_eq!(
        &once[..],
        br#"{"type":"response.created","response":{"model":"client"}}"#
    );
}

#[test]
fn restore_escapes_the_client_model() {
    let frame = r#"{"type":"response.completed","response":{"model":"gpt-up"}}"#;
    let (_, out) = restore(frame, "gpt-up", "my \"quoted\" \\ model\n");
    let value: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["response"]["model"], "my \"quoted\" \\ model\n");
}

#[test]
fn restore_compares_escaped_values_after_unescaping() {
    // The plain spelling occurs, so the scan runs and also catches the escaped spelling.
    let frame =
        r#"{"type":"response.created","model":"gpt\u002dup","response":{"model":"gpt-up"}}"#;
    let (_, out) = restore(frame, "gpt-up", "client");
    assert_eq!(
        &out[..],
        br#"{"type":"response.created","model":"client","response":{"model":"client"}}"#
    );
    // An upstream model that itself needs escaping.
    let frame = r#"{"type":"response.created","response":{"model":"we\"ird"}}"#;
    let (_, out) = restore(frame, "we\"ird", "client");
    assert_eq!(
        &out[..],
        br#"{"type":"response.created","response":{"model":"client"}}"#
    );
}

#[test]
fn restore_rewrites_a_50k_completed_event() {
    let frame = completed_50k("gpt-up");
    let (input, out) = restore(&frame, "gpt-up", "client-model");
    assert!(!same_buffer(&input, &out));
    let mut expected: Value = serde_json::from_str(&frame).unwrap();
    expected["response"]["model"] = json!("client-model");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
    assert_eq!(
        out.len(),
        frame.len() + "client-model".len() - "gpt-up".len()
    );
}
