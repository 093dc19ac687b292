//! Property tests of the fast path (`flat.rs`): on every input it answers as the full scan
//! does, or leaves the frame to it. Inputs: frames shaped like upstream's stream events (the
//! keys it recognises without a scan, near misses of them, others, in any order), the
//! committed fuzz corpus of the `events` target, mutations of both, and arbitrary bytes after
//! a delta's prefix.

use std::path::Path;
use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::RngSeed;

use super::classify::classify_server_event_full;
use super::flat::classify_flat;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        rng_seed: RngSeed::Fixed(0xfa57),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The fast path, with and without the caller's UTF-8 promise, gives the full scan's answer
/// (the promise only where it holds)
fn agrees(frame: &[u8]) -> Result<(), TestCaseError> {
    let full = classify_server_event_full(frame);
    let show = || String::from_utf8_lossy(frame).into_owned();
    if let Some(event) = classify_flat(frame, false) {
        prop_assert_eq!(Ok(event), full.clone(), "{}", show());
    }
    if std::str::from_utf8(frame).is_ok()
        && let Some(event) = classify_flat(frame, true)
    {
        prop_assert_eq!(Ok(event), full, "text: {}", show());
    }
    Ok(())
}

/// Keys as upstream's stream events write them, near misses of them, and others
const KEYS: &[&str] = &[
    "type",
    "stream_id",
    "sequence_number",
    "item_id",
    "output_index",
    "content_index",
    "delta",
    "logprobs",
    "obfuscation",
    "mock_ts_ns",
    "typ",
    "types",
    "type\\u0000",
    "t\\u0079pe",
    "stream_id2",
    "sequence_numbe",
    "deltas",
    "logprob",
    "o",
    "s",
    "",
    "é",
];

/// Values: every scalar kind, `type`s (the delta's, written plainly or escaped), strings with
/// escapes, control characters and non-ASCII text, and shapes the fast path refuses
const VALUES: &[&str] = &[
    "\"response.output_text.delta\"",
    "\"response.output_text.deltas\"",
    "\"response.output_text.delt\"",
    "\"response.output_text.d\\u0065lta\"",
    "\"response.function_call_arguments.delta\"",
    "\"response.completed\"",
    "\"error\"",
    "\"msg_68c2e5f0a1b2c3d4e5f60718293a4b5c0d1e2f3a\"",
    "\" the \\\"answer\\\"\\n\"",
    "\"für Größe → 大きさ\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\x\"",
    "\"tab\there\"",
    "\"\"",
    "0",
    "-0",
    "117",
    "1796601234567890123",
    "01",
    "1.5e-3",
    "1.",
    "1e",
    "-",
    "true",
    "false",
    "null",
    "nul",
    "[]",
    "[1]",
    "{}",
];

/// A compact frame of members drawn from [`KEYS`] and [`VALUES`]
fn upstream_frame() -> impl Strategy<Value = Vec<u8>> {
    vec((select(KEYS), select(VALUES)), 0..10).prop_map(|members| {
        let body: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    })
}

/// The `events` target's corpus and regressions: one choice byte, then the frame
static CORPUS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz");
    let mut frames = Vec::new();
    for folder in ["corpus/events", "regressions/events"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let data = std::fs::read(entry.expect("a readable entry").path())
                .expect("a readable corpus file");
            frames.push(data.get(1..).unwrap_or_default().to_vec());
        }
    }
    frames.sort();
    frames
});

/// `frame` truncated, with one byte replaced, or with one byte inserted
fn mutate(mut frame: Vec<u8>, at: Index, byte: u8, how: u8) -> Vec<u8> {
    let i = at.index(frame.len().max(1)).min(frame.len());
    match how {
        0 => frame.truncate(i),
        1 if i < frame.len() => frame[i] = byte,
        _ => frame.insert(i, byte),
    }
    frame
}

/// Bytes worth inserting: syntax, escapes, digits, a control character, non-ASCII
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => any::<u8>(),
        3 => select(&b"{}[]\",:\\ 0-.eEtfnu\x1f\x7f\x80\xc3"[..]),
    ]
}

/// Starts of frames for arbitrary bytes to follow
const PREFIXES: &[&[u8]] = &[
    b"{\"type\":\"response.output_text.delta\"",
    b"{\"type\":\"response.output_text.delta\",\"sequence_number\":",
    b"{\"content_index\":0,\"delta\":\"",
    b"{\"stream_id\":",
    b"{\"logprobs\":[",
];

#[test]
fn the_corpus_is_there() {
    assert!(CORPUS.len() > 100, "{} corpus frames", CORPUS.len());
}

#[test]
fn every_corpus_frame_gets_the_full_scans_answer() {
    for frame in CORPUS.iter() {
        agrees(frame).map_err(|e| e.to_string()).unwrap();
    }
}

#[test]
fn the_upstream_delta_and_the_mocks_are_taken_and_agree() {
    let openai = br#"{"type":"response.output_text.delta","sequence_number":117,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" the \"answer\"\n","logprobs":[],"obfuscation":"q3Zr"}"#;
    let mock = br#"{"content_index":0,"delta":"lorem ip","item_id":"msg_1","logprobs":[],"mock_ts_ns":1796601234567890123,"output_index":0,"sequence_number":117,"stream_id":"lane-2","type":"response.output_text.delta"}"#;
    for frame in [&openai[..], &mock[..]] {
        assert!(classify_flat(frame, false).is_some());
        assert!(classify_flat(frame, true).is_some());
        agrees(frame).map_err(|e| e.to_string()).unwrap();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn upstream_shaped_frames_agree(frame in upstream_frame()) {
        agrees(&frame)?;
    }

    #[test]
    fn damaged_upstream_shaped_frames_agree(
        frame in upstream_frame(),
        at in any::<Index>(),
        byte in byte(),
        how in 0u8..3,
    ) {
        agrees(&mutate(frame, at, byte, how))?;
    }

    #[test]
    fn damaged_corpus_frames_agree(
        pick in any::<Index>(),
        at in any::<Index>(),
        byte in byte(),
        how in 0u8..3,
    ) {
        let frame = CORPUS[pick.index(CORPUS.len())].clone();
        agrees(&mutate(frame, at, byte, how))?;
    }

    #[test]
    fn arbitrary_bytes_after_a_deltas_prefix_agree(
        prefix in select(PREFIXES),
        bytes in vec(byte(), 0..48),
    ) {
        agrees(&[prefix, &bytes[..]].concat())?;
    }
}
