//! Retry and failover of one response: only before its first event reaches the client, within
//! the total budget, with exponential back-off, at most 3 account switches, and never moving a
//! bound continuation.

use std::time::Duration;

use crate::support::scheduler::{Sim, a, expect_account, ws, ws_request};
use wsv2_core::config::SchedulerConfig;
use wsv2_core::rng::Jitter;
use wsv2_core::scheduler::{
    Decision, FailureKind, GiveUpReason, Pinning, RetryDecision, RetryPhase, RetryState,
    ScheduleRequest,
};

const MS: Duration = Duration::from_millis(1);

fn retry_at(decision: RetryDecision) -> (std::time::Instant, bool) {
    match decision {
        RetryDecision::RetryAt { at, switch_account } => (at, switch_account),
        RetryDecision::GiveUp(reason) => panic!("expected a retry, gave up: {}", reason.as_str()),
    }
}

#[test]
fn scheduler_retry_fails_over_until_three_switches_then_gives_up() {
    let mut sim = Sim::new(&[
        ws(1, 0, 4),
        ws(2, 0, 4),
        ws(3, 0, 4),
        ws(4, 0, 4),
        ws(5, 0, 4),
    ]);
    let mut jitter = Jitter::new(1);
    let first = expect_account(sim.schedule(&ws_request()), 1);
    assert_eq!(first, 4);
    let mut retry = RetryState::new(sim.now, a(1), Pinning::Free, sim.sched.config());
    for (attempt, next) in [(1, 2), (2, 3), (3, 4)] {
        sim.rate_limited(attempt, None);
        let d = retry.on_failure(
            sim.now,
            FailureKind::RateLimited { reset_after: None },
            false,
            &mut jitter,
        );
        sim.note_retry(&format!("on_failure a{attempt} rate_limited"), d);
        let (at, switch) = retry_at(d);
        assert!(switch, "a 429 moves the response");
        assert!(at <= retry.budget_end());
        sim.now = at;
        let exclude = retry.tried_accounts().to_vec();
        let decision = sim.schedule(&ScheduleRequest {
            exclude: &exclude,
            ..ws_request()
        });
        expect_account(decision, next);
        retry.attempt_started(a(next));
    }
    assert_eq!(retry.switches(), 3);
    sim.rate_limited(4, None);
    let d = retry.on_failure(
        sim.now,
        FailureKind::RateLimited { reset_after: None },
        false,
        &mut jitter,
    );
    sim.note_retry("on_failure a4 rate_limited", d);
    assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::SwitchLimit));
    assert_eq!(retry.switches(), 3);
    assert_eq!(retry.tried_accounts(), &[a(1), a(2), a(3)]);
    sim.snapshot("scheduler_retry_fails_over_until_three_switches_then_gives_up");
}

#[test]
fn scheduler_retry_budget_exhausted_gives_up() {
    let config = SchedulerConfig::default();
    let mut sim = Sim::new(&[ws(1, 0, 4)]);
    let mut jitter = Jitter::new(7);
    let mut retry = RetryState::new(sim.now, a(1), Pinning::Bound, &config);
    let budget_end = sim.t0 + config.retry_total_budget;
    assert_eq!(retry.budget_end(), budget_end);
    let mut previous_backoff = Duration::ZERO;
    let reason = loop {
        // Each attempt fails 100 ms after it starts.
        sim.advance(100 * MS);
        let d = retry.on_failure(sim.now, FailureKind::ServerError, false, &mut jitter);
        sim.note_retry("on_failure a1 server_error", d);
        match d {
            RetryDecision::RetryAt { at, switch_account } => {
                assert!(!switch_account, "a bound response never switches");
                assert!(at <= budget_end, "an attempt never starts after the budget");
                let backoff = at - sim.now;
                let cap = config.retry_backoff_max;
                assert!(backoff <= cap);
                assert!(
                    backoff * 2 >= previous_backoff.min(cap / 2),
                    "back-off does not collapse"
                );
                previous_backoff = backoff;
                sim.now = at;
                retry.attempt_started(a(1));
            }
            RetryDecision::GiveUp(reason) => break reason,
        }
    };
    assert_eq!(reason, GiveUpReason::BudgetExhausted);
    assert!(
        retry.retries() >= 3,
        "several retries fit in 5 s: {}",
        retry.retries()
    );
    assert!(sim.now <= budget_end);
    sim.note("giving up is terminal");
    let d = retry.on_failure(sim.now, FailureKind::ServerError, false, &mut jitter);
    sim.note_retry("on_failure a1 server_error", d);
    assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::BudgetExhausted));
    assert_eq!(
        retry.phase(),
        RetryPhase::GaveUp(GiveUpReason::BudgetExhausted)
    );
    sim.snapshot("scheduler_retry_budget_exhausted_gives_up");
}

