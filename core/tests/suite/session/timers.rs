//! Session rules in virtual time: first message, idle, slots, drain, slow clients, pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::session::{Sim, World, create, text_response};
use wsv2_core::conn::{ConnState, UpstreamTransmit};
use wsv2_core::session::{Session, SessionEvent, SessionRequest};
use wsv2_core::turn::TurnEvent;
use wsv2_core::{Config, SessionId};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_message_timeout_closes_1008() {
    let mut cfg = Config::default();
    cfg.session.first_message_timeout = ms(300);
    let mut sim = Sim::new(cfg);
    sim.advance(ms(299));
    assert_eq!(sim.client_closed, None);
    sim.advance(ms(1));
    assert_eq!(sim.client_closed, Some(1008));
    assert!(sim.session.is_finished());
    assert_eq!(
        sim.session.poll_timeout(),
        None,
        "no timer outlives the session"
    );
    assert_trace!("session_first_message_timeout", sim.trace());
}

#[test]
fn inter_turn_idle_closes_1000_and_releases_the_conn_reusable() {
    let mut cfg = Config::default();
    cfg.session.inter_turn_idle_timeout = ms(500);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.advance(ms(400));
    sim.respond(1, "resp_1", None, 1, true);
    sim.advance(ms(499));
    assert_eq!(
        sim.client_closed, None,
        "idle counts from the end of the last response"
    );
    sim.advance(ms(1));
    assert_eq!(sim.client_closed, Some(1000));
    assert!(
        sim.released[0].reusable,
        "a clean conn goes back to the pool"
    );
    assert_trace!("session_inter_turn_idle", sim.trace());
}

#[test]
fn concurrency_slot_is_held_then_429() {
    let mut cfg = Config::default();
    cfg.session.slot_wait_timeout = ms(200);
    let world = World {
        max_concurrency: 1,
        slots_in_use: 1,
        ..World::default()
    };
    let mut sim = Sim::with_world(cfg, world);
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.creates_on(1), 0, "held: the account is at its limit");
    sim.advance(ms(200));
    let last = sim.to_client.last().unwrap();
    assert_eq!(last["status"], 429);
    assert_eq!(sim.session.held_creates(), 0);
    // The limit applies to later turns too (seed fix): a second create waits the same way …
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.creates_on(1), 0);
    // … and goes out as soon as a slot frees.
    sim.free_external_slot();
    assert_eq!(sim.creates_on(1), 1);
    assert_trace!("session_concurrency_slot_then_429", sim.trace());
}

#[test]
fn client_gone_mid_turn_drains_and_releases_reusable() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    let events = text_response("resp_1", None, 3, true, "gpt-test");
    sim.upstream(1, events[0].clone());
    sim.upstream(1, events[1].clone());
    sim.client_gone();
    assert!(sim.session.is_draining());
    let forwarded = sim.to_client.len();
    for ev in events.into_iter().skip(2) {
        sim.upstream(1, ev);
    }
    assert_eq!(
        sim.to_client.len(),
        forwarded,
        "nothing written after the client left"
    );
    assert!(
        sim.events
            .contains(&SessionEvent::Turn(TurnEvent::DrainFinished {
                clean: true
            }))
    );
    assert!(
        sim.released[0].reusable,
        "a clean drain releases the conn reusable"
    );
    let report = sim.ended()[0];
    assert!(report.drained);
    assert_eq!(
        report.usage.unwrap().output_tokens,
        3,
        "usage of a drained response is still reported"
    );
    assert_trace!("session_client_gone_drain_reusable", sim.trace());
}

#[test]
fn drain_timeout_leaves_the_conn_dirty() {
    let mut cfg = Config::default();
    cfg.session.drain_timeout = ms(1000);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.client_gone();
    sim.advance(ms(1000));
    assert!(
        sim.events
            .contains(&SessionEvent::Turn(TurnEvent::DrainFinished {
                clean: false
            }))
    );
    assert!(
        !sim.released[0].reusable,
        "a timed-out drain never returns the conn to the pool"
    );
    assert!(sim.session.is_finished());
    assert_trace!("session_drain_timeout_dirty", sim.trace());
}

