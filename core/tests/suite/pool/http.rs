//! Pool rules for HTTP turns: the preferred conn, FIFO queues behind HTTP-leased conns with a
//! per-conn limit, the total acquire timeout, and never queueing on a session's conn.

use crate::support::pool::*;
use wsv2_core::pool::{CloseReason, PoolRequest, RefuseReason};

/// Account A at capacity 1 with c1 leased to HTTP turn s1
fn one_busy_http_conn() -> Sim {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_http(s(1), &plain(), None);
    sim.dial_ok(c(1));
    sim
}

#[test]
fn pool_http_queue_full_on_seventeenth_waiter() {
    let mut sim = one_busy_http_conn();
    sim.note("16 turns queue behind c1 (queue_limit_per_conn)");
    for h in 2..=17 {
        sim.acquire_http(s(h), &plain(), None);
    }
    assert_eq!(sim.pools.pool(A).unwrap().queued_behind(c(1)), 16);
    assert!(
        sim.outputs
            .iter()
            .all(|(_, c)| !matches!(c, PoolRequest::Refused { .. }))
    );
    sim.note("the 17th waiter gets QueueFull at once");
    sim.acquire_http(s(18), &plain(), None);
    assert_eq!(sim.refusal(s(18)), Some((0, RefuseReason::QueueFull)));
    sim.at(500);
    sim.note("the released conn goes to its first waiter");
    sim.release(s(1), true);
    assert_eq!(sim.lease(s(2)).id, c(1));
    assert_eq!(sim.pools.pool(A).unwrap().queued_behind(c(1)), 15);
    assert_trace!("pool_http_queue_full_on_seventeenth_waiter", sim.trace);
}

#[test]
fn pool_http_acquire_timeout_after_twelve_seconds() {
    let mut sim = one_busy_http_conn();
    sim.acquire_http(s(2), &plain(), None);
    sim.at(4_000);
    sim.acquire_http(s(3), &plain(), None);
    sim.at(11_999);
    assert_eq!(sim.refusal(s(2)), None);
    sim.at(20_000);
    assert_eq!(
        sim.refusal(s(2)),
        Some((12_000, RefuseReason::AcquireTimeout))
    );
    assert_eq!(
        sim.refusal(s(3)),
        Some((16_000, RefuseReason::AcquireTimeout))
    );
    assert_eq!(sim.pools.pool(A).unwrap().queued_behind(c(1)), 0);
    assert_trace!("pool_http_acquire_timeout_after_twelve_seconds", sim.trace);
}

#[test]
fn pool_http_waits_behind_least_busy_conn() {
    let mut sim = Sim::new(quiet_config(), 2);
    sim.acquire_http(s(1), &plain(), None);
    sim.acquire_http(s(2), &plain(), None);
    sim.dial_ok(c(1));
    sim.dial_ok(c(2));
    for h in 3..=5 {
        sim.acquire_http(s(h), &plain(), None);
    }
    let pool = sim.pools.pool(A).unwrap();
    assert_eq!((pool.queued_behind(c(1)), pool.queued_behind(c(2))), (2, 1));
    sim.note("c2's release serves c2's own first waiter (s4), not the older s3 queued on c1");
    sim.release(s(2), true);
    assert_eq!(sim.lease(s(4)).id, c(2));
    assert_trace!("pool_http_waits_behind_least_busy_conn", sim.trace);
}

#[test]
fn pool_http_preferred_conn_fast_path() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.acquire_http(s(1), &plain(), None);
    sim.acquire_http(s(2), &plain(), None);
    sim.dial_ok(c(1));
    sim.dial_ok(c(2));
    sim.release_caching(s(1), "resp_A");
    sim.at(10);
    sim.release_caching(s(2), "resp_B");
    sim.note("c2 is the most recent, but the chain's previous response lives on c1");
    sim.acquire_http(s(3), &plain(), Some(&resp("resp_A")));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Granted(l) if l.record.id == c(1) && l.preferred_hit));
    sim.note("a preferred conn that is busy is no reason to wait: take another idle one");
    sim.acquire_http(s(4), &plain(), Some(&resp("resp_A")));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Granted(l) if l.record.id == c(2) && !l.preferred_hit));
    assert_eq!(sim.stats().preferred_hits, 1);
    assert_trace!("pool_http_preferred_conn_fast_path", sim.trace);
}

