//! `/healthz`, `/readyz`, and the account states readiness reflects: an upgrade refused with
//! 401 disables the account until a reload, a 429 cools it down until its reset.

use std::time::Duration;

use serde_json::{Value, json};
use wsv2_tests::client::{ConnectError, Credentials, WsClient};

use crate::support::Shell;
use crate::support::harden::{CLIENT_KEY, LogCapture, config_for, http_get, mock};

shell_tests! {
    healthz_is_up_and_readyz_is_ready_with_a_usable_account,
    an_upgrade_refused_with_401_disables_the_account_until_a_reload,
    an_upgrade_refused_with_429_cools_the_account_down_for_its_retry_after,
    readyz_says_not_ready_while_shutting_down,
    readyz_stays_ready_in_an_upstream_outage_unless_configured_otherwise,
}

async fn healthz_is_up_and_readyz_is_ready_with_a_usable_account(shell: Shell) {
    let mock = mock(|_| {}).await;
    let gateway = shell.start(config_for(&mock.ws_url())).await.unwrap();
    let (status, body) = http_get(gateway.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body) = http_get(gateway.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ready"
    );
    assert!(gateway.is_ready().await);
}

async fn an_upgrade_refused_with_401_disables_the_account_until_a_reload(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let mock = mock(|c| c.upgrade_status = Some(401)).await;
    let mut config = config_for(&mock.ws_url());
    config.core.ingress.ready_requires_upstream = true;
    let gateway = shell.start(config.clone()).await.unwrap();
    // The pool's warm dial meets the 401.
    let (_, line) = logs
        .wait_for(
            &["upstream dial failed", "HTTP 401"],
            Duration::from_secs(5),
        )
        .await
        .expect("the refusal is logged");
    assert!(
        line.contains("until the configuration is reloaded"),
        "{line}"
    );
    let (status, body) = http_get(gateway.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "not_ready"
    );
    // Liveness is unaffected.
    assert_eq!(http_get(gateway.addr, "/healthz").await.0, 200);
    // Clients are refused before the upgrade.
    match WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await {
        Err(ConnectError::Rejected { status, .. }) => assert_eq!(status, 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    // The credential is fixed upstream and the configuration reloaded: usable again.
    mock.set_upgrade_status(None);
    let report = gateway.reload(config).await.expect("reload");
    assert!(report.added.is_empty() && report.removed.is_empty());
    assert!(gateway.is_ready().await, "a reload re-enables the account");
    assert_eq!(http_get(gateway.addr, "/readyz").await.0, 200);
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade after reload");
    ws.send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "hi"}))
        .await
        .unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
}

async fn an_upgrade_refused_with_429_cools_the_account_down_for_its_retry_after(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    // The mock's 429 carries `retry-after: 1`.
    let mock = mock(|c| c.upgrade_status = Some(429)).await;
    let mut config = config_for(&mock.ws_url());
    config.core.ingress.ready_requires_upstream = true;
    let gateway = shell.start(config).await.unwrap();
    let (refused_at, line) = logs
        .wait_for(
            &["upstream dial failed", "HTTP 429"],
            Duration::from_secs(5),
        )
        .await
        .expect("the refusal is logged");
    assert!(
        line.contains("rate limited") && line.contains("reset in 1 s"),
        "{line}"
    );
    assert_eq!(http_get(gateway.addr, "/readyz").await.0, 503);
    mock.set_upgrade_status(None);
    // Not disabled: usable again once the reset has passed, with no reload.
    let (usable_at, _) = logs
        .wait_for(&["AccountUsable"], Duration::from_secs(5))
        .await
        .expect("the cooldown ends");
    let cooldown = usable_at - refused_at;
    assert!(cooldown >= Duration::from_millis(900), "{cooldown:?}");
    assert!(cooldown < Duration::from_millis(2500), "{cooldown:?}");
    assert_eq!(http_get(gateway.addr, "/readyz").await.0, 200);
    eprintln!("429 cooldown measured: {cooldown:?}");
}

async fn readyz_says_not_ready_while_shutting_down(shell: Shell) {
    let mock = mock(|_| {}).await;
    let gateway = shell.start(config_for(&mock.ws_url())).await.unwrap();
    assert_eq!(http_get(gateway.addr, "/readyz").await.0, 200);
    let report = gateway.shutdown().await;
    assert_eq!(report.sockets_cut, 0);
    assert!(!gateway.is_ready().await);
}

/// Issue 13 item 1: by default readiness does not depend on reaching an upstream (a load
/// balancer's bare 503 would replace the gateway's own error and `Retry-After`)
async fn readyz_stays_ready_in_an_upstream_outage_unless_configured_otherwise(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let mock = mock(|c| c.upgrade_status = Some(401)).await;
    let gateway = shell.start(config_for(&mock.ws_url())).await.unwrap();
    logs.wait_for(
        &["upstream dial failed", "HTTP 401"],
        Duration::from_secs(5),
    )
    .await
    .expect("the only account is disabled");
    let (status, body) = http_get(gateway.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ready"})
    );
    // Clients get the gateway's own answer instead.
    match WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await {
        Err(ConnectError::Rejected { status, .. }) => assert_eq!(status, 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
}
