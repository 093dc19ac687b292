//! The registry's ticks: cleanup (max age, idle timeout, surplus, never below min_idle) and
//! pings of idle conns; max-age retirement and dirty idle conns.

use std::time::Duration;

use crate::support::pool::*;
use wsv2_core::Config;
use wsv2_core::pool::{CloseReason, HolderKind, PoolRequest};

/// No pings (their own test covers them)
fn no_ping(mut config: Config) -> Config {
    config.upstream.ping_interval = Duration::from_secs(3_600);
    config
}

#[test]
fn pool_cleanup_tick_without_traffic_keeps_min_idle() {
    let mut sim = Sim::new(no_ping(Config::default()), 8);
    sim.open_idle(1, 6, &plain());
    sim.note("six released conns (the first session took over the warm dial c1): 6 idle, no traffic from now on");
    assert_eq!(sim.stats().idle, 6);
    sim.note("30 s: beyond max_idle 4, least recently used first");
    sim.at(30_000);
    assert_eq!(sim.stats().idle, 4);
    sim.at(300_000);
    assert_eq!(
        sim.stats().idle,
        4,
        "idle for exactly idle_timeout is not yet too long"
    );
    sim.note("330 s: idle > 300 s, but never below min_idle 1");
    sim.at(330_000);
    assert_eq!(sim.stats().idle, 1);
    sim.at(900_000);
    assert_eq!(sim.stats().idle, 1);
    let reasons: Vec<CloseReason> = sim.closes().iter().map(|(_, r)| *r).collect();
    assert_eq!(reasons[..2], [CloseReason::IdleSurplus; 2]);
    assert_eq!(reasons[2..], [CloseReason::IdleTimeout; 3]);
    assert_eq!(
        sim.idle(),
        vec![c(6)],
        "the most recently released conn stays"
    );
    assert_trace!(
        "pool_cleanup_tick_without_traffic_keeps_min_idle",
        sim.trace
    );
}

#[test]
fn pool_ping_tick_pings_silent_idle_conns() {
    let mut sim = Sim::new(quiet_config(), 4);
    sim.open_idle(1, 1, &plain());
    sim.acquire_session(s(9), &plain());
    sim.acquire_session(s(10), &plain());
    sim.dial_ok(c(2));
    sim.release(s(9), true);
    sim.note("c1 idle, c2 leased to s10 (its session pings it, not the pool)");
    sim.at(30_000);
    assert_eq!(sim.outputs_at(30_000), vec![&PoolRequest::Ping(c(1))]);
    sim.at(30_500);
    sim.idle_pong(c(1));
    sim.at(60_000);
    assert!(
        sim.outputs_at(60_000).is_empty(),
        "c1 read a pong 29.5 s ago: not silent yet"
    );
    sim.at(90_000);
    assert_eq!(sim.outputs_at(90_000), vec![&PoolRequest::Ping(c(1))]);
    sim.note("no pong within pong_timeout (10 s): closed");
    sim.at(100_000);
    assert_eq!(sim.closes(), vec![(c(1), CloseReason::PongTimeout)]);
    assert_eq!(sim.stats().open, 1);
    assert_trace!("pool_ping_tick_pings_silent_idle_conns", sim.trace);
}

#[test]
fn pool_ping_tick_covers_every_account() {
    let mut sim = Sim::new(quiet_config(), 2);
    let b = wsv2_core::AccountId(2);
    sim.input("add_account a2 concurrency=2", |p, now| {
        p.add_account(now, b, 2)
    });
    sim.open_idle(1, 1, &plain());
    let key_b = wsv2_core::conn::CompatKey::plain(b);
    sim.input("acquire_for_session s5 a2 plain", |p, now| {
        p.acquire(now, s(5), HolderKind::Session, &key_b, None, None)
    });
    sim.input("dial_ok c2 (a2)", |p, now| p.handle_dial_ok(now, b, c(2)));
    let record = sim.lease(s(5)).clone();
    sim.input("release c2 by s5", |p, now| {
        p.handle_release(
            now,
            wsv2_core::conn::Release {
                record,
                reusable: true,
            },
            None,
        )
    });
    sim.at(30_000);
    assert_eq!(
        sim.outputs_at(30_000),
        vec![&PoolRequest::Ping(c(1)), &PoolRequest::Ping(c(2))]
    );
    assert_eq!(sim.pools.total_stats().idle, 2);
    assert_trace!("pool_ping_tick_covers_every_account", sim.trace);
}

#[test]
fn pool_max_age_retires_conns() {
    let mut config = no_ping(Config::default());
    config.upstream.max_age = Duration::from_secs(100);
    config.pool.session_min_remaining_life = Duration::ZERO;
    let mut sim = Sim::new(config, 4);
    sim.dial_ok(c(1));
    sim.at(10_000);
    sim.acquire_session(s(1), &plain());
    sim.at(10_300);
    sim.dial_ok(c(2));
    sim.note("c1 (opened at 0) is released at 100 s: past max_age, closed, never pooled");
    sim.at(100_000);
    sim.release(s(1), true);
    assert_eq!(sim.closes(), vec![(c(1), CloseReason::MaxAge)]);
    sim.note("cleanup at 120 s closes the idle c2 (opened at 10.3 s) even below min_idle");
    sim.at(120_000);
    assert_eq!(sim.closes()[1], (c(2), CloseReason::MaxAge));
    assert!(sim.outputs_at(120_000).iter().any(|c| matches!(
        c,
        PoolRequest::Dial {
            for_holder: None,
            ..
        }
    )));
    sim.dial_ok(c(3));
    sim.note("c3 passes max_age between ticks: an acquire never leases it");
    sim.at(220_001);
    sim.acquire_session(s(2), &plain());
    assert_eq!(sim.closes()[2], (c(3), CloseReason::MaxAge));
    assert!(sim.outputs_at(220_001).iter().any(|c| matches!(c,
        PoolRequest::Dial { for_holder: Some(h), .. } if *h == s(2))));
    assert_trace!("pool_max_age_retires_conns", sim.trace);
}

#[test]
fn pool_dirty_or_closed_idle_conns_are_dropped_at_once() {
    let mut sim = Sim::new(quiet_config(), 1);
    sim.open_idle(1, 1, &plain());
    sim.note("a text frame on an idle conn is a tail packet: dirty, closed");
    sim.idle_frame(c(1));
    assert_eq!(sim.closes(), vec![(c(1), CloseReason::Dirty)]);
    sim.acquire_session(s(2), &plain());
    assert_eq!(
        sim.pending_dials(),
        vec![c(2)],
        "its capacity is free again"
    );
    sim.dial_ok(c(2));
    sim.release(s(2), true);
    sim.note("an idle socket that closed is forgotten (no Close to send)");
    sim.idle_closed(c(2));
    assert_eq!(sim.stats().open, 0);
    assert_eq!(sim.closes().len(), 1);
    assert_trace!(
        "pool_dirty_or_closed_idle_conns_are_dropped_at_once",
        sim.trace
    );
}