#[test]
fn slow_client_pauses_upstream_reads_then_counts_as_gone() {
    let mut cfg = Config::default();
    cfg.session.client_write_timeout = ms(800);
    cfg.upstream.ping_interval = ms(300);
    cfg.upstream.pong_timeout = ms(100);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.backpressure(true);
    assert!(
        !sim.session.wants_upstream_read(),
        "backpressure reaches upstream"
    );
    sim.advance(ms(799));
    assert_eq!(
        sim.session.active_conn().unwrap().state(),
        ConnState::Open,
        "pings go out but their pong timeout is suspended"
    );
    assert!(!sim.pings.is_empty());
    sim.advance(ms(1));
    assert!(sim.session.is_draining(), "the stuck client counts as gone");
    assert!(
        sim.session.wants_upstream_read(),
        "the drain reads upstream again"
    );
    for ev in text_response("resp_1", None, 1, true, "gpt-test")
        .into_iter()
        .skip(1)
    {
        sim.upstream(1, ev);
    }
    assert!(sim.session.is_finished());
    assert_trace!("session_slow_client", sim.trace());
}

#[test]
fn leased_conn_ping_pong_and_pong_timeout() {
    let mut cfg = Config::default();
    cfg.upstream.ping_interval = ms(1000);
    cfg.upstream.pong_timeout = ms(200);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.advance(ms(1000));
    assert_eq!(
        sim.pings.len(),
        1,
        "a conn silent for ping_interval is pinged"
    );
    sim.pong(1);
    sim.advance(ms(999));
    assert_eq!(
        sim.pings.len(),
        1,
        "the pong counts as a read: the next ping waits a full interval"
    );
    sim.advance(ms(1));
    assert_eq!(sim.pings.len(), 2);
    sim.advance(ms(200));
    assert!(
        sim.closes.contains(&wsv2_core::ConnId(1)),
        "no pong within pong_timeout closes the conn"
    );
    assert!(sim.released.iter().any(|r| !r.reusable));
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(sim.creates_on(2), 1, "the next turn gets a fresh conn");
    assert_trace!("session_leased_conn_ping_pong_timeout", sim.trace());
}

#[test]
fn idle_conn_ping_pong_and_pong_timeout() {
    use crate::support::trace::Trace;
    use std::time::Instant;
    use wsv2_core::conn::{CompatKey, ConnRecord, UpstreamConn};
    let mut cfg = Config::default();
    cfg.upstream.ping_interval = ms(1000);
    cfg.upstream.pong_timeout = ms(200);
    let t0 = Instant::now();
    let record = ConnRecord::new(
        wsv2_core::ConnId(1),
        CompatKey::plain(crate::support::session::account()),
        t0,
    );
    let mut conn = UpstreamConn::new(record, t0, &cfg.upstream);
    let mut trace = Trace::new(t0);
    let mut now = t0;
    let step = |conn: &mut UpstreamConn, now: std::time::Instant, trace: &mut Trace| {
        while let Some(t) = conn.poll_transmit() {
            trace.output(now, format!("{t:?} state={}", conn.state().as_str()));
        }
    };
    assert_eq!(conn.poll_timeout(), Some(t0 + ms(1000)));
    now += ms(1000);
    conn.handle_timeout(now);
    step(&mut conn, now, &mut trace);
    assert!(trace.lines().last().unwrap().contains("Ping"));
    now += ms(50);
    conn.handle_pong(now);
    trace.input(now, "pong");
    assert_eq!(conn.poll_timeout(), Some(now + ms(1000)));
    now += ms(1000);
    conn.handle_timeout(now);
    step(&mut conn, now, &mut trace);
    now += ms(200);
    conn.handle_timeout(now);
    step(&mut conn, now, &mut trace);
    assert_eq!(conn.state(), ConnState::Closed);
    assert_eq!(
        conn.poll_timeout(),
        None,
        "no timer stays armed for a closed conn"
    );
    assert!(matches!(trace.lines().last(), Some(l) if l.contains("Close")));
    assert!(!conn.is_reusable());
    let _ = UpstreamTransmit::Ping;
    assert_trace!("conn_idle_ping_pong_timeout", trace);
}

