//! State-store rules (issue 3 §4), each as a transition trace plus direct assertions.

use std::time::Duration;

use crate::support::store::{Harness, snapshot};
use wsv2_core::config::StoreConfig;
use wsv2_core::store::{
    Binding, BindingRef, BreakerState, Continuation, ContinuationRefusal, Lookup, MemoryBackend,
    OpId, RequestKind, ResponseConn, StoreEvent, StoreFailure, judge_continuation,
};
use wsv2_core::{AccountId, ConnId, StreamId};

/// The binding `group` wrote for account `n`
fn bound(n: u64, group: &str) -> Binding {
    Binding::new(AccountId(n), group)
}

fn only_op(commands: &[wsv2_core::store::StoreRequest]) -> OpId {
    assert_eq!(commands.len(), 1, "{commands:?}");
    commands[0].op
}

#[test]
fn store_timeout_is_a_miss() {
    let mut h = Harness::new(StoreConfig::default());
    let (lookup, commands) = h.lookup_response("resp_1");
    let op = only_op(&commands);
    assert_eq!(lookup, Lookup::Pending(op));
    assert!(matches!(commands[0].kind, RequestKind::Get { .. }));
    assert_eq!(h.store.poll_timeout(), Some(h.t0 + Duration::from_secs(3)));

    let (_, events) = h.at(2_999);
    assert!(events.is_empty(), "nothing before the op deadline");
    let (_, events) = h.at(3_000);
    assert_eq!(
        events,
        vec![StoreEvent::Resolved { op, result: None }],
        "a timed-out get is a miss"
    );

    // The late reply is ignored: it neither answers again nor fills the local map.
    let (commands, events) = h.reply(op, Ok(Some("7")));
    assert!(commands.is_empty() && events.is_empty());
    let (lookup, commands) = h.lookup_response("resp_1");
    assert!(
        matches!(lookup, Lookup::Pending(_)),
        "asked again, not served from the late reply"
    );
    assert_eq!(commands.len(), 1);

    let stats = h.store.stats();
    assert_eq!(
        (stats.timeouts, stats.get_failures, stats.late_replies),
        (1, 1, 1)
    );
    snapshot("store_timeout_is_a_miss", &h.trace);
}

#[test]
fn store_failed_get_is_a_miss_and_second_lookup_joins_the_first() {
    let mut h = Harness::new(StoreConfig::default());
    let (first, commands) = h.lookup_session(None, "sess-abc");
    let op = only_op(&commands);
    let (second, commands) = h.lookup_session(None, "sess-abc");
    assert_eq!(first, second, "the second lookup joins the get in flight");
    assert!(commands.is_empty(), "one outstanding get per key");
    let (_, events) = h.reply(op, Err(StoreFailure::Unreachable));
    assert_eq!(events, vec![StoreEvent::Resolved { op, result: None }]);
    assert_eq!(h.store.stats().joined_gets, 1);
    assert_eq!(h.store.pending_ops(), 0);
    snapshot(
        "store_failed_get_is_a_miss_and_second_lookup_joins_the_first",
        &h.trace,
    );
}

#[test]
fn store_set_failure_warns_and_counts() {
    let mut h = Harness::new(StoreConfig::default());
    let (commands, _) = h.bind_response(Some("team-a"), "resp_9", 4);
    let op = only_op(&commands);
    let RequestKind::Set { value, ttl, .. } = &commands[0].kind else {
        panic!("{commands:?}")
    };
    assert_eq!(
        (value.as_str(), *ttl),
        ("4:team-a", Duration::from_secs(30 * 24 * 3600)),
        "the account and the creating group, for as long as upstream keeps the response"
    );

    let (_, events) = h.reply(op, Err(StoreFailure::Rejected));
    let warn = StoreEvent::SetFailed {
        group: "team-a".to_owned(),
        account: AccountId(4),
        binding: BindingRef::Response(crate::support::store::rid("resp_9")),
    };
    assert_eq!(events, vec![warn.clone()]);
    assert_eq!(h.store.stats().set_failures, 1);

    // A set that times out warns the same way.
    let (commands, _) = h.bind_response(Some("team-a"), "resp_9", 4);
    only_op(&commands);
    let (_, events) = h.at(3_000);
    assert_eq!(events, vec![warn]);
    assert_eq!(h.store.stats().set_failures, 2);

    // The local binding still serves this gateway.
    let (lookup, _) = h.lookup_response("resp_9");
    assert_eq!(lookup, Lookup::Hit(bound(4, "team-a")));
    snapshot("store_set_failure_warns_and_counts", &h.trace);
}

