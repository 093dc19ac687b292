//! Failover from dead accounts through the control plane and real session machines, in
//! virtual time (issue 13 item 1, issue 15's demo): failed dials count against their account
//! (local errors never do), a session whose dial fails fails over transparently, probe dials
//! bring a returning account back, a slow dial makes a session or a POST move after
//! `pool.dial_wait` (a move, counted apart from failed dials),
//! a session takes a warm dial in flight instead of dialing a second conn, and a new session
//! goes to an account with a free conn rather than one whose conns idle sessions hold, and
//! among equal accounts to the one whose pool has the fewest conns in use.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wsv2_core::control::{AccountSpec, ControlEvent, DialFailure, UpgradeRefusal};
use wsv2_core::http::HttpEvent;
use wsv2_core::scheduler::{FailureKind, Health};
use wsv2_core::session::SessionEvent;
use wsv2_core::turn::TurnEvent;
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use crate::support::gateway::{Dial, Gateway, completed, created, spec, timed_out};

fn account(id: u64) -> AccountSpec {
    spec(id, 8, false)
}

fn a(n: u64) -> AccountId {
    AccountId(n)
}

/// A gateway of accounts whose dials do as given, keeping `min_idle` warm conns per account
fn gateway(accounts: &[(u64, Dial)], min_idle: usize) -> Gateway {
    let mut cfg = Config::default();
    cfg.pool.min_idle_per_account = min_idle;
    let specs = accounts.iter().map(|(id, _)| account(*id)).collect();
    let behaviour = accounts.iter().map(|(id, d)| (a(*id), *d)).collect();
    Gateway::with_dials(cfg, specs, behaviour)
}

/// This file's session create, and what its tests read
impl Gateway {
    fn create(&mut self, id: SessionId) {
        let v = json!({"type": "response.create", "model": "gpt-test", "input": "hi"});
        self.session_text(id, v);
    }

    fn health(&self, account: u64) -> Health {
        self.control
            .account_view(a(account), self.now)
            .unwrap()
            .health
    }

    fn sent_on(&self, id: SessionId) -> Option<(AccountId, Instant)> {
        let (_, conn, _, at) = self.creates.iter().find(|c| c.0 == id)?;
        let account = self.dials.iter().find(|d| d.0 == *conn)?.1;
        Some((account, *at))
    }

    fn errors(&self) -> Vec<&Value> {
        self.to_client
            .iter()
            .filter(|(_, v)| v["type"] == "error")
            .map(|(_, v)| v)
            .collect()
    }

    fn failovers(&self) -> usize {
        self.session_events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    SessionEvent::Turn(TurnEvent::Retrying {
                        switch_account: true,
                        ..
                    })
                )
            })
            .count()
    }

    /// What each retry or move so far named as its failure, sessions' and HTTP turns' alike
    fn retry_failures(&self) -> Vec<FailureKind> {
        let session = self.session_events.iter().filter_map(|e| match e {
            SessionEvent::Turn(TurnEvent::Retrying { failure, .. }) => Some(*failure),
            _ => None,
        });
        let http = self.events.iter().filter_map(|(_, e)| match e {
            HttpEvent::Turn(TurnEvent::Retrying { failure, .. }) => Some(*failure),
            _ => None,
        });
        session.chain(http).collect()
    }

    fn dials_to(&self, account: u64) -> usize {
        self.dials.iter().filter(|d| d.1 == a(account)).count()
    }
}

