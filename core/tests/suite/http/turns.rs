//! HTTP turns end to end through `Control` and the pools, in virtual time: SSE and JSON
//! answers, chains, holds, drains and validation.

use crate::support::gateway::*;
use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::event::sse_encode;
use wsv2_core::http::{ContentType, HttpEvent, HttpTransmit, HttpTurnRequest};
use wsv2_core::turn::TurnEvent;
use wsv2_core::{AccountId, SessionId};

fn bodies(t: &[HttpTransmit]) -> Vec<Bytes> {
    t.iter()
        .filter_map(|x| match x {
            HttpTransmit::Body(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn releases(gw: &Gateway, id: SessionId) -> Vec<(bool, Option<String>)> {
    gw.commands
        .iter()
        .filter(|(s, _)| *s == id)
        .filter_map(|(_, c)| match c {
            HttpTurnRequest::Release { release, hold } => Some((
                release.reusable,
                hold.as_ref().map(|h| h.as_str().to_owned()),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn stream_true_relays_every_event_as_sse_in_order() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    let events = [
        created("resp_1", true),
        delta(0),
        delta(1),
        completed("resp_1", true),
    ];
    for e in &events {
        gw.upstream(id, e.clone());
    }
    let client = gw.client_of(id);
    assert_eq!(
        client[0],
        HttpTransmit::Head {
            status: 200,
            content_type: ContentType::EventStream,
            retry_after: None
        }
    );
    assert_eq!(client.last(), Some(&HttpTransmit::End));
    // The model is restored to the client's name before framing.
    let expected: Vec<Bytes> = events
        .iter()
        .map(|e| {
            let text = e.to_string().replace("upstream-model", "client-model");
            sse_encode(e["type"].as_str().unwrap(), text.as_bytes())
        })
        .collect();
    assert_eq!(bodies(client), expected);
    let create = &gw.creates_of(id)[0].2;
    assert_eq!(create["type"], "response.create");
    assert_eq!(create["stream"], true);
    assert_eq!(
        create["model"], "upstream-model",
        "the account's model map applies"
    );
    assert_eq!(
        releases(&gw, id),
        vec![(true, None)],
        "released clean, no hold"
    );
    assert_trace!(
        "http_stream_true_relays_every_event_as_sse_in_order",
        gw.trace()
    );
}

#[test]
fn stream_false_answers_the_final_response_object_as_json() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(false, true, None));
    gw.respond(id, "resp_1", true, 3);
    let client = gw.client_of(id);
    assert_eq!(client.len(), 3, "head, one body, end: {client:?}");
    assert_eq!(
        client[0],
        HttpTransmit::Head {
            status: 200,
            content_type: ContentType::Json,
            retry_after: None
        }
    );
    let HttpTransmit::Body(b) = &client[1] else {
        panic!("a body");
    };
    let v: Value = serde_json::from_slice(b).unwrap();
    let mut expected = completed("resp_1", true)["response"].clone();
    expected["model"] = json!("client-model");
    assert_eq!(v, expected);
    assert_trace!(
        "http_stream_false_answers_the_final_response_object_as_json",
        gw.trace()
    );
}

#[test]
fn stream_id_in_an_http_body_is_a_400_before_anything_else() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let mut b = body(true, true, None);
    b["stream_id"] = json!("lane-a");
    let id = gw.post(1, b);
    let client = gw.client_of(id);
    assert!(matches!(client[0], HttpTransmit::Head { status: 400, .. }));
    let v: Value = serde_json::from_slice(&bodies(client)[0]).unwrap();
    assert_eq!(v["error"]["param"], "stream_id");
    assert_eq!(client.last(), Some(&HttpTransmit::End));
    assert!(
        gw.commands.is_empty(),
        "the control plane never heard of it"
    );
    assert!(gw.dials.is_empty());
    for (raw, what) in [
        (&br#"{"model":"m""#[..], "invalid JSON"),
        (&br#"{"input":"hi"}"#[..], "no model"),
    ] {
        let id = gw.post_raw(9, Bytes::copy_from_slice(raw));
        assert!(
            matches!(gw.client_of(id)[0], HttpTransmit::Head { status: 400, .. }),
            "{what}"
        );
        gw.client.clear();
    }
}

#[test]
fn background_is_a_400_on_a_websocket_account_and_forwarded_on_an_http_account() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let mut b = body(false, true, None);
    b["background"] = json!(true);
    let id = gw.post(1, b.clone());
    assert!(matches!(
        gw.client_of(id)[0],
        HttpTransmit::Head { status: 400, .. }
    ));
    assert!(gw.creates.is_empty() && gw.dials.is_empty());

    let mut gw = Gateway::new(vec![account(2, true)]);
    let id = gw.post(1, b);
    assert!(matches!(
        gw.client_of(id)[0],
        HttpTransmit::Forward {
            account: AccountId(2),
            ..
        }
    ));
    let HttpTransmit::Forward { body, .. } = &gw.client_of(id)[0] else {
        unreachable!()
    };
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["model"], "upstream-model");
    assert_eq!(v["background"], true, "the body goes as the client sent it");
    let now = gw.now;
    gw.turns
        .get_mut(&id)
        .unwrap()
        .handle_forward_head(now, 200, None);
    gw.run();
    gw.turns.get_mut(&id).unwrap().handle_forward_end(now);
    gw.run();
    let client = gw.client_of(id);
    assert_eq!(
        &client[1..],
        &[HttpTransmit::PassThrough, HttpTransmit::End]
    );
    check_answer_shape(client);
    assert!(
        gw.dials.is_empty(),
        "an HTTP account never dials a WebSocket"
    );
}

#[test]
fn store_false_chain_is_held_and_its_conn_preferred() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    // Two turns at once: two conns.
    let a = gw.post(1, body(true, false, None));
    let b = gw.post(2, body(true, true, None));
    let (ca, cb) = (gw.conn_of(a), gw.conn_of(b));
    assert_ne!(ca, cb);
    gw.respond(a, "resp_a", false, 1);
    gw.respond(b, "resp_b", true, 1);
    assert_eq!(
        releases(&gw, a),
        vec![(true, Some("resp_a".to_owned()))],
        "a store:false turn releases with a chain hold"
    );
    assert_eq!(
        gw.control.stats().held,
        1,
        "the pool holds the chain's conn"
    );
    // cb is the most recently released idle conn, yet the chain's turn gets ca.
    let c = gw.post(3, body(true, false, Some("resp_a")));
    assert_eq!(gw.conn_of(c), ca, "the conn whose cache holds the chain");
    let create = &gw.creates_of(c)[0];
    assert_eq!(create.1, ca);
    assert_eq!(create.2["previous_response_id"], "resp_a");
    assert_trace!(
        "http_store_false_chain_is_held_and_its_conn_preferred",
        gw.trace()
    );
}

#[test]
fn store_false_continuation_with_no_caching_conn_is_a_400_without_upstream() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let a = gw.post(1, body(false, false, None));
    let ca = gw.conn_of(a);
    gw.respond(a, "resp_a", false, 0);
    // The idle conn dies.
    let now = gw.now;
    gw.control.handle_idle_closed(now, AccountId(1), ca);
    gw.run();
    let (dials, creates) = (gw.dials.len(), gw.creates.len());
    let c = gw.post(2, body(false, false, Some("resp_a")));
    let client = gw.client_of(c);
    assert!(matches!(client[0], HttpTransmit::Head { status: 400, .. }));
    let v: Value = serde_json::from_slice(&bodies(client)[0]).unwrap();
    assert_eq!(v["error"]["code"], "previous_response_not_found");
    assert_eq!(v["error"]["param"], "previous_response_id");
    assert_eq!(
        (gw.dials.len(), gw.creates.len()),
        (dials, creates),
        "no upstream call"
    );
    assert_trace!(
        "http_store_false_continuation_with_no_caching_conn_is_a_400",
        gw.trace()
    );
}

#[test]
fn store_false_continuation_whose_conn_a_websocket_session_leased_is_a_400() {
    // One conn at most, so the session must take the held one.
    let mut one = account(1, false);
    one.concurrency = 1;
    let mut gw = Gateway::new(vec![one]);
    let a = gw.post(1, body(false, false, None));
    let ca = gw.conn_of(a);
    gw.respond(a, "resp_a", false, 0);
    // A WebSocket session takes the only idle conn (the hold yields to any taker).
    let s = SessionId(50);
    let now = gw.now;
    gw.control
        .open_session(s, wsv2_core::turn::SessionInfo::default());
    gw.sessions
        .insert(s, wsv2_core::session::Session::new(s, gw.cfg.clone(), now));
    gw.sessions.get_mut(&s).unwrap().handle_client_text(
        now,
        Bytes::from_static(br#"{"type":"response.create","model":"m","input":"x"}"#),
    );
    gw.run();
    assert_eq!(
        gw.sessions[&s].active_conn().map(|c| c.id()),
        Some(ca),
        "the session leased the chain's conn"
    );
    let creates = gw.creates.len();
    let c = gw.post(2, body(true, false, Some("resp_a")));
    let client = gw.client_of(c);
    assert!(matches!(client[0], HttpTransmit::Head { status: 400, .. }));
    assert_eq!(gw.creates.len(), creates, "no create from the HTTP turn");
}

#[test]
fn an_unknown_previous_id_goes_upstream_and_its_answer_is_relayed() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let c = gw.post(1, body(false, false, Some("resp_elsewhere")));
    assert_eq!(gw.creates_of(c).len(), 1, "sent to the account");
    gw.upstream(
        c,
        error_event(400, "invalid_request_error", "previous_response_not_found"),
    );
    let client = gw.client_of(c);
    assert!(matches!(client[0], HttpTransmit::Head { status: 400, .. }));
    let v: Value = serde_json::from_slice(&bodies(client)[0]).unwrap();
    assert_eq!(v["error"]["code"], "previous_response_not_found");
    assert_eq!(
        v["error"]["message"],
        "upstream says previous_response_not_found"
    );
}

#[test]
fn client_gone_mid_stream_drains_to_the_terminal_and_releases_clean() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    gw.upstream(id, created("resp_1", true));
    gw.upstream(id, delta(0));
    let written = gw.client_of(id).len();
    gw.gone(id);
    gw.upstream(id, delta(1));
    gw.upstream(id, completed("resp_1", true));
    assert_eq!(
        gw.client_of(id).len(),
        written,
        "nothing written after the client left"
    );
    assert_eq!(
        releases(&gw, id),
        vec![(true, None)],
        "the conn goes back reusable"
    );
    let ended = gw
        .events
        .iter()
        .find_map(|(_, e)| match e {
            HttpEvent::Turn(TurnEvent::ResponseEnded(r)) => Some((**r).clone()),
            _ => None,
        })
        .expect("the response is reported");
    assert!(ended.drained);
    assert_eq!(
        ended.usage.map(|u| u.total_tokens),
        Some(5),
        "usage recorded"
    );
    assert_eq!(gw.control.stats().idle, 1);
    assert_trace!(
        "http_client_gone_mid_stream_drains_to_the_terminal",
        gw.trace()
    );
}

#[test]
fn client_gone_while_the_create_is_written_abandons_the_write_at_once() {
    let mut gw = Gateway::new(vec![account(1, false)]);
    let id = gw.post(1, body(true, true, None));
    let conn = gw.conn_of(id);
    gw.gone(id);
    // The create may still be in the conn's writer (upstream not reading): the turn has the
    // shell cancel it rather than wait out `upstream.write_timeout`.
    assert!(
        gw.commands
            .iter()
            .any(|(s, c)| *s == id && *c == HttpTurnRequest::AbandonWrites { conn }),
        "{:?}",
        gw.commands
    );
    gw.write_abandoned(id, true);
    assert!(
        gw.events
            .iter()
            .any(|(s, e)| *s == id && *e == HttpEvent::Turn(TurnEvent::Finished)),
        "the turn ends without any timer"
    );
    assert_eq!(
        releases(&gw, id),
        vec![(false, None)],
        "a half-written frame leaves the conn unusable"
    );
}
