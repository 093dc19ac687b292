//! Session rules when upstream misbehaves: error events, tail packets, retirement, lane
//! limits, lost conns and abandoned writes.

use std::time::Duration;

use crate::support::session::{Sim, World, create, text_response};
use serde_json::json;
use wsv2_core::conn::{CompatKey, ConnRecord, ConnState};
use wsv2_core::errors::Refusal;
use wsv2_core::session::SessionEvent;
use wsv2_core::turn::TurnEvent;
use wsv2_core::{Config, ConnId, StreamId};

fn error_event(code: &str, status: u16, lane: Option<&str>) -> serde_json::Value {
    let mut v = json!({"type": "error", "status": status, "error": {"type": "invalid_request_error", "code": code, "message": "m"}});
    if let Some(l) = lane {
        v["stream_id"] = json!(l);
    }
    v
}

#[test]
fn error_event_marks_conn_dirty_but_usable() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(1, error_event("server_error", 500, None));
    let conn = sim.session.active_conn().unwrap();
    assert_eq!(conn.state(), ConnState::Dirty);
    assert!(
        !conn.is_reusable(),
        "an errored conn never goes back to the pool"
    );
    assert_eq!(
        sim.to_client[0]["status"], 500,
        "the error reaches the client"
    );
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(
        sim.creates_on(1),
        2,
        "the session keeps using its dirty conn"
    );
    sim.respond(1, "resp_2", None, 1, true);
    sim.client_gone();
    assert!(!sim.released[0].reusable, "released dirty at session end");
    assert_trace!(
        "session_error_event_marks_conn_dirty_but_usable",
        sim.trace()
    );
}

#[test]
fn tail_packet_marks_conn_dirty() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    let forwarded = sim.to_client.len();
    sim.upstream(
        1,
        json!({"type": "response.output_text.delta", "delta": "late", "sequence_number": 9}),
    );
    assert_eq!(
        sim.to_client.len(),
        forwarded,
        "a tail packet is not forwarded"
    );
    assert!(sim.events.iter().any(
        |e| matches!(e, SessionEvent::Turn(TurnEvent::TailPacket { conn }) if *conn == ConnId(1))
    ));
    assert_eq!(sim.session.active_conn().unwrap().state(), ConnState::Dirty);
    sim.client_gone();
    assert!(!sim.released[0].reusable);
    assert_trace!("session_tail_packet_marks_conn_dirty", sim.trace());
}

#[test]
fn error_routing_follows_lanes() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, Some("a"), true));
    sim.client(create(Some("gpt-test"), None, Some("b"), true));
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(1, error_event("server_error", 500, Some("b")));
    let ended = sim.ended();
    assert_eq!(
        ended.len(),
        1,
        "an error with a lane ends exactly that lane's response"
    );
    assert_eq!(ended[0].lane.as_ref().unwrap().as_str(), "b");
    sim.upstream(1, error_event("server_error", 500, None));
    let ended = sim.ended();
    assert_eq!(
        ended.len(),
        2,
        "an error without a lane ends the oldest default-lane response"
    );
    assert!(ended[1].lane.is_none());
    sim.respond(1, "resp_a", Some("a"), 1, true);
    assert_eq!(sim.session.unfinished(), 0);
    sim.client(create(Some("gpt-test"), None, Some("c"), true));
    sim.client(create(Some("gpt-test"), None, Some("d"), true));
    sim.upstream(1, error_event("server_error", 500, Some("zzz")));
    assert_eq!(
        sim.ended().len(),
        5,
        "an error no response owns is connection-level: it ends every open response"
    );
    assert_eq!(sim.session.unfinished(), 0);
    assert_trace!("session_error_routing_follows_lanes", sim.trace());
}

#[test]
fn connection_limit_error_moves_a_movable_create_to_a_fresh_conn() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, true));
    let before = sim.to_client.len();
    sim.upstream(1, json!({"type": "error", "error": {"type": "invalid_request_error", "code": "websocket_connection_limit_reached", "message": "limit"}, "status": 400}));
    assert_eq!(sim.to_client.len(), before, "the client does not notice");
    assert_eq!(sim.creates_on(2), 1, "the create moved to conn c2");
    assert!(
        sim.closes.contains(&ConnId(1)),
        "the old conn retired and closed"
    );
    assert!(
        !sim.released
            .iter()
            .find(|r| r.record.id == ConnId(1))
            .unwrap()
            .reusable
    );
    sim.respond(2, "resp_2", None, 1, true);
    assert_eq!(
        sim.ended()
            .last()
            .unwrap()
            .response
            .as_ref()
            .unwrap()
            .as_str(),
        "resp_2"
    );
    assert_trace!("session_connection_limit_error_moves_create", sim.trace());
}

