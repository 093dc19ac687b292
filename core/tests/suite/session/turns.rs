//! Session rules on the happy path: chained turns, lanes, steering, model mapping, held creates.

use crate::support::session::{Sim, World, create, text_response};
use serde_json::json;
use wsv2_core::Config;
use wsv2_core::conn::ConnState;
use wsv2_core::session::SessionEvent;
use wsv2_core::turn::{ModelMap, TurnEvent};

#[test]
fn two_chained_turns_share_one_conn() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, false));
    sim.respond(1, "resp_1", None, 2, false);
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, false));
    sim.respond(1, "resp_2", None, 2, false);
    assert_eq!(sim.creates_on(1), 2, "both turns on conn c1");
    assert_eq!(sim.to_upstream[1].1["previous_response_id"], "resp_1");
    let ended = sim.ended();
    assert_eq!(ended.len(), 2);
    assert!(
        ended
            .iter()
            .all(|r| r.usage.is_some_and(|u| u.input_tokens == 10))
    );
    assert_eq!(
        sim.session.active_conn().map(|c| c.state()),
        Some(ConnState::Open)
    );
    assert_trace!("session_two_chained_turns_share_one_conn", sim.trace());
}

#[test]
fn interleaved_lanes_route_events_to_their_own_response() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, Some("a"), true));
    sim.client(create(Some("gpt-test"), None, Some("b"), true));
    let a = text_response("resp_a", Some("a"), 2, true, "gpt-test");
    let b = text_response("resp_b", Some("b"), 2, true, "gpt-test");
    for (ea, eb) in a.into_iter().zip(b) {
        sim.upstream(1, eb);
        sim.upstream(1, ea);
    }
    let ended = sim.ended();
    assert_eq!(ended.len(), 2);
    assert_eq!(ended[0].response.as_ref().unwrap().as_str(), "resp_b");
    assert_eq!(ended[0].lane.as_ref().unwrap().as_str(), "b");
    assert_eq!(ended[1].lane.as_ref().unwrap().as_str(), "a");
    assert_eq!(sim.to_client.len(), 8, "every event forwarded once");
    assert_trace!("session_interleaved_lanes", sim.trace());
}

