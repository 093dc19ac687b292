//! HTTP turn failures: the error mapping table before the first event, the flat SSE error
//! after it, retries before the first event, and the one-answer property.

use std::time::Duration;

use crate::support::gateway::*;
use proptest::prelude::*;
use serde_json::Value;
use wsv2_core::event::sse_flat_error;
use wsv2_core::http::{ContentType, HttpEvent, HttpTransmit};
use wsv2_core::turn::TurnEvent;

fn json_error(t: &[HttpTransmit]) -> (u16, Value) {
    let HttpTransmit::Head {
        status,
        content_type,
        ..
    } = t[0]
    else {
        panic!("a head first: {t:?}");
    };
    assert_eq!(content_type, ContentType::Json);
    let HttpTransmit::Body(b) = &t[1] else {
        panic!("a body: {t:?}");
    };
    assert_eq!(t.get(2), Some(&HttpTransmit::End));
    (status, serde_json::from_slice(b).unwrap())
}

#[test]
fn errors_before_the_first_event_map_to_status_and_error_json_in_both_modes() {
    // (upstream error, expected status, expected code); a single account, so 429/5xx find no
    // other account to fail over to and upstream's own answer is relayed.
    let table = [
        (
            error_event(429, "rate_limit_error", "rate_limit_exceeded"),
            429,
            "rate_limit_exceeded",
        ),
        (
            error_event(500, "server_error", "server_error"),
            500,
            "server_error",
        ),
        (
            error_event(400, "invalid_request_error", "previous_response_not_found"),
            400,
            "previous_response_not_found",
        ),
        (
            error_event(400, "invalid_request_error", "invalid_value"),
            400,
            "invalid_value",
        ),
    ];
    let mut lines = Vec::new();
    for stream in [true, false] {
        for (event, status, code) in &table {
            let mut gw = Gateway::new(vec![account(1, false)]);
            let id = gw.post(1, body(stream, true, None));
            gw.upstream(id, event.clone());
            // A failover may wait for its back-off first.
            gw.advance(Duration::from_secs(3));
            let (got_status, v) = json_error(gw.client_of(id));
            assert_eq!(got_status, *status, "stream={stream} {code}");
            assert_eq!(v["error"]["code"], *code);
            assert_eq!(v["error"]["message"], format!("upstream says {code}"));
            assert!(gw.turns[&id].is_finished());
            lines.push(format!(
                "stream={stream} upstream {code} -> {got_status} {}",
                v["error"]["code"]
            ));
        }
    }
    assert_trace!("http_error_mapping_table", lines.join("\n"));
}

#[test]
fn an_error_after_sse_began_is_the_flat_sse_error_then_end() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    gw.upstream(id, created("resp_1", true));
    let err = error_event(500, "server_error", "server_error");
    gw.upstream(id, err.clone());
    let t = gw.client_of(id);
    let n = t.len();
    assert_eq!(
        t[n - 2],
        HttpTransmit::Body(sse_flat_error(err.to_string().as_bytes()))
    );
    assert_eq!(t[n - 1], HttpTransmit::End);
    check_answer_shape(t);
    assert_trace!("http_error_after_sse_began_is_flat", gw.trace());
}

#[test]
fn upstream_lost_after_sse_began_is_a_flat_502_error() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    gw.upstream(id, created("resp_1", true));
    gw.upstream(id, delta(0));
    gw.upstream_closed(id);
    let t = gw.client_of(id);
    let HttpTransmit::Body(last) = &t[t.len() - 2] else {
        panic!("a flat error: {t:?}");
    };
    let text = String::from_utf8_lossy(last);
    assert!(text.starts_with("event: error\n"), "{text}");
    assert!(text.contains("upstream_connection_lost"), "{text}");
    assert_eq!(t.last(), Some(&HttpTransmit::End));
    assert_eq!(
        gw.creates.len(),
        1,
        "never replayed after an event was written"
    );
}

#[test]
fn upstream_lost_before_the_first_event_is_retried_on_a_fresh_conn() {
    for stream in [true, false] {
        let mut gw = Gateway::new(vec![account(1, false)]);
        let id = gw.post(1, body(stream, true, None));
        let first = gw.conn_of(id);
        if !stream {
            // stream:false may retry until the reply, even after events arrived.
            gw.upstream(id, created("resp_x", true));
        }
        gw.upstream_closed(id);
        assert!(gw.client_of(id).is_empty(), "the client saw nothing");
        assert!(gw.events.iter().any(|(_, e)| matches!(
            e,
            HttpEvent::Turn(TurnEvent::Retrying {
                switch_account: false,
                ..
            })
        )));
        gw.advance(Duration::from_millis(200));
        let second = gw.conn_of(id);
        assert_ne!(first, second, "a fresh conn");
        assert_eq!(gw.creates_of(id).len(), 2);
        gw.respond(id, "resp_1", true, 1);
        let (head, end) = check_answer_shape(gw.client_of(id));
        assert!(head && end);
        assert!(matches!(
            gw.client_of(id)[0],
            HttpTransmit::Head { status: 200, .. }
        ));
        if stream {
            assert_trace!(
                "http_upstream_lost_before_first_event_is_retried",
                gw.trace()
            );
        }
    }
}

