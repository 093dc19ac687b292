//! The state store under HTTP turns: two gateways sharing the machine's Redis route chains by
//! their bindings, and a Redis that is down never fails a request (the breaker's counters say
//! how often a decision waited).

use serde_json::json;
use tokio::net::TcpListener;
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::MockHandle;

use crate::support::http::{
    STORE_UPSTREAM_KEY, base, binding_written, body, creates, post, post_json, random_group,
    redis_url, scrape, series, store_mock, two_account_store_config, use_store,
};
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    store_true_chains_alternating_between_two_gateways_all_continue,
    a_store_false_continuation_on_the_other_gateway_gets_previous_response_not_found,
    redis_on_a_closed_port_never_fails_a_request_and_the_breaker_stops_the_waits,
    a_silent_redis_times_out_once_per_decision_until_the_breaker_opens,
}

/// A gateway with account 1 on `first` and account 2 on `second`; the first is preferred
async fn gateway(
    shell: Shell,
    first: (&MockHandle, u64),
    second: (&MockHandle, u64),
    group: &str,
    redis: Option<&str>,
) -> GatewayHandle {
    let c = two_account_store_config(first, second, group, redis);
    shell.start(c).await.expect("gateway")
}

async fn store_true_chains_alternating_between_two_gateways_all_continue(shell: Shell) {
    let (m1, m2) = (store_mock().await, store_mock().await);
    let group = random_group(&format!("alternate-{shell}"));
    let url = redis_url();
    // Each gateway prefers another account, so only the shared binding keeps a chain on the
    // account that stores it.
    let gw_a = gateway(shell, (&m1, 1), (&m2, 2), &group, Some(&url)).await;
    let gw_b = gateway(shell, (&m2, 2), (&m1, 1), &group, Some(&url)).await;
    let gateways = [base(gw_a.addr), base(gw_b.addr)];
    for start_on in 0..2 {
        let mut previous: Option<String> = None;
        for turn in 0..4 {
            let on = &gateways[(start_on + turn) % 2];
            let mut extra = json!({"store": true});
            if let Some(p) = &previous {
                extra["previous_response_id"] = json!(p);
            }
            let (status, response) = post_json(on, &body(&format!("turn {turn}"), extra)).await;
            assert_eq!(
                status, 200,
                "chain from {start_on}, turn {turn}: {response}"
            );
            previous = response["id"].as_str().map(str::to_owned);
            if let Some(id) = &previous {
                binding_written(&url, id).await;
            }
        }
    }
    // Chains started on A ran on mock 1 only, chains started on B on mock 2 only: 4 creates each.
    assert_eq!((creates(&m1), creates(&m2)), (4, 4));
}

async fn a_store_false_continuation_on_the_other_gateway_gets_previous_response_not_found(
    shell: Shell,
) {
    let (m1, m2) = (store_mock().await, store_mock().await);
    let group = random_group(&format!("storefalse-{shell}"));
    let url = redis_url();
    let gw_a = gateway(shell, (&m1, 1), (&m2, 2), &group, Some(&url)).await;
    let gw_b = gateway(shell, (&m2, 2), (&m1, 1), &group, Some(&url)).await;
    let (status, first) = post_json(&base(gw_a.addr), &body("one", json!({"store": false}))).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().expect("id");
    let (status, text) = post(
        &base(gw_b.addr),
        &body("two", json!({"store": false, "previous_response_id": id})),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("previous_response_not_found"), "{text}");
    // The same continuation on the gateway that holds the conn works.
    let (status, text) = post(
        &base(gw_a.addr),
        &body("two", json!({"store": false, "previous_response_id": id})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
}

/// A port with nothing listening
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

async fn redis_down_requests_succeed(shell: Shell, redis: String, limit: u32) -> String {
    let m = store_mock().await;
    let group = random_group(&format!("down-{shell}"));
    let mut c = GatewayConfig::demo(&m.ws_url(), STORE_UPSTREAM_KEY).expect("config");
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.core.store.breaker_failure_limit = limit;
    c.core.store.store_op_timeout = std::time::Duration::from_millis(200);
    c.core.store.breaker_probe_interval = std::time::Duration::from_secs(600);
    use_store(&mut c, &group, Some(&redis));
    let gw = shell.start(c).await.expect("gateway");
    for i in 0..8 {
        // A prompt_cache_key makes every decision look its session binding up.
        let extra = json!({"prompt_cache_key": format!("key-{i}")});
        let (status, text) = post(&base(gw.addr), &body("x", extra)).await;
        assert_eq!(status, 200, "request {i} with Redis down: {text}");
    }
    scrape(gw.admin_addr.expect("admin listener")).await
}

fn failed(text: &str, op: &str) -> f64 {
    series(text, &format!("wsv2_store_errors_total{{op=\"{op}\"}}"))
        + series(text, &format!("wsv2_store_timeouts_total{{op=\"{op}\"}}"))
}

/// Every decision either sent one get (breaker closed) or none (open): never more
fn assert_one_wait_at_most(text: &str, limit: f64) {
    assert_eq!(series(text, "wsv2_store_breaker_open"), 1.0, "{text}");
    assert_eq!(series(text, "wsv2_store_breaker_opened_total"), 1.0);
    let gets = series(text, "wsv2_store_lookup_gets_total");
    let misses = series(text, "wsv2_store_breaker_misses_total");
    assert_eq!(gets + misses, 8.0, "gets {gets} + breaker misses {misses}");
    assert!(gets >= 1.0 && gets <= limit, "gets {gets}");
}

async fn redis_on_a_closed_port_never_fails_a_request_and_the_breaker_stops_the_waits(
    shell: Shell,
) {
    let port = closed_port().await;
    let text = redis_down_requests_succeed(shell, format!("redis://127.0.0.1:{port}"), 2).await;
    assert_one_wait_at_most(&text, 2.0);
    assert!(failed(&text, "get") + failed(&text, "set") >= 2.0, "{text}");
}

async fn a_silent_redis_times_out_once_per_decision_until_the_breaker_opens(shell: Shell) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let text = redis_down_requests_succeed(shell, format!("redis://127.0.0.1:{port}"), 2).await;
    assert_one_wait_at_most(&text, 2.0);
    assert!(
        series(&text, "wsv2_store_timeouts_total{op=\"get\"}") >= 1.0,
        "{text}"
    );
    hold.abort();
}
