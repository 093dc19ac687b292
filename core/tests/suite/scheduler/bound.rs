//! A create whose previous_response_id is bound to an account goes only to that account and
//! never fails over: connection-local ⇒ previous_response_not_found; otherwise 429 with
//! Retry-After at the cooldown's end, or 503 when the account is disabled.

use std::time::Duration;

use crate::support::scheduler::{Sim, a, expect_account, http, ws, ws_request};
use wsv2_core::resolver::Transport;
use wsv2_core::scheduler::{Decision, Layer, Reject, ScheduleRequest};

const SEC: Duration = Duration::from_secs(1);

fn bound(account: u64, connection_local: bool) -> ScheduleRequest<'static> {
    ScheduleRequest {
        bound_account: Some(a(account)),
        connection_local,
        ..ws_request()
    }
}

#[test]
fn scheduler_bound_create_goes_only_to_its_account_even_when_loaded() {
    let mut sim = Sim::new(&[ws(1, 9, 1), ws(2, 0, 8)]);
    assert!(sim.acquire(1, 1));
    let d = sim.schedule(&ScheduleRequest {
        session_account: Some(a(2)),
        ..bound(1, false)
    });
    expect_account(d, 1);
    assert!(matches!(d, Decision::Schedule(c) if c.layer == Layer::PreviousResponse));
    sim.snapshot("scheduler_bound_create_goes_only_to_its_account_even_when_loaded");
}

#[test]
fn scheduler_bound_create_never_fails_over() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4)]);
    sim.note("cooling bound account, chain stored upstream: 429 until the cooldown's end");
    sim.rate_limited(1, Some(42 * SEC));
    sim.at(2 * SEC);
    let until = sim.t0 + 42 * SEC;
    let d = sim.schedule(&bound(1, false));
    assert_eq!(
        d,
        Decision::Reject(Reject::RateLimited {
            account: a(1),
            until
        })
    );
    if let Decision::Reject(r) = d {
        assert_eq!(r.status(), 429);
        assert_eq!(r.retry_after_secs(sim.now), Some(40));
    }

    sim.note("cooling bound account, connection-local chain: previous_response_not_found");
    let d = sim.schedule(&bound(1, true));
    assert_eq!(d, Decision::Reject(Reject::PreviousResponseNotFound));

    sim.note("disabled bound account: 503 (connection-local: previous_response_not_found)");
    sim.auth_failure(2);
    let d = sim.schedule(&bound(2, false));
    assert_eq!(
        d,
        Decision::Reject(Reject::AccountDisabled { account: a(2) })
    );
    if let Decision::Reject(r) = d {
        assert_eq!(r.status(), 503);
    }
    assert_eq!(
        sim.schedule(&bound(2, true)),
        Decision::Reject(Reject::PreviousResponseNotFound)
    );

    sim.note("a bound create already tried on its account does not move either");
    sim.upsert(ws(2, 0, 4));
    let exclude = [a(2)];
    let d = sim.schedule(&ScheduleRequest {
        exclude: &exclude,
        ..bound(2, false)
    });
    assert_eq!(d, Decision::Reject(Reject::NoAccount { retry_at: None }));
    let d = sim.schedule(&ScheduleRequest {
        exclude: &exclude,
        ..bound(2, true)
    });
    assert_eq!(d, Decision::Reject(Reject::PreviousResponseNotFound));

    sim.note("once the cooldown ends the bound account is used again");
    sim.at(42 * SEC);
    expect_account(sim.schedule(&bound(1, false)), 1);
    sim.snapshot("scheduler_bound_create_never_fails_over");
}

#[test]
fn scheduler_bound_to_a_vanished_or_http_account_is_previous_response_not_found() {
    let mut sim = Sim::new(&[ws(1, 0, 4), http(2, 0, 4)]);
    sim.note("the bound account was removed from the configuration");
    assert_eq!(
        sim.schedule(&bound(7, false)),
        Decision::Reject(Reject::PreviousResponseNotFound)
    );
    sim.note("the bound account now resolves to HTTP (force_http rollback) and a WS session asks");
    assert_eq!(
        sim.schedule(&bound(2, false)),
        Decision::Reject(Reject::PreviousResponseNotFound)
    );
    sim.note("an HTTP request may still use it");
    let d = sim.schedule(&ScheduleRequest {
        bound_account: Some(a(2)),
        ..ScheduleRequest::fresh(Transport::Http)
    });
    expect_account(d, 2);
    sim.snapshot("scheduler_bound_to_a_vanished_or_http_account_is_previous_response_not_found");
}
