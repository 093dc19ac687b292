//! A stalled upstream response (issue 13, item 5), in virtual time: `upstream.read_timeout` is
//! the longest silence within one response, reset only by that response's own events.

use std::time::Duration;

use crate::support::session::{Sim, create, text_response};
use wsv2_core::Config;
use wsv2_core::conn::ConnState;
use wsv2_core::session::{SessionEvent, SessionRequest};
use wsv2_core::turn::{SlotRequest, TurnEvent};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(read_timeout: Duration) -> Config {
    let mut cfg = Config::default();
    cfg.upstream.read_timeout = read_timeout;
    cfg.upstream.ping_interval = ms(300);
    cfg.upstream.pong_timeout = ms(200);
    cfg
}

/// `error` events the client received: (status, code, stream_id)
fn errors(sim: &Sim) -> Vec<(u64, String, Option<String>)> {
    sim.to_client
        .iter()
        .filter(|v| v["type"] == "error")
        .map(|v| {
            (
                v["status"].as_u64().unwrap_or(0),
                v["error"]["code"].as_str().unwrap_or("").to_owned(),
                v["stream_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Advances in 100 ms steps, answering every ping at once (the conn is alive)
fn advance_answering_pings(sim: &mut Sim, by: Duration) {
    let end = sim.now + by;
    while sim.now < end {
        sim.advance(ms(100).min(end - sim.now));
        while let Some(conn) = sim.pings.pop() {
            sim.pong(conn.0);
        }
    }
}

fn slot_releases(sim: &Sim) -> usize {
    sim.commands
        .iter()
        .filter(|c| matches!(c, SessionRequest::Slot(SlotRequest::Release { .. })))
        .count()
}

#[test]
fn a_response_silent_for_read_timeout_ends_with_one_504_though_pongs_and_another_lane_flow() {
    let mut sim = Sim::new(cfg(ms(1000)));
    sim.client(create(Some("gpt-test"), None, Some("a"), true));
    sim.client(create(Some("gpt-test"), None, Some("b"), true));
    assert_eq!(sim.creates_on(1), 2, "both lanes run on one conn");
    let a = text_response("resp_a", Some("a"), 2, true, "gpt-test");
    let b = text_response("resp_b", Some("b"), 30, true, "gpt-test");
    sim.upstream(1, a[0].clone());
    sim.upstream(1, a[1].clone());
    sim.upstream(1, b[0].clone());
    // Lane b and the pongs keep the socket busy; lane a says nothing.
    let mut b_events = b.into_iter().skip(1);
    for _ in 0..9 {
        advance_answering_pings(&mut sim, ms(100));
        sim.upstream(1, b_events.next().unwrap());
    }
    advance_answering_pings(&mut sim, ms(99));
    assert!(errors(&sim).is_empty(), "999 ms of silence is allowed");
    assert!(sim.pings.is_empty() && sim.closes.is_empty());
    advance_answering_pings(&mut sim, ms(1));
    assert_eq!(
        errors(&sim),
        [(504, "upstream_timeout".to_owned(), Some("a".to_owned()))],
        "the stalled response ends with one 5xx error on its own lane"
    );
    let report = sim.ended()[0];
    assert_eq!(report.outcome.as_str(), "stalled");
    assert_eq!(slot_releases(&sim), 1, "its slot is released at once");
    // The conn is dirty and retiring: lane b finishes on it, then it closes.
    let conn = sim
        .session
        .retiring_conn()
        .or(sim.session.active_conn())
        .expect("lane b still runs");
    assert_eq!(conn.state(), ConnState::Retiring);
    assert!(sim.closes.is_empty());
    for ev in b_events {
        sim.upstream(1, ev);
    }
    assert_eq!(errors(&sim).len(), 1, "lane b completes untouched");
    assert!(
        sim.client_types()
            .contains(&"response.completed".to_owned())
    );
    assert_eq!(sim.closes, [wsv2_core::ConnId(1)], "then the conn closes");
    assert_eq!(sim.released.len(), 1);
    assert!(!sim.released[0].reusable, "and never goes back to the pool");
    assert_eq!(slot_releases(&sim), 2);
    // The session goes on: the next create gets a fresh conn.
    sim.client(create(Some("gpt-test"), None, Some("a"), true));
    assert_eq!(sim.creates_on(2), 1);
}

#[test]
fn a_create_queued_behind_another_on_its_lane_starts_its_clock_when_its_predecessor_ends() {
    let mut sim = Sim::new(cfg(ms(1000)));
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.creates_on(1), 2, "both queue on the default lane");
    // The first response takes 2.5 s, an event every 500 ms: never silent for long.
    let first = text_response("resp_1", None, 4, true, "gpt-test");
    for ev in first {
        advance_answering_pings(&mut sim, ms(500));
        sim.upstream(1, ev);
    }
    assert!(errors(&sim).is_empty(), "the second waited 2.5 s, queued");
    advance_answering_pings(&mut sim, ms(999));
    assert!(
        errors(&sim).is_empty(),
        "its clock started when the first ended"
    );
    advance_answering_pings(&mut sim, ms(1));
    assert_eq!(errors(&sim), [(504, "upstream_timeout".to_owned(), None)]);
    assert_eq!(sim.closes, [wsv2_core::ConnId(1)], "nothing else ran on it");
    assert!(!sim.released[0].reusable);
}

#[test]
fn each_event_of_the_response_restarts_its_clock() {
    let mut sim = Sim::new(cfg(ms(1000)));
    sim.client(create(Some("gpt-test"), None, None, true));
    let events = text_response("resp_1", None, 5, true, "gpt-test");
    for ev in events {
        advance_answering_pings(&mut sim, ms(900));
        sim.upstream(1, ev);
    }
    assert!(
        errors(&sim).is_empty(),
        "a slow response is not a stalled one"
    );
    assert_eq!(sim.ended()[0].outcome.as_str(), "completed");
    assert!(sim.session.active_conn().unwrap().is_reusable());
}

#[test]
fn a_drain_after_the_client_left_ends_at_read_timeout_not_drain_timeout() {
    let mut c = cfg(ms(1000));
    c.session.drain_timeout = Duration::from_secs(900);
    let mut sim = Sim::new(c);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.client_gone();
    assert!(sim.session.is_draining());
    advance_answering_pings(&mut sim, ms(999));
    assert!(sim.session.is_draining());
    advance_answering_pings(&mut sim, ms(1));
    assert!(sim.session.is_finished());
    assert!(
        sim.events
            .contains(&SessionEvent::Turn(TurnEvent::DrainFinished {
                clean: false
            }))
    );
    assert_eq!(sim.closes, [wsv2_core::ConnId(1)]);
    assert!(!sim.released[0].reusable, "conn and lease released, dirty");
    assert_eq!(slot_releases(&sim), 1, "and the slot");
    assert!(errors(&sim).is_empty(), "nobody to tell");
}

#[test]
fn a_paused_read_stops_the_clock_and_resuming_restarts_it() {
    let mut c = cfg(ms(1000));
    c.session.client_write_timeout = Duration::from_secs(60);
    let mut sim = Sim::new(c);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.backpressure(true);
    advance_answering_pings(&mut sim, ms(5000));
    assert!(errors(&sim).is_empty(), "unread events prove nothing");
    sim.backpressure(false);
    advance_answering_pings(&mut sim, ms(999));
    assert!(errors(&sim).is_empty());
    advance_answering_pings(&mut sim, ms(1));
    assert_eq!(errors(&sim).len(), 1);
}

fn blocked_announcements(sim: &Sim) -> Vec<bool> {
    sim.commands
        .iter()
        .filter_map(|c| match c {
            SessionRequest::ClientBlocked { blocked, .. } => Some(*blocked),
            _ => None,
        })
        .collect()
}

#[test]
fn a_blocked_client_is_announced_at_blocked_client_timeout_and_gives_its_slots_up_when_asked() {
    let mut c = Config::default();
    c.session.blocked_client_timeout = ms(2000);
    c.session.client_write_timeout = Duration::from_secs(60);
    let mut sim = Sim::new(c);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.creates_on(1), 2);
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.backpressure(true);
    sim.advance(ms(1999));
    assert!(blocked_announcements(&sim).is_empty());
    sim.advance(ms(1));
    assert_eq!(blocked_announcements(&sim), [true]);
    assert_eq!(sim.client_closed, None, "nobody asked for its slots yet");
    assert_eq!(slot_releases(&sim), 0, "both responses hold their slots");
    sim.session.handle_yield_slots(sim.now);
    sim.drain();
    assert_eq!(sim.client_closed, Some(1008));
    assert_eq!(slot_releases(&sim), 2, "both slots come back at once");
    assert_eq!(sim.closes, [wsv2_core::ConnId(1)], "cut, not drained");
    assert!(!sim.released[0].reusable);
    assert!(sim.session.is_finished());
    assert_eq!(blocked_announcements(&sim), [true, false]);
}

#[test]
fn a_client_that_reads_again_keeps_its_slots() {
    let mut c = Config::default();
    c.session.blocked_client_timeout = ms(500);
    let mut sim = Sim::new(c);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.backpressure(true);
    sim.advance(ms(500));
    sim.backpressure(false);
    assert_eq!(blocked_announcements(&sim), [true, false]);
    sim.session.handle_yield_slots(sim.now);
    sim.drain();
    assert_eq!(
        sim.client_closed, None,
        "a late YieldSlots finds it reading"
    );
    assert!(sim.session.takes_client_input());
}

#[test]
fn a_blocked_client_with_nothing_open_keeps_its_socket_until_client_write_timeout() {
    let mut c = Config::default();
    c.session.blocked_client_timeout = ms(500);
    c.session.client_write_timeout = ms(3000);
    let mut sim = Sim::new(c);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.backpressure(true);
    sim.advance(ms(2999));
    assert!(blocked_announcements(&sim).is_empty(), "it holds no slot");
    assert_eq!(sim.client_closed, None);
    sim.advance(ms(1));
    assert_eq!(sim.client_closed, Some(1008));
}

#[test]
fn a_client_that_reads_nothing_asks_for_no_slot_until_it_reads_again() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.backpressure(true);
    sim.client(create(Some("gpt-test"), Some("resp_1"), None, true));
    let asked = |sim: &Sim| {
        sim.commands
            .iter()
            .filter(|c| matches!(c, SessionRequest::Slot(SlotRequest::Acquire { .. })))
            .count()
    };
    assert_eq!(
        asked(&sim),
        1,
        "the second create holds no slot while unread"
    );
    assert_eq!(sim.creates_on(1), 1);
    sim.backpressure(false);
    assert_eq!(asked(&sim), 2);
    assert_eq!(sim.creates_on(1), 2, "it goes out once the client reads");
}
