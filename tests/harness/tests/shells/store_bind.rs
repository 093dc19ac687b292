//! A response→account binding the store does not take: the gateway still answers, logs one WARN
//! naming the group, the account and the response id (never a credential, prompt or body) and
//! counts it in `wsv2_bind_failures_total{kind="response"}`.

use std::time::Duration;

use serde_json::json;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, LogCapture, Setup, UPSTREAM_KEY, create};
use crate::support::http::{random_group, scrape, series, use_store};
use crate::support::redis_readonly::ReadOnlyRedis;

shell_tests! {
    a_binding_the_store_refuses_is_a_warn_with_group_account_and_response_and_is_counted,
}

/// The prompt of the turn, which must never reach the logs
const PROMPT: &str = "a prompt that stays out of the logs";

async fn a_binding_the_store_refuses_is_a_warn_with_group_account_and_response_and_is_counted(
    shell: Shell,
) {
    let redis = ReadOnlyRedis::start().await;
    let group = random_group(&format!("bindfail-{shell}"));
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, |c| {
        use_store(c, &group, Some(&redis.url()));
        // One refused write must not open the breaker (a skipped write is not a failed bind).
        c.core.store.breaker_failure_limit = 100;
    })
    .await;
    let mut ws = setup.client().await;
    ws.send_json(&create(PROMPT, json!({}))).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let id = turn.last()["response"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let line = logs
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("binding not written to the store")
        })
        .await
        .unwrap_or_else(|| panic!("no bind-failure line:\n{}", logs.lines().join("\n")));
    assert!(line.contains(" WARN "), "logged at WARN: {line}");
    for field in [
        format!("group={group}"),
        "account=mock".to_owned(),
        format!("response={id}"),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    for secret in [UPSTREAM_KEY, CLIENT_KEY, PROMPT] {
        assert!(!line.contains(secret), "{secret:?} leaked into {line}");
    }

    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    assert_eq!(
        series(&text, "wsv2_bind_failures_total{kind=\"response\"}"),
        1.0,
        "{text}"
    );
}