#[test]
fn connection_limit_error_reaches_the_client_for_a_connection_local_create() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, false));
    sim.respond(1, "resp_1", None, 1, false);
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, false));
    sim.upstream(1, json!({"type": "error", "error": {"type": "invalid_request_error", "code": "websocket_connection_limit_reached", "message": "limit"}, "status": 400}));
    assert_eq!(
        sim.to_client.last().unwrap()["error"]["code"],
        "websocket_connection_limit_reached"
    );
    assert_eq!(sim.creates_on(2), 0, "a store:false chain cannot move");
    assert_trace!(
        "session_connection_limit_error_connection_local",
        sim.trace()
    );
}

#[test]
fn max_age_rotates_to_a_fresh_conn() {
    let mut cfg = Config::default();
    cfg.upstream.max_age = Duration::from_secs(60);
    cfg.upstream.ping_interval = Duration::from_secs(3600);
    cfg.session.client_ping_interval = Duration::from_secs(3600);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.advance(Duration::from_secs(61));
    assert_eq!(
        sim.session.active_conn().map(|c| c.state()),
        None,
        "the aged conn no longer takes creates"
    );
    assert_eq!(
        sim.session.retiring_conn().map(|c| c.state()),
        Some(ConnState::Retiring)
    );
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(
        sim.creates_on(2),
        1,
        "a new create goes to a fresh conn at once"
    );
    for ev in text_response("resp_1", None, 1, true, "gpt-test")
        .into_iter()
        .skip(1)
    {
        sim.upstream(1, ev);
    }
    assert!(
        sim.closes.contains(&ConnId(1)),
        "the retiring conn closes when its last response ends"
    );
    assert!(sim.session.retiring_conn().is_none());
    assert_trace!("session_max_age_rotation", sim.trace());
}

#[test]
fn max_age_answers_a_connection_local_create_with_the_limit_error() {
    let mut cfg = Config::default();
    cfg.upstream.max_age = Duration::from_secs(60);
    cfg.upstream.ping_interval = Duration::from_secs(3600);
    cfg.session.client_ping_interval = Duration::from_secs(3600);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, false));
    sim.respond(1, "resp_1", None, 1, false);
    sim.advance(Duration::from_secs(61));
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, false));
    assert_eq!(
        sim.to_client.last().unwrap()["error"]["code"],
        "websocket_connection_limit_reached"
    );
    assert_eq!(sim.to_client.last().unwrap()["status"], 400);
    assert!(
        sim.to_upstream.iter().all(|(c, _)| c.0 == 1),
        "nothing sent on a fresh conn"
    );
    sim.client(create(Some("gpt-test"), None, None, false));
    assert_eq!(
        sim.creates_on(2),
        1,
        "the client's full-context resend starts a fresh conn"
    );
    assert_trace!("session_max_age_connection_local", sim.trace());
}

#[test]
fn max_age_answers_a_connection_local_create_on_a_named_lane_on_that_lane() {
    let mut cfg = Config::default();
    cfg.upstream.max_age = Duration::from_secs(60);
    cfg.upstream.ping_interval = Duration::from_secs(3600);
    cfg.session.client_ping_interval = Duration::from_secs(3600);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, Some("l1"), false));
    sim.respond(1, "resp_1", Some("l1"), 1, false);
    sim.advance(Duration::from_secs(61));
    sim.client(create(Some("gpt-test"), Some("resp_1"), Some("l1"), false));
    let last = sim.to_client.last().unwrap();
    assert_eq!(last["error"]["code"], "websocket_connection_limit_reached");
    // Without its lane the client cannot tell which create the error answers: the lane's
    // create looks unanswered for ever (the reliability suite's lifetime row hung on it).
    assert_eq!(last["stream_id"], "l1");
}

