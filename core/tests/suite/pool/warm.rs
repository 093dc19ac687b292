//! Warm idle: `min_idle_per_account` idle conns kept ready, one dial at a time, spaced by the
//! cooldown, backed off after failures and suppressed after repeated ones.

use crate::support::pool::*;
use wsv2_core::Config;
use wsv2_core::pool::PoolRequest;

fn warm_dials(sim: &Sim) -> Vec<(u64, PoolRequest)> {
    sim.outputs
        .iter()
        .filter(|(_, c)| {
            matches!(
                c,
                PoolRequest::Dial {
                    for_holder: None,
                    ..
                }
            )
        })
        .cloned()
        .collect()
}

#[test]
fn pool_warm_idle_refills_after_cooldown_with_last_key() {
    let mut sim = Sim::new(Config::default(), 4);
    sim.note("a new account dials its one warm conn with a plain key (no acquire yet)");
    assert!(
        matches!(&warm_dials(&sim)[..], [(0, PoolRequest::Dial { compat, .. })] if *compat == plain())
    );
    sim.dial_ok(c(1));
    assert_eq!(sim.idle(), vec![c(1)]);
    sim.at(1_000);
    let key = beta("responses_websockets=2026-02-06");
    sim.acquire_session(s(1), &key);
    sim.dial_ok(c(2));
    assert_eq!(sim.lease(s(1)).id, c(2));
    assert_eq!(
        warm_dials(&sim).len(),
        1,
        "c1 is still idle: min_idle is met"
    );
    sim.at(1_100);
    sim.note("c1 turns dirty: the refill uses the key of the last successful acquire (s1's)");
    sim.idle_frame(c(1));
    let dials = warm_dials(&sim);
    assert!(matches!(&dials[1], (1_100, PoolRequest::Dial { compat, .. }) if *compat == key));
    sim.dial_ok(c(3));
    sim.acquire_session(s(2), &key);
    assert_eq!(sim.lease(s(2)).id, c(3));
    sim.note("the next refill waits for warm_cooldown (300 ms after the last warm dial)");
    sim.at(1_399);
    assert_eq!(warm_dials(&sim).len(), 2);
    sim.at(2_000);
    let dials = warm_dials(&sim);
    assert_eq!(dials.len(), 3);
    assert_eq!(dials[2].0, 1_400);
    assert_trace!(
        "pool_warm_idle_refills_after_cooldown_with_last_key",
        sim.trace
    );
}

#[test]
fn pool_warm_dial_failures_back_off_then_suppress() {
    let mut sim = Sim::new(Config::default(), 4);
    sim.at(100);
    sim.dial_failed(c(1));
    sim.note("first failure: back-off ~120 ms, cooldown until 300 ms, then one more try");
    sim.at(1_000);
    let dials = warm_dials(&sim);
    assert_eq!(dials.len(), 2);
    assert_eq!(dials[1].0, 300);
    sim.dial_failed(c(2));
    sim.note("second failure within 30 s: warm dials are suppressed for 30 s");
    sim.at(30_999);
    assert_eq!(warm_dials(&sim).len(), 2);
    sim.note("suppression does not stop dials for holders (after the back-off)");
    sim.acquire_session(s(1), &plain());
    assert!(matches!(&sim.outputs.last().unwrap().1,
        PoolRequest::Dial { for_holder: Some(h), .. } if *h == s(1)));
    sim.dial_ok(c(3));
    sim.note("a successful dial lifts the suppression: the warm conn is dialed again");
    let dials = warm_dials(&sim);
    assert_eq!(dials.len(), 3);
    assert_eq!(dials[2].0, 30_999);
    assert_trace!("pool_warm_dial_failures_back_off_then_suppress", sim.trace);
}

#[test]
fn pool_warm_suppression_ends_after_window() {
    let mut sim = Sim::new(Config::default(), 4);
    sim.dial_failed(c(1));
    sim.at(300);
    sim.dial_failed(c(2));
    sim.at(30_299);
    assert_eq!(warm_dials(&sim).len(), 2);
    sim.at(31_000);
    let dials = warm_dials(&sim);
    assert_eq!(dials.len(), 3, "the window has passed");
    assert_eq!(dials[2].0, 30_300);
    assert_trace!("pool_warm_suppression_ends_after_window", sim.trace);
}

#[test]
fn pool_warm_counts_dials_in_flight_and_never_reserves_many() {
    let mut config = Config::default();
    config.pool.min_idle_per_account = 3;
    let mut sim = Sim::new(config, 8);
    sim.note("min_idle 3: one warm dial at a time, 300 ms apart, each counted while in flight");
    assert_eq!(sim.stats().dialing, 1);
    sim.at(299);
    assert_eq!(sim.stats().dialing, 1);
    sim.at(300);
    assert_eq!(sim.stats().dialing, 2);
    sim.at(600);
    assert_eq!(sim.stats().dialing, 3);
    sim.at(5_000);
    assert_eq!(sim.stats().dialing, 3, "idle 0 + warm dialing 3 = min_idle");
    for conn in sim.pending_dials() {
        sim.dial_ok(conn);
    }
    assert_eq!((sim.stats().idle, sim.stats().dialing), (3, 0));
    assert_trace!(
        "pool_warm_counts_dials_in_flight_and_never_reserves_many",
        sim.trace
    );
}
