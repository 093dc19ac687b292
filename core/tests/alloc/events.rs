//! The per-event path allocates nothing: classification of a delta and model restoring of a
//! frame that needs no rewrite, counted by the binary's counting allocator. A frame that is
//! rewritten costs exactly one buffer (the single-pass rule of `event::rewrite`).

use std::hint::black_box;

use bytes::Bytes;
use wsv2_core::event::{
    ServerEventKind, classify_server_event, classify_server_text, restore_event_model,
    rewrite_create_model,
};

use crate::allocations_in;

const UPSTREAM: &[u8] = b"gpt-5.1-codex-max";
const CLIENT: &[u8] = b"my-coding-model";

/// The steady state of the relay for one frame: classify (as bytes and as a text frame the
/// shell validated), then restore the model
fn relay_one(frame: &Bytes, expected: ServerEventKind) {
    let event = classify_server_event(frame).expect("valid event");
    assert_eq!(event.kind, expected);
    black_box(&event);
    let event = classify_server_text(frame).expect("valid event");
    assert_eq!(event.kind, expected);
    black_box(&event);
    let out = restore_event_model(frame, UPSTREAM, CLIENT);
    assert_eq!(out.as_ptr(), frame.as_ptr(), "no rewrite: same buffer");
    black_box(out);
}

fn assert_no_allocations(frame: &'static [u8], expected: ServerEventKind) {
    let frame = Bytes::from_static(frame);
    // Warm up: first calls may initialise lazily allocated runtime state.
    for _ in 0..3 {
        relay_one(&frame, expected);
    }
    let n = allocations_in(|| {
        for _ in 0..100 {
            relay_one(&frame, expected);
        }
    });
    assert_eq!(
        n,
        0,
        "{} allocated {n} times",
        String::from_utf8_lossy(&frame)
    );
}

/// Allocations of one restore of `frame`, and its result
fn restore_counted(frame: &Bytes) -> (usize, Bytes) {
    let mut out = None;
    let n = allocations_in(|| out = Some(restore_event_model(frame, UPSTREAM, CLIENT)));
    (n, out.expect("restored"))
}

/// The single-pass rule: a rewritten frame costs exactly one buffer, however many values it
/// replaces (a second pass, or a buffer that grows, is a second allocation)
#[test]
fn a_rewritten_event_is_exactly_one_new_buffer() {
    let frames: [&[u8]; 3] = [
        br#"{"type":"response.created","response":{"model":"gpt-5.1-codex-max"}}"#,
        br#"{"type":"response.completed","model":"gpt-5.1-codex-max","response":{"id":"resp_1","model":"gpt-5.1-codex-max","output":[]}}"#,
        br#"{"type":"response.in_progress","response":{"model":"gpt-5.1-codex-max","instructions":"gpt-5.1-codex-max"},"model":"gpt-5.1-codex-max"}"#,
    ];
    for frame in frames {
        let frame = Bytes::from_static(frame);
        let (n, out) = restore_counted(&frame);
        let text = String::from_utf8_lossy(&out);
        assert_ne!(out.as_ptr(), frame.as_ptr(), "rewritten: {text}");
        assert!(
            text.contains("my-coding-model") && !text.contains(r#""model":"gpt-5.1-codex-max""#),
            "every model value restored: {text}"
        );
        assert_eq!(n, 1, "one buffer for {text}");
    }
}

/// The same rule for the client's create: one buffer, even when the new name needs escaping
#[test]
fn a_rewritten_create_is_exactly_one_new_buffer() {
    let frame = Bytes::from_static(
        br#"{"type":"response.create","model":"my-coding-model","input":"hi","tools":[{"model":"x"}]}"#,
    );
    for upstream in ["gpt-5.1-codex-max", "we\"ird\\name"] {
        let mut out = None;
        let n = allocations_in(|| out = Some(rewrite_create_model(&frame, upstream)));
        let out = out.expect("rewritten");
        assert_ne!(out.as_ptr(), frame.as_ptr());
        assert_eq!(n, 1, "one buffer for {}", String::from_utf8_lossy(&out));
    }
}

#[test]
fn a_delta_on_the_default_lane_allocates_nothing() {
    assert_no_allocations(
        br#"{"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_0123456789","output_index":0,"content_index":0,"delta":" the \"answer\" is\n42 \u00e9","logprobs":[]}"#,
        ServerEventKind::OutputTextDelta,
    );
}

#[test]
fn a_delta_on_a_named_lane_allocates_nothing() {
    assert_no_allocations(
        br#"{"type":"response.output_text.delta","stream_id":"agent_7","sequence_number":12,"item_id":"msg_0123456789","output_index":0,"content_index":0,"delta":"gpt-5.1-codex-max says hi","logprobs":[]}"#,
        ServerEventKind::OutputTextDelta,
    );
}

#[test]
fn a_delta_as_the_mock_writes_it_allocates_nothing() {
    assert_no_allocations(
        br#"{"content_index":0,"delta":"lorem ip","item_id":"msg_5f0c8e1a9b2d4c3e","logprobs":[],"mock_ts_ns":1796601234567890123,"output_index":0,"sequence_number":117,"stream_id":"lane-2","type":"response.output_text.delta"}"#,
        ServerEventKind::OutputTextDelta,
    );
}

#[test]
fn a_function_call_arguments_delta_allocates_nothing() {
    assert_no_allocations(
        br#"{"type":"response.function_call_arguments.delta","sequence_number":40,"item_id":"fc_1","output_index":1,"delta":"{\"input\":\"ls -la\"}","obfuscation":"x9"}"#,
        ServerEventKind::Other,
    );
}

/// The fixture mentions the upstream model in its text, so the full scan runs (no fast path)
#[test]
fn an_in_progress_event_already_carrying_the_client_model_allocates_nothing() {
    assert_no_allocations(
        br#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","created_at":1764000000,"status":"in_progress","instructions":"You run on gpt-5.1-codex-max.","model":"my-coding-model","output":[],"tools":[{"type":"function","name":"shell","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}],"store":false,"usage":null}}"#,
        ServerEventKind::ResponseInProgress,
    );
}

#[test]
fn a_completed_event_with_usage_and_the_client_model_allocates_nothing() {
    assert_no_allocations(
        br#"{"type":"response.completed","stream_id":"lane-2","sequence_number":40,"response":{"id":"resp_2","status":"completed","model":"my-coding-model","output":[{"type":"message","content":[{"type":"output_text","text":"done"}]}],"store":true,"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":64},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":107}}}"#,
        ServerEventKind::ResponseCompleted,
    );
}