#[test]
fn thirty_third_lane_of_the_session_gets_upstreams_error() {
    let mut sim = Sim::new(Config::default());
    for i in 0..32 {
        let lane = format!("l{i}");
        sim.client(create(Some("gpt-test"), None, Some(&lane), true));
        sim.respond(1, &format!("resp_{i}"), Some(&lane), 0, true);
    }
    sim.client(create(Some("gpt-test"), None, Some("l32"), true));
    let last = sim.to_client.last().unwrap();
    assert_eq!(last["error"]["code"], "websocket_stream_limit_reached");
    assert_eq!(last["stream_id"], "l32");
    assert_eq!(sim.creates_on(1), 32, "never sent, never queued");
    assert!(sim.events.iter().any(|e| matches!(
        e,
        SessionEvent::Refused {
            refusal: Refusal::StreamLimitReached,
            ..
        }
    )));
}

#[test]
fn thirty_third_lane_on_a_reused_conn_rotates() {
    let mut world = World::default();
    let mut record = ConnRecord::new(
        ConnId(7),
        CompatKey::plain(crate::support::session::account()),
        std::time::Instant::now(),
    );
    record.named_lanes = (0..32)
        .map(|i| StreamId::from_str_copy(&format!("old{i}")).unwrap())
        .collect();
    world.lease_records.push_back(record);
    let mut sim = Sim::with_world(Config::default(), world);
    sim.client(create(Some("gpt-test"), None, Some("mine"), true));
    assert_eq!(sim.creates_on(7), 0, "the reused conn has no lane left");
    assert_eq!(sim.creates_on(8), 1, "the create moved to a fresh conn");
    assert!(sim.closes.contains(&ConnId(7)));
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Rotated { from } if *from == ConnId(7)))
    );
    assert_trace!("session_33rd_lane_on_reused_conn_rotates", sim.trace());
}

#[test]
fn abandoned_write_closes_the_conn_and_retries_the_create() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.write_abandoned(1, true);
    assert!(
        sim.released
            .iter()
            .any(|r| r.record.id == ConnId(1) && !r.reusable),
        "closed and released"
    );
    assert!(sim.closes.contains(&ConnId(1)));
    assert_eq!(sim.creates_on(2), 0, "the retry waits for its back-off");
    sim.advance(sim.cfg.scheduler.retry_backoff_initial);
    assert_eq!(
        sim.creates_on(2),
        1,
        "nothing reached the client yet: the create is re-sent on a fresh conn"
    );
    assert!(sim.to_client.is_empty());
    assert_trace!("session_abandoned_write_closes_conn", sim.trace());
}

#[test]
fn repeated_losses_fail_over_then_give_up_within_the_budget() {
    let mut cfg = Config::default();
    cfg.scheduler.retry_total_budget = Duration::from_millis(1000);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    for conn in 1..=2 {
        sim.upstream_closed(conn);
        sim.advance(Duration::from_millis(300));
    }
    let schedules: Vec<_> = sim
        .commands
        .iter()
        .filter_map(|c| match c {
            wsv2_core::session::SessionRequest::Schedule { exclude, .. } => Some(exclude.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        schedules.len(),
        2,
        "a second loss on the same account moves the create to another account"
    );
    assert_eq!(
        schedules[1],
        [crate::support::session::account()],
        "the failover avoids the account that failed"
    );
    // Keep killing whichever conn carries the create until the gateway gives up.
    for _ in 0..20 {
        if sim.to_client.iter().any(|v| v["type"] == "error") {
            break;
        }
        if let Some(conn) = sim
            .session
            .active_conn()
            .filter(|c| c.unfinished() == 1)
            .map(|c| c.id().0)
        {
            sim.upstream_closed(conn);
        }
        sim.advance(Duration::from_millis(100));
    }
    let last = sim.to_client.last().expect("the client is told");
    assert_eq!(
        last["status"], 502,
        "past the retry budget the create ends with a 502 error event"
    );
    assert_eq!(sim.ended().len(), 1, "exactly one outcome for the create");
}

#[test]
fn upstream_lost_after_output_closes_the_client_with_1011() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, Some("a"), true));
    sim.client(create(Some("gpt-test"), None, Some("b"), true));
    sim.upstream(
        1,
        text_response("resp_a", Some("a"), 1, true, "gpt-test")[0].clone(),
    );
    sim.upstream_closed(1);
    let errors: Vec<_> = sim
        .to_client
        .iter()
        .filter(|v| v["type"] == "error")
        .collect();
    assert_eq!(errors.len(), 2, "every open response gets an error event");
    assert!(errors.iter().all(|e| e["status"] == 502));
    assert_eq!(sim.client_closed, Some(1011));
    assert_trace!("session_upstream_lost_after_output", sim.trace());
}

