//! Account health: 429 cooldowns (with and without a reset hint), 3×5xx within the window,
//! auth failures and reloads, and the usable-again timer.

use std::time::Duration;

use crate::support::scheduler::{Sim, a, expect_account, ws, ws_request};
use wsv2_core::scheduler::{Decision, Health, Reject, SchedulerEvent};

const SEC: Duration = Duration::from_secs(1);

fn health(sim: &Sim, account: u64) -> Health {
    sim.sched
        .account(a(account), sim.now)
        .expect("configured")
        .health
}

#[test]
fn scheduler_cooldown_429_without_hint_lasts_rate_limit_cooldown() {
    let mut sim = Sim::new(&[ws(1, 9, 4), ws(2, 0, 4)]);
    expect_account(sim.schedule(&ws_request()), 1);
    sim.rate_limited(1, None);
    let until = sim.t0 + 60 * SEC;
    assert_eq!(health(&sim, 1), Health::Cooling { until });
    assert_eq!(sim.sched.poll_timeout(), Some(until));
    expect_account(sim.schedule(&ws_request()), 2);

    sim.at(60 * SEC - Duration::from_millis(1));
    expect_account(sim.schedule(&ws_request()), 2);
    assert!(sim.tick().is_empty(), "not due yet");

    sim.at(60 * SEC);
    assert_eq!(health(&sim, 1), Health::Usable);
    expect_account(sim.schedule(&ws_request()), 1);
    assert_eq!(sim.tick(), vec![SchedulerEvent::AccountUsable(a(1))]);
    assert_eq!(sim.sched.poll_timeout(), None);
    sim.snapshot("scheduler_cooldown_429_without_hint_lasts_rate_limit_cooldown");
}

#[test]
fn scheduler_cooldown_429_with_hint_lasts_until_the_named_reset() {
    let mut sim = Sim::new(&[ws(1, 9, 4), ws(2, 0, 4)]);
    sim.rate_limited(1, Some(7 * SEC));
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.t0 + 7 * SEC
        }
    );
    sim.note("a shorter hint never shortens a running cooldown");
    sim.at(SEC);
    sim.rate_limited(1, Some(2 * SEC));
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.t0 + 7 * SEC
        }
    );
    sim.note("a longer one extends it");
    sim.rate_limited(1, Some(100 * SEC));
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.t0 + 101 * SEC
        }
    );
    sim.at(101 * SEC);
    expect_account(sim.schedule(&ws_request()), 1);
    sim.snapshot("scheduler_cooldown_429_with_hint_lasts_until_the_named_reset");
}

#[test]
fn scheduler_three_5xx_within_60s_cool_for_30s() {
    let mut sim = Sim::new(&[ws(1, 9, 4), ws(2, 0, 4)]);
    sim.server_error(1);
    sim.at(30 * SEC);
    sim.server_error(1);
    assert_eq!(health(&sim, 1), Health::Usable, "two failures do not cool");
    expect_account(sim.schedule(&ws_request()), 1);
    sim.at(59 * SEC);
    sim.server_error(1);
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.t0 + 89 * SEC
        }
    );
    expect_account(sim.schedule(&ws_request()), 2);
    sim.at(89 * SEC);
    expect_account(sim.schedule(&ws_request()), 1);
    assert_eq!(sim.tick(), vec![SchedulerEvent::AccountUsable(a(1))]);
    sim.note("the window started afresh: one more failure does not cool again");
    sim.server_error(1);
    assert_eq!(health(&sim, 1), Health::Usable);
    sim.snapshot("scheduler_three_5xx_within_60s_cool_for_30s");
}

#[test]
fn scheduler_three_5xx_spread_over_more_than_60s_do_not_cool() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    sim.server_error(1);
    sim.at(31 * SEC);
    sim.server_error(1);
    sim.at(61 * SEC);
    sim.server_error(1); // the first is now 61 s old: two in the window
    assert_eq!(health(&sim, 1), Health::Usable);
    sim.at(91 * SEC);
    sim.server_error(1); // 31 s is exactly 60 s old: out of the window (strictly less counts)
    assert_eq!(health(&sim, 1), Health::Usable);
    sim.at(120 * SEC);
    sim.server_error(1); // 61 s, 91 s, 120 s: all less than 60 s before the newest ⇒ cools
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.t0 + 150 * SEC
        }
    );
    sim.snapshot("scheduler_three_5xx_spread_over_more_than_60s_do_not_cool");
}