#[test]
fn store_breaker_opens_after_three_failures_probes_every_5s_and_closes_on_success() {
    let mut h = Harness::new(StoreConfig::default());
    let mut ops = Vec::new();
    for id in ["resp_1", "resp_2", "resp_3"] {
        let (_, commands) = h.lookup_response(id);
        ops.push(only_op(&commands));
    }
    h.reply(ops[0], Err(StoreFailure::Unreachable));
    h.reply(ops[1], Err(StoreFailure::Unreachable));
    assert!(
        h.store.breaker().allows_requests(),
        "two failures keep it closed"
    );
    let (_, events) = h.reply(ops[2], Err(StoreFailure::TimedOut));
    assert!(events.contains(&StoreEvent::BreakerOpened));
    assert!(!h.store.breaker().allows_requests());

    // While open: decisions never wait and nothing is sent.
    let (lookup, commands) = h.lookup_response("resp_4");
    assert_eq!((lookup, commands.len()), (Lookup::Miss, 0));
    let (commands, _) = h.bind_response(None, "resp_5", 2);
    assert!(commands.is_empty(), "writes are skipped while open");
    let (lookup, commands) = h.lookup_response("resp_5");
    assert_eq!(
        (lookup, commands.len()),
        (Lookup::Hit(bound(2, "default")), 0),
        "local state still answers"
    );
    let (commands, _) = h.at(4_999);
    assert!(commands.is_empty(), "no probe before the interval");

    // Probe at 5 s fails: open again, next probe 5 s later.
    let (commands, _) = h.at(5_000);
    let probe = only_op(&commands);
    assert_eq!(commands[0].kind.key().as_str(), "wsv2:probe");
    assert_eq!(h.store.breaker().state(), BreakerState::Probing);
    let (lookup, commands) = h.lookup_response("resp_6");
    assert_eq!(
        (lookup, commands.len()),
        (Lookup::Miss, 0),
        "no command but the probe"
    );
    h.now = h.t0 + Duration::from_millis(5_100);
    h.reply(probe, Err(StoreFailure::Unreachable));
    assert!(h.store.poll_timeout() == Some(h.t0 + Duration::from_millis(10_100)));
    let (commands, _) = h.at(10_100);
    let probe = only_op(&commands);

    // Probe succeeds: closed, the store is asked again.
    let (_, events) = h.reply(probe, Ok(None));
    assert_eq!(events, vec![StoreEvent::BreakerClosed]);
    let (lookup, commands) = h.lookup_response("resp_4");
    assert!(matches!(lookup, Lookup::Pending(_)));
    assert_eq!(commands.len(), 1);

    let stats = h.store.stats();
    assert_eq!(
        (stats.breaker_opened, stats.probes, stats.breaker_misses),
        (1, 2, 2)
    );
    assert_eq!(
        stats.writes_skipped, 1,
        "the skipped set (reading a response's binding refreshes nothing)"
    );
    snapshot(
        "store_breaker_opens_after_three_failures_probes_every_5s_and_closes_on_success",
        &h.trace,
    );
}

#[test]
fn store_breaker_opening_answers_waiting_lookups_at_once() {
    let mut h = Harness::new(StoreConfig::default());
    let mut ops = Vec::new();
    for id in ["resp_1", "resp_2", "resp_3", "resp_4"] {
        let (_, commands) = h.lookup_response(id);
        ops.push(only_op(&commands));
    }
    h.reply(ops[0], Err(StoreFailure::Unreachable));
    h.reply(ops[1], Err(StoreFailure::Unreachable));
    let (_, events) = h.reply(ops[2], Err(StoreFailure::Unreachable));
    assert_eq!(
        events,
        vec![
            StoreEvent::Resolved {
                op: ops[2],
                result: None
            },
            StoreEvent::BreakerOpened,
            StoreEvent::Resolved {
                op: ops[3],
                result: None
            },
        ],
        "the lookup still waiting is answered Miss when the breaker opens"
    );
    // Its reply, arriving later, answers nothing again, but it is a trustworthy success: it
    // closes the breaker and fills the local map.
    let (commands, events) = h.reply(ops[3], Ok(Some("3:default")));
    assert_eq!(events, vec![StoreEvent::BreakerClosed]);
    assert!(commands.is_empty(), "a response's binding is not refreshed");
    let (lookup, _) = h.lookup_response("resp_4");
    assert_eq!(lookup, Lookup::Hit(bound(3, "default")));
    snapshot(
        "store_breaker_opening_answers_waiting_lookups_at_once",
        &h.trace,
    );
}

