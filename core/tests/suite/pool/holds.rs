//! Chain holds: the conn of a `store:false` HTTP turn waits for the chain's next turn.

use std::time::Duration;

use crate::support::pool::*;
use wsv2_core::pool::{CloseReason, PoolRequest};

#[test]
fn pool_chain_hold_exempt_from_eviction() {
    let mut config = quiet_config();
    config.pool.max_idle_per_account = 1;
    config.upstream.ping_interval = Duration::from_secs(3_600);
    let mut sim = Sim::new(config, 8);
    for h in 1..=3 {
        sim.acquire_http(s(h), &plain(), None);
    }
    for conn in sim.pending_dials() {
        sim.dial_ok(conn);
    }
    sim.release_hold(s(1), "resp_1");
    sim.release(s(2), true);
    sim.release(s(3), true);
    assert_eq!(
        sim.pools.pool(A).unwrap().held_for(c(1)),
        Some(&resp("resp_1"))
    );
    sim.note("30 s cleanup: max_idle 1 evicts unheld c2 (LRU unheld); held c1 stays");
    sim.at(30_000);
    assert_eq!(sim.closes(), vec![(c(2), CloseReason::IdleSurplus)]);
    assert_eq!(sim.idle(), vec![c(3), c(1)]);
    sim.note("60 s: the hold ends (http_chain_hold), and c1 is ordinary surplus");
    sim.at(60_000);
    assert_eq!(sim.pools.pool(A).unwrap().held_for(c(1)), None);
    assert_eq!(sim.closes()[1], (c(1), CloseReason::IdleSurplus));
    assert_trace!("pool_chain_hold_exempt_from_eviction", sim.trace);
}

#[test]
fn pool_chain_holds_capped_at_eight() {
    let mut sim = Sim::new(quiet_config(), 16);
    for h in 1..=9 {
        sim.acquire_http(s(h), &plain(), None);
    }
    for conn in sim.pending_dials() {
        sim.dial_ok(conn);
    }
    for h in 1..=9 {
        sim.at(h * 10);
        sim.release_hold(s(h), &format!("resp_{h}"));
    }
    let pool = sim.pools.pool(A).unwrap();
    assert_eq!(sim.stats().held, 8);
    assert_eq!(pool.held_for(c(1)), None, "the 9th hold ended the oldest");
    assert_eq!(pool.held_for(c(9)), Some(&resp("resp_9")));
    assert_trace!("pool_chain_holds_capped_at_eight", sim.trace);
}

#[test]
fn pool_held_conn_goes_to_another_turn_only_as_last_resort() {
    let mut sim = Sim::new(quiet_config(), 2);
    sim.acquire_http(s(1), &plain(), None);
    sim.dial_ok(c(1));
    sim.release_hold(s(1), "resp_1");
    sim.note("a dial is possible: the other turn does not take the held conn");
    sim.acquire_http(s(2), &plain(), None);
    assert_eq!(sim.pending_dials(), vec![c(2)]);
    sim.dial_ok(c(2));
    sim.note("no unheld idle conn and no dial possible: the held conn is used");
    sim.acquire_http(s(3), &plain(), None);
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Granted(l) if l.record.id == c(1) && l.holder == s(3)));
    assert_eq!(sim.stats().held, 0);
    assert_trace!(
        "pool_held_conn_goes_to_another_turn_only_as_last_resort",
        sim.trace
    );
}

#[test]
fn pool_chain_next_turn_takes_held_conn() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.acquire_http(s(1), &plain(), None);
    sim.dial_ok(c(1));
    sim.release_hold(s(1), "resp_1");
    sim.at(5_000);
    sim.acquire_http(s(2), &plain(), Some(&resp("resp_1")));
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Granted(l) if l.record.id == c(1) && l.preferred_hit));
    assert_eq!(sim.stats().held, 0, "the chain's next turn ends the hold");
    assert_trace!("pool_chain_next_turn_takes_held_conn", sim.trace);
}
