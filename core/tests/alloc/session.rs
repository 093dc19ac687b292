//! The per-event path allocates nothing: the binary's counting allocator around
//! `Session::handle_upstream` (a frame) → `poll_*` in steady state; and after the client left,
//! neither path (session, HTTP turn) spends a rewrite on events nobody will read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsv2_core::conn::{CompatKey, ConnRecord};
use wsv2_core::event::Utf8;
use wsv2_core::http::{HttpAdmission, HttpInput, HttpTurn, HttpTurnRequest};
use wsv2_core::resolver::Transport;
use wsv2_core::session::{Admission, Lease, Session, SessionEvent, SessionRequest};
use wsv2_core::turn::{Answer, Holder, ModelMap, SessionInfo, SlotRequest, UpstreamInput};
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use crate::{allocations, live_bytes};

/// Drains every output the way a shell does after an input
fn drain(session: &mut Session) -> usize {
    let mut n = 0;
    while let Some(t) = session.poll_transmit() {
        n += 1;
        drop(t);
    }
    while session.poll_request().is_some() {}
    while session.poll_event().is_some() {}
    let _ = session.poll_timeout();
    n
}

/// A session with one create sent on conn c1 and its `response.created` relayed
fn steady_session(model_map: ModelMap, lane: Option<&str>) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(SessionId(1), Arc::new(Config::default()), t0);
    let lane_field = lane.map_or(String::new(), |l| format!(r#","stream_id":"{l}""#));
    s.handle_client_text(
        t0,
        Bytes::from(format!(
            r#"{{"type":"response.create","model":"gpt-test","input":"hi"{lane_field}}}"#
        )),
    );
    let account = AccountId(1);
    let mut turn = None;
    for _ in 0..4 {
        while let Some(c) = s.poll_request() {
            match c {
                SessionRequest::Schedule { .. } => {
                    let compat = CompatKey::plain(account);
                    s.handle_admission(
                        t0,
                        Admission {
                            account,
                            max_concurrency: 8,
                            compat,
                            model_map: Arc::new(model_map.clone()),
                        },
                    );
                }
                SessionRequest::Acquire { compat, .. } => {
                    s.handle_lease(
                        t0,
                        Lease {
                            holder: SessionId(1),
                            record: ConnRecord::new(ConnId(1), compat, t0),
                            fresh: true,
                            preferred_hit: false,
                        },
                    );
                }
                SessionRequest::Slot(SlotRequest::Acquire { turn: t, .. }) => turn = Some(t),
                _ => {}
            }
        }
        if let Some(t) = turn.take() {
            s.handle_slot_granted(t0, t);
        }
    }
    drain(&mut s);
    assert_eq!(s.unfinished(), 1, "the create went upstream");
    s.handle_upstream(t0, ConnId(1), UpstreamInput::Frame(Bytes::from(format!(r#"{{"type":"response.created","response":{{"id":"resp_1","model":"gpt-test"}}{lane_field}}}"#)), Utf8::Unchecked));
    drain(&mut s);
    (s, t0)
}

fn count_relay(session: &mut Session, now: Instant, frame: Bytes) -> usize {
    let before = allocations();
    session.handle_upstream(now, ConnId(1), UpstreamInput::Frame(frame, Utf8::Unchecked));
    let relayed = drain(session);
    let n = allocations() - before;
    assert_eq!(relayed, 1, "the frame was relayed to the client");
    n
}

fn delta(lane: Option<&str>, i: usize) -> Bytes {
    let lane_field = lane.map_or(String::new(), |l| format!(r#","stream_id":"{l}""#));
    Bytes::from(format!(
        r#"{{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"tok{i} ","sequence_number":{i}{lane_field}}}"#
    ))
}

#[test]
fn relaying_a_delta_allocates_nothing() {
    for lane in [None, Some("agent_7")] {
        let (mut s, t0) = steady_session(ModelMap::default(), lane);
        for i in 0..8 {
            let now = t0 + Duration::from_millis(i as u64);
            let frame = delta(lane, i);
            assert_eq!(
                count_relay(&mut s, now, frame),
                0,
                "delta {i} on lane {lane:?}"
            );
        }
    }
}

#[test]
fn relaying_a_model_bearing_event_that_needs_no_rewrite_allocates_nothing() {
    // No map for the client's model, and a map whose upstream name the event does not carry.
    let maps = [
        ModelMap::default(),
        ModelMap::new([("gpt-test".to_owned(), "gpt-test-2026".to_owned())]),
    ];
    for map in maps {
        let (mut s, t0) = steady_session(map, None);
        for i in 0..4 {
            let frame = Bytes::from(format!(
                r#"{{"type":"response.in_progress","sequence_number":{i},"response":{{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-test","output":[]}}}}"#
            ));
            assert_eq!(count_relay(&mut s, t0, frame), 0, "in_progress {i}");
        }
    }
}

#[test]
fn a_session_between_turns_gives_back_its_queues_room() {
    let (mut s, t0) = steady_session(ModelMap::default(), None);
    let before = live_bytes();
    s.free_idle_room();
    assert_eq!(live_bytes(), before, "a turn under way keeps its queues");
    for i in 0..4 {
        count_relay(&mut s, t0, delta(None, i));
    }
    let completed = Bytes::from_static(
        br#"{"type":"response.completed","response":{"id":"resp_1","model":"gpt-test","output":[]}}"#,
    );
    s.handle_upstream(
        t0,
        ConnId(1),
        UpstreamInput::Frame(completed, Utf8::Unchecked),
    );
    drain(&mut s);
    assert_eq!(s.unfinished(), 0, "the turn ended");
    let idle = live_bytes();
    s.free_idle_room();
    let freed = idle - live_bytes();
    // At least the room of the command and event queues the turn used (four entries each, the
    // least a queue grows to): what 1,000 idle sessions would otherwise keep 1,000 times.
    let least = 4 * (size_of::<SessionRequest>() + size_of::<SessionEvent>()) as isize;
    assert!(
        freed >= least,
        "freed {freed} bytes, expected at least {least}"
    );
    let freed_again = live_bytes();
    s.free_idle_room();
    assert_eq!(live_bytes(), freed_again, "nothing is left to free");
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocations() > before, "the counting allocator works");
    drop(v);
}

/// An `in_progress` event naming `model` (a model-bearing event, rewritten when it carries the
/// account's upstream name)
fn in_progress(model: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"response.in_progress","response":{{"id":"resp_1","object":"response","status":"in_progress","model":"{model}","output":[]}}}}"#
    ))
}

/// Counts the allocations of handling `frame` on conn c1 and draining the session's outputs
fn count_handling(session: &mut Session, now: Instant, frame: Bytes) -> usize {
    // `frame` is built by the caller: its own allocation is not counted.
    let before = allocations();
    session.handle_upstream(now, ConnId(1), UpstreamInput::Frame(frame, Utf8::Unchecked));
    drain(session);
    allocations() - before
}

#[test]
fn a_session_draining_after_its_client_left_rewrites_nothing() {
    let map = ModelMap::new([("gpt-test".to_owned(), "gpt-test-2026".to_owned())]);
    let (mut s, t0) = steady_session(map, None);
    assert_eq!(
        count_handling(&mut s, t0, in_progress("gpt-test-2026")),
        1,
        "while the client is there the event is rewritten: exactly one new buffer, and nothing \
         else on the relay path"
    );
    s.handle_client_gone(t0);
    drain(&mut s);
    assert_eq!(
        count_handling(&mut s, t0, in_progress("gpt-test-2026")),
        0,
        "no rewrite after the client left"
    );
}

/// Drains every output of an HTTP turn the way its task does
fn drain_http(turn: &mut HttpTurn) {
    while turn.poll_transmit().is_some() {}
    while turn.poll_request().is_some() {}
    while turn.poll_event().is_some() {}
    let _ = turn.poll_timeout();
}

#[test]
fn an_http_turn_draining_after_its_client_left_rewrites_nothing() {
    let t0 = Instant::now();
    let account = AccountId(1);
    let body = Bytes::from_static(br#"{"model":"gpt-test","input":"hi","stream":true}"#);
    let cfg = Arc::new(Config::default());
    let mut turn = HttpTurn::new(SessionId(1), cfg, t0, body, SessionInfo::default());
    let compat = CompatKey::plain(account);
    let map = ModelMap::new([("gpt-test".to_owned(), "gpt-test-2026".to_owned())]);
    turn.handle_control(
        t0,
        HttpInput::Admission(HttpAdmission {
            common: Admission {
                account,
                max_concurrency: 8,
                compat: compat.clone(),
                model_map: Arc::new(map),
            },
            transport: Transport::WsV2,
            connection_local: false,
            preferred: None,
        }),
    );
    turn.handle_control(
        t0,
        HttpInput::Answer(Answer::Lease(Lease {
            holder: SessionId(1),
            record: ConnRecord::new(ConnId(1), compat, t0),
            fresh: true,
            preferred_hit: false,
        })),
    );
    let mut asked = None;
    while let Some(command) = turn.poll_request() {
        if let HttpTurnRequest::Slot(SlotRequest::Acquire { turn, .. }) = command {
            asked = Some(turn);
        }
    }
    turn.handle_control(
        t0,
        HttpInput::Answer(Answer::SlotGranted(asked.expect("a slot was asked"))),
    );
    drain_http(&mut turn);
    assert_eq!(turn.conn().map(|c| c.unfinished()), Some(1), "create sent");
    turn.handle_upstream(t0, ConnId(1), UpstreamInput::Frame(Bytes::from_static(
            br#"{"type":"response.created","response":{"id":"resp_1","model":"gpt-test-2026"}}"#,
        ), Utf8::Unchecked));
    drain_http(&mut turn);
    let count_model = |turn: &mut HttpTurn, model: &str| {
        let frame = in_progress(model);
        let before = allocations();
        turn.handle_upstream(t0, ConnId(1), UpstreamInput::Frame(frame, Utf8::Unchecked));
        drain_http(turn);
        allocations() - before
    };
    let count = |turn: &mut HttpTurn| count_model(turn, "gpt-test-2026");
    // The same event already naming the client's model costs what the SSE relay costs; the
    // rewrite adds exactly one buffer to it.
    let relay_only = count_model(&mut turn, "gpt-test");
    assert_eq!(
        count(&mut turn),
        relay_only + 1,
        "while the client is there the event is rewritten: exactly one new buffer"
    );
    turn.handle_client_gone(t0);
    drain_http(&mut turn);
    assert_eq!(count(&mut turn), 0, "no rewrite after the client left");
}