#[test]
fn upstream_lost_between_turns_sends_local_chain_an_exact_not_found() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, false));
    sim.respond(1, "resp_1", None, 1, false);
    sim.upstream_closed(1);
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, false));
    let last = sim.to_client.last().unwrap();
    assert_eq!(last["error"]["code"], "previous_response_not_found");
    assert_eq!(last["error"]["param"], "previous_response_id");
    sim.client(create(Some("gpt-test"), None, None, false));
    assert_eq!(sim.creates_on(2), 1, "a new chain goes to a fresh conn");
    assert_trace!("session_upstream_lost_between_turns", sim.trace());
}

#[test]
fn a_store_false_chain_of_another_socket_is_not_continued_on_its_old_conn() {
    // The conn comes back from the pool with an earlier holder's store:false chain cached.
    let mut world = World::default();
    let mut record = ConnRecord::new(
        ConnId(3),
        CompatKey::plain(crate::support::session::account()),
        std::time::Instant::now(),
    );
    record.cache(
        None,
        wsv2_core::ResponseId::from_str_copy("resp_other").unwrap(),
        false,
    );
    record.cache(
        StreamId::from_str_copy("b"),
        wsv2_core::ResponseId::from_str_copy("resp_public").unwrap(),
        true,
    );
    world.lease_records.push_back(record);
    let mut sim = Sim::with_world(Config::default(), world);
    sim.client(create(Some("gpt-test"), Some("resp_other"), None, false));
    let last = sim.to_client.last().unwrap();
    assert_eq!(
        last["error"]["code"], "previous_response_not_found",
        "exactly what a fresh socket gets"
    );
    assert_eq!(
        sim.creates_on(3),
        0,
        "upstream never sees it, so it cannot continue it"
    );
    sim.client(create(
        Some("gpt-test"),
        Some("resp_public"),
        Some("b"),
        true,
    ));
    assert_eq!(
        sim.creates_on(3),
        1,
        "a store:true chain may continue anywhere"
    );
    assert_trace!("session_store_false_chain_of_another_socket", sim.trace());
}

#[test]
fn message_too_big_on_either_hop_closes_the_client_1009() {
    use wsv2_core::session::Hop;
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.too_big(Hop::Client);
    assert_eq!(sim.client_closed, Some(1009));
    assert!(sim.session.is_draining(), "open responses still drain");
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.too_big(Hop::Upstream(ConnId(1)));
    assert_eq!(sim.client_closed, Some(1009), "one limit, both hops");
    assert!(
        sim.closes.contains(&ConnId(1))
            || sim
                .released
                .iter()
                .any(|r| r.record.id == ConnId(1) && !r.reusable)
    );
    assert!(sim.session.is_finished());
}

#[test]
fn a_client_protocol_error_closes_1007_or_1002_and_open_responses_drain() {
    use wsv2_core::session::ClientProtocolError;
    for (error, code) in [
        (ClientProtocolError::InvalidUtf8, 1007),
        (ClientProtocolError::Violation, 1002),
    ] {
        let mut sim = Sim::new(Config::default());
        sim.client(create(Some("gpt-test"), None, None, true));
        sim.upstream(
            1,
            text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
        );
        sim.protocol_error(error);
        assert_eq!(sim.client_closed, Some(code), "{error:?}");
        assert!(sim.session.is_draining(), "{error:?}");
        // Without a response open the session ends at once.
        let mut idle = Sim::new(Config::default());
        idle.protocol_error(error);
        assert_eq!(idle.client_closed, Some(code), "{error:?}");
        assert!(idle.session.is_finished(), "{error:?}");
    }
}

/// Upstream's `websocket_connection_limit_reached` error, as the mock and OpenAI send it
fn limit_error() -> serde_json::Value {
    json!({"type": "error", "error": {"type": "invalid_request_error", "code": "websocket_connection_limit_reached", "message": "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue."}, "status": 400})
}

#[test]
fn a_response_open_when_upstream_cuts_at_the_limit_gets_its_error_and_counts_as_cut() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, false));
    let events = text_response("resp_1", None, 2, false, "gpt-test");
    sim.upstream(1, events[0].clone());
    sim.upstream(1, events[1].clone());
    sim.upstream(1, limit_error());
    assert_eq!(
        sim.to_client.last().unwrap(),
        &limit_error(),
        "the streaming response ends with upstream's own error"
    );
    let ended = sim.ended();
    assert_eq!(ended.len(), 1);
    assert!(ended[0].cut_at_conn_limit, "{:?}", ended[0]);
    sim.upstream_closed(1);
    assert_eq!(sim.client_closed, None, "the client stays connected");
    sim.client(create(Some("gpt-test"), None, None, false));
    assert_eq!(
        sim.creates_on(2),
        1,
        "its full-context resend takes a fresh conn"
    );
    sim.respond(2, "resp_2", None, 1, false);
    assert!(
        !sim.ended().last().unwrap().cut_at_conn_limit,
        "a completed response is not cut"
    );
}

