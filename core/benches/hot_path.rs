//! Micro-benchmarks of the per-event path: classification and model restore of a delta and
//! of a 50 KiB `response.completed`.
//!
//! Run: `cargo bench -p wsv2-core --bench hot_path`

use bytes::Bytes;
use divan::{Bencher, black_box};
use wsv2_core::event::{classify_server_event, restore_event_model};

fn main() {
    divan::main();
}

const UPSTREAM: &[u8] = b"gpt-5.1-codex-max";
const CLIENT: &[u8] = b"my-coding-model";

fn delta() -> Bytes {
    Bytes::from_static(
        br#"{"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_0123456789abcdef","output_index":0,"content_index":0,"delta":" the answer","logprobs":[]}"#,
    )
}

/// A `response.completed` of about 50 KiB with `type` last and `model` to restore
fn completed_50k() -> Bytes {
    let text =
        "Some output with \\\"quotes\\\", a backslash \\\\, unicode \\u00e9 and \\n newlines. "
            .repeat(8);
    let item = format!(
        r#"{{"type":"message","id":"msg_x","status":"completed","role":"assistant","content":[{{"type":"output_text","annotations":[],"text":"{text}"}}]}}"#
    );
    let items = vec![item.as_str(); 50 * 1024 / item.len() + 1].join(",");
    let model = std::str::from_utf8(UPSTREAM).unwrap_or_default();
    Bytes::from(format!(
        r#"{{"sequence_number":99,"response":{{"id":"resp_big","object":"response","status":"completed","model":"{model}","output":[{items}],"store":false,"usage":{{"input_tokens":1200,"input_tokens_details":{{"cached_tokens":1024}},"output_tokens":345,"output_tokens_details":{{"reasoning_tokens":100}},"total_tokens":1545}}}},"type":"response.completed"}}"#
    ))
}

#[divan::bench]
fn classify_delta(bencher: Bencher) {
    let frame = delta();
    bencher
        .counter(divan::counter::BytesCount::of_slice(&frame[..]))
        .bench(|| classify_server_event(black_box(&frame[..])).map(|e| e.kind));
}

#[divan::bench]
fn classify_and_restore_delta(bencher: Bencher) {
    let frame = delta();
    bencher.bench(|| {
        let frame = black_box(&frame);
        let kind = classify_server_event(frame).map(|e| e.kind);
        (kind, restore_event_model(frame, UPSTREAM, CLIENT))
    });
}

#[divan::bench]
fn classify_completed_50k(bencher: Bencher) {
    let frame = completed_50k();
    bencher
        .counter(divan::counter::BytesCount::of_slice(&frame[..]))
        .bench(|| classify_server_event(black_box(&frame[..])).map(|e| e.usage));
}

#[divan::bench]
fn restore_completed_50k(bencher: Bencher) {
    let frame = completed_50k();
    assert!(frame.len() >= 50 * 1024);
    let restored = restore_event_model(&frame, UPSTREAM, CLIENT);
    assert_ne!(
        restored.as_ptr(),
        frame.as_ptr(),
        "the fixture needs a rewrite"
    );
    bencher
        .counter(divan::counter::BytesCount::of_slice(&frame[..]))
        .bench(|| restore_event_model(black_box(&frame), UPSTREAM, CLIENT));
}

/// Baselines: serde_json validating the same frames without building anything
mod serde_json_baseline {
    use divan::{Bencher, black_box};
    use serde::de::IgnoredAny;

    #[divan::bench]
    fn validate_delta(bencher: Bencher) {
        let frame = super::delta();
        bencher.bench(|| serde_json::from_slice::<IgnoredAny>(black_box(&frame[..])).is_ok());
    }

    #[divan::bench]
    fn validate_completed_50k(bencher: Bencher) {
        let frame = super::completed_50k();
        bencher.bench(|| serde_json::from_slice::<IgnoredAny>(black_box(&frame[..])).is_ok());
    }
}
