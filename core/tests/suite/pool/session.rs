//! Pool rules for WebSocket sessions: idle first, then a dial, then a bounded wait; never
//! queued behind another holder's conn; compatibility keys; MRU order.

use crate::support::pool::*;
use wsv2_core::pool::{HolderKind, PoolRequest, RefuseReason};

#[test]
fn pool_session_gets_idle_conn() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.open_idle(1, 1, &plain());
    sim.at(1_000);
    sim.note("an idle compatible conn is leased at once, no dial");
    sim.acquire_session(s(10), &plain());
    let lease = sim.outputs.last().unwrap();
    assert!(matches!(&lease.1, PoolRequest::Granted(l) if l.record.id == c(1) && !l.fresh));
    assert_eq!(sim.stats().dials, 1);
    assert_eq!(sim.stats().reuses, 1);
    assert_trace!("pool_session_gets_idle_conn", sim.trace);
}

#[test]
fn pool_session_dials_when_nothing_idle() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.acquire_session(s(1), &plain());
    assert_eq!(
        sim.outputs.last().unwrap().1,
        PoolRequest::Dial {
            conn: c(1),
            compat: plain(),
            for_holder: Some(s(1))
        },
        "the dial is made for the session (its headers go on it)"
    );
    assert_eq!(sim.stats().dialing, 1);
    sim.at(150);
    sim.dial_ok(c(1));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Granted(l) if l.holder == s(1) && l.record.id == c(1) && l.fresh));
    assert_eq!((sim.stats().dialing, sim.stats().leased), (0, 1));
    assert_trace!("pool_session_dials_when_nothing_idle", sim.trace);
}

#[test]
fn pool_session_waits_two_seconds_then_refused() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    sim.note("capacity 1 is taken by s1: s2 waits for a release, never queues on s1's conn");
    sim.acquire_session(s(2), &plain());
    assert_eq!(sim.stats().waiters, 1);
    assert_eq!(sim.pools.pool(A).unwrap().queued_behind(c(1)), 0);
    sim.at(1_999);
    assert_eq!(sim.refusal(s(2)), None);
    sim.at(2_500);
    assert_eq!(
        sim.refusal(s(2)),
        Some((2_000, RefuseReason::SessionWaitTimeout))
    );
    assert_eq!(sim.stats().waiters, 0);
    assert_trace!("pool_session_waits_two_seconds_then_refused", sim.trace);
}

/// Issue 17: a session that could move (another account has room: the control plane gives a
/// `dial_wait`) and finds the pool at its cap waits `dial_wait`, not `session_acquire_wait`,
/// and is told to move, not refused
#[test]
fn pool_session_that_could_move_waits_dial_wait_for_capacity_then_moves() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    let dial_wait = quiet_config().pool.dial_wait;
    sim.input("acquire_for_session s2 plain dial_wait", |p, now| {
        p.acquire(
            now,
            s(2),
            HolderKind::Session,
            &plain(),
            None,
            Some(dial_wait),
        )
    });
    assert_eq!(sim.stats().waiters, 1);
    sim.at(2_500);
    assert_eq!(
        sim.refusal(s(2)),
        Some((dial_wait.as_millis() as u64, RefuseReason::DialWait))
    );
}

#[test]
fn pool_session_wait_ends_with_release_fifo() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    sim.acquire_session(s(2), &plain());
    sim.at(100);
    sim.acquire_session(s(3), &plain());
    sim.at(1_500);
    sim.note("the first waiting session gets the released conn");
    sim.release(s(1), true);
    assert_eq!(sim.lease(s(2)).id, c(1));
    sim.at(2_100);
    assert_eq!(
        sim.refusal(s(3)),
        Some((2_100, RefuseReason::SessionWaitTimeout))
    );
    assert_trace!("pool_session_wait_ends_with_release_fifo", sim.trace);
}

#[test]
fn pool_session_wait_ends_with_freed_capacity() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    sim.acquire_session(s(2), &plain());
    sim.at(800);
    sim.note("s1's conn dies: the freed capacity is a dial for the waiting session");
    sim.conn_closed(c(1));
    assert_eq!(
        sim.outputs.last().unwrap().1,
        PoolRequest::Dial {
            conn: c(2),
            compat: plain(),
            for_holder: Some(s(2))
        }
    );
    sim.at(3_000);
    assert_eq!(
        sim.refusal(s(2)),
        None,
        "a session waiting on its own dial is not timed out"
    );
    sim.dial_ok(c(2));
    assert_eq!(sim.lease(s(2)).id, c(2));
    assert_trace!("pool_session_wait_ends_with_freed_capacity", sim.trace);
}

#[test]
fn pool_compat_key_ignores_session_ids() {
    // The shell builds the key from `OpenAI-Beta` / `x-codex-beta-features` only; `session-id`
    // (here s1 = "sess-A", s2 = "sess-B") rides only on the dial made for its session.
    let websockets = beta("responses_websockets=2026-02-06");
    let mut sim = Sim::new(quiet_config(), 4);
    sim.note("s1 (session-id sess-A) dials c1 with its own headers");
    sim.acquire_session(s(1), &websockets);
    sim.dial_ok(c(1));
    sim.release(s(1), true);
    sim.note("s2 (session-id sess-B, same betas) reuses c1");
    sim.acquire_session(s(2), &beta(" responses_websockets=2026-02-06 "));
    assert_eq!(sim.lease(s(2)).id, c(1));
    sim.note("s3 with other betas needs its own conn");
    sim.acquire_session(s(3), &beta("responses_websockets=2026-02-06,other=1"));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Dial { conn, for_holder: Some(h), .. } if *conn == c(2) && *h == s(3)));
    assert_eq!(sim.stats().dials, 2);
    assert_trace!("pool_compat_key_ignores_session_ids", sim.trace);
}