#[test]
fn scheduler_retry_backoff_doubles_from_120ms_with_jitter() {
    let config = SchedulerConfig::default();
    let mut jitter = Jitter::new(3);
    let t0 = std::time::Instant::now();
    let mut retry = RetryState::new(t0, a(1), Pinning::Bound, &config);
    let mut now = t0;
    for base_ms in [120u64, 240, 480, 960] {
        let (at, _) = retry_at(retry.on_failure(now, FailureKind::ServerError, false, &mut jitter));
        let backoff = at - now;
        let base = Duration::from_millis(base_ms);
        assert!(
            backoff <= base && backoff >= base / 2,
            "{backoff:?} vs {base:?}"
        );
        now = at;
        retry.attempt_started(a(1));
    }
}

#[test]
fn scheduler_no_retry_after_first_event_written() {
    let config = SchedulerConfig::default();
    let mut jitter = Jitter::new(1);
    let now = std::time::Instant::now();
    for failure in [
        FailureKind::RateLimited { reset_after: None },
        FailureKind::ServerError,
        FailureKind::UpstreamLost,
        FailureKind::DialFailed,
        FailureKind::AuthFailed,
    ] {
        let mut retry = RetryState::new(now, a(1), Pinning::Free, &config);
        assert_eq!(
            retry.on_failure(now, failure, true, &mut jitter),
            RetryDecision::GiveUp(GiveUpReason::EventWritten),
            "{failure:?}"
        );
        assert_eq!(retry.retries(), 0);
        // The same failure before the first event is retried.
        let mut retry = RetryState::new(now, a(1), Pinning::Free, &config);
        assert!(matches!(
            retry.on_failure(now, failure, false, &mut jitter),
            RetryDecision::RetryAt { .. }
        ));
    }
}

#[test]
fn scheduler_retry_which_failures_switch_accounts() {
    let config = SchedulerConfig::default();
    let mut jitter = Jitter::new(5);
    let t0 = std::time::Instant::now();
    let mut sim = Sim::new(&[]);
    sim.note("free create: 429, 401/403 and 5xx move at once");
    for failure in [
        FailureKind::RateLimited {
            reset_after: Some(Duration::from_secs(1)),
        },
        FailureKind::AuthFailed,
        FailureKind::ServerError,
    ] {
        let mut retry = RetryState::new(t0, a(1), Pinning::Free, &config);
        let d = retry.on_failure(t0, failure, false, &mut jitter);
        sim.note_retry(&format!("free {}", failure.as_str()), d);
        assert!(retry_at(d).1, "{failure:?} switches");
    }
    sim.note("free create: a lost conn or dial failure retries the same account once, then moves");
    for failure in [FailureKind::UpstreamLost, FailureKind::DialFailed] {
        let mut retry = RetryState::new(t0, a(1), Pinning::Free, &config);
        let d = retry.on_failure(t0, failure, false, &mut jitter);
        sim.note_retry(&format!("free {} (1st)", failure.as_str()), d);
        let (at, switch) = retry_at(d);
        assert!(!switch);
        retry.attempt_started(a(1));
        let d = retry.on_failure(at, failure, false, &mut jitter);
        sim.note_retry(&format!("free {} (2nd on a1)", failure.as_str()), d);
        let (at, switch) = retry_at(d);
        assert!(switch);
        retry.attempt_started(a(2));
        let d = retry.on_failure(at, failure, false, &mut jitter);
        sim.note_retry(&format!("free {} (1st on a2)", failure.as_str()), d);
        assert!(!retry_at(d).1, "the count starts afresh on the new account");
    }
    sim.note("any create: other refusals are not retried");
    let mut retry = RetryState::new(t0, a(1), Pinning::Free, &config);
    let d = retry.on_failure(t0, FailureKind::Refused, false, &mut jitter);
    sim.note_retry("free refused", d);
    assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::NotRetryable));

    sim.note("bound create: never switches");
    for (failure, expected) in [
        (
            FailureKind::RateLimited { reset_after: None },
            Some(GiveUpReason::PinnedAccountUnusable),
        ),
        (
            FailureKind::AuthFailed,
            Some(GiveUpReason::PinnedAccountUnusable),
        ),
        (FailureKind::ServerError, None),
        (FailureKind::UpstreamLost, None),
        (FailureKind::DialFailed, None),
    ] {
        for _ in 0..2 {
            let mut retry = RetryState::new(t0, a(1), Pinning::Bound, &config);
            let mut now = t0;
            // Twice in a row: a free create would move on the second transient failure.
            for _ in 0..2 {
                let d = retry.on_failure(now, failure, false, &mut jitter);
                match expected {
                    Some(reason) => assert_eq!(d, RetryDecision::GiveUp(reason)),
                    None => {
                        let (at, switch) = retry_at(d);
                        assert!(!switch, "{failure:?}");
                        now = at;
                        retry.attempt_started(a(1));
                    }
                }
            }
            assert_eq!(retry.switches(), 0);
        }
        let mut retry = RetryState::new(t0, a(1), Pinning::Bound, &config);
        sim.note_retry(
            &format!("bound {}", failure.as_str()),
            retry.on_failure(t0, failure, false, &mut jitter),
        );
    }
    sim.note("connection-local chain: a lost conn loses the chain");
    for failure in [FailureKind::UpstreamLost, FailureKind::DialFailed] {
        let mut retry = RetryState::new(t0, a(1), Pinning::ConnectionLocal, &config);
        let d = retry.on_failure(t0, failure, false, &mut jitter);
        sim.note_retry(&format!("connection_local {}", failure.as_str()), d);
        assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::ChainLost));
    }
    let mut retry = RetryState::new(t0, a(1), Pinning::ConnectionLocal, &config);
    let d = retry.on_failure(t0, FailureKind::ServerError, false, &mut jitter);
    sim.note_retry("connection_local server_error", d);
    assert!(!retry_at(d).1);
    sim.snapshot("scheduler_retry_which_failures_switch_accounts");
}

