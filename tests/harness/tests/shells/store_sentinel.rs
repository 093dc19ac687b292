//! The state store behind Redis Sentinel (`redis_url = "redis+sentinel://…/wsv2"`): two
//! gateways share chains through the master the sentinel names. The master crashes and the
//! sentinel promotes its replica: the gateways ask the sentinel again, and chains route by their
//! bindings, the chain started before the crash included (its bindings were replicated).

use std::time::Duration;

use tokio::time::Instant;

use crate::support::Shell;
use crate::support::redis_sentinel::RedisSentinel;
use crate::support::store_chain::{ANSWER_WITHIN, SharedStorePair, chain, on_one_account};

shell_tests! {
    a_sticky_chain_across_two_gateways_survives_a_sentinel_failover,
}

/// How long after the promotion service may take to return: the stale connection's first
/// failures, a breaker probe, one sentinel lookup
const RECOVERED_WITHIN: Duration = Duration::from_secs(15);

async fn a_sticky_chain_across_two_gateways_survives_a_sentinel_failover(shell: Shell) {
    let mut sentinel = RedisSentinel::start().await;
    let url = sentinel.url();
    let pair = SharedStorePair::start(shell, &url, "sentinel").await;
    let gateways = &pair.gateways;

    let last = chain(gateways, &sentinel, None, 3)
        .await
        .expect("chain before the failover");
    let home = pair.creates();
    assert!(on_one_account(home, 3), "{home:?}");
    let home_is_m1 = home.0 == 3;

    sentinel.crash_master().await;

    // The chain goes on, on its account, with every new binding written to the new master.
    let deadline = Instant::now() + RECOVERED_WITHIN;
    loop {
        let before = pair.creates();
        let outcome = tokio::time::timeout(
            ANSWER_WITHIN,
            chain(gateways, &sentinel, Some(last.clone()), 4),
        )
        .await
        .expect("a chain after the failover hangs");
        match outcome {
            Ok(_) => {
                let expected = if home_is_m1 { (4, 0) } else { (0, 4) };
                assert_eq!(
                    pair.creates_since(before),
                    expected,
                    "a continuation left the chain's account"
                );
                break;
            }
            Err(why) => assert!(
                Instant::now() < deadline,
                "service never returned after the failover: {why}"
            ),
        }
    }
}