#[test]
fn store_no_stale_read_after_delete() {
    let mut h = Harness::new(StoreConfig::default());
    let (_, commands) = h.lookup_response("resp_1");
    let op = only_op(&commands);
    let (commands, events) = h.reply(op, Ok(Some("7:default")));
    assert_eq!(
        events,
        vec![StoreEvent::Resolved {
            op,
            result: Some(bound(7, "default"))
        }]
    );
    assert!(commands.is_empty(), "a response's binding is not refreshed");

    // Back-filled: the next lookup is local.
    let (lookup, commands) = h.lookup_response("resp_1");
    assert_eq!(
        (lookup, commands.len()),
        (Lookup::Hit(bound(7, "default")), 0)
    );

    // Delete through this gateway: a miss at once, with no store round trip.
    let (commands, _) = h.unbind_response("resp_1");
    let delete = only_op(&commands);
    assert!(matches!(commands[0].kind, RequestKind::Delete { .. }));
    let (lookup, commands) = h.lookup_response("resp_1");
    assert_eq!((lookup, commands.len()), (Lookup::Miss, 0));

    // Even if the store's delete fails, the local tombstone keeps answering Miss.
    h.reply(delete, Err(StoreFailure::Unreachable));
    let (lookup, commands) = h.lookup_response("resp_1");
    assert_eq!((lookup, commands.len()), (Lookup::Miss, 0));
    assert_eq!(h.store.stats().local_tombstone_misses, 2);
    snapshot("store_no_stale_read_after_delete", &h.trace);
}

#[test]
fn store_get_reply_after_local_delete_or_rebind_never_resurrects() {
    let mut h = Harness::new(StoreConfig::default());
    // Delete while the get is in flight: the lookup is answered Miss at once.
    let (_, commands) = h.lookup_response("resp_1");
    let op = only_op(&commands);
    let (_, events) = h.unbind_response("resp_1");
    assert_eq!(events, vec![StoreEvent::Resolved { op, result: None }]);
    let (_, events) = h.reply(op, Ok(Some("7:default")));
    assert!(events.is_empty(), "the old reply answers nothing");
    let (lookup, commands) = h.lookup_response("resp_1");
    assert_eq!(
        (lookup, commands.len()),
        (Lookup::Miss, 0),
        "and is never copied"
    );

    // Rebind while the get is in flight: the lookup gets the new account.
    let (_, commands) = h.lookup_session(None, "sess-1");
    let op = only_op(&commands);
    let (_, events) = h.bind_session(None, "sess-1", 9);
    assert_eq!(
        events,
        vec![StoreEvent::Resolved {
            op,
            result: Some(bound(9, "default"))
        }]
    );
    h.reply(op, Ok(Some("7:default")));
    let (lookup, _) = h.lookup_session(None, "sess-1");
    assert_eq!(
        lookup,
        Lookup::Hit(bound(9, "default")),
        "the older store value never overrides the rebind"
    );
    snapshot(
        "store_get_reply_after_local_delete_or_rebind_never_resurrects",
        &h.trace,
    );
}

#[test]
fn store_response_records_name_their_group_and_session_keys_are_scoped() {
    let mut backend = MemoryBackend::new(1024);
    let mut h = Harness::new(StoreConfig::default());
    let (commands, _) = h.bind_response(Some("team-a"), "resp_1", 3);
    assert_eq!(
        commands[0].kind.key().as_str().len(),
        "wsv2:resp:".len() + 32
    );
    assert!(commands[0].kind.key().as_str().starts_with("wsv2:resp:"));
    h.run(&mut backend, commands);
    let (lookup, _) = h.lookup_response("resp_1");
    assert_eq!(lookup, Lookup::Hit(bound(3, "team-a")));

    // A second gateway sharing the store finds the same record, whoever asks.
    let mut other = Harness::new(StoreConfig::default());
    let (_, commands) = other.lookup_response("resp_1");
    let op = only_op(&commands);
    let events = other.run(&mut backend, commands);
    let record = Some(bound(3, "team-a"));
    assert_eq!(events, vec![StoreEvent::Resolved { op, result: record }]);

    // The group rule on that record.
    let forward = StoreConfig::default().unknown_previous_response;
    assert_eq!(
        judge_continuation(record, "team-a", forward),
        Continuation::Bound(AccountId(3))
    );
    assert_eq!(
        judge_continuation(record, "team-b", forward),
        Continuation::Refused(ContinuationRefusal::OtherGroup),
        "another group's response is refused, not mistaken for an unknown one"
    );

    // Session keys are client text: scoped by group, so the same key in B is another binding.
    let (commands, _) = h.bind_session(Some("team-a"), "thread-1", 4);
    assert!(
        commands[0]
            .kind
            .key()
            .as_str()
            .starts_with("wsv2:team-a:sess:")
    );
    h.run(&mut backend, commands);
    let (_, commands) = other.lookup_session(Some("team-b"), "thread-1");
    let op = only_op(&commands);
    let events = other.run(&mut backend, commands);
    assert_eq!(events, vec![StoreEvent::Resolved { op, result: None }]);

    // The default group is `default`, and naming it explicitly is the same scope.
    let (commands, _) = h.bind_session(None, "thread-2", 5);
    h.run(&mut backend, commands);
    let (_, commands) = other.lookup_session(Some("default"), "thread-2");
    let op = only_op(&commands);
    let events = other.run(&mut backend, commands);
    assert_eq!(
        events,
        vec![StoreEvent::Resolved {
            op,
            result: Some(bound(5, "default"))
        }]
    );
    h.trace.note("second gateway, same store");
    h.trace.append(&other.trace);
    snapshot(
        "store_response_records_name_their_group_and_session_keys_are_scoped",
        &h.trace,
    );
}

