//! Instructions per classified event, for callgrind (figures in `tests/bench/PROFILE.md`):
//!
//! ```sh
//! cargo build --release -p wsv2-core --example classify_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     --toggle-collect='classify_instructions::classify_once' \
//!     target/release/examples/classify_instructions {classify|text|full} {mock|openai|utf8} 100000
//! ```
//!
//! `classify` is `classify_server_event` (with its fast path for flat events), `text`
//! `classify_server_text` (the same for a frame already validated as UTF-8), `full` the scan
//! alone; `mock` is a delta as the mock upstream writes it (keys sorted, `type` last), `openai`
//! one as the Responses API writes it (`type` first, an `obfuscation` pad), `utf8` the same
//! with non-ASCII text and escapes in its delta. Callgrind's total divided by the count is the
//! cost of one event.

use std::hint::black_box;

use wsv2_core::event::{
    ServerEventKind, classify_server_event, classify_server_event_full, classify_server_text,
};

const MOCK: &[u8] = br#"{"content_index":0,"delta":"lorem ip","item_id":"msg_5f0c8e1a9b2d4c3e8f7a6b5c4d3e2f1a","logprobs":[],"mock_ts_ns":1796601234567890123,"output_index":0,"sequence_number":117,"type":"response.output_text.delta"}"#;
const UTF8: &[u8] = r#"{"type":"response.output_text.delta","sequence_number":117,"item_id":"msg_68c2e5f0a1b2c3d4e5f60718293a4b5c0d1e2f3a4b5c6d7e","output_index":0,"content_index":0,"delta":"für \"Größe\" → 大きさ\n","logprobs":[],"obfuscation":"q3Zr8kLm"}"#.as_bytes();
const OPENAI: &[u8] = br#"{"type":"response.output_text.delta","sequence_number":117,"item_id":"msg_68c2e5f0a1b2c3d4e5f60718293a4b5c0d1e2f3a4b5c6d7e","output_index":0,"content_index":0,"delta":" the answer","logprobs":[],"obfuscation":"q3Zr8kLm"}"#;

/// Which entry point to measure
#[derive(Clone, Copy)]
enum Entry {
    Classify,
    Text,
    Full,
}

#[inline(never)]
fn classify_once(entry: Entry, frame: &[u8]) -> Option<ServerEventKind> {
    let event = match entry {
        Entry::Classify => classify_server_event(frame),
        Entry::Text => classify_server_text(frame),
        Entry::Full => classify_server_event_full(frame),
    };
    event.ok().map(|e| e.kind)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entry = match args.get(1).map(String::as_str) {
        Some("full") => Entry::Full,
        Some("text") => Entry::Text,
        _ => Entry::Classify,
    };
    let frame = match args.get(2).map(String::as_str) {
        Some("openai") => OPENAI,
        Some("utf8") => UTF8,
        _ => MOCK,
    };
    let count: u64 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let mut deltas = 0u64;
    for _ in 0..count {
        if classify_once(entry, black_box(frame)) == Some(ServerEventKind::OutputTextDelta) {
            deltas += 1;
        }
    }
    assert_eq!(deltas, count, "every frame is a delta");
}