#[test]
fn steer_events_and_successor_are_not_tail_packets() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(1, json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "model": "gpt-test"}}));
    sim.client(json!({"type": "response.steer", "previous_response_id": "resp_1", "input": "shorter please"}));
    assert_eq!(sim.to_upstream.last().unwrap().1["type"], "response.steer");
    sim.upstream(1, json!({"type": "response.steer.accepted", "sequence_number": 1, "steer": {"id": "steer_1", "previous_response_id": "resp_1"}}));
    sim.upstream(1, json!({"type": "response.incomplete", "sequence_number": 2, "response": {"id": "resp_1", "incomplete_details": {"reason": "steered"}, "usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}}}));
    for ev in text_response("resp_2", None, 1, true, "gpt-test") {
        sim.upstream(1, ev);
    }
    assert!(
        !sim.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Turn(TurnEvent::TailPacket { .. })))
    );
    let conn = sim.session.active_conn().unwrap();
    assert_eq!(
        conn.state(),
        ConnState::Open,
        "steering leaves the conn clean"
    );
    let ended = sim.ended();
    assert_eq!(ended.len(), 2);
    assert!(
        !ended[0].successor && ended[1].successor,
        "the successor is billed as its own response"
    );
    assert_eq!(ended[1].usage.unwrap().output_tokens, 1);
    assert_trace!("session_steer_events_are_not_tail_packets", sim.trace());
}

#[test]
fn model_map_rewrites_create_and_restores_events() {
    let world = World {
        model_map: ModelMap::new([("gpt-5".to_owned(), "gpt-5-2026-08-01".to_owned())]),
        ..World::default()
    };
    let mut sim = Sim::with_world(Config::default(), world);
    sim.client(create(Some("gpt-5"), None, None, true));
    assert_eq!(sim.to_upstream[0].1["model"], "gpt-5-2026-08-01");
    for ev in text_response("resp_1", None, 1, true, "gpt-5-2026-08-01") {
        sim.upstream(1, ev);
    }
    assert_eq!(
        sim.to_client[0]["response"]["model"], "gpt-5",
        "client sees its own model name"
    );
    assert_eq!(sim.to_client.last().unwrap()["response"]["model"], "gpt-5");
    assert_trace!("session_model_map", sim.trace());
}

#[test]
fn sixteen_in_flight_then_held_then_429() {
    let mut cfg = Config::default();
    cfg.upstream.max_inflight_per_conn = 2;
    cfg.session.max_held_creates_per_session = 2;
    let mut sim = Sim::new(cfg);
    for lane in ["a", "b", "c", "d", "e"] {
        sim.client(create(Some("gpt-test"), None, Some(lane), true));
    }
    assert_eq!(sim.creates_on(1), 2, "only max_inflight_per_conn forwarded");
    assert_eq!(sim.session.held_creates(), 2, "then held up to the bound");
    let refused = sim.to_client.last().unwrap();
    assert_eq!(refused["status"], 429);
    assert_eq!(refused["stream_id"], "e");
    sim.respond(1, "resp_a", Some("a"), 1, true);
    assert_eq!(
        sim.creates_on(1),
        3,
        "a finished response lets a held create through"
    );
    assert_eq!(
        sim.to_upstream[2].1["stream_id"], "c",
        "held creates keep their order"
    );
    assert_trace!("session_inflight_limit_held_creates_429", sim.trace());
}

#[test]
fn invalid_input_gets_error_events_and_the_socket_stays_open() {
    let mut sim = Sim::new(Config::default());
    sim.client_raw("{not json");
    sim.client(json!({"type": "response.append", "input": []}));
    sim.client(create(None, None, None, true));
    sim.client(json!({"type": "response.create", "model": "m", "background": true}));
    sim.client(json!({"type": "response.create", "model": "m", "stream_id": ""}));
    sim.session.handle_client_binary(sim.now);
    sim.drain();
    let codes: Vec<_> = sim
        .to_client
        .iter()
        .map(|v| {
            (
                v["status"].as_u64(),
                v["error"]["code"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(codes.len(), 6);
    assert!(codes.iter().all(|(s, _)| *s == Some(400)));
    assert_eq!(codes[4].1.as_deref(), Some("invalid_stream_id"));
    assert_eq!(sim.client_closed, None);
    assert!(
        sim.to_upstream.is_empty(),
        "nothing invalid reaches upstream"
    );
    sim.client(create(Some("m"), None, None, true));
    assert_eq!(sim.creates_on(1), 1, "a valid create still works");
    assert_trace!("session_invalid_input_error_events", sim.trace());
}

#[test]
fn default_limits_forward_16_hold_64_then_429() {
    let mut sim = Sim::new(Config::default());
    for i in 0..81 {
        sim.client(create(
            Some("gpt-test"),
            None,
            Some(&format!("l{}", i % 8)),
            true,
        ));
    }
    assert_eq!(
        sim.creates_on(1),
        16,
        "max_inflight_per_conn = 16 forwarded at once"
    );
    assert_eq!(
        sim.session.held_creates(),
        64,
        "max_held_creates_per_session = 64 held"
    );
    let refused: Vec<_> = sim
        .to_client
        .iter()
        .filter(|v| v["status"] == 429)
        .collect();
    assert_eq!(refused.len(), 1, "only the 81st create is refused");
}

#[test]
fn lane_cache_tracks_the_latest_response_per_lane_and_evicts_on_failed_continuation() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, Some("a"), false));
    sim.respond(1, "resp_a1", Some("a"), 0, false);
    sim.client(create(Some("gpt-test"), None, Some("b"), false));
    sim.respond(1, "resp_b1", Some("b"), 0, false);
    sim.client(create(Some("gpt-test"), Some("resp_a1"), Some("a"), false));
    sim.respond(1, "resp_a2", Some("a"), 0, false);
    let cache = &sim.session.active_conn().unwrap().record().lane_cache;
    let ids: Vec<_> = cache
        .iter()
        .map(|c| {
            (
                c.lane.as_ref().unwrap().as_str().to_owned(),
                c.response.as_str().to_owned(),
                c.store,
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("a".into(), "resp_a2".into(), false),
            ("b".into(), "resp_b1".into(), false)
        ],
        "one entry per lane, the latest wins"
    );
    sim.client(create(Some("gpt-test"), Some("resp_b1"), Some("b"), false));
    sim.upstream(
        1,
        json!({"type": "response.created", "stream_id": "b", "response": {"id": "resp_b2"}}),
    );
    sim.upstream(1, json!({"type": "response.failed", "stream_id": "b", "response": {"id": "resp_b2", "store": false}}));
    let cache = &sim.session.active_conn().unwrap().record().lane_cache;
    let caches = |id: &str| cache.iter().any(|c| c.response.as_str() == id);
    assert!(
        !caches("resp_b1"),
        "a failed same-lane continuation evicts its parent, as upstream does"
    );
    assert!(caches("resp_a2"));
}