#[test]
fn store_binding_lifetimes_match_what_they_protect() {
    let config = StoreConfig::default();
    let stored = config.response_binding_ttl;
    let mut backend = MemoryBackend::new(1024);
    let mut h = Harness::new(config.clone());
    let (commands, _) = h.bind_response_with(Some("team-a"), "resp_kept", 1, true);
    let RequestKind::Set { ttl, .. } = &commands[0].kind else {
        panic!("{commands:?}")
    };
    assert_eq!(*ttl, stored, "store:true: as long as upstream keeps it");
    h.run(&mut backend, commands);
    let (commands, _) = h.bind_response_with(Some("team-a"), "resp_local", 1, false);
    let RequestKind::Set { ttl, .. } = &commands[0].kind else {
        panic!("{commands:?}")
    };
    let conn_life = Duration::from_secs(55 * 60);
    assert_eq!(*ttl, conn_life, "store:false: as long as a conn can live");
    h.run(&mut backend, commands);
    let (commands, _) = h.bind_session(Some("team-a"), "thread-1", 1);
    h.run(&mut backend, commands);

    // Another gateway reads all three often; only the session binding moves with use.
    let mut reader = Harness::with_clock(config, h.t0);
    let mut expires = Vec::new();
    for minute in [10u64, 50, 54] {
        reader.now = h.t0 + Duration::from_secs(minute * 60);
        for id in ["resp_kept", "resp_local"] {
            let (_, commands) = reader.lookup_response(id);
            reader.run(&mut backend, commands);
        }
        let (_, commands) = reader.lookup_session(Some("team-a"), "thread-1");
        reader.run(&mut backend, commands);
        // A fresh gateway each time, so every read reaches the store.
        reader = Harness::with_clock(StoreConfig::default(), h.t0);
    }
    let mut late = Harness::with_clock(StoreConfig::default(), h.t0);
    let mut lookup_at = |at: Duration, id: &str, session: bool| {
        late.now = h.t0 + at;
        let (_, commands) = if session {
            late.lookup_session(Some("team-a"), id)
        } else {
            late.lookup_response(id)
        };
        let events = late.run(&mut backend, commands);
        let hit = matches!(
            events[..],
            [StoreEvent::Resolved {
                result: Some(_),
                ..
            }]
        );
        late = Harness::with_clock(StoreConfig::default(), h.t0);
        hit
    };
    let minutes = |m: u64| Duration::from_secs(m * 60);
    expires.push((
        "store:false at 56 min",
        lookup_at(minutes(56), "resp_local", false),
    ));
    expires.push((
        "session at 56 min (read at 54)",
        lookup_at(minutes(56), "thread-1", true),
    ));
    expires.push((
        "store:true at 29 days",
        lookup_at(stored - minutes(24 * 60), "resp_kept", false),
    ));
    expires.push((
        "store:true at 30 days",
        lookup_at(stored, "resp_kept", false),
    ));
    assert_eq!(
        expires,
        [
            ("store:false at 56 min", false),
            ("session at 56 min (read at 54)", true),
            ("store:true at 29 days", true),
            ("store:true at 30 days", false),
        ]
    );
}

#[test]
fn store_response_conn_map_is_local_and_lives_as_long_as_the_binding() {
    let mut h = Harness::new(StoreConfig::default());
    let at = ResponseConn {
        conn: ConnId(4),
        lane: StreamId::from_str_copy("lane-1"),
        store: false,
    };
    let id = crate::support::store::rid("resp_1");
    h.store.record_response_conn(h.now, &id, at.clone());
    assert!(
        h.store.poll_request().is_none(),
        "never written to the store"
    );
    assert_eq!(h.store.response_conn(h.now, &id), Some(at));
    let conn_gone = h.now + Duration::from_secs(55 * 60);
    assert_eq!(
        h.store.response_conn(conn_gone, &id),
        None,
        "a store:false chain is gone with its conn"
    );
    let stored = ResponseConn {
        conn: ConnId(5),
        lane: None,
        store: true,
    };
    h.store.record_response_conn(h.now, &id, stored.clone());
    assert_eq!(h.store.response_conn(conn_gone, &id), Some(stored));
    h.store.forget_response_conn(&id);
    assert_eq!(h.store.response_conn(h.now, &id), None);
}
