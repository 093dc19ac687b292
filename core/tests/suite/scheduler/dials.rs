//! Account health from dials (issue 13 item 1): failed dials cool an account, probe dials
//! notice its return, a failing account is still tried when nothing else is usable, and an
//! account whose every peer is rate limited answers 429 (item 12). Virtual time throughout.

use std::time::Duration;

use crate::support::scheduler::{Sim, a, expect_account, http, ws, ws_request};
use wsv2_core::resolver::Transport;
use wsv2_core::scheduler::{Decision, Health, Layer, Reject, ScheduleRequest, SchedulerEvent};

const SEC: Duration = Duration::from_secs(1);

fn health(sim: &Sim, account: u64) -> Health {
    sim.sched
        .account(a(account), sim.now)
        .expect("configured")
        .health
}

fn dial_failed(sim: &mut Sim, account: u64) {
    sim.note(&format!("dial to a{account} failed"));
    sim.sched.handle_dial_failed(sim.now, a(account));
    sim.health_line(account);
    sim.drain();
}

fn dial_ok(sim: &mut Sim, account: u64) -> Vec<SchedulerEvent> {
    sim.note(&format!("dial to a{account} succeeded"));
    sim.sched.handle_dial_ok(sim.now, a(account));
    sim.health_line(account);
    sim.drain()
}

#[test]
fn scheduler_consecutive_failed_dials_cool_an_account_until_a_probe_succeeds() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4)]);
    dial_failed(&mut sim, 1);
    assert_eq!(
        health(&sim, 1),
        Health::Usable,
        "one failed dial says little"
    );
    sim.advance(Duration::from_millis(100));
    dial_ok(&mut sim, 1);
    dial_failed(&mut sim, 1);
    assert_eq!(
        health(&sim, 1),
        Health::Usable,
        "a success in between resets the run"
    );
    sim.advance(Duration::from_millis(100));
    dial_failed(&mut sim, 1);
    let probe_at = sim.now + 5 * SEC;
    assert_eq!(health(&sim, 1), Health::Cooling { until: probe_at });
    expect_account(sim.schedule(&ws_request()), 2);
    assert_eq!(sim.sched.poll_timeout(), Some(probe_at));

    sim.note("the probe falls due: one probe dial, and the next one an interval later");
    sim.now = probe_at;
    assert_eq!(sim.tick(), vec![SchedulerEvent::ProbeDue(a(1))]);
    assert_eq!(sim.sched.poll_timeout(), Some(probe_at + 5 * SEC));
    assert!(matches!(health(&sim, 1), Health::Cooling { .. }));
    expect_account(sim.schedule(&ws_request()), 2);
    sim.advance(SEC);
    dial_failed(&mut sim, 1);
    assert!(
        matches!(health(&sim, 1), Health::Cooling { until } if until == probe_at + 5 * SEC),
        "a failed probe keeps the cooldown and its schedule"
    );

    sim.note("the next probe succeeds: usable at once");
    sim.now = probe_at + 5 * SEC;
    assert_eq!(sim.tick(), vec![SchedulerEvent::ProbeDue(a(1))]);
    sim.advance(Duration::from_millis(3));
    assert_eq!(
        dial_ok(&mut sim, 1),
        vec![SchedulerEvent::AccountUsable(a(1))]
    );
    assert_eq!(health(&sim, 1), Health::Usable);
    assert_eq!(sim.sched.poll_timeout(), None);
    expect_account(sim.schedule(&ws_request()), 1);
    sim.snapshot("scheduler_consecutive_failed_dials_cool_an_account_until_a_probe_succeeds");
}

#[test]
fn scheduler_a_successful_response_also_ends_a_dial_cooldown() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    dial_failed(&mut sim, 1);
    dial_failed(&mut sim, 1);
    assert!(matches!(health(&sim, 1), Health::Cooling { .. }));
    sim.success(1);
    assert_eq!(health(&sim, 1), Health::Usable);
}

#[test]
fn scheduler_when_every_account_is_cooling_the_one_that_failed_least_recently_is_tried() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 0, 4)]);
    dial_failed(&mut sim, 2);
    dial_failed(&mut sim, 2);
    sim.advance(SEC);
    dial_failed(&mut sim, 1);
    dial_failed(&mut sim, 1);
    sim.advance(SEC);
    for _ in 0..3 {
        sim.server_error(3);
    }
    sim.note("a1, a2 cooling after failed dials, a3 after 5xx: a2 failed least recently");
    let d = sim.schedule(&ws_request());
    expect_account(d, 2);
    assert!(matches!(d, Decision::Schedule(c) if c.layer == Layer::LastResort));
    sim.note("excluding a2 (it was just tried): a1");
    let exclude = [a(2)];
    expect_account(
        sim.schedule(&ScheduleRequest {
            exclude: &exclude,
            ..ws_request()
        }),
        1,
    );
    sim.note("a rate-limited or disabled account is never a last resort");
    sim.rate_limited(2, Some(30 * SEC));
    sim.rate_limited(1, Some(20 * SEC));
    sim.auth_failure(3);
    let d = sim.schedule(&ws_request());
    assert_eq!(
        d,
        Decision::Reject(Reject::AllRateLimited {
            retry_at: sim.now + 20 * SEC
        }),
        "every account that could serve is rate limited or disabled: 429 at the earliest reset"
    );
    sim.snapshot(
        "scheduler_when_every_account_is_cooling_the_one_that_failed_least_recently_is_tried",
    );
}

#[test]
fn scheduler_every_account_rate_limited_is_429_with_the_earliest_reset() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4)]);
    sim.rate_limited(1, Some(40 * SEC));
    sim.rate_limited(2, Some(7 * SEC));
    let d = sim.schedule(&ws_request());
    let Decision::Reject(reject) = d else {
        panic!("expected a refusal, got {d}")
    };
    assert_eq!(reject.status(), 429);
    assert_eq!(reject.code(), "all_rate_limited");
    assert_eq!(reject.retry_after_secs(sim.now), Some(7));
    sim.note("an HTTP request sees the same");
    let d = sim.schedule(&ScheduleRequest::fresh(Transport::Http));
    assert!(matches!(d, Decision::Reject(r) if r.status() == 429));
}

#[test]
fn scheduler_an_unpooled_account_is_simply_tried_again_when_its_probe_falls_due() {
    let mut sim = Sim::new(&[http(1, 0, 4)]);
    let request = ScheduleRequest::fresh(Transport::Http);
    dial_failed(&mut sim, 1);
    dial_failed(&mut sim, 1);
    assert!(matches!(health(&sim, 1), Health::Cooling { .. }));
    sim.advance(5 * SEC);
    assert_eq!(sim.tick(), vec![SchedulerEvent::AccountUsable(a(1))]);
    expect_account(sim.schedule(&request), 1);
    sim.note("one more failure cools it again at once");
    dial_failed(&mut sim, 1);
    assert!(matches!(health(&sim, 1), Health::Cooling { .. }));
}
