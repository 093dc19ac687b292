//! Scheduler layers: previous_response binding > session binding > least loaded (load ratio,
//! free slot and higher priority first, then waiters, then a session's pool conns in use, then
//! id), eligibility filters and the no-account answers.

use std::time::Duration;

use crate::support::scheduler::{Sim, a, expect_account, http, ws, ws_request};
use wsv2_core::resolver::Transport;
use wsv2_core::scheduler::{ConnUse, Decision, Layer, Reject, ScheduleRequest};

fn layer(decision: Decision) -> Layer {
    match decision {
        Decision::Schedule(choice) => choice.layer,
        Decision::Reject(r) => panic!("expected a choice, got {}", r.code()),
    }
}

#[test]
fn scheduler_layers_binding_beats_session_beats_least_loaded() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 0, 4)]);
    // a3 is the least loaded; a2 is the session's account; a1 holds the previous response.
    assert!(sim.acquire(1, 4));
    assert!(sim.acquire(2, 4));

    let both = ScheduleRequest {
        bound_account: Some(a(1)),
        session_account: Some(a(2)),
        ..ws_request()
    };
    let d = sim.schedule(&both);
    expect_account(d, 1);
    assert_eq!(layer(d), Layer::PreviousResponse);

    let session_only = ScheduleRequest {
        session_account: Some(a(2)),
        ..ws_request()
    };
    let d = sim.schedule(&session_only);
    expect_account(d, 2);
    assert_eq!(layer(d), Layer::Session);

    let d = sim.schedule(&ws_request());
    expect_account(d, 3);
    assert_eq!(layer(d), Layer::LeastLoaded);

    sim.note("an unusable session account falls through to least loaded");
    sim.rate_limited(2, None);
    let d = sim.schedule(&session_only);
    expect_account(d, 3);
    assert_eq!(layer(d), Layer::LeastLoaded);

    sim.at(Duration::from_secs(60));
    sim.note("a2's cooldown is over; an excluded session account falls through too");
    let exclude = [a(2)];
    let d = sim.schedule(&ScheduleRequest {
        exclude: &exclude,
        ..session_only
    });
    expect_account(d, 3);
    sim.snapshot("scheduler_layers_binding_beats_session_beats_least_loaded");
}

#[test]
fn scheduler_least_loaded_ratio_then_waiters_then_id_within_one_priority() {
    // a1: 2/4 = 0.5; a2: 1/4 = 0.25; a3: 1/2 = 0.5 (a2 wins on ratio).
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 0, 2)]);
    for account in [1, 1, 2, 3] {
        assert!(sim.acquire(account, 4));
    }
    expect_account(sim.schedule(&ws_request()), 2);

    sim.note("equal ratios: fewer waiters wins (a waiter: a create whose own max is reached)");
    assert!(sim.acquire(2, 4)); // a2 now 2/4 = 0.5, ties with a1 and a3
    assert!(!sim.acquire(1, 2)); // s6
    assert!(!sim.acquire(3, 1)); // s7
    assert!(!sim.acquire(3, 1)); // s8
    expect_account(sim.schedule(&ws_request()), 2);

    sim.note("everything equal: lowest id wins");
    assert!(!sim.acquire(2, 2)); // s9
    sim.cancel(7);
    expect_account(sim.schedule(&ws_request()), 1);
    sim.snapshot("scheduler_least_loaded_ratio_then_waiters_then_id_within_one_priority");
}