#[test]
fn pool_http_never_queues_on_a_session_conn() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_session(s(1), &plain());
    sim.dial_ok(c(1));
    sim.note("c1 is leased to a WebSocket session: the HTTP turn waits in the pool queue");
    sim.acquire_http(s(2), &plain(), None);
    assert_eq!(sim.pools.pool(A).unwrap().queued_behind(c(1)), 0);
    assert_eq!(sim.stats().waiters, 1);
    sim.at(3_000);
    sim.note("freed capacity becomes a dial for it");
    sim.conn_closed(c(1));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Dial { for_holder: Some(h), .. } if *h == s(2)));
    assert_trace!("pool_http_never_queues_on_a_session_conn", sim.trace);
}

#[test]
fn pool_http_waiters_of_closed_conn_acquire_again() {
    let mut sim = one_busy_http_conn();
    sim.acquire_http(s(2), &plain(), None);
    sim.acquire_http(s(3), &plain(), None);
    sim.at(1_000);
    sim.note("c1 dies: its queue goes back to normal acquisition (a dial for the first)");
    sim.conn_closed(c(1));
    assert_eq!(
        sim.outputs.last().unwrap().1,
        PoolRequest::Dial {
            conn: c(2),
            compat: plain(),
            for_holder: Some(s(2))
        }
    );
    sim.dial_ok(c(2));
    assert_eq!(sim.lease(s(2)).id, c(2));
    sim.release(s(2), false);
    sim.note("not reusable: closed, and the capacity dials for s3");
    assert!(sim.closes().contains(&(c(2), CloseReason::NotReusable)));
    assert_eq!(sim.pending_dials(), vec![c(3)]);
    assert_trace!("pool_http_waiters_of_closed_conn_acquire_again", sim.trace);
}

#[test]
fn pool_dial_finishing_after_its_waiter_timed_out_goes_idle() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.acquire_http(s(1), &plain(), None);
    sim.at(12_000);
    assert_eq!(
        sim.refusal(s(1)),
        Some((12_000, RefuseReason::AcquireTimeout))
    );
    sim.at(13_000);
    sim.dial_ok(c(1));
    assert_eq!(sim.idle(), vec![c(1)]);
    assert_eq!(sim.stats().leased, 0);
    sim.acquire_http(s(2), &plain(), None);
    assert_eq!(sim.lease(s(2)).id, c(1));
    assert_trace!(
        "pool_dial_finishing_after_its_waiter_timed_out_goes_idle",
        sim.trace
    );
}

#[test]
fn pool_dial_failure_refuses_its_holder_and_backs_off() {
    let mut sim = Sim::new(quiet_config(), 2);
    sim.acquire_http(s(1), &plain(), None);
    sim.at(50);
    sim.dial_failed(c(1));
    assert_eq!(sim.refusal(s(1)), Some((50, RefuseReason::DialFailed)));
    sim.note("inside the back-off no dial starts; the turn waits");
    sim.acquire_http(s(2), &plain(), None);
    assert_eq!(sim.pending_dials(), Vec::<wsv2_core::ConnId>::new());
    sim.at(1_000);
    let dial = sim
        .outputs
        .iter()
        .find(|(_, c)| matches!(c, PoolRequest::Dial { for_holder: Some(h), .. } if *h == s(2)))
        .map(|(t, _)| *t)
        .unwrap();
    assert!(
        (50 + 60..=50 + 120).contains(&dial),
        "back-off 120 ms with jitter: {dial}"
    );
    assert_trace!(
        "pool_dial_failure_refuses_its_holder_and_backs_off",
        sim.trace
    );
}
