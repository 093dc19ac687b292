//! The per-event path allocates nothing: classification of a delta and model restoring of a
//! frame that needs no rewrite, counted by a thread-local counting allocator.
//!
//! This is its own test binary because it installs a global allocator. The counter is
//! thread-local so tests running in parallel on other threads do not disturb each other.
#![allow(unsafe_code)] // A `GlobalAlloc` implementation is necessarily unsafe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use bytes::Bytes;
use wsv2_core::event::{ServerEventKind, classify_server_event, restore_event_model};

thread_local! {
    /// Allocations made by this thread; const-initialised, so reading it never allocates
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts every allocation and reallocation of the current thread, then defers to `System`
struct CountingAllocator;

fn count_one() {
    // `try_with` fails quietly while the thread-local is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by `f` on this thread
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const UPSTREAM: &[u8] = b"gpt-5.1-codex-max";
const CLIENT: &[u8] = b"my-coding-model";

/// The steady state of the relay for one frame: classify, then restore the model
fn relay_one(frame: &Bytes, expected: ServerEventKind) {
    let event = classify_server_event(frame).expect("valid event");
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

#[test]
fn the_counter_sees_allocations() {
    let frame = Bytes::from_static(
        br#"{"type":"response.created","response":{"model":"gpt-5.1-codex-max"}}"#,
    );
    let n = allocations_in(|| {
        black_box(restore_event_model(&frame, UPSTREAM, CLIENT));
    });
    assert!(
        n >= 1,
        "a rewrite allocates its new buffer: the counter must see it"
    );
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