#[test]
fn a_failed_dial_is_retried_and_a_rate_limit_fails_over_to_another_account() {
    let mut gw = Gateway::new(vec![account(1, false), account(2, false)]);
    gw.fail_dials = 1;
    let id = gw.post(1, body(true, true, None));
    assert!(gw.turns[&id].conn().is_none());
    gw.advance(Duration::from_millis(200));
    let first_account = gw.dials.last().unwrap().1;
    gw.upstream(
        id,
        error_event(429, "rate_limit_error", "rate_limit_exceeded"),
    );
    gw.advance(Duration::from_millis(500));
    let second_account = gw.dials.last().unwrap().1;
    assert_ne!(first_account, second_account, "a 429 moves a fresh create");
    gw.respond(id, "resp_1", true, 0);
    assert!(matches!(
        gw.client_of(id)[0],
        HttpTransmit::Head { status: 200, .. }
    ));
    assert_trace!("http_dial_retry_and_rate_limit_failover", gw.trace());
}

#[derive(Clone, Debug)]
enum Op {
    Created,
    Delta,
    Completed,
    Failed,
    Error(u16),
    Closed,
    Gone,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Created),
        3 => Just(Op::Delta),
        2 => Just(Op::Completed),
        1 => Just(Op::Failed),
        1 => prop_oneof![Just(429u16), Just(500), Just(400)].prop_map(Op::Error),
        1 => Just(Op::Closed),
        1 => Just(Op::Gone),
        2 => (1u64..3000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(crate::support::proptest_config())]

    /// Every request ends with exactly one answer (a head, then an end), never a body after
    /// the end; a client that left gets nothing more after it left
    #[test]
    fn every_request_gets_exactly_one_answer(stream: bool, store: bool, two_accounts: bool, ops in prop::collection::vec(op(), 0..24)) {
        let accounts = if two_accounts { vec![account(1, false), account(2, false)] } else { vec![account(1, false)] };
        let mut gw = Gateway::new(accounts);
        let id = gw.post(1, body(stream, store, None));
        let mut gone_at = None;
        for op in ops {
            let has_conn = gw.turns[&id].conn().is_some();
            match op {
                Op::Created if has_conn => gw.upstream(id, created("resp_p", store)),
                Op::Delta if has_conn => gw.upstream(id, delta(0)),
                Op::Completed if has_conn => gw.upstream(id, completed("resp_p", store)),
                Op::Failed if has_conn => gw.upstream(id, serde_json::json!({"type":"response.failed","response":{"id":"resp_p","status":"failed"}})),
                Op::Error(s) if has_conn => gw.upstream(id, error_event(s, "server_error", "boom")),
                Op::Closed if has_conn => gw.upstream_closed(id),
                Op::Gone => {
                    if gone_at.is_none() {
                        gone_at = Some(gw.client_of(id).len());
                    }
                    gw.gone(id);
                }
                Op::Advance(ms) => gw.advance(Duration::from_millis(ms)),
                _ => {}
            }
            check_answer_shape(gw.client_of(id));
        }
        // Let every timer run out: read timeouts, back-offs, drains.
        for _ in 0..40 {
            if gw.turns[&id].is_finished() {
                break;
            }
            gw.advance(Duration::from_secs(30));
        }
        prop_assert!(gw.turns[&id].is_finished());
        let (head, end) = check_answer_shape(gw.client_of(id));
        match gone_at {
            Some(n) => prop_assert_eq!(gw.client_of(id).len(), n, "nothing after the client left"),
            None => prop_assert!(head && end, "one full answer: {:?}", gw.client_of(id)),
        }
        prop_assert_eq!(gw.control.http_requests(), 0, "the control plane forgot the request");
        prop_assert_eq!(gw.control.stats().leased, 0, "no conn stays leased");
    }
}

#[test]
fn an_http_response_open_when_upstream_cuts_at_the_limit_is_counted_as_cut() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    gw.upstream(id, created("resp_1", true));
    gw.upstream(id, delta(0));
    gw.upstream(
        id,
        error_event(
            400,
            "invalid_request_error",
            "websocket_connection_limit_reached",
        ),
    );
    let cut: Vec<bool> = gw
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            HttpEvent::Turn(TurnEvent::ResponseEnded(r)) => Some(r.cut_at_conn_limit),
            _ => None,
        })
        .collect();
    assert_eq!(cut, [true]);
    let t = gw.client_of(id);
    let HttpTransmit::Body(last) = &t[t.len() - 2] else {
        panic!("a flat error: {t:?}");
    };
    let text = String::from_utf8_lossy(last);
    assert!(
        text.contains("websocket_connection_limit_reached"),
        "{text}"
    );
}
