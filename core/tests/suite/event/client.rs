//! Client-event classification and the create-model rewrite.

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::event::{
    ClassifyError, ClientEventKind, StreamIdField, classify_client_event, rewrite_create_model,
};
use wsv2_core::{ResponseId, StreamId};

fn classify(json: &str) -> Result<wsv2_core::event::ClientRequest, ClassifyError> {
    classify_client_event(&Bytes::copy_from_slice(json.as_bytes()))
}

/// Whether `part` points into `whole`'s memory (a slice, not a copy)
fn is_slice_of(part: &Bytes, whole: &Bytes) -> bool {
    let range = whole.as_ptr_range();
    range.contains(&part.as_ptr())
}

#[test]
fn a_create_yields_every_field_as_slices_of_the_frame() {
    let frame = Bytes::from_static(
        br#"{"type":"response.create","model":"gpt-5","stream":true,"input":[{"type":"message","model":"nested"}],"previous_response_id":"resp_1","stream_id":"agent_1","store":false,"generate":false,"background":true,"prompt_cache_key":"thread-9"}"#,
    );
    let req = classify_client_event(&frame).unwrap();
    assert_eq!(req.kind, ClientEventKind::ResponseCreate);
    assert_eq!(&req.type_name[..], b"response.create");
    assert_eq!(req.model.as_deref(), Some(&b"gpt-5"[..]));
    assert_eq!(
        req.previous_response_id,
        ResponseId::from_str_copy("resp_1")
    );
    assert_eq!(
        req.stream_id,
        StreamIdField::Valid(StreamId::from_str_copy("agent_1").unwrap())
    );
    assert_eq!(req.store, Some(false));
    assert_eq!(req.generate, Some(false));
    assert!(req.background);
    assert_eq!(req.prompt_cache_key.as_deref(), Some(&b"thread-9"[..]));
    for part in [
        &req.type_name,
        req.model.as_ref().unwrap(),
        req.prompt_cache_key.as_ref().unwrap(),
    ] {
        assert!(
            is_slice_of(part, &frame),
            "{part:?} is a slice of the frame"
        );
    }
    assert!(is_slice_of(
        req.previous_response_id.as_ref().unwrap().as_bytes(),
        &frame
    ));
}