#[test]
fn a_session_whose_dial_is_refused_fails_over_transparently_and_the_account_cools() {
    let mut gw = gateway(&[(1, Dial::Refused), (2, Dial::Ok)], 0);
    let s1 = gw.open_session(1);
    gw.create(s1);
    gw.step_until(Duration::from_secs(5), |gw| {
        gw.sent_on(SessionId(1)).is_some()
    });
    let (account, at) = gw.sent_on(s1).expect("the create went upstream");
    assert_eq!(account, a(2), "it moved to the healthy account");
    assert!(
        gw.errors().is_empty(),
        "nothing reached the client: {:?}",
        gw.errors()
    );
    assert!(gw.failovers() >= 1, "the move is reported as a failover");
    assert!(
        at - gw.t0 < Duration::from_secs(1),
        "within the retry budget's first back-offs: {:?}",
        at - gw.t0
    );
    assert!(
        matches!(gw.health(1), Health::Cooling { .. }),
        "two refused dials in a row cool the account"
    );
    let before = gw.dials_to(1);
    for i in 2..=6 {
        let s = gw.open_session(i);
        gw.create(s);
        assert_eq!(gw.sent_on(s).map(|(acc, _)| acc), Some(a(2)));
        assert_eq!(
            gw.sent_on(s).unwrap().1,
            gw.now,
            "no extra wait once a1 is cooling"
        );
    }
    assert_eq!(
        gw.dials_to(1),
        before,
        "no session dials the cooling account"
    );
    assert!(gw.errors().is_empty());
}

#[test]
fn local_dial_errors_never_count_against_the_account() {
    let mut gw = gateway(&[(1, Dial::Local), (2, Dial::Ok)], 0);
    for _ in 0..5 {
        let conn = ConnId(900);
        gw.control.handle_dial_failed(
            gw.now,
            a(1),
            conn,
            DialFailure {
                local: true,
                ..DialFailure::default()
            },
        );
    }
    gw.run();
    assert_eq!(gw.health(1), Health::Usable);
    assert_eq!(
        gw.control.account_view(a(1), gw.now).unwrap().dial_failures,
        0
    );
    gw.control
        .handle_dial_failed(gw.now, a(1), ConnId(901), timed_out());
    gw.control
        .handle_dial_failed(gw.now, a(1), ConnId(902), timed_out());
    assert!(matches!(gw.health(1), Health::Cooling { .. }));
}

#[test]
fn a_returning_account_serves_again_within_the_probe_interval_plus_one_second() {
    let mut gw = gateway(&[(1, Dial::Refused), (2, Dial::Ok)], 1);
    gw.step_until(Duration::from_secs(2), |gw| {
        matches!(gw.health(1), Health::Cooling { .. })
    });
    assert!(
        matches!(gw.health(1), Health::Cooling { .. }),
        "failed warm dials alone cool the account"
    );
    let probes = |gw: &Gateway| {
        gw.control_events
            .iter()
            .filter(|e| matches!(e, ControlEvent::ProbeStarted { account } if *account == a(1)))
            .count()
    };
    gw.step_until(
        gw.cfg.scheduler.probe_interval + Duration::from_secs(1),
        |gw| probes(gw) >= 1,
    );
    assert!(probes(&gw) >= 1, "a probe dial while cooling");
    assert!(matches!(gw.health(1), Health::Cooling { .. }));

    gw.set_dial(1, Dial::Ok);
    let back = gw.now;
    let probe_interval = gw.cfg.scheduler.probe_interval;
    gw.step_until(probe_interval + Duration::from_secs(1), |gw| {
        gw.health(1) == Health::Usable
    });
    assert_eq!(gw.health(1), Health::Usable);
    assert!(gw.now - back <= probe_interval + Duration::from_secs(1));
    assert!(
        gw.control_events
            .iter()
            .any(|e| matches!(e, ControlEvent::AccountUsable { account } if *account == a(1)))
    );
    let s = gw.open_session(1);
    gw.create(s);
    assert_eq!(
        gw.sent_on(s).map(|(acc, _)| acc),
        Some(a(1)),
        "it serves again"
    );
}

#[test]
fn a_slow_dial_makes_a_new_session_move_after_dial_wait() {
    let mut gw = gateway(&[(1, Dial::Hang), (2, Dial::Ok)], 0);
    let s1 = gw.open_session(1);
    gw.create(s1);
    assert!(gw.sent_on(s1).is_none(), "a1's dial hangs");
    gw.step_until(Duration::from_secs(3), |gw| {
        gw.sent_on(SessionId(1)).is_some()
    });
    let (account, at) = gw.sent_on(s1).expect("the create went upstream");
    assert_eq!(account, a(2));
    assert_eq!(
        at - gw.t0,
        gw.cfg.pool.dial_wait,
        "it waited exactly pool.dial_wait"
    );
    assert!(gw.errors().is_empty());
    assert_eq!(gw.failovers(), 1);
    assert_eq!(
        gw.retry_failures(),
        [FailureKind::DialWait],
        "a move, not a failed dial (wsv2_retries_total's failure label)"
    );
    gw.finish_hanging(false);
    assert_eq!(
        gw.control.account_view(a(1), gw.now).unwrap().dial_failures,
        1,
        "the dial that timed out counts against a1"
    );
}

