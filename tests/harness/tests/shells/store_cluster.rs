//! The state store on a Redis Cluster (`redis_url = "redis+cluster://…"`): two gateways share
//! chains through a local 3-master cluster, and a restart of the master holding a chain's
//! binding costs that chain at most one clear answer, never a hang; once the node is back,
//! chains route by their bindings again.

use std::time::Duration;

use serde_json::json;
use wsv2_mock::MockHandle;

use crate::support::http::{
    base, body, creates, post, post_json, random_group, store_mock, two_account_store_config,
};
use crate::support::redis_cluster::RedisCluster;
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    a_sticky_chain_across_two_gateways_survives_a_redis_cluster_node_restart,
}

/// Longer than the op timeout (3 s) and a retry: a continuation that takes this long hangs
const ANSWER_WITHIN: Duration = Duration::from_secs(12);

/// A gateway preferring account `first.1` on `first.0`, with `second` as the other account
async fn gateway(
    shell: Shell,
    first: (&MockHandle, u64),
    second: (&MockHandle, u64),
    group: &str,
    redis: &str,
) -> GatewayHandle {
    let mut c = two_account_store_config(first, second, group, Some(redis));
    // The breaker probes soon after the node is back, so the test's wait stays short.
    c.core.store.breaker_probe_interval = Duration::from_millis(200);
    shell.start(c).await.expect("gateway")
}

/// `turns` store:true turns alternating between the gateways, starting on `gateways[0]`, each
/// binding in the cluster before the next turn; the last id, or the first failure's answer
async fn chain(
    gateways: &[String; 2],
    cluster: &RedisCluster,
    turns: usize,
) -> Result<String, String> {
    let mut previous: Option<String> = None;
    for turn in 0..turns {
        let mut extra = json!({"store": true});
        if let Some(p) = &previous {
            extra["previous_response_id"] = json!(p);
        }
        let (status, response) =
            post_json(&gateways[turn % 2], &body(&format!("turn {turn}"), extra)).await;
        if status != 200 {
            return Err(format!("turn {turn}: {status} {response}"));
        }
        let id = response["id"].as_str().expect("id").to_owned();
        if !cluster.binding_written(&id).await {
            return Err(format!("turn {turn}: binding of {id} never written"));
        }
        previous = Some(id);
    }
    Ok(previous.expect("at least one turn"))
}

async fn a_sticky_chain_across_two_gateways_survives_a_redis_cluster_node_restart(shell: Shell) {
    let mut cluster = RedisCluster::start().await;
    let url = cluster.url();
    let (m1, m2) = (store_mock().await, store_mock().await);
    let group = random_group(&format!("cluster-{shell}"));
    // The gateways rank the two accounts in opposite orders: a chain alternating between them
    // stays on one mock only if every continuation reads the chain's binding from the cluster.
    let gw_b = gateway(shell, (&m2, 2), (&m1, 1), &group, &url).await;
    let gw_a = gateway(shell, (&m1, 1), (&m2, 2), &group, &url).await;
    let gateways = [base(gw_b.addr), base(gw_a.addr)];

    // B, A, B: every continuation on the other gateway found the chain's account.
    let last = chain(&gateways, &cluster, 3)
        .await
        .expect("chain on a healthy cluster");
    let on_one_account = |c: (usize, usize), n: usize| c == (n, 0) || c == (0, n);
    assert!(on_one_account((creates(&m1), creates(&m2)), 3));

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
        let before = (creates(&m1), creates(&m2));
        let outcome = tokio::time::timeout(ANSWER_WITHIN, chain(&gateways, &cluster, 4))
            .await
            .expect("a chain after the restart hangs");
        match outcome {
            Ok(_) => {
                let grew = (creates(&m1) - before.0, creates(&m2) - before.1);
                assert!(
                    on_one_account(grew, 4),
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
