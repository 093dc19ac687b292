//! A rebind made by another gateway sharing the store is seen within `store.local_copy_max_age`,
//! even while this gateway keeps hitting the key: its local copy is trusted that long, then read
//! again, and binding what it found writes nothing, so the other gateway's value stays.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wsv2_core::AccountId;

use crate::support::Shell;
use crate::support::http::{
    base, body, creates, post, random_group, redis_url, store_mock, two_account_store_config,
};

shell_tests! {
    a_session_rebind_by_another_gateway_is_seen_within_local_copy_max_age_while_hit,
}

const MAX_AGE: Duration = Duration::from_secs(1);
/// What a request may take on a loaded machine, beyond the bound itself
const SLACK: Duration = Duration::from_secs(2);

/// The session binding of `key` in `group`, as Redis holds it (`{account}:{group}`)
async fn stored(conn: &mut redis::aio::MultiplexedConnection, group: &str, key: &str) -> String {
    let key = wsv2_core::store::StoreKey::session(group, key.as_bytes());
    let value: Option<String> = redis::cmd("GET")
        .arg(key.as_str())
        .query_async(conn)
        .await
        .expect("GET");
    value.unwrap_or_default()
}

async fn a_session_rebind_by_another_gateway_is_seen_within_local_copy_max_age_while_hit(
    shell: Shell,
) {
    let (m1, m2) = (store_mock().await, store_mock().await);
    let group = random_group(&format!("remote-{shell}"));
    let url = redis_url();
    let tune = |c: &mut wsv2_core::file_config::GatewayConfig| {
        c.core.store.store_op_timeout = Duration::from_millis(500);
        c.core.store.local_copy_max_age = MAX_AGE;
    };
    // A prefers account 1 (mock 1, the higher priority) and also has account 2; B has account 2
    // only, so B moves the session to account 2 when it serves it.
    let mut a_config = two_account_store_config((&m2, 2), (&m1, 1), &group, Some(&url));
    tune(&mut a_config);
    let mut b_config = two_account_store_config((&m2, 2), (&m1, 1), &group, Some(&url));
    b_config
        .accounts
        .retain(|account| account.id == AccountId(2));
    tune(&mut b_config);
    let a = shell.start(a_config).await.expect("gateway A");
    let b = shell.start(b_config).await.expect("gateway B");
    let (a, b) = (base(a.addr), base(b.addr));
    let mut redis = redis::Client::open(url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let request = |n: usize| {
        body(
            &format!("turn {n}"),
            json!({"prompt_cache_key": "thread-1"}),
        )
    };

    // A binds the session to account 1 and keeps it there.
    for n in 0..3 {
        let (status, text) = post(&a, &request(n)).await;
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!((creates(&m1), creates(&m2)), (3, 0));

    // B serves the session on account 2 and rebinds it there.
    let (status, text) = post(&b, &request(3)).await;
    assert_eq!(status, 200, "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stored(&mut redis, &group, "thread-1")
        .await
        .starts_with("2:")
    {
        assert!(Instant::now() < deadline, "B never rebound the session");
        tokio::task::yield_now().await;
    }
    let rebound = Instant::now();

    // A keeps hitting the key, back to back: it moves to account 2 within the bound.
    let mut n = 4;
    let moved = loop {
        let started = Instant::now();
        let before = creates(&m2);
        let (status, text) = post(&a, &request(n)).await;
        assert_eq!(status, 200, "{text}");
        if creates(&m2) > before {
            break started;
        }
        assert!(
            started < rebound + MAX_AGE + SLACK,
            "request {n} of A still went to account 1 {:?} after B's rebind",
            started - rebound
        );
        n += 1;
    };
    eprintln!(
        "{shell}: A moved {:?} after the rebind, after {} hits",
        moved - rebound,
        n - 4
    );
    // A's hits did not write their account back over B's rebind.
    assert!(
        stored(&mut redis, &group, "thread-1")
            .await
            .starts_with("2:")
    );
}