#[test]
fn a_slow_dial_makes_a_post_move_after_dial_wait() {
    let mut gw = gateway(&[(1, Dial::Hang), (2, Dial::Ok)], 0);
    let id = gw.post(
        1,
        json!({"model": "gpt-test", "input": "hi", "stream": true}),
    );
    gw.step_until(Duration::from_secs(3), |gw| !gw.creates_of(id).is_empty());
    let (_, conn, _, at) = *gw.creates_of(id)[0];
    assert_eq!(
        gw.dials.iter().find(|d| d.0 == conn).map(|d| d.1),
        Some(a(2))
    );
    assert_eq!(
        at - gw.t0,
        gw.cfg.pool.dial_wait,
        "it waited exactly pool.dial_wait"
    );
    assert_eq!(
        gw.retry_failures(),
        [FailureKind::DialWait],
        "a move, not a failed dial (wsv2_retries_total's failure label)"
    );
}

#[test]
fn with_no_other_account_a_session_waits_for_the_dial() {
    let mut gw = gateway(&[(1, Dial::Hang)], 0);
    let s1 = gw.open_session(1);
    gw.create(s1);
    gw.step(Duration::from_secs(3));
    assert!(gw.errors().is_empty(), "{:?}", gw.errors());
    gw.finish_hanging(true);
    assert_eq!(gw.sent_on(s1).map(|(acc, _)| acc), Some(a(1)));
}

#[test]
fn a_session_takes_a_warm_dial_in_flight_instead_of_dialing_a_second_conn() {
    let mut gw = gateway(&[(1, Dial::Hang)], 1);
    assert_eq!(gw.dials.len(), 1, "the warm dial");
    let s1 = gw.open_session(1);
    gw.create(s1);
    assert_eq!(
        gw.dials.len(),
        1,
        "no second dial while the warm one is in flight"
    );
    gw.finish_hanging(true);
    assert_eq!(gw.sent_on(s1).map(|(acc, _)| acc), Some(a(1)));
    assert_eq!(gw.control.stats().dials, 1);
    assert_eq!(gw.control.stats().dial_takeovers, 1);
}

#[test]
fn every_account_rate_limited_refuses_the_upgrade_with_429_and_retry_after() {
    let mut gw = gateway(&[(1, Dial::Ok), (2, Dial::Ok)], 0);
    for (account, secs) in [(1, 30), (2, 12)] {
        gw.control.handle_dial_failed(
            gw.now,
            a(account),
            ConnId(800 + account),
            DialFailure {
                status: Some(429),
                retry_after: Some(Duration::from_secs(secs)),
                ..DialFailure::default()
            },
        );
    }
    assert_eq!(
        gw.control.check_upgrade(gw.now),
        Err(UpgradeRefusal::RateLimited { retry_after: 12 })
    );
    let refusal = gw.control.check_upgrade(gw.now).unwrap_err().error();
    assert_eq!((refusal.status, refusal.retry_after), (429, Some(12)));
    let s = gw.open_session(1);
    gw.create(s);
    let errors = gw.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["status"], 429, "{}", errors[0]);
}

