//! Failover from dead accounts through the control plane and real session machines, in
//! virtual time (issue 13 item 1, issue 15's demo): failed dials count against their account
//! (local errors never do), a session whose dial fails fails over transparently, probe dials
//! bring a returning account back, a slow dial makes the session move after `pool.dial_wait`,
//! and a session takes a warm dial in flight instead of dialing a second conn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use wsv2_core::control::{
    AccountSpec, Control, ControlEvent, ControlOutput, DialFailure, UpgradeRefusal,
};
use wsv2_core::resolver::{AccountProtocol, AuthType};
use wsv2_core::scheduler::Health;
use wsv2_core::session::{Session, SessionCommand, SessionEvent, Transmit};
use wsv2_core::turn::SessionInfo;
use wsv2_core::{AccountId, Config, ConnId, SessionId};

/// What a dial to an account does
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dial {
    /// Opens at once
    Ok,
    /// Fails at once (connection refused)
    Refused,
    /// Fails at once with a local error (EMFILE)
    Local,
    /// Never answers until the test says so
    Hang,
}

struct Gateway {
    t0: Instant,
    now: Instant,
    cfg: Arc<Config>,
    control: Control,
    sessions: HashMap<SessionId, Session>,
    behaviour: HashMap<AccountId, Dial>,
    dials: Vec<(ConnId, AccountId)>,
    hanging: Vec<(ConnId, AccountId)>,
    creates: Vec<(SessionId, ConnId, Instant)>,
    to_client: Vec<(SessionId, Value)>,
    session_events: Vec<SessionEvent>,
    events: Vec<ControlEvent>,
}

fn account(id: u64) -> AccountSpec {
    AccountSpec {
        id: AccountId(id),
        name: format!("acct{id}"),
        protocol: AccountProtocol {
            auth_type: AuthType::ApiKey,
            force_http: false,
        },
        concurrency: 8,
        priority: 0,
        model_map: Arc::default(),
    }
}

fn a(n: u64) -> AccountId {
    AccountId(n)
}

impl Gateway {
    fn new(accounts: &[(u64, Dial)], min_idle: usize) -> Self {
        let mut cfg = Config::default();
        cfg.pool.min_idle_per_account = min_idle;
        let cfg = Arc::new(cfg);
        let now = Instant::now();
        let specs = accounts.iter().map(|(id, _)| account(*id)).collect();
        let mut gw = Self {
            t0: now,
            now,
            control: Control::new(cfg.clone(), specs, 7, now),
            cfg,
            sessions: HashMap::new(),
            behaviour: accounts.iter().map(|(id, d)| (a(*id), *d)).collect(),
            dials: Vec::new(),
            hanging: Vec::new(),
            creates: Vec::new(),
            to_client: Vec::new(),
            session_events: Vec::new(),
            events: Vec::new(),
        };
        gw.run();
        gw
    }

    fn set(&mut self, account: u64, dial: Dial) {
        self.behaviour.insert(a(account), dial);
    }

    fn open(&mut self, id: u64) -> SessionId {
        let id = SessionId(id);
        self.control.open_session(id, SessionInfo::default());
        self.sessions
            .insert(id, Session::new(id, self.cfg.clone(), self.now));
        id
    }

    fn create(&mut self, id: SessionId) {
        let v = json!({"type": "response.create", "model": "gpt-test", "input": "hi"});
        self.sessions
            .get_mut(&id)
            .unwrap()
            .handle_client_text(self.now, Bytes::from(v.to_string()));
        self.run();
    }

    /// Moves virtual time to the next deadline of anything (or by `max`, whichever is first)
    fn advance(&mut self, max: Duration) {
        let limit = self.now + max;
        let next = self
            .sessions
            .values()
            .filter_map(Session::poll_timeout)
            .chain(self.control.poll_timeout())
            .filter(|t| *t > self.now)
            .min()
            .map_or(limit, |t| t.min(limit));
        self.now = next;
        self.control.handle_timeout(self.now);
        for s in self.sessions.values_mut() {
            s.handle_timeout(self.now);
        }
        self.run();
    }

