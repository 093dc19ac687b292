//! Changes made by another gateway sharing the store are seen within `store.local_copy_max_age`
//! (5 s by default), even while this gateway keeps hitting the key; its own writes are trusted
//! that long once the store took them, and for their whole TTL when it did not.

use std::time::Duration;

use crate::support::store::Harness;
use wsv2_core::config::StoreConfig;
use wsv2_core::store::{Lookup, MemoryBackend, StoreEvent, StoreFailure};
use wsv2_core::{AccountId, Config};

const MAX_AGE: Duration = Duration::from_secs(5);

/// Two gateways on one store (a shared memory backend standing for Redis), on one clock
struct Pair {
    backend: MemoryBackend,
    a: Harness,
    b: Harness,
}

impl Pair {
    fn new() -> Self {
        let a = Harness::new(StoreConfig::default());
        let mut b = Harness::with_clock(StoreConfig::default(), a.t0);
        b.now = a.now;
        Self {
            backend: MemoryBackend::new(1024),
            a,
            b,
        }
    }

    fn at(&mut self, ms: u64) {
        self.a.now = self.a.t0 + Duration::from_millis(ms);
        self.b.now = self.a.now;
    }

    /// Gateway A's answer for a session key or a response id: the account, `None` for a miss;
    /// whatever the lookup sends runs on the store first
    fn a_sees(&mut self, session: Option<&str>, response: Option<&str>) -> Option<u64> {
        let (lookup, commands) = match (session, response) {
            (Some(key), _) => self.a.lookup_session(None, key),
            (_, Some(id)) => self.a.lookup_response(id),
            _ => unreachable!("a key to look up"),
        };
        let events = self.a.run(&mut self.backend, commands);
        match lookup {
            Lookup::Hit(binding) => Some(binding.account.0),
            Lookup::Miss => None,
            Lookup::Pending(op) => events.iter().find_map(|e| match e {
                StoreEvent::Resolved { op: o, result } if *o == op => {
                    Some(result.map(|b| b.account.0))
                }
                _ => None,
            })?,
        }
    }

    /// Gateway B rebinds session `key` to `account` (or binds it), through the store
    fn b_binds_session(&mut self, key: &str, account: u64) {
        let (commands, _) = self.b.bind_session(None, key, account);
        self.b.run(&mut self.backend, commands);
    }
}

/// Gateway A hits `look` every 100 ms from `from` ms while it answers `before`; the ms of the
/// first other answer and that answer
fn hits_until_change(
    pair: &mut Pair,
    from: u64,
    before: Option<u64>,
    mut look: impl FnMut(&mut Pair) -> Option<u64>,
) -> (u64, Option<u64>) {
    let mut ms = from;
    loop {
        pair.at(ms);
        let seen = look(pair);
        if seen != before {
            return (ms, seen);
        }
        assert!(ms < 60_000, "A still answers {before:?} after a minute");
        ms += 100;
    }
}

#[test]
fn store_a_rebind_or_delete_by_another_gateway_is_seen_within_local_copy_max_age_while_hit() {
    assert_eq!(StoreConfig::default().local_copy_max_age, MAX_AGE);
    let mut p = Pair::new();
    // B binds a session and a response; A reads both (its local copies, read at 0 ms).
    p.b_binds_session("thread-1", 1);
    let (commands, _) = p.b.bind_response(None, "resp_1", 1);
    p.b.run(&mut p.backend, commands);
    assert_eq!(p.a_sees(Some("thread-1"), None), Some(1));
    assert_eq!(p.a_sees(None, Some("resp_1")), Some(1));

    // At 1 s, B rebinds the session and deletes the response's binding.
    p.at(1_000);
    p.b_binds_session("thread-1", 2);
    let (commands, _) = p.b.unbind_response("resp_1");
    p.b.run(&mut p.backend, commands);

    // A keeps hitting both keys every 100 ms (each session hit refreshes its TTL): it sees the
    // rebind and the delete once its copies are older than local_copy_max_age, not later.
    let (mut session_changed, mut response_changed) = (None, None);
    let mut ms = 1_000;
    while session_changed.is_none() || response_changed.is_none() {
        assert!(ms < 60_000, "A still serves its old copies after a minute");
        p.at(ms);
        let session = p.a_sees(Some("thread-1"), None);
        if session != Some(1) && session_changed.is_none() {
            session_changed = Some((ms, session));
        }
        let response = p.a_sees(None, Some("resp_1"));
        if response != Some(1) && response_changed.is_none() {
            response_changed = Some((ms, response));
        }
        ms += 100;
    }
    let changed_at = MAX_AGE.as_millis() as u64; // read at 0 ms, trusted 5 s
    assert_eq!(session_changed, Some((changed_at, Some(2))), "the rebind");
    assert_eq!(response_changed, Some((changed_at, None)), "the delete");
    assert_eq!(p.a.store.stats().rechecks, 2);

    // The new copy is trusted for max_age again: no store round trip until then.
    p.at(9_900);
    let (lookup, commands) = p.a.lookup_session(None, "thread-1");
    assert_eq!(
        lookup,
        Lookup::Hit(wsv2_core::store::Binding::new(AccountId(2), "default"))
    );
    assert!(
        commands
            .iter()
            .all(|c| !matches!(c.kind, wsv2_core::store::RequestKind::Get { .. })),
        "{commands:?}"
    );
}