#[test]
fn a_session_refused_while_its_only_account_failed_is_served_once_the_account_returns() {
    // The accounts a failover avoided are the failing create's, not the session's: once that
    // create got its answer, the session's next create may use any account again.
    let mut gw = gateway(&[(1, Dial::Refused)], 0);
    let s1 = gw.open_session(1);
    gw.create(s1);
    gw.step_until(Duration::from_secs(30), |gw| !gw.errors().is_empty());
    assert_eq!(
        gw.errors().len(),
        1,
        "the create whose every dial failed gets one error"
    );
    assert!(gw.sent_on(s1).is_none());

    gw.set_dial(1, Dial::Ok);
    let probe_interval = gw.cfg.scheduler.probe_interval;
    gw.step_until(probe_interval + Duration::from_secs(1), |gw| {
        gw.health(1) == Health::Usable
    });
    assert_eq!(gw.health(1), Health::Usable, "the probe saw it return");
    gw.create(s1);
    assert_eq!(
        gw.sent_on(s1).map(|(acc, _)| acc),
        Some(a(1)),
        "the same session's next create is served: {:?}",
        gw.errors()
    );
    assert_eq!(gw.errors().len(), 1, "no second error");
}

#[test]
fn a_new_session_goes_to_an_account_with_a_free_conn_not_one_idle_sessions_fill() {
    // Issue 17's 10,000 idle sessions: an idle session holds its conn but no slot, so slot load
    // alone sent new sessions to a pool at its cap; they waited `pool.session_acquire_wait`
    // for a conn nobody released, then got a 503, while another account had room.
    let mut cfg = Config::default();
    cfg.pool.max_conns_per_account = 1;
    cfg.pool.min_idle_per_account = 0;
    let mut gw = Gateway::with_dials(
        cfg,
        vec![account(1), account(2)],
        [(a(1), Dial::Ok), (a(2), Dial::Ok)].into(),
    );
    let s1 = gw.open_session(1);
    gw.create(s1);
    assert_eq!(gw.sent_on(s1).map(|(acc, _)| acc), Some(a(1)));
    let conn = gw.create_conn(s1);
    gw.session_upstream(s1, conn, created("resp_1", false));
    gw.session_upstream(s1, conn, completed("resp_1", false));
    assert_eq!(
        gw.control.account_view(a(1), gw.now).unwrap().unfinished,
        0,
        "s1 is idle: no slot, but it keeps a1's only conn"
    );

    let s2 = gw.open_session(2);
    gw.create(s2);
    gw.step_until(Duration::from_secs(3), |gw| {
        gw.sent_on(SessionId(2)).is_some() || !gw.errors().is_empty()
    });
    assert!(gw.errors().is_empty(), "{:?}", gw.errors());
    let (account, at) = gw.sent_on(s2).expect("s2's create went upstream");
    assert_eq!(
        account,
        a(2),
        "s2 dialed a2 instead of waiting for a1's conn"
    );
    assert!(
        at - gw.t0 < gw.cfg.pool.session_acquire_wait,
        "{:?}",
        at - gw.t0
    );
}

#[test]
fn idle_sessions_spread_over_equal_accounts_by_the_conns_their_pools_have_in_use() {
    // The 10,000-idle-session benchmark placed 2946 / 2443 / 1591 / 1228 / 749 sessions on
    // five equal accounts: idle sessions hold conns but no slots, so the accounts tied on
    // load and the lowest id won until its pool was full; when the sessions then started
    // turns together, a1 hit its concurrency while the others sat idle.
    let mut cfg = Config::default();
    cfg.pool.min_idle_per_account = 0;
    let mut gw = Gateway::with_dials(
        cfg,
        vec![account(1), account(2), account(3)],
        [(a(1), Dial::Ok), (a(2), Dial::Ok), (a(3), Dial::Ok)].into(),
    );
    let mut placed = Vec::new();
    for n in 1..=7 {
        let s = gw.open_session(n);
        gw.create(s);
        let (account, _) = gw.sent_on(s).expect("the create went upstream");
        let conn = gw.create_conn(s);
        let id = format!("resp_{n}");
        gw.session_upstream(s, conn, created(&id, false));
        gw.session_upstream(s, conn, completed(&id, false));
        placed.push(account.0);
    }
    assert_eq!(placed, [1, 2, 3, 1, 2, 3, 1]);
    for n in 1..=3 {
        let view = gw.control.account_view(a(n), gw.now).unwrap();
        assert_eq!(view.unfinished, 0, "a{n}'s sessions are idle");
    }
}
