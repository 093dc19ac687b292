//! The in-memory backend: Redis semantics with TTLs on virtual time.

use std::time::Duration;

use crate::support::store::{Harness, snapshot};
use crate::support::trace::sections;
use wsv2_core::AccountId;
use wsv2_core::config::StoreConfig;
use wsv2_core::store::{
    Binding, Lookup, MemoryBackend, OpId, RequestKind, StoreEvent, StoreKey, StoreRequest,
};

fn key(id: &str) -> StoreKey {
    StoreKey::response(id.as_bytes())
}

fn cmd(kind: RequestKind) -> StoreRequest {
    StoreRequest { op: OpId(0), kind }
}

fn get(id: &str) -> StoreRequest {
    cmd(RequestKind::Get { key: key(id) })
}

#[test]
fn store_memory_ttl_expiry_expire_and_delete() {
    let t0 = std::time::Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut backend = MemoryBackend::new(16);
    let set = cmd(RequestKind::Set {
        key: key("r1"),
        value: "7".into(),
        ttl: Duration::from_secs(10),
    });
    assert_eq!(backend.execute(at(0), &set), Ok(None));
    assert_eq!(
        backend.execute(at(9_999), &get("r1")),
        Ok(Some("7".into())),
        "alive before its TTL"
    );
    assert_eq!(
        backend.execute(at(10_000), &get("r1")),
        Ok(None),
        "expired 10 s after the set: as in Redis, a get moves no TTL"
    );
    assert!(backend.is_empty());

    // Expire moves the deadline; on a missing key it does nothing.
    assert_eq!(backend.execute(at(0), &set), Ok(None));
    let expire = cmd(RequestKind::Expire {
        key: key("r1"),
        ttl: Duration::from_secs(1),
    });
    assert_eq!(backend.execute(at(100), &expire), Ok(None));
    assert_eq!(backend.execute(at(1_100), &get("r1")), Ok(None));
    let expire_missing = cmd(RequestKind::Expire {
        key: key("r2"),
        ttl: Duration::from_secs(1),
    });
    assert_eq!(backend.execute(at(1_100), &expire_missing), Ok(None));
    assert_eq!(backend.len(), 0);

    // Delete.
    assert_eq!(backend.execute(at(0), &set), Ok(None));
    assert_eq!(
        backend.execute(at(0), &cmd(RequestKind::Delete { key: key("r1") })),
        Ok(None)
    );
    assert_eq!(backend.execute(at(0), &get("r1")), Ok(None));
}

#[test]
fn store_memory_is_bounded_and_evicts_the_soonest_expiring() {
    let t0 = std::time::Instant::now();
    let mut backend = MemoryBackend::new(2);
    for (id, secs) in [("a", 30), ("b", 10), ("c", 20)] {
        let set = cmd(RequestKind::Set {
            key: key(id),
            value: "1".into(),
            ttl: Duration::from_secs(secs),
        });
        assert_eq!(backend.execute(t0, &set), Ok(None));
    }
    assert_eq!(backend.len(), 2);
    assert_eq!(
        backend.execute(t0, &get("b")),
        Ok(None),
        "the soonest-expiring key made room"
    );
    assert_eq!(backend.execute(t0, &get("a")), Ok(Some("1".into())));
    assert_eq!(backend.execute(t0, &get("c")), Ok(Some("1".into())));
}

#[test]
fn store_memory_session_binding_expires_unless_hit_and_hits_refresh_it() {
    let config = StoreConfig {
        session_binding_ttl: Duration::from_secs(10),
        ..StoreConfig::default()
    };
    let mut backend = MemoryBackend::new(64);
    let mut writer = Harness::new(config.clone());
    let (commands, _) = writer.bind_session(None, "thread-1", 2);
    writer.run(&mut backend, commands);
    let (commands, _) = writer.bind_session(None, "thread-2", 2);
    writer.run(&mut backend, commands);
    let bound = Some(Binding::new(AccountId(2), "default"));

    // Another gateway reads thread-1 at 8 s: a remote hit whose Expire refreshes the store's TTL.
    let mut reader = Harness::with_clock(config.clone(), writer.t0);
    reader.now = writer.t0 + Duration::from_secs(8);
    let (_, commands) = reader.lookup_session(None, "thread-1");
    let events = reader.run(&mut backend, commands);
    assert!(matches!(events[..], [StoreEvent::Resolved { result, .. }] if result == bound));

    // At 15 s: thread-1 lives on (refreshed at 8 s), thread-2 expired (never hit).
    let mut late = Harness::with_clock(config, writer.t0);
    late.now = writer.t0 + Duration::from_secs(15);
    let (_, commands) = late.lookup_session(None, "thread-1");
    let events = late.run(&mut backend, commands);
    assert!(matches!(events[..], [StoreEvent::Resolved { result, .. }] if result == bound));
    let (_, commands) = late.lookup_session(None, "thread-2");
    let events = late.run(&mut backend, commands);
    assert!(
        matches!(events[..], [StoreEvent::Resolved { result: None, .. }]),
        "expired in the store"
    );

    // The reader's local copy expires with the TTL too: at 18 s it asks the store again.
    reader.now = writer.t0 + Duration::from_secs(18);
    let (lookup, _) = reader.lookup_session(None, "thread-1");
    assert!(
        matches!(lookup, Lookup::Pending(_)),
        "local copy gone after its TTL"
    );

    let trace = sections([
        ("writer", &writer.trace),
        ("reader", &reader.trace),
        ("late reader", &late.trace),
    ]);
    snapshot(
        "store_memory_session_binding_expires_unless_hit_and_hits_refresh_it",
        &trace,
    );
}