    /// Advances until `done` holds or `max` has passed
    fn advance_until(&mut self, max: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + max;
        while !done(self) && self.now < end {
            self.advance(end - self.now);
        }
    }

    fn finish_hanging(&mut self, ok: bool) {
        for (conn, account) in std::mem::take(&mut self.hanging) {
            if ok {
                self.control.handle_dial_ok(self.now, account, conn);
            } else {
                self.control
                    .handle_dial_failed(self.now, account, conn, timed_out());
            }
        }
        self.run();
    }

    fn run(&mut self) {
        loop {
            let mut busy = false;
            while let Some(out) = self.control.poll_output() {
                busy = true;
                match out {
                    ControlOutput::Session(id, input) => {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            s.handle_control(self.now, input);
                        }
                    }
                    ControlOutput::Dial { conn, account, .. } => {
                        self.dials.push((conn, account));
                        match self.behaviour[&account] {
                            Dial::Ok => self.control.handle_dial_ok(self.now, account, conn),
                            Dial::Refused => self.control.handle_dial_failed(
                                self.now,
                                account,
                                conn,
                                DialFailure {
                                    message: "connection refused".into(),
                                    ..DialFailure::default()
                                },
                            ),
                            Dial::Local => self.control.handle_dial_failed(
                                self.now,
                                account,
                                conn,
                                DialFailure {
                                    message: "too many open files".into(),
                                    local: true,
                                    ..DialFailure::default()
                                },
                            ),
                            Dial::Hang => self.hanging.push((conn, account)),
                        }
                    }
                    ControlOutput::Event(event) => self.events.push(event),
                    ControlOutput::Store(cmd) => {
                        self.control.handle_store_reply(self.now, cmd.op, Ok(None));
                    }
                    ControlOutput::Ping { .. }
                    | ControlOutput::Close { .. }
                    | ControlOutput::Http(..) => {}
                }
            }
            let ids: Vec<_> = self.sessions.keys().copied().collect();
            for id in ids {
                let s = self.sessions.get_mut(&id).unwrap();
                let mut cmds = Vec::new();
                while let Some(t) = s.poll_transmit() {
                    busy = true;
                    match t {
                        Transmit::Client(f) => self
                            .to_client
                            .push((id, serde_json::from_slice(&f).unwrap())),
                        Transmit::Upstream { conn, .. } => {
                            self.creates.push((id, conn, self.now));
                        }
                        Transmit::ClientPing => {}
                    }
                }
                while let Some(c) = s.poll_command() {
                    cmds.push(c);
                }
                let mut events = Vec::new();
                while let Some(e) = s.poll_event() {
                    events.push(e);
                }
                for c in cmds {
                    busy = true;
                    if !matches!(
                        c,
                        SessionCommand::AbandonWrites { .. } | SessionCommand::CloseClient { .. }
                    ) {
                        self.control.handle_session_command(self.now, id, c);
                    }
                }
                for e in events {
                    busy = true;
                    self.control.handle_session_event(self.now, &e);
                    self.session_events.push(e);
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn health(&self, account: u64) -> Health {
        self.control
            .account_view(a(account), self.now)
            .unwrap()
            .health
    }

    fn sent_on(&self, id: SessionId) -> Option<(AccountId, Instant)> {
        let (_, conn, at) = self.creates.iter().find(|(s, _, _)| *s == id)?;
        let account = self.dials.iter().find(|(c, _)| c == conn)?.1;
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
                    SessionEvent::Retrying {
                        switch_account: true,
                        ..
                    }
                )
            })
            .count()
    }

    fn dials_to(&self, account: u64) -> usize {
        self.dials
            .iter()
            .filter(|(_, acc)| *acc == a(account))
            .count()
    }
}

fn timed_out() -> DialFailure {
    DialFailure {
        message: "upstream dial timed out".into(),
        ..DialFailure::default()
    }
}

