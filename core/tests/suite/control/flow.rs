//! The control plane wired to real session machines and the in-memory store, in virtual time:
//! scheduling, pooled conns reused across sessions, stickiness, slots and upgrade checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wsv2_core::config::UnknownPreviousResponse;
use wsv2_core::control::{AccountSpec, Control, ControlEvent, UpgradeRefusal};
use wsv2_core::turn::SessionInfo;
use wsv2_core::{AccountId, Config, ConnId, SessionId};

use crate::support::gateway::{Gateway, spec as account};

/// A gateway of `accounts` with no warm conns
fn with_config(accounts: Vec<AccountSpec>, mut cfg: Config) -> Gateway {
    cfg.pool.min_idle_per_account = 0;
    Gateway::with_config(cfg, accounts)
}

/// Sockets of this file's clients, and a whole turn
impl Gateway {
    fn open(&mut self, id: u64, session_key: Option<&str>) -> SessionId {
        self.open_with(id, session_key, "default")
    }

    /// A socket of a client key of `group`
    fn open_in(&mut self, id: u64, group: &str) -> SessionId {
        self.open_with(id, None, group)
    }

    fn open_with(&mut self, id: u64, session_key: Option<&str>, group: &str) -> SessionId {
        self.open_session_with(
            id,
            SessionInfo {
                group: group.into(),
                session_key: session_key.map(str::to_owned),
                ..SessionInfo::default()
            },
        )
    }

    /// A socket of client key `tenant`
    fn open_tenant(&mut self, id: u64, tenant: u64) -> SessionId {
        self.open_session_with(
            id,
            SessionInfo {
                group: "default".into(),
                tenant,
                ..SessionInfo::default()
            },
        )
    }

