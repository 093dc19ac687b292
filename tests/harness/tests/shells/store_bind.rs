//! A response→account binding the store does not take: the gateway still answers, logs one WARN
//! naming the group, the account and the response id (never a credential, prompt or body) and
//! counts it in `wsv2_bind_failures_total{kind="response"}`. A Redis-backed gateway reloads, and
//! the account is then named as the new configuration names it.

use std::time::Duration;

use serde_json::json;
use wsv2_core::file_config::GatewayConfig;
use wsv2_tests::client::{Credentials, WsClient};

use crate::support::common::{CLIENT_KEY, LogCapture, UPSTREAM_KEY, create};
use crate::support::http::{random_group, scrape, series, store_mock, use_store};
use crate::support::redis_readonly::ReadOnlyRedis;
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    a_binding_the_store_refuses_is_a_warn_with_group_account_and_response_and_is_counted,
    after_a_reload_a_refused_binding_names_the_account_as_reloaded,
}

/// The prompt of the turn, which must never reach the logs
const PROMPT: &str = "a prompt that stays out of the logs";

/// The demo configuration on `mock`, its store on `redis` (which refuses writes)
fn config(mock: &wsv2_mock::MockHandle, group: &str, redis: &ReadOnlyRedis) -> GatewayConfig {
    let mut c = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("demo config");
    use_store(&mut c, group, Some(&redis.url()));
    // Refused writes must not open the breaker (a skipped write is not a failed bind).
    c.core.store.breaker_failure_limit = 100;
    c
}

/// Runs one turn; its response id and the bind-failure line logged for it
async fn turn_and_its_warning(logs: &mut LogCapture, gateway: &GatewayHandle) -> (String, String) {
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("gateway upgrade");
    ws.send_json(&create(PROMPT, json!({}))).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let id = turn.last()["response"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let field = format!("response={id}");
    let line = logs
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("binding not written to the store") && l.contains(&field)
        })
        .await
        .unwrap_or_else(|| panic!("no bind-failure line:\n{}", logs.lines().join("\n")));
    assert!(line.contains(" WARN "), "logged at WARN: {line}");
    for secret in [UPSTREAM_KEY, CLIENT_KEY, PROMPT] {
        assert!(!line.contains(secret), "{secret:?} leaked into {line}");
    }
    (id, line)
}

async fn a_binding_the_store_refuses_is_a_warn_with_group_account_and_response_and_is_counted(
    shell: Shell,
) {
    let (redis, mock) = (ReadOnlyRedis::start().await, store_mock().await);
    let group = random_group(&format!("bindfail-{shell}"));
    let mut logs = LogCapture::start();
    let gateway = shell
        .start(config(&mock, &group, &redis))
        .await
        .expect("gateway");
    let (id, line) = turn_and_its_warning(&mut logs, &gateway).await;
    for field in [
        format!("group={group}"),
        "account=mock".to_owned(),
        format!("response={id}"),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    let text = scrape(gateway.admin_addr.expect("admin listener")).await;
    assert_eq!(
        series(&text, "wsv2_bind_failures_total{kind=\"response\"}"),
        1.0,
        "{text}"
    );
}

async fn after_a_reload_a_refused_binding_names_the_account_as_reloaded(shell: Shell) {
    let (redis, mock) = (ReadOnlyRedis::start().await, store_mock().await);
    let group = random_group(&format!("bindfail-reload-{shell}"));
    let mut logs = LogCapture::start();
    let mut c = config(&mock, &group, &redis);
    let gateway = shell.start(c.clone()).await.expect("gateway");
    let (_, line) = turn_and_its_warning(&mut logs, &gateway).await;
    assert!(line.contains("account=mock"), "{line}");
    // The same redis_url: a reload applies (it used to be refused whenever redis_url was set).
    c.accounts[0].name = "renamed".to_owned();
    let report = gateway.reload(c).await.expect("reload");
    assert!(report.needs_restart.is_empty(), "{report:?}");
    let (_, line) = turn_and_its_warning(&mut logs, &gateway).await;
    assert!(line.contains("account=renamed"), "{line}");
}
