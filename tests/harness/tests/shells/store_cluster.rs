//! The state store on a Redis Cluster (`redis_url = "redis+cluster://…"`): two gateways share
//! chains through a local 3-master cluster, and a restart of the master holding a chain's
//! binding costs that chain at most one clear answer, never a hang; once the node is back,
//! chains route by their bindings again.

use std::time::Duration;

use serde_json::json;

use crate::support::Shell;
use crate::support::http::{body, post};
use crate::support::redis_cluster::RedisCluster;
use crate::support::store_chain::{ANSWER_WITHIN, SharedStorePair, chain, on_one_account};

shell_tests! {
    a_sticky_chain_across_two_gateways_survives_a_redis_cluster_node_restart,
}

async fn a_sticky_chain_across_two_gateways_survives_a_redis_cluster_node_restart(shell: Shell) {
    let mut cluster = RedisCluster::start().await;
    let url = cluster.url();
    let pair = SharedStorePair::start(shell, &url, "cluster").await;
    let gateways = &pair.gateways;

    // B, A, B: every continuation on the other gateway found the chain's account.
    let last = chain(gateways, &cluster, None, 3)
        .await
        .expect("chain on a healthy cluster");
    assert!(on_one_account(pair.creates(), 3));

    // The master holding the last binding crashes; A, which never saw that binding, continues
    // (on its own preference, the right account or not: either outcome is one clear answer).
    let key = wsv2_core::store::StoreKey::response(last.as_bytes());
    let owner = cluster.owner_of(key.as_str()).await;
    cluster.kill(owner);
    let continuation = body(
        "turn 3",
        json!({"store": true, "previous_response_id": last}),
    );
    let (status, text) = tokio::time::timeout(ANSWER_WITHIN, post(&gateways[1], &continuation))
        .await
        .expect("a continuation while a master is down hangs");
    if status != 200 {
        // One clear error: a status and an OpenAI-style error body.
        assert!((400..600).contains(&status), "{status} {text}");
        let error: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert!(error["error"]["message"].is_string(), "{text}");
    }

    // The node comes back: chains route by their bindings again (the breaker may need a probe
    // or two first, so whole chains are retried until one goes through, within a bound).
    cluster.restart(owner).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let before = pair.creates();
        let outcome = tokio::time::timeout(ANSWER_WITHIN, chain(gateways, &cluster, None, 4))
            .await
            .expect("a chain after the restart hangs");
        match outcome {
            Ok(_) => {
                assert!(
                    on_one_account(pair.creates_since(before), 4),
                    "a continuation left the chain's account"
                );
                break;
            }
            Err(why) => assert!(
                tokio::time::Instant::now() < deadline,
                "service never returned after the node restart: {why}"
            ),
        }
    }
}
