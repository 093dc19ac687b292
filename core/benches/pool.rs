//! Acquire + release round trips on one account pool with 1, 16 and 128 conns, counting
//! allocations per round trip (divan's `AllocProfiler`).
//!
//! Run: `cargo bench -p wsv2-core --bench pool`

use std::time::Instant;

use divan::{AllocProfiler, Bencher};
use wsv2_core::conn::{CompatKey, Release};
use wsv2_core::pool::{AccountPool, ConnIdSource, HolderKind, PoolRequest};
use wsv2_core::{AccountId, Config, ResponseId, SessionId};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

const ACCOUNT: AccountId = AccountId(1);

/// A pool with `conns` idle conns, each caching one response (for the preferred path)
fn pool_with_idle(conns: usize, now: Instant) -> (AccountPool, CompatKey, Vec<ResponseId>) {
    let mut config = Config::default();
    config.pool.min_idle_per_account = 0;
    let key = CompatKey::new(ACCOUNT, ["responses_websockets=2026-02-06"], []);
    let mut pool = AccountPool::new(ACCOUNT, conns, &config, ConnIdSource::new(), 1);
    pool.start(now);
    for h in 0..conns as u64 {
        pool.acquire(now, SessionId(h), HolderKind::Session, &key, None, None);
    }
    let mut dials = Vec::new();
    while let Some(command) = pool.poll_request() {
        if let PoolRequest::Dial { conn, .. } = command {
            dials.push(conn);
        }
    }
    for conn in dials {
        pool.handle_dial_ok(now, conn);
    }
    let mut responses = Vec::new();
    while let Some(command) = pool.poll_request() {
        if let PoolRequest::Granted(lease) = command {
            let mut record = lease.record;
            let response = ResponseId::from_str_copy(&format!("resp_{}", record.id.0)).unwrap();
            record.cache(None, response.clone(), false);
            responses.push(response);
            pool.handle_release(
                now,
                Release {
                    record,
                    reusable: true,
                },
                None,
            );
        }
    }
    assert_eq!(pool.stats().idle, conns);
    (pool, key, responses)
}

/// A WebSocket session takes the MRU idle conn and gives it back
#[divan::bench(args = [1, 16, 128])]
fn session_acquire_release(bencher: Bencher, conns: usize) {
    let now = Instant::now();
    let (mut pool, key, _) = pool_with_idle(conns, now);
    let mut holder = 1_000_000;
    bencher.bench_local(|| {
        holder += 1;
        pool.acquire(
            now,
            SessionId(holder),
            HolderKind::Session,
            &key,
            None,
            None,
        );
        let Some(PoolRequest::Granted(lease)) = pool.poll_request() else {
            panic!("an idle conn is granted at once")
        };
        pool.handle_release(
            now,
            Release {
                record: lease.record,
                reusable: true,
            },
            None,
        );
        while pool.poll_request().is_some() {}
    });
}

/// An HTTP turn takes its preferred conn (the least recently released one) and gives it back
#[divan::bench(args = [1, 16, 128])]
fn http_preferred_acquire_release(bencher: Bencher, conns: usize) {
    let now = Instant::now();
    let (mut pool, key, responses) = pool_with_idle(conns, now);
    let mut holder = 1_000_000;
    let mut next = 0;
    bencher.bench_local(|| {
        holder += 1;
        // cycle through the conns so the preferred one is the least recently released
        let preferred = &responses[next % responses.len()];
        next += 1;
        pool.acquire(
            now,
            SessionId(holder),
            HolderKind::Http,
            &key,
            Some(preferred),
            None,
        );
        let Some(PoolRequest::Granted(lease)) = pool.poll_request() else {
            panic!("the preferred conn is granted at once")
        };
        debug_assert!(lease.preferred_hit);
        pool.handle_release(
            now,
            Release {
                record: lease.record,
                reusable: true,
            },
            None,
        );
        while pool.poll_request().is_some() {}
    });
}