    fn complete(&mut self, id: SessionId, conn: ConnId, resp: &str, store: bool) {
        self.session_upstream(
            id,
            conn,
            json!({"type": "response.created", "response": {"id": resp, "store": store}}),
        );
        self.session_upstream(id, conn, json!({"type": "response.completed", "response": {"id": resp, "store": store, "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}));
    }
}

fn create(prev: Option<&str>, store: bool) -> Value {
    let mut v =
        json!({"type": "response.create", "model": "gpt-test", "input": "hi", "store": store});
    if let Some(p) = prev {
        v["previous_response_id"] = json!(p);
    }
    v
}

#[test]
fn first_create_is_scheduled_dialed_and_sent() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create(None, true));
    assert_eq!(gw.dials.len(), 1, "one dial, made for the session");
    assert_eq!(
        gw.dials[0].2,
        Some(s1),
        "per-session headers belong to this dial"
    );
    assert_eq!(gw.creates.len(), 1);
    assert_eq!(gw.create_conn(s1), gw.dials[0].0);
}

#[test]
fn a_later_session_reuses_the_released_conn() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let s1 = gw.open(1, Some("session-a"));
    gw.session_text(s1, create(None, true));
    let c1 = gw.create_conn(s1);
    gw.complete(s1, c1, "resp_1", true);
    gw.gone(s1);
    let s2 = gw.open(2, Some("session-b"));
    gw.session_text(s2, create(None, true));
    assert_eq!(gw.dials.len(), 1, "no second dial");
    assert_eq!(
        gw.create_conn(s2),
        c1,
        "the second session got the first one's conn"
    );
    assert_eq!(gw.control.stats().reuses, 1);
}

#[test]
fn a_continuation_goes_to_the_account_its_response_is_bound_to() {
    let mut gw = Gateway::new(vec![account(1, 4, false), account(2, 4, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create(None, true));
    let c1 = gw.create_conn(s1);
    let first_account = gw.conn_account[&c1];
    gw.complete(s1, c1, "resp_1", true);
    // Load the account the chain is on, so least-loaded would pick the other one.
    gw.session_text(s1, create(None, true));
    let s2 = gw.open(2, None);
    gw.session_text(s2, create(Some("resp_1"), true));
    let c2 = gw.create_conn(s2);
    assert_eq!(
        gw.conn_account[&c2], first_account,
        "bound by previous_response_id, not by load"
    );
    let s3 = gw.open(3, None);
    gw.session_text(s3, create(None, true));
    assert_ne!(
        gw.conn_account[&gw.create_conn(s3)],
        first_account,
        "an unbound create goes to the least loaded account"
    );
}

#[test]
fn a_session_key_keeps_later_sessions_on_the_same_account() {
    let mut gw = Gateway::new(vec![account(1, 4, false), account(2, 4, false)]);
    let s1 = gw.open(1, Some("thread-1"));
    gw.session_text(s1, create(None, true));
    let a1 = gw.conn_account[&gw.create_conn(s1)];
    let s2 = gw.open(2, Some("thread-1"));
    gw.session_text(s2, create(None, true));
    assert_eq!(
        gw.conn_account[&gw.create_conn(s2)],
        a1,
        "same session-id, same account despite the load"
    );
}

fn create_on(lane: &str) -> Value {
    let mut v = create(None, true);
    v["stream_id"] = json!(lane);
    v
}

#[test]
fn a_freed_slot_wakes_the_waiting_create_of_another_session() {
    // Concurrency 2: two conns at most, and two unfinished responses on this instance.
    let mut gw = Gateway::new(vec![account(1, 2, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create_on("a"));
    gw.session_text(s1, create_on("b"));
    let s2 = gw.open(2, None);
    gw.session_text(s2, create(None, true));
    assert_eq!(
        gw.creates.len(),
        2,
        "the account's two slots are taken: the third create waits"
    );
    assert_eq!(
        gw.dials.len(),
        2,
        "but the second session has its own conn already"
    );
    let c1 = gw.create_conn(s1);
    gw.session_upstream(
        s1,
        c1,
        json!({"type": "response.created", "stream_id": "a", "response": {"id": "resp_a"}}),
    );
    gw.session_upstream(s1, c1, json!({"type": "response.completed", "stream_id": "a", "response": {"id": "resp_a", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}));
    assert_eq!(
        gw.creates.len(),
        3,
        "the slot freed by the first response lets the waiting create go"
    );
    assert_eq!(gw.creates[2].0, s2);
}

#[test]
fn slot_wait_ends_in_429_and_closed_sessions_stop_waiting() {
    let mut gw = Gateway::new(vec![account(1, 2, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create_on("a"));
    gw.session_text(s1, create_on("b"));
    let s2 = gw.open(2, None);
    gw.session_text(s2, create(None, true));
    gw.advance(gw.cfg.session.slot_wait_timeout);
    let (who, err) = gw.to_client.last().unwrap();
    assert_eq!((*who, err["status"].as_u64()), (s2, Some(429)));
    gw.session_text(s2, create(None, true));
    gw.gone(s2);
    gw.control.close_session(gw.now, s2);
    let c1 = gw.create_conn(s1);
    gw.session_upstream(
        s1,
        c1,
        json!({"type": "response.created", "stream_id": "a", "response": {"id": "resp_a"}}),
    );
    gw.session_upstream(
        s1,
        c1,
        json!({"type": "response.completed", "stream_id": "a", "response": {"id": "resp_a"}}),
    );
    assert_eq!(
        gw.creates.len(),
        2,
        "nothing is sent for a session that left"
    );
}

#[test]
fn upgrade_checks_answer_426_and_503() {
    let now = Instant::now();
    let cfg = Arc::new(Config::default());
    let http_only = Control::new(cfg.clone(), vec![account(1, 4, true)], 1, now);
    assert_eq!(
        http_only.check_upgrade(now),
        Err(UpgradeRefusal::UpgradeRequired)
    );
    assert_eq!(UpgradeRefusal::UpgradeRequired.error().status, 426);
    let none = Control::new(cfg.clone(), vec![], 1, now);
    assert_eq!(
        none.check_upgrade(now),
        Err(UpgradeRefusal::NoUsableAccount { retry_after: None })
    );
    let ws = Control::new(cfg, vec![account(1, 4, false)], 1, now);
    assert_eq!(ws.check_upgrade(now), Ok(()));
}

#[test]
fn an_upstream_429_cools_the_account_and_a_bound_continuation_gets_429() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create(None, true));
    let c1 = gw.create_conn(s1);
    gw.complete(s1, c1, "resp_1", true);
    gw.session_text(s1, create(Some("resp_1"), true));
    gw.session_upstream(s1, c1, json!({"type": "error", "status": 429, "error": {"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "slow down"}, "headers": {"retry-after": "20"}}));
    assert_eq!(
        gw.control.check_upgrade(gw.now),
        Err(UpgradeRefusal::RateLimited { retry_after: 20 }),
        "the only account is rate limited: 429 with the reset upstream named"
    );
    let s2 = gw.open(2, None);
    gw.session_text(s2, create(Some("resp_1"), true));
    let (who, err) = gw.to_client.last().unwrap();
    assert_eq!(*who, s2);
    assert_eq!(
        err["status"], 429,
        "a bound continuation never fails over: 429 until the cooldown ends"
    );
    gw.advance(Duration::from_secs(21));
    assert_eq!(
        gw.control.check_upgrade(gw.now),
        Ok(()),
        "usable again after the reset the error named"
    );
}

#[test]
fn a_reload_adds_removes_and_re_enables_accounts_without_dropping_sessions() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create(None, true));
    let c1 = gw.create_conn(s1);
    gw.control
        .apply_accounts(gw.now, vec![account(2, 4, false)]);
    gw.run();
    let s2 = gw.open(2, None);
    gw.session_text(s2, create(None, true));
    assert_eq!(
        gw.conn_account[&gw.create_conn(s2)],
        AccountId(2),
        "new sessions go to the new account"
    );
    gw.complete(s1, c1, "resp_1", true);
    assert_eq!(
        gw.to_client
            .iter()
            .filter(|(s, v)| *s == s1 && v["type"] == "response.completed")
            .count(),
        1,
        "the running session on the removed account finished its turn"
    );
    gw.control.apply_accounts(gw.now, vec![account(2, 4, true)]);
    assert_eq!(
        gw.control.check_upgrade(gw.now),
        Err(UpgradeRefusal::UpgradeRequired),
        "now HTTP only"
    );
    gw.control.apply_accounts(gw.now, vec![]);
    assert_eq!(
        gw.control.check_upgrade(gw.now),
        Err(UpgradeRefusal::NoUsableAccount { retry_after: None })
    );
}

#[test]
fn a_session_holding_a_conn_of_a_removed_account_runs_its_next_turn_on_it() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let s1 = gw.open(1, None);
    gw.session_text(s1, create(None, true));
    let c1 = gw.create_conn(s1);
    gw.complete(s1, c1, "resp_1", true);
    gw.control
        .apply_accounts(gw.now, vec![account(2, 4, false)]);
    gw.run();
    // The open session's next turn: its conn is still leased to it, so the create goes out
    // on c1 at once instead of waiting for a slot of an account that no longer exists.
    let sent_before = gw.creates.len();
    gw.session_text(s1, create(Some("resp_1"), true));
    assert_eq!(
        gw.creates.len(),
        sent_before + 1,
        "the create went upstream"
    );
    assert_eq!(gw.create_conn(s1), c1, "on the conn the session holds");
    gw.complete(s1, c1, "resp_2", true);
    let completed = gw
        .to_client
        .iter()
        .filter(|(s, v)| *s == s1 && v["type"] == "response.completed")
        .count();
    assert_eq!(completed, 2, "both turns completed");
}

impl Gateway {
    /// The `error` code of the last frame session `id` got, if it is an `error` event
    fn last_error(&self, id: SessionId) -> Option<String> {
        let (_, last) = self.to_client.iter().rev().find(|(s, _)| *s == id)?;
        (last["type"] == "error").then(|| last["error"]["code"].as_str().unwrap_or("").to_owned())
    }

    fn refusals(&self) -> Vec<(String, &'static str)> {
        self.control_events
            .iter()
            .filter_map(|e| match e {
                ControlEvent::ContinuationRefused { group, reason, .. } => {
                    Some((group.clone(), *reason))
                }
                _ => None,
            })
            .collect()
    }

    /// A turn of session `id` that completes as `resp`
    fn turn(&mut self, id: SessionId, prev: Option<&str>, resp: &str) {
        self.session_text(id, create(prev, true));
        let conn = self.create_conn(id);
        self.complete(id, conn, resp, true);
    }
}

#[test]
fn another_groups_response_is_refused_on_first_and_later_creates_and_nothing_goes_upstream() {
    let mut gw = Gateway::new(vec![account(1, 4, false), account(2, 4, false)]);
    let a = gw.open_in(1, "team-a");
    gw.turn(a, None, "resp_a");
    let sent = gw.creates.len();

    // The first create of a team-b socket.
    let b = gw.open_in(2, "team-b");
    gw.session_text(b, create(Some("resp_a"), true));
    assert_eq!(
        gw.last_error(b).as_deref(),
        Some("previous_response_not_found")
    );
    assert_eq!(gw.creates.len(), sent, "nothing went upstream");

    // A later create of a team-b socket that already runs on the same account.
    gw.turn(b, None, "resp_b");
    let sent = gw.creates.len();
    gw.session_text(b, create(Some("resp_a"), true));
    assert_eq!(
        gw.last_error(b).as_deref(),
        Some("previous_response_not_found")
    );
    assert_eq!(gw.creates.len(), sent, "nothing went upstream");
    assert_eq!(
        gw.refusals(),
        [
            ("team-b".to_owned(), "other_group"),
            ("team-b".to_owned(), "other_group")
        ]
    );

    // The socket lives on: its own chain continues.
    gw.session_text(b, create(Some("resp_b"), true));
    assert_eq!(gw.creates.len(), sent + 1);

    // Another socket of team-a continues resp_a, first create or later one.
    let a2 = gw.open_in(3, "team-a");
    gw.turn(a2, Some("resp_a"), "resp_a2");
    gw.turn(a2, Some("resp_a"), "resp_a3");
    assert_eq!(gw.creates.len(), sent + 3);
    assert_eq!(gw.refusals().len(), 2, "no more refusals");
}

#[test]
fn a_continuation_on_its_own_socket_needs_no_lookup() {
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let a = gw.open_in(1, "team-a");
    gw.turn(a, None, "resp_1");
    let gets = gw.gets;
    gw.turn(a, Some("resp_1"), "resp_2");
    gw.turn(a, Some("resp_2"), "resp_3");
    assert_eq!((gw.gets, gw.checks), (gets, 0), "no store get, no check");
    assert_eq!(gw.creates.len(), 3);

    // Another socket's continuation of it is checked once, then goes up.
    let a2 = gw.open_in(2, "team-a");
    gw.turn(a2, None, "resp_4");
    gw.turn(a2, Some("resp_3"), "resp_5");
    assert_eq!(gw.checks, 1);
    assert_eq!(gw.creates.len(), 5);
}

#[test]
fn a_continuation_without_a_record_follows_unknown_previous_response() {
    // forward (the default): an unknown id goes up as an unbound create; upstream answers.
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let b = gw.open_in(1, "team-b");
    gw.session_text(b, create(Some("resp_elsewhere"), true));
    assert_eq!(gw.creates.len(), 1);
    assert!(gw.refusals().is_empty());

    // refuse: the first create and a later one are answered without going upstream.
    let mut cfg = Config::default();
    cfg.store.unknown_previous_response = UnknownPreviousResponse::Refuse;
    let mut gw = with_config(vec![account(1, 4, false)], cfg);
    let b = gw.open_in(1, "team-b");
    gw.session_text(b, create(Some("resp_elsewhere"), true));
    assert_eq!(
        gw.last_error(b).as_deref(),
        Some("previous_response_not_found")
    );
    gw.turn(b, None, "resp_b");
    gw.session_text(b, create(Some("resp_elsewhere"), true));
    assert_eq!(
        gw.last_error(b).as_deref(),
        Some("previous_response_not_found")
    );
    assert_eq!(gw.creates.len(), 1, "only the unchained turn went up");
    assert_eq!(
        gw.refusals(),
        [
            ("team-b".to_owned(), "no_record"),
            ("team-b".to_owned(), "no_record")
        ]
    );
    // Its own responses need no record.
    gw.session_text(b, create(Some("resp_b"), true));
    assert_eq!(gw.creates.len(), 2);
}

/// Ends the response on `lane` of session `id` (its create went out on `conn`)
fn complete_on(gw: &mut Gateway, id: SessionId, conn: ConnId, lane: &str, resp: &str) {
    gw.session_upstream(
        id,
        conn,
        json!({"type": "response.created", "stream_id": lane, "response": {"id": resp}}),
    );
    gw.session_upstream(id, conn, json!({"type": "response.completed", "stream_id": lane, "response": {"id": resp, "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}));
}

fn senders(gw: &Gateway) -> Vec<SessionId> {
    gw.creates.iter().map(|c| c.0).collect()
}

#[test]
fn freed_slots_go_round_robin_between_client_keys() {
    // Concurrency 4: key 1 fills every slot from one socket, then two more of its sockets and
    // one socket of key 2 wait, key 1's first.
    let mut gw = Gateway::new(vec![account(1, 4, false)]);
    let hog = gw.open_tenant(1, 1);
    for lane in ["l0", "l1", "l2", "l3"] {
        gw.session_text(hog, create_on(lane));
    }
    let a2 = gw.open_tenant(2, 1);
    gw.session_text(a2, create(None, true));
    let a3 = gw.open_tenant(3, 1);
    gw.session_text(a3, create(None, true));
    let b1 = gw.open_tenant(4, 2);
    gw.session_text(b1, create(None, true));
    assert_eq!(
        senders(&gw),
        [hog, hog, hog, hog],
        "the rest wait for slots"
    );
    let conn = gw.create_conn(hog);
    complete_on(&mut gw, hog, conn, "l0", "resp_0");
    assert_eq!(senders(&gw)[4], a2, "key 1 waited first");
    complete_on(&mut gw, hog, conn, "l1", "resp_1");
    assert_eq!(
        senders(&gw)[5],
        b1,
        "then key 2's turn, though key 1's third socket waited longer"
    );
    complete_on(&mut gw, hog, conn, "l2", "resp_2");
    assert_eq!(senders(&gw)[6], a3, "one key alone takes every freed slot");
}

#[test]
fn a_blocked_client_gives_its_slots_up_when_another_create_waits() {
    let mut cfg = Config::default();
    cfg.session.blocked_client_timeout = Duration::from_secs(1);
    cfg.pool.min_idle_per_account = 0;
    let mut gw = with_config(vec![account(1, 2, false)], cfg);
    let hog = gw.open_tenant(1, 1);
    for lane in ["l0", "l1"] {
        gw.session_text(hog, create_on(lane));
    }
    let conn = gw.create_conn(hog);
    for lane in ["l0", "l1"] {
        gw.session_upstream(
            hog,
            conn,
            json!({"type": "response.created", "stream_id": lane, "response": {"id": format!("resp_{lane}")}}),
        );
    }
    let now = gw.now;
    gw.sessions
        .get_mut(&hog)
        .unwrap()
        .handle_client_backpressure(now, true);
    gw.run();
    gw.advance(Duration::from_secs(2));
    assert!(
        gw.sessions[&hog].takes_client_input(),
        "blocked, but nobody wants its slots"
    );
    let other = gw.open_tenant(2, 2);
    gw.session_text(other, create(None, true));
    assert!(
        gw.sessions[&hog].is_finished(),
        "the blocked client was cut"
    );
    assert_eq!(
        senders(&gw),
        [hog, hog, other],
        "its slot went to the waiting create"
    );
}

#[test]
fn readiness_names_each_account_state_and_transport_without_changing_anything() {
    use wsv2_core::control::{AccountState, DialFailure};
    let now = Instant::now();
    let cfg = Arc::new(Config::default());
    let accounts = vec![
        account(4, 2, false),
        account(1, 8, false),
        account(2, 4, true),
        account(3, 4, false),
    ];
    let mut control = Control::new(cfg, accounts, 1, now);
    let refused = |status, retry_after| DialFailure {
        status: Some(status),
        retry_after,
        message: "refused".to_owned(),
        local: false,
    };
    control.handle_dial_failed(
        now,
        AccountId(3),
        ConnId(900),
        refused(429, Some(Duration::from_secs(30))),
    );
    control.handle_dial_failed(now, AccountId(4), ConnId(901), refused(401, None));
    let later = now + Duration::from_secs(10);
    let readiness = control.readiness(later);
    assert_eq!(readiness.verdict, Ok(()));
    assert_eq!(readiness.upgrade, Ok(()), "account 1 is usable");
    let states: Vec<(u64, &str, AccountState, bool, u32)> = readiness
        .accounts
        .iter()
        .map(|a| {
            (
                a.account.0,
                a.name.as_str(),
                a.state,
                a.websocket,
                a.concurrency,
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (1, "acct1", AccountState::Usable, true, 8),
            (2, "acct2", AccountState::Usable, false, 4),
            (
                3,
                "acct3",
                AccountState::Cooling {
                    remaining: Duration::from_secs(20)
                },
                true,
                4
            ),
            (4, "acct4", AccountState::Disabled, true, 2),
        ]
    );
    assert!(readiness.accounts[0].pool.is_some());
    assert!(
        readiness.accounts[1].pool.is_none(),
        "HTTP accounts have no pool"
    );
    assert_eq!(
        control.readiness(later),
        readiness,
        "reading changes nothing"
    );
}
