//! What the shared-store scenarios (`store_cluster`, `store_sentinel`) share: two gateways that
//! rank two accounts in opposite orders, and a `store:true` chain alternating between them, which
//! stays on one account only if every continuation reads the chain's binding from the store.

use std::time::Duration;

use serde_json::json;
use wsv2_mock::MockHandle;

use super::http::{
    base, body, creates, post_json, random_group, store_mock, two_account_store_config,
};
use super::{GatewayHandle, Shell};

/// Longer than the op timeout (3 s) and a retry: a continuation that takes this long hangs
pub const ANSWER_WITHIN: Duration = Duration::from_secs(12);

/// A store the test can ask whether a response's binding was written
pub trait Bindings {
    /// Waits a short bounded time for the binding of response `id`; whether it came
    async fn binding_written(&self, id: &str) -> bool;
}

/// Two gateways sharing one store, each with two accounts on two mocks, ranked in opposite
/// orders: a chain alternating between them stays on one mock only if every continuation reads
/// the chain's binding from the store
pub struct SharedStorePair {
    mocks: (MockHandle, MockHandle),
    /// The gateways' base URLs: the first prefers the second mock's account, the other the first's
    pub gateways: [String; 2],
    _running: [GatewayHandle; 2],
}

impl SharedStorePair {
    /// Starts the mocks and the gateways on `shell`, sharing `redis` in a fresh group named
    /// after `tag`
    pub async fn start(shell: Shell, redis: &str, tag: &str) -> Self {
        let (m1, m2) = (store_mock().await, store_mock().await);
        let group = random_group(&format!("{tag}-{shell}"));
        let gw_b = gateway(shell, (&m2, 2), (&m1, 1), &group, redis).await;
        let gw_a = gateway(shell, (&m1, 1), (&m2, 2), &group, redis).await;
        Self {
            gateways: [base(gw_b.addr), base(gw_a.addr)],
            mocks: (m1, m2),
            _running: [gw_b, gw_a],
        }
    }

    /// The creates each mock has seen
    pub fn creates(&self) -> (usize, usize) {
        (creates(&self.mocks.0), creates(&self.mocks.1))
    }

    /// The creates each mock has seen since `before`
    pub fn creates_since(&self, before: (usize, usize)) -> (usize, usize) {
        let now = self.creates();
        (now.0 - before.0, now.1 - before.1)
    }
}

/// A gateway preferring account `first.1` on `first.0`, with `second` as the other account
async fn gateway(
    shell: Shell,
    first: (&MockHandle, u64),
    second: (&MockHandle, u64),
    group: &str,
    redis: &str,
) -> GatewayHandle {
    let mut c = two_account_store_config(first, second, group, Some(redis));
    // The breaker probes soon after the store is back, so the tests' waits stay short.
    c.core.store.breaker_probe_interval = Duration::from_millis(200);
    shell.start(c).await.expect("gateway")
}

/// `turns` store:true turns alternating between the gateways, starting on `gateways[0]` and
/// continuing `previous` when given, each binding in the store before the next turn; the last
/// id, or the first failure's answer
pub async fn chain(
    gateways: &[String; 2],
    store: &impl Bindings,
    previous: Option<String>,
    turns: usize,
) -> Result<String, String> {
    let mut previous = previous;
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
        if !store.binding_written(&id).await {
            return Err(format!("turn {turn}: binding of {id} never written"));
        }
        previous = Some(id);
    }
    Ok(previous.expect("at least one turn"))
}

/// Whether `creates` (per mock) grew by `n` on one mock and 0 on the other
pub fn on_one_account(creates: (usize, usize), n: usize) -> bool {
    creates == (n, 0) || creates == (0, n)
}