/// Issue 13 item 7: `priority` is higher-first, as the docs say; load balances within one
/// priority; traffic spills to a lower priority only when every higher account is full or
/// cooling
#[test]
fn scheduler_priority_is_higher_first_and_spills_only_when_higher_accounts_are_full_or_cooling() {
    // a1, a2: priority 10, 2 slots each; a3: priority 0, 4 slots.
    let mut sim = Sim::new(&[ws(1, 10, 2), ws(2, 10, 2), ws(3, 0, 4)]);
    sim.note("idle: the higher priority wins over the lower id");
    let mut placed = Vec::new();
    for _ in 0..4 {
        let d = sim.schedule(&ws_request());
        let Decision::Schedule(choice) = d else {
            panic!("expected a choice")
        };
        placed.push(choice.account.0);
        assert!(sim.acquire(choice.account.0, choice.max_concurrency));
    }
    sim.note("four sessions: two on each priority-10 account, balanced, none on a3");
    placed.sort_unstable();
    assert_eq!(placed, [1, 1, 2, 2]);
    sim.note("every priority-10 account full: spill to priority 0");
    expect_account(sim.schedule(&ws_request()), 3);
    sim.note("a slot frees on a2: back to priority 10 although a3 is idle");
    sim.release(2);
    expect_account(sim.schedule(&ws_request()), 2);
    sim.note("a2 cooling, a1 full: spill to priority 0");
    sim.rate_limited(2, None);
    expect_account(sim.schedule(&ws_request()), 3);
    sim.at(Duration::from_secs(60));
    sim.note("a2's cooldown is over; everything full: the least loaded, then the higher priority");
    assert!(sim.acquire(2, 2));
    for _ in 0..4 {
        assert!(sim.acquire(3, 4));
    }
    expect_account(sim.schedule(&ws_request()), 1);
    sim.snapshot(
        "scheduler_priority_is_higher_first_and_spills_only_when_higher_accounts_are_full_or_cooling",
    );
}

/// Issue 17: idle sessions hold conns but no slots, so for a WebSocket session a pool with no
/// free conn ([`ConnUse::full`]) counts as full; with every account so, the order among full
/// ones holds (the session waits there)
#[test]
fn scheduler_a_session_passes_over_accounts_whose_pool_has_no_free_conn() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 5, 4)]);
    assert!(sim.acquire(2, 4));
    let no_conn = |n| ConnUse {
        account: a(n),
        in_use: 0,
        cap: 4,
        full: true,
    };
    expect_account(sim.schedule(&with_conns(&[no_conn(1), no_conn(3)])), 2);
    let none_free = [no_conn(1), no_conn(2), no_conn(3)];
    expect_account(sim.schedule(&with_conns(&none_free)), 3);
}

/// A WebSocket request with the pools' conns in use
fn with_conns(conn_use: &[ConnUse]) -> ScheduleRequest<'_> {
    ScheduleRequest {
        conn_use,
        ..ws_request()
    }
}

/// The 10,000-idle-session benchmark: accounts serving only idle sessions tie on load, and the
/// lowest id took new sessions until its pool was full (2946 / 2443 / 1591 / 1228 / 749 over
/// five accounts). Among otherwise-equal accounts a session goes to the pool with the lower
/// share of its conns in use (`conn_use`, exactly compared); priority, load and waiters
/// still come first, and with no `conn_use` (an HTTP request) the lower id still wins
#[test]
fn scheduler_a_session_prefers_the_equal_account_whose_pool_has_fewer_conns_in_use() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 0, 8), ws(4, 0, 4)]);
    let conns = |n, in_use, cap| ConnUse {
        account: a(n),
        in_use,
        cap,
        full: false,
    };
    // a1 3/4, a2 2/4, a3 3/8, a4 not listed (no pool yet): 3/8 < 2/4 < 3/4.
    let mut uses = vec![conns(1, 3, 4), conns(2, 2, 4), conns(3, 3, 8)];
    expect_account(sim.schedule(&ws_request()), 1);
    expect_account(sim.schedule(&with_conns(&uses)), 4);
    uses.push(conns(4, 4, 4));
    expect_account(sim.schedule(&with_conns(&uses)), 3);
    uses[2].in_use = 4; // a3 4/8 ties a2 2/4: the lower id
    expect_account(sim.schedule(&with_conns(&uses)), 2);

    // Load comes first: a slot taken on a2 and a3 leaves a1 and a4 (a1 has fewer conns in use).
    assert!(sim.acquire(2, 4));
    assert!(sim.acquire(3, 8));
    expect_account(sim.schedule(&with_conns(&uses)), 1);
    // So does priority: a4 at priority 1 wins with every conn in use.
    sim.upsert(ws(4, 1, 4));
    expect_account(sim.schedule(&with_conns(&uses)), 4);
}