#[test]
fn store_an_own_write_is_trusted_for_max_age_once_the_store_took_it_and_pinned_if_it_did_not() {
    let mut p = Pair::new();
    // A binds a session; the store takes it at 0 ms.
    let (commands, _) = p.a.bind_session(None, "thread-1", 1);
    p.a.run(&mut p.backend, commands);
    p.at(1_000);
    p.b_binds_session("thread-1", 2);
    let (at, seen) =
        hits_until_change(&mut p, 1_000, Some(1), |p| p.a_sees(Some("thread-1"), None));
    assert_eq!((at, seen), (MAX_AGE.as_millis() as u64, Some(2)));

    // B bound thread-2 first; A's rebind of it fails: the store still holds B's older binding,
    // which A must never serve after its own write, so A's value holds, without reading the
    // store, until the binding's TTL.
    p.b_binds_session("thread-2", 9);
    let (commands, _) = p.a.bind_session(None, "thread-2", 1);
    let set = commands[0].op;
    p.a.reply(set, Err(StoreFailure::Rejected));
    let ttl = StoreConfig::default().session_binding_ttl;
    for ms in [6_000, 60_000, ttl.as_millis() as u64] {
        p.at(ms);
        let (lookup, commands) = p.a.lookup_session(None, "thread-2");
        assert_eq!(
            lookup,
            Lookup::Hit(wsv2_core::store::Binding::new(AccountId(1), "default")),
            "at {ms} ms"
        );
        assert!(
            commands
                .iter()
                .all(|c| !matches!(c.kind, wsv2_core::store::RequestKind::Get { .. })),
            "no read of the older store value at {ms} ms: {commands:?}"
        );
    }
    // ... and a hit does not extend it: it ends with the TTL counted from the write.
    p.at(6_000 + ttl.as_millis() as u64);
    let (lookup, _) = p.a.lookup_session(None, "thread-2");
    assert!(matches!(lookup, Lookup::Pending(_)), "{lookup:?}");
}

#[test]
fn store_local_copy_max_age_below_the_op_timeout_is_refused() {
    let mut config = Config::default();
    config.store.local_copy_max_age = Duration::from_secs(2);
    let paths: Vec<String> = config.validate().into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["store.local_copy_max_age"]);
    config.store.local_copy_max_age = config.store.store_op_timeout;
    assert!(config.validate().is_empty());
}

/// What a schedule does with a session key: look it up, then bind it to the account chosen
/// (here: the one it found, else account 1)
fn a_schedules(p: &mut Pair, key: &str) -> u64 {
    let account = p.a_sees(Some(key), None).unwrap_or(1);
    let (commands, _) = p.a.bind_session(None, key, account);
    p.a.run(&mut p.backend, commands);
    account
}

#[test]
fn store_a_session_bind_of_what_the_store_holds_writes_nothing_so_a_remote_rebind_survives() {
    let mut p = Pair::new();
    assert_eq!(a_schedules(&mut p, "thread-1"), 1, "bound by A at 0 ms");
    assert_eq!(p.a.store.stats().sets, 1);
    // B rebinds at 1 s; A keeps scheduling on its copy, and binding what it found writes
    // nothing, so B's rebind stays in the store and A moves to it at 5 s.
    p.at(1_000);
    p.b_binds_session("thread-1", 2);
    let (at, account) =
        hits_until_change(&mut p, 1_000, Some(1), |p| Some(a_schedules(p, "thread-1")));
    assert_eq!((at, account), (MAX_AGE.as_millis() as u64, Some(2)));
    let stats = p.a.store.stats();
    assert_eq!(stats.sets, 1, "only the first bind was written");
    assert_eq!(stats.unchanged_binds, 41, "1 s to 5 s, every 100 ms");
}