#[test]
fn a_session_whose_dial_is_refused_fails_over_transparently_and_the_account_cools() {
    let mut gw = Gateway::new(&[(1, Dial::Refused), (2, Dial::Ok)], 0);
    let s1 = gw.open(1);
    gw.create(s1);
    gw.advance_until(Duration::from_secs(5), |gw| {
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
        let s = gw.open(i);
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
    let mut gw = Gateway::new(&[(1, Dial::Local), (2, Dial::Ok)], 0);
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
    let mut gw = Gateway::new(&[(1, Dial::Refused), (2, Dial::Ok)], 1);
    gw.advance_until(Duration::from_secs(2), |gw| {
        matches!(gw.health(1), Health::Cooling { .. })
    });
    assert!(
        matches!(gw.health(1), Health::Cooling { .. }),
        "failed warm dials alone cool the account"
    );
    let probes = |gw: &Gateway| {
        gw.events
            .iter()
            .filter(|e| matches!(e, ControlEvent::ProbeStarted { account } if *account == a(1)))
            .count()
    };
    gw.advance_until(
        gw.cfg.scheduler.probe_interval + Duration::from_secs(1),
        |gw| probes(gw) >= 1,
    );
    assert!(probes(&gw) >= 1, "a probe dial while cooling");
    assert!(matches!(gw.health(1), Health::Cooling { .. }));

    gw.set(1, Dial::Ok);
    let back = gw.now;
    let probe_interval = gw.cfg.scheduler.probe_interval;
    gw.advance_until(probe_interval + Duration::from_secs(1), |gw| {
        gw.health(1) == Health::Usable
    });
    assert_eq!(gw.health(1), Health::Usable);
    assert!(gw.now - back <= probe_interval + Duration::from_secs(1));
    assert!(
        gw.events
            .iter()
            .any(|e| matches!(e, ControlEvent::AccountUsable { account } if *account == a(1)))
    );
    let s = gw.open(1);
    gw.create(s);
    assert_eq!(
        gw.sent_on(s).map(|(acc, _)| acc),
        Some(a(1)),
        "it serves again"
    );
}

#[test]
fn a_slow_dial_makes_a_new_session_move_after_dial_wait() {
    let mut gw = Gateway::new(&[(1, Dial::Hang), (2, Dial::Ok)], 0);
    let s1 = gw.open(1);
    gw.create(s1);
    assert!(gw.sent_on(s1).is_none(), "a1's dial hangs");
    gw.advance_until(Duration::from_secs(3), |gw| {
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
    gw.finish_hanging(false);
    assert_eq!(
        gw.control.account_view(a(1), gw.now).unwrap().dial_failures,
        1,
        "the dial that timed out counts against a1"
    );
}

#[test]
fn with_no_other_account_a_session_waits_for_the_dial() {
    let mut gw = Gateway::new(&[(1, Dial::Hang)], 0);
    let s1 = gw.open(1);
    gw.create(s1);
    gw.advance(Duration::from_secs(3));
    assert!(gw.errors().is_empty(), "{:?}", gw.errors());
    gw.finish_hanging(true);
    assert_eq!(gw.sent_on(s1).map(|(acc, _)| acc), Some(a(1)));
}

#[test]
fn a_session_takes_a_warm_dial_in_flight_instead_of_dialing_a_second_conn() {
    let mut gw = Gateway::new(&[(1, Dial::Hang)], 1);
    assert_eq!(gw.dials.len(), 1, "the warm dial");
    let s1 = gw.open(1);
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
    let mut gw = Gateway::new(&[(1, Dial::Ok), (2, Dial::Ok)], 0);
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
    let s = gw.open(1);
    gw.create(s);
    let errors = gw.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["status"], 429, "{}", errors[0]);
}

#[test]
fn a_session_refused_while_its_only_account_failed_is_served_once_the_account_returns() {
    // The accounts a failover avoided are the failing create's, not the session's: once that
    // create got its answer, the session's next create may use any account again.
    let mut gw = Gateway::new(&[(1, Dial::Refused)], 0);
    let s1 = gw.open(1);
    gw.create(s1);
    gw.advance_until(Duration::from_secs(30), |gw| !gw.errors().is_empty());
    assert_eq!(
        gw.errors().len(),
        1,
        "the create whose every dial failed gets one error"
    );
    assert!(gw.sent_on(s1).is_none());

    gw.set(1, Dial::Ok);
    let probe_interval = gw.cfg.scheduler.probe_interval;
    gw.advance_until(probe_interval + Duration::from_secs(1), |gw| {
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