#[test]
fn scheduler_success_clears_the_5xx_window() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    sim.server_error(1);
    sim.server_error(1);
    sim.success(1);
    sim.server_error(1);
    assert_eq!(health(&sim, 1), Health::Usable);
    assert_eq!(
        sim.sched
            .account(a(1), sim.now)
            .unwrap()
            .recent_server_errors,
        1
    );
    sim.server_error(1);
    sim.server_error(1);
    assert!(matches!(health(&sim, 1), Health::Cooling { .. }));
}

#[test]
fn scheduler_auth_failure_disables_until_a_reload() {
    let mut sim = Sim::new(&[ws(1, 9, 4), ws(2, 0, 4)]);
    sim.auth_failure(1);
    assert_eq!(health(&sim, 1), Health::Disabled);
    expect_account(sim.schedule(&ws_request()), 2);
    sim.note("time alone does not re-enable it");
    sim.at(3600 * SEC);
    assert!(sim.tick().is_empty());
    assert_eq!(health(&sim, 1), Health::Disabled);
    sim.note("a reload re-enables it");
    sim.upsert(ws(1, 9, 4));
    assert_eq!(health(&sim, 1), Health::Usable);
    expect_account(sim.schedule(&ws_request()), 1);

    sim.note("a reload re-enables it but keeps a running cooldown");
    sim.rate_limited(1, Some(10 * SEC));
    sim.auth_failure(1);
    sim.upsert(ws(1, 0, 4));
    assert_eq!(
        health(&sim, 1),
        Health::Cooling {
            until: sim.now + 10 * SEC
        }
    );
    sim.advance(10 * SEC);
    expect_account(sim.schedule(&ws_request()), 1);
    sim.snapshot("scheduler_auth_failure_disables_until_a_reload");
}

#[test]
fn scheduler_cooldown_of_a_disabled_account_ends_silently() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    sim.rate_limited(1, Some(5 * SEC));
    sim.auth_failure(1);
    sim.at(5 * SEC);
    assert!(
        sim.tick().is_empty(),
        "still disabled: no usable-again event"
    );
    assert_eq!(sim.sched.poll_timeout(), None);
    assert_eq!(
        sim.sched.schedule(sim.now, &ws_request()),
        Decision::Reject(Reject::NoAccount { retry_at: None })
    );
}

#[test]
fn scheduler_poll_timeout_is_the_earliest_cooldown_end() {
    let mut sim = Sim::new(&[ws(1, 0, 4), ws(2, 0, 4), ws(3, 0, 4)]);
    assert_eq!(sim.sched.poll_timeout(), None);
    sim.rate_limited(1, Some(50 * SEC));
    sim.rate_limited(2, Some(20 * SEC));
    sim.rate_limited(3, Some(20 * SEC));
    assert_eq!(sim.sched.poll_timeout(), Some(sim.t0 + 20 * SEC));
    sim.at(20 * SEC);
    let events = sim.tick();
    assert_eq!(
        events,
        vec![
            SchedulerEvent::AccountUsable(a(2)),
            SchedulerEvent::AccountUsable(a(3))
        ]
    );
    assert_eq!(sim.sched.poll_timeout(), Some(sim.t0 + 50 * SEC));
    sim.note("a spurious early timeout fires nothing");
    sim.at(30 * SEC);
    assert!(sim.tick().is_empty());
    sim.snapshot("scheduler_poll_timeout_is_the_earliest_cooldown_end");
}

#[test]
fn scheduler_unknown_accounts_are_no_ops() {
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    sim.rate_limited(9, None);
    sim.server_error(9);
    sim.auth_failure(9);
    sim.release(9);
    assert!(sim.acquire(9, 4), "no slots left to count: granted at once");
    assert_eq!(sim.sched.poll_timeout(), None);
    assert!(sim.sched.remove_account(a(1)));
    assert!(!sim.sched.remove_account(a(1)));
    assert_eq!(sim.sched.account_ids().count(), 0);
}