#[test]
fn absent_fields_take_their_defaults() {
    let req = classify(r#"{"type":"response.create"}"#).unwrap();
    assert_eq!(req.model, None);
    assert_eq!(req.previous_response_id, None);
    assert_eq!(req.stream_id, StreamIdField::Absent);
    assert_eq!(
        (req.store, req.generate, req.background),
        (None, None, false)
    );
    assert_eq!(req.prompt_cache_key, None);
}

#[test]
fn null_previous_response_id_and_stream_id_count_as_absent() {
    let req = classify(
        r#"{"type":"response.create","previous_response_id":null,"stream_id":null,"store":null}"#,
    )
    .unwrap();
    assert_eq!(req.previous_response_id, None);
    assert_eq!(req.stream_id, StreamIdField::Absent);
    assert_eq!(req.store, None);
}

#[test]
fn stream_id_validity_follows_upstreams_rule() {
    let field = |raw: &str| {
        classify(&format!(
            r#"{{"type":"response.create","stream_id":{raw}}}"#
        ))
        .unwrap()
        .stream_id
    };
    assert_eq!(
        field(r#""a.b-c_9""#),
        StreamIdField::Valid(StreamId::from_str_copy("a.b-c_9").unwrap())
    );
    let max = "x".repeat(256);
    assert!(matches!(
        field(&format!("\"{max}\"")),
        StreamIdField::Valid(_)
    ));
    for invalid in [
        r#""""#,
        r#""has space""#,
        r#""slash/""#,
        "7",
        "true",
        "{}",
        "[\"a\"]",
        r#""é""#,
    ] {
        assert_eq!(field(invalid), StreamIdField::Invalid, "{invalid}");
    }
    assert_eq!(
        field(&format!("\"{}\"", "x".repeat(257))),
        StreamIdField::Invalid
    );
    // Escapes are decoded before validating, as upstream's JSON parser would.
    assert_eq!(
        field(r#""\u0061b""#),
        StreamIdField::Valid(StreamId::from_str_copy("ab").unwrap())
    );
    assert_eq!(field(r#""a\nb""#), StreamIdField::Invalid);
}

#[test]
fn escaped_strings_are_decoded() {
    let req = classify(
        r#"{"type":"response.cre\u0061te","model":"gpt\u002d5 \"x\"","prompt_cache_key":"k\\1"}"#,
    )
    .unwrap();
    assert_eq!(req.kind, ClientEventKind::ResponseCreate);
    assert_eq!(&req.type_name[..], b"response.create");
    assert_eq!(req.model.as_deref(), Some(&b"gpt-5 \"x\""[..]));
    assert_eq!(req.prompt_cache_key.as_deref(), Some(&b"k\\1"[..]));
}

#[test]
fn kinds_cover_create_steer_inject_and_unknown() {
    assert_eq!(
        classify(r#"{"type":"response.steer","previous_response_id":"resp_2","input":"x"}"#)
            .unwrap()
            .kind,
        ClientEventKind::ResponseSteer
    );
    assert_eq!(
        classify(r#"{"type":"response.inject"}"#).unwrap().kind,
        ClientEventKind::ResponseInject
    );
    let unknown = classify(r#"{"type":"response.append","input":[]}"#).unwrap();
    assert_eq!(unknown.kind, ClientEventKind::Other);
    assert_eq!(&unknown.type_name[..], b"response.append");
}

#[test]
fn nested_fields_are_ignored() {
    let req = classify(r#"{"input":[{"type":"response.steer","model":"m","stream_id":""}],"type":"response.create","tools":[{"store":true}]}"#).unwrap();
    assert_eq!(req.kind, ClientEventKind::ResponseCreate);
    assert_eq!(
        (req.model, req.stream_id, req.store),
        (None, StreamIdField::Absent, None)
    );
}

#[test]
fn wrongly_typed_fields_count_as_absent() {
    let req = classify(r#"{"type":"response.create","model":5,"previous_response_id":7,"store":"no","generate":1,"background":"true","prompt_cache_key":[]}"#).unwrap();
    assert_eq!(req.model, None);
    assert_eq!(req.previous_response_id, None);
    assert_eq!(
        (req.store, req.generate, req.background),
        (None, None, false)
    );
    assert_eq!(req.prompt_cache_key, None);
}

#[test]
fn the_whole_frame_is_validated() {
    for bad in [
        r#"{"type":"response.create","input":[1,2,]}"#,
        r#"{"type":"response.create","input":"\x"}"#,
        r#"{"type":"response.create"} trailing"#,
        r#"{"type":"response.create""#,
    ] {
        assert_eq!(
            classify(bad).map(|r| r.kind),
            Err(ClassifyError::InvalidJson),
            "{bad}"
        );
    }
    assert_eq!(
        classify(r#"["response.create"]"#).map(|r| r.kind),
        Err(ClassifyError::NotAnObject)
    );
    assert_eq!(
        classify(r#"{"model":"m"}"#).map(|r| r.kind),
        Err(ClassifyError::MissingType)
    );
    assert_eq!(
        classify(r#"{"type":1}"#).map(|r| r.kind),
        Err(ClassifyError::MissingType)
    );
}

// ---- rewrite_create_model ----

#[test]
fn create_model_is_set_at_the_top_level_only() {
    let frame = Bytes::from_static(
        br#"{"type":"response.create","input":[{"role":"user","content":"use \"model\":\"alias\""},{"model":"alias"}],"model":"alias","tools":[{"type":"function","parameters":{"properties":{"model":{"type":"string"}}}}]}"#,
    );
    let out = rewrite_create_model(&frame, "gpt-5.1-codex");
    let mut expected: Value = serde_json::from_slice(&frame).unwrap();
    expected["model"] = json!("gpt-5.1-codex");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
    let text = std::str::from_utf8(&out).unwrap();
    assert_eq!(
        text.replace(r#""model":"gpt-5.1-codex""#, r#""model":"alias""#),
        std::str::from_utf8(&frame).unwrap()
    );
}

#[test]
fn create_model_keeps_the_same_buffer_when_absent_equal_or_invalid() {
    for json in [
        &br#"{"type":"response.create","input":[{"model":"alias"}]}"#[..],
        br#"{"type":"response.create","model":"gpt-5"}"#,
        br#"{"type":"response.create","model":"gpt\u002d5"}"#,
        br#"{"type":"response.create","model":"alias""#,
    ] {
        let frame = Bytes::copy_from_slice(json);
        let out = rewrite_create_model(&frame, "gpt-5");
        assert_eq!(
            out.as_ptr(),
            frame.as_ptr(),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
}

#[test]
fn create_model_replaces_non_string_values_and_escapes_the_name() {
    let frame = Bytes::from_static(br#"{"type":"response.create","model":null}"#);
    assert_eq!(
        &rewrite_create_model(&frame, "gpt-5")[..],
        br#"{"type":"response.create","model":"gpt-5"}"#
    );
    let frame = Bytes::from_static(br#"{"model":"a","type":"response.create"}"#);
    let out = rewrite_create_model(&frame, "we\"ird\\name");
    let value: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["model"], "we\"ird\\name");
}