/// A response still streaming on a conn whose socket ends `secs` after it opened (max_age
/// 60 s, upstream.connection_limit 120 s): whether its report counts it as cut at the limit
fn lost_at_counts_as_cut(secs: u64) -> bool {
    let mut cfg = Config::default();
    cfg.upstream.max_age = Duration::from_secs(60);
    cfg.upstream.connection_limit = Duration::from_secs(120);
    cfg.upstream.ping_interval = Duration::from_secs(3600);
    cfg.session.client_ping_interval = Duration::from_secs(3600);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, false));
    let events = text_response("resp_1", None, 2, false, "gpt-test");
    sim.upstream(1, events[0].clone());
    sim.upstream(1, events[1].clone());
    sim.advance(Duration::from_secs(secs));
    sim.upstream_closed(1);
    assert_eq!(
        sim.to_client.last().unwrap()["error"]["code"],
        "upstream_connection_lost"
    );
    let ended = sim.ended();
    assert_eq!(ended.len(), 1);
    ended[0].cut_at_conn_limit
}

#[test]
fn a_response_lost_when_its_conn_ends_at_upstreams_limit_counts_as_cut() {
    assert!(
        !lost_at_counts_as_cut(119),
        "before the limit a lost conn is just lost"
    );
    assert!(
        lost_at_counts_as_cut(120),
        "upstream may cut at the limit without its error"
    );
}

/// A create sent with its slot whose conn is then lost, re-queued on its account (the slot kept)
/// and waiting for a new conn, which the pool answers with `refusal`
fn requeued_create_refused_a_conn(refusal: wsv2_core::pool::RefuseReason) -> Sim {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.slots_held, 1, "sent on conn 1 with its slot");
    sim.world.lease = false;
    sim.upstream_closed(1);
    sim.advance(sim.cfg.scheduler.retry_backoff_initial);
    assert_eq!(
        sim.slots_held, 1,
        "re-queued on the same account: the slot is kept"
    );
    let now = sim.now;
    sim.session.handle_lease_refused(now, refusal);
    sim.drain();
    sim
}

/// A create re-queued after its conn was lost keeps its slot (same account); when no conn comes
/// for it and it is refused, the slot goes back with it (before `turn::Turn`, a held create's
/// refusal gave back only a slot it was still waiting for, so this slot leaked)
#[test]
fn a_requeued_create_refused_for_want_of_a_conn_gives_its_kept_slot_back() {
    let sim = requeued_create_refused_a_conn(wsv2_core::pool::RefuseReason::NoCapacity);
    assert_eq!(sim.client_types(), ["error"], "the create is answered");
    assert_eq!(sim.slots_held, 0, "and its slot goes back");
}

/// A re-queued create (its slot kept on its account) whose new conn does not come and that
/// moves to another account gives the old account's slot back as it leaves; kept, it would be
/// counted on the old account forever and released on the new one it never took it from
fn a_requeued_create_moving_account_gives_its_slot_back(reason: wsv2_core::pool::RefuseReason) {
    let sim = requeued_create_refused_a_conn(reason);
    assert!(
        sim.events.iter().any(|e| matches!(
            e,
            SessionEvent::Turn(TurnEvent::Retrying {
                switch_account: true,
                ..
            })
        )),
        "the create moves to another account"
    );
    assert_eq!(
        sim.slots_held, 0,
        "the old account's slot goes back as it leaves"
    );
}

#[test]
fn a_requeued_create_whose_dial_fails_gives_its_slot_back_when_it_switches_account() {
    a_requeued_create_moving_account_gives_its_slot_back(wsv2_core::pool::RefuseReason::DialFailed);
}

#[test]
fn a_requeued_create_whose_dial_is_slow_gives_its_slot_back_when_it_moves_account() {
    a_requeued_create_moving_account_gives_its_slot_back(wsv2_core::pool::RefuseReason::DialWait);
}