#[test]
fn pool_incompatible_idle_conn_makes_room_at_capacity() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.open_idle(1, 1, &plain());
    sim.note("capacity 1 is an idle conn of another key: it is closed and a dial takes its place");
    sim.acquire_session(s(5), &beta("x=1"));
    let closes = sim.closes();
    assert_eq!(
        closes,
        vec![(c(1), wsv2_core::pool::CloseReason::Incompatible)]
    );
    assert_eq!(sim.pending_dials(), vec![c(2)]);
    assert!(sim.stats().open + sim.stats().dialing <= 1);
    assert_trace!(
        "pool_incompatible_idle_conn_makes_room_at_capacity",
        sim.trace
    );
}

#[test]
fn pool_idle_conns_are_leased_most_recently_released_first() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.open_idle(1, 3, &plain());
    assert_eq!(sim.idle(), vec![c(3), c(2), c(1)]);
    sim.acquire_session(s(10), &plain());
    sim.acquire_session(s(11), &plain());
    assert_eq!((sim.lease(s(10)).id, sim.lease(s(11)).id), (c(3), c(2)));
    sim.at(10);
    sim.release(s(11), true);
    sim.at(20);
    sim.release(s(10), true);
    assert_eq!(sim.idle(), vec![c(3), c(2), c(1)], "c3 was released last");
    sim.acquire_session(s(12), &plain());
    assert_eq!(sim.lease(s(12)).id, c(3));
    assert_trace!(
        "pool_idle_conns_are_leased_most_recently_released_first",
        sim.trace
    );
}

#[test]
fn pool_zero_concurrency_refuses_at_once() {
    let mut sim = Sim::new(quiet_config(), 0);
    sim.acquire_session(s(1), &plain());
    sim.acquire_http(s(2), &plain(), None);
    assert_eq!(sim.refusal(s(1)), Some((0, RefuseReason::NoCapacity)));
    assert_eq!(sim.refusal(s(2)), Some((0, RefuseReason::NoCapacity)));
    assert_eq!(sim.stats().dials, 0);
    assert_trace!("pool_zero_concurrency_refuses_at_once", sim.trace);
}

#[test]
fn pool_lane_reuse_limit_retires_on_release() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.acquire_session(s(1), &plain());
    sim.acquire_session(s(2), &plain());
    sim.dial_ok(c(1));
    sim.dial_ok(c(2));
    sim.note("16 named lanes: still pooled; 17: retired, never pooled");
    sim.release_with_lanes(s(1), 16);
    sim.release_with_lanes(s(2), 17);
    assert_eq!(sim.idle(), vec![c(1)]);
    assert_eq!(
        sim.closes(),
        vec![(c(2), wsv2_core::pool::CloseReason::LaneLimit)]
    );
    assert_eq!(sim.stats().open, 1);
    assert_trace!("pool_lane_reuse_limit_retires_on_release", sim.trace);
}

/// Minutes in milliseconds
fn min(m: u64) -> u64 {
    m * 60_000
}

#[test]
fn pool_session_gets_only_a_conn_with_enough_life_left() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.note("max_age 55m, session_min_remaining_life 15m: a session takes a conn at most 40m old");
    sim.acquire_session(s(1), &plain());
    sim.acquire_session(s(2), &plain());
    sim.dial_ok(c(1));
    sim.dial_ok(c(2));
    sim.at(min(40));
    sim.release(s(1), true);
    sim.acquire_session(s(3), &plain());
    assert_eq!(
        sim.lease(s(3)).id,
        c(1),
        "40m old: exactly 15m left, leased"
    );
    sim.at(min(40) + 1);
    sim.release(s(2), true);
    sim.note("c2 is 40m + 1ms old: a new session's chain would break within 15m, so a dial");
    sim.acquire_session(s(4), &plain());
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Dial { conn, for_holder: Some(h), .. } if *conn == c(3) && *h == s(4)));
    assert_eq!(sim.idle(), vec![c(2)], "c2 stays pooled for HTTP turns");
    sim.note("an HTTP turn needs one response's worth of life: it takes c2");
    sim.acquire_http(s(5), &plain(), None);
    assert_eq!(sim.lease(s(5)).id, c(2));
    assert_trace!(
        "pool_session_gets_only_a_conn_with_enough_life_left",
        sim.trace
    );
}

#[test]
fn pool_conn_too_old_for_a_waiting_session_makes_room_for_its_dial() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    sim.at(min(41));
    sim.note("capacity 1 is s1's conn; s2 waits for it");
    sim.acquire_session(s(2), &plain());
    assert_eq!(sim.stats().waiters, 1);
    sim.at(min(41) + 500);
    sim.note(
        "c1 comes back 41m old: too old for s2, it is closed and a dial for s2 takes its place",
    );
    sim.release(s(1), true);
    assert_eq!(
        sim.closes(),
        vec![(c(1), wsv2_core::pool::CloseReason::SessionAge)]
    );
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Dial { conn, for_holder: Some(h), .. } if *conn == c(2) && *h == s(2)));
    sim.dial_ok(c(2));
    assert_eq!(sim.lease(s(2)).id, c(2));
    assert_eq!(sim.refusal(s(2)), None);
    assert_trace!(
        "pool_conn_too_old_for_a_waiting_session_makes_room_for_its_dial",
        sim.trace
    );
}