#[test]
fn a_silent_client_is_pinged_and_dropped_without_a_pong() {
    let mut cfg = Config::default();
    cfg.session.client_ping_interval = ms(1000);
    cfg.session.client_pong_timeout = ms(300);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 1, true, "gpt-test")[0].clone(),
    );
    sim.advance(ms(999));
    assert_eq!(sim.client_pings, 0, "relayed events count as activity");
    sim.advance(ms(1));
    assert_eq!(
        sim.client_pings, 1,
        "silent for client_ping_interval: pinged"
    );
    sim.client_pong();
    sim.advance(ms(999));
    assert_eq!(sim.client_closed, None, "a pong keeps it alive");
    sim.advance(ms(1));
    assert_eq!(sim.client_pings, 2);
    sim.advance(ms(300));
    assert_eq!(
        sim.client_closed,
        Some(1001),
        "no pong within client_pong_timeout: the client is gone"
    );
    assert!(sim.session.is_draining(), "drain rules apply");
    assert_trace!("session_client_keepalive", sim.trace());
}

#[test]
fn shutdown_lets_responses_finish_then_closes_1012() {
    let mut sim = Sim::new(Config::default());
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 2, true, "gpt-test")[0].clone(),
    );
    sim.input("gateway shutting down");
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(
        sim.to_client.last().unwrap()["error"]["code"],
        "gateway_shutting_down",
        "no new work"
    );
    assert_eq!(sim.creates_on(1), 1);
    assert_eq!(sim.client_closed, None, "the response in flight may finish");
    for ev in text_response("resp_1", None, 2, true, "gpt-test")
        .into_iter()
        .skip(1)
    {
        sim.upstream(1, ev);
    }
    assert_eq!(
        sim.client_closed,
        Some(1012),
        "then the client is told to reconnect elsewhere"
    );
    assert!(sim.released[0].reusable);
    assert_trace!("session_shutdown_finish_then_1012", sim.trace());
}

#[test]
fn shutdown_grace_cuts_what_is_still_running() {
    let mut cfg = Config::default();
    cfg.session.shutdown_grace = ms(500);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.upstream(
        1,
        text_response("resp_1", None, 2, true, "gpt-test")[0].clone(),
    );
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    sim.advance(ms(499));
    assert_eq!(sim.client_closed, None);
    sim.advance(ms(1));
    assert_eq!(sim.client_closed, Some(1012));
    assert!(
        !sim.released[0].reusable,
        "a conn with a cut response never returns to the pool"
    );
    assert!(sim.session.is_finished());
}