#[test]
fn scheduler_failover_with_scheduler_health_end_to_end() {
    let mut sim = Sim::new(&[ws(1, 0, 2), ws(2, 1, 2)]);
    let mut jitter = Jitter::new(11);
    sim.note("a free create on a1 hits a 429 before its first event");
    let d = sim.schedule(&ScheduleRequest {
        session_account: Some(a(1)),
        ..ws_request()
    });
    let max = expect_account(d, 1);
    assert!(sim.acquire(1, max));
    let mut retry = RetryState::new(sim.now, a(1), Pinning::Free, sim.sched.config());
    let failure = FailureKind::RateLimited {
        reset_after: Some(Duration::from_secs(30)),
    };
    sim.failure(1, failure);
    assert!(sim.release(1).is_empty());
    let d = retry.on_failure(sim.now, failure, false, &mut jitter);
    sim.note_retry("on_failure a1 rate_limited", d);
    let (at, switch) = retry_at(d);
    assert!(switch);
    sim.now = at;
    let exclude = retry.tried_accounts().to_vec();
    let d = sim.schedule(&ScheduleRequest {
        session_account: Some(a(1)),
        exclude: &exclude,
        ..ws_request()
    });
    let max = expect_account(d, 2);
    assert!(sim.acquire(2, max));
    retry.attempt_started(a(2));
    sim.note("its first event is written: a later loss is not retried");
    sim.success(2);
    let d = retry.on_failure(sim.now, FailureKind::UpstreamLost, true, &mut jitter);
    sim.note_retry("on_failure a2 upstream_lost first_event_written", d);
    assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::EventWritten));
    assert!(sim.release(2).is_empty());
    sim.note("the next turn continues from the response on a2: bound, stays on a2");
    let d = sim.schedule(&ScheduleRequest {
        bound_account: Some(a(2)),
        session_account: Some(a(1)),
        ..ws_request()
    });
    expect_account(d, 2);
    assert!(matches!(d, Decision::Schedule(_)));
    sim.snapshot("scheduler_failover_with_scheduler_health_end_to_end");
}

#[test]
fn scheduler_failure_kind_from_upstream_status() {
    let hint = Some(Duration::from_secs(9));
    assert_eq!(
        FailureKind::from_status(429, hint),
        FailureKind::RateLimited { reset_after: hint }
    );
    assert_eq!(FailureKind::from_status(401, None), FailureKind::AuthFailed);
    assert_eq!(FailureKind::from_status(403, None), FailureKind::AuthFailed);
    for status in [500, 502, 503, 504, 529] {
        assert_eq!(
            FailureKind::from_status(status, None),
            FailureKind::ServerError,
            "{status}"
        );
    }
    for status in [400, 404, 409, 422] {
        assert_eq!(
            FailureKind::from_status(status, None),
            FailureKind::Refused,
            "{status}"
        );
    }
}