#[test]
fn scheduler_least_loaded_compares_ratios_exactly() {
    // 1/3 < 2/5 < 1/2: integers would say otherwise after rounding.
    let mut sim = Sim::new(&[ws(1, 0, 2), ws(2, 0, 5), ws(3, 0, 3)]);
    assert!(sim.acquire(1, 2));
    assert!(sim.acquire(2, 5));
    assert!(sim.acquire(2, 5));
    assert!(sim.acquire(3, 3));
    expect_account(sim.schedule(&ws_request()), 3);
}

#[test]
fn scheduler_websocket_sessions_only_go_to_ws_accounts() {
    let mut sim = Sim::new(&[http(1, 0, 8), ws(2, 5, 1)]);
    assert!(sim.acquire(2, 1));
    sim.note("a WS session takes the loaded WS account over the idle HTTP one");
    expect_account(sim.schedule(&ws_request()), 2);
    sim.note("an HTTP request takes either: the idle one");
    expect_account(sim.schedule(&ScheduleRequest::fresh(Transport::Http)), 1);
    sim.note("a session binding to an HTTP account is skipped by a WS session");
    let d = sim.schedule(&ScheduleRequest {
        session_account: Some(a(1)),
        ..ws_request()
    });
    expect_account(d, 2);
    assert_eq!(layer(d), Layer::LeastLoaded);

    sim.note("the only WS account is cooling: 426 so the client switches to HTTP");
    sim.rate_limited(2, None);
    let d = sim.schedule(&ws_request());
    assert_eq!(d, Decision::Reject(Reject::UpgradeRequired));
    if let Decision::Reject(r) = d {
        assert_eq!(r.status(), 426);
    }
    sim.snapshot("scheduler_websocket_sessions_only_go_to_ws_accounts");
}

#[test]
fn scheduler_no_usable_account_is_429_when_rate_limited_else_503() {
    let mut sim = Sim::new(&[ws(1, 0, 1), ws(2, 0, 1), ws(3, 0, 1)]);
    sim.rate_limited(1, Some(Duration::from_secs(40)));
    sim.rate_limited(2, Some(Duration::from_secs(20)));
    sim.auth_failure(3);
    let d = sim.schedule(&ws_request());
    let retry_at = sim.t0 + Duration::from_secs(20);
    assert_eq!(d, Decision::Reject(Reject::AllRateLimited { retry_at }));
    if let Decision::Reject(r) = d {
        assert_eq!(r.status(), 429);
        assert_eq!(r.retry_after_secs(sim.now), Some(20));
    }
    sim.note("no accounts at all: 503 without Retry-After");
    let empty = Sim::new(&[]);
    let d = empty.sched.schedule(empty.now, &ws_request());
    assert_eq!(d, Decision::Reject(Reject::NoAccount { retry_at: None }));
    sim.note("everything excluded: 503");
    sim.at(Duration::from_secs(60));
    let exclude = [a(1), a(2)];
    let d = sim.schedule(&ScheduleRequest {
        exclude: &exclude,
        ..ws_request()
    });
    assert_eq!(d, Decision::Reject(Reject::NoAccount { retry_at: None }));
    sim.snapshot("scheduler_no_usable_account_is_429_when_rate_limited_else_503");
}

#[test]
fn scheduler_decision_carries_the_accounts_max_concurrency() {
    let mut sim = Sim::new(&[ws(1, 0, 7)]);
    assert_eq!(expect_account(sim.schedule(&ws_request()), 1), 7);
    sim.note("zero concurrency is treated as one");
    sim.upsert(ws(1, 0, 0));
    assert_eq!(expect_account(sim.schedule(&ws_request()), 1), 1);
}