#[test]
fn shutdown_grace_reports_every_cut_response_and_binds_none() {
    let mut cfg = Config::default();
    cfg.session.shutdown_grace = ms(500);
    let mut sim = Sim::new(cfg);
    for (lane, id) in [("a", "resp_a"), ("b", "resp_b")] {
        sim.client(create(Some("gpt-test"), None, Some(lane), true));
        sim.upstream(
            1,
            text_response(id, Some(lane), 2, true, "gpt-test")[0].clone(),
        );
    }
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    sim.advance(ms(500));
    assert_eq!(sim.client_closed, Some(1012));
    let cut: Vec<(Option<&str>, &str)> = sim
        .ended()
        .iter()
        .map(|r| {
            (
                r.response.as_ref().map(|id| id.as_str()),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        cut,
        [
            (Some("resp_a"), "cut_at_shutdown"),
            (Some("resp_b"), "cut_at_shutdown")
        ],
        "each response open at the grace is reported once, as cut"
    );
    assert!(
        !sim.commands
            .iter()
            .any(|c| matches!(c, SessionRequest::Bind(_))),
        "a cut response has no terminal: nothing to continue, nothing to bind"
    );
    assert!(!sim.released[0].reusable);
    assert_eq!(sim.slots_held, 0, "their slots were given back");
}

#[test]
fn idle_sessions_close_1012_at_instants_spread_over_shutdown_close_spread() {
    let mut cfg = Config::default();
    cfg.session.shutdown_close_spread = ms(2000);
    let cfg = Arc::new(cfg);
    let t0 = Instant::now();
    let mut closed_after = Vec::new();
    for id in 1..=40 {
        let mut session = Session::new(SessionId(id), cfg.clone(), t0);
        session.handle_shutdown(t0);
        let mut now = t0;
        let closed_at = loop {
            let close = std::iter::from_fn(|| session.poll_request())
                .any(|c| matches!(c, SessionRequest::CloseClient { code: 1012, .. }));
            if close {
                break now;
            }
            now = session.poll_timeout().expect("a timer until the close");
            session.handle_timeout(now);
        };
        closed_after.push((closed_at - t0).as_millis());
    }
    closed_after.sort_unstable();
    let (first, last) = (closed_after[0], closed_after[closed_after.len() - 1]);
    assert!(last <= 2000, "all within the spread: {closed_after:?}");
    assert!(
        first < 500 && last > 1500,
        "spread over it, not bunched: {closed_after:?}"
    );
    closed_after.dedup();
    assert!(closed_after.len() >= 35, "{closed_after:?}");

    // A spread over the grace acts as the grace; none means at once.
    let mut cfg = Config::default();
    cfg.session.shutdown_grace = ms(300);
    let mut sim = Sim::new(cfg.clone());
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    sim.advance(ms(300));
    assert_eq!(sim.client_closed, Some(1012));
    cfg.session.shutdown_close_spread = Duration::ZERO;
    let mut sim = Sim::new(cfg);
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    assert_eq!(sim.client_closed, Some(1012), "closed at once");
}

#[test]
fn an_idle_session_refuses_creates_while_it_waits_for_its_close_instant() {
    let mut cfg = Config::default();
    cfg.session.shutdown_close_spread = ms(1000);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.session.handle_shutdown(sim.now);
    sim.drain();
    assert_eq!(sim.client_closed, None, "its instant is later");
    sim.client(create(Some("gpt-test"), None, None, true));
    assert_eq!(
        sim.to_client.last().unwrap()["error"]["code"],
        "gateway_shutting_down"
    );
    assert_eq!(sim.creates_on(1), 1, "nothing new went upstream");
    sim.advance(ms(1000));
    assert_eq!(sim.client_closed, Some(1012));
    assert!(sim.released[0].reusable, "an idle conn goes back clean");
}

#[test]
fn a_pong_timeout_longer_than_the_ping_interval_still_drops_a_silent_client() {
    let mut cfg = Config::default();
    cfg.session.client_ping_interval = ms(100);
    cfg.session.client_pong_timeout = ms(250);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    sim.respond(1, "resp_1", None, 1, true);
    sim.advance(ms(349));
    assert!(
        sim.client_pings >= 2,
        "pings keep going while the first is unanswered"
    );
    assert_eq!(sim.client_closed, None);
    sim.advance(ms(1));
    assert_eq!(
        sim.client_closed,
        Some(1001),
        "the deadline runs from the first unanswered ping"
    );
}

#[test]
fn a_conn_that_keeps_streaming_is_alive_though_its_pong_is_late() {
    let mut cfg = Config::default();
    cfg.upstream.ping_interval = ms(1000);
    cfg.upstream.pong_timeout = ms(200);
    let mut sim = Sim::new(cfg);
    sim.client(create(Some("gpt-test"), None, None, true));
    let mut events = text_response("resp_1", None, 8, true, "gpt-test").into_iter();
    sim.upstream(1, events.next().unwrap());
    sim.advance(ms(1000));
    assert_eq!(sim.pings.len(), 1, "a silent conn is pinged");
    // Upstream streams again but answers the ping only after its response (or late): every
    // frame proves the conn alive, so the pong timeout must not judge it dead meanwhile.
    for ev in events {
        sim.advance(ms(100));
        sim.upstream(1, ev);
    }
    assert!(sim.closes.is_empty(), "the streaming conn stays open");
    let errors: Vec<&serde_json::Value> = sim
        .to_client
        .iter()
        .filter(|v| v["type"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        sim.to_client
            .iter()
            .any(|v| v["type"] == "response.completed"),
        "the response completes"
    );
}
