//! The admin listener (`admin_listen`): `/metrics` and per-account readiness detail there, the
//! public listener keeping `/healthz` and a plain `/readyz` (issue 15 item 3).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsv2_core::file_config::GatewayConfig;

use crate::support::Shell;
use crate::support::harden::{CLIENT_KEY, LogCapture, UPSTREAM_KEY, http_get, mock};

shell_tests! {
    metrics_and_account_detail_are_on_the_admin_listener_only,
    the_admin_listener_serves_at_most_its_connection_cap,
}

fn two_accounts(good: &str, refusing: &str, extra: &str) -> GatewayConfig {
    let text = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}\n\
         [[client_keys]]\nkey = \"{CLIENT_KEY}\"\n\n\
         [[accounts]]\nid = 1\nname = \"good\"\ntoken = \"{UPSTREAM_KEY}\"\nbase_url = \"{good}\"\n\n\
         [[accounts]]\nid = 2\nname = \"refused\"\ntoken = \"{UPSTREAM_KEY}\"\nbase_url = \"{refusing}\"\n"
    );
    GatewayConfig::from_toml_str(&text, &|_| None).expect("valid")
}

async fn metrics_and_account_detail_are_on_the_admin_listener_only(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let good = mock(|_| {}).await;
    let refusing = mock(|c| c.upgrade_status = Some(401)).await;
    let gateway = shell
        .start(two_accounts(&good.ws_url(), &refusing.ws_url(), ""))
        .await
        .unwrap();
    let admin = gateway.admin_addr.expect("an admin listener by default");
    assert_ne!(admin, gateway.addr);
    // The warm dial of account 2 meets its 401: disabled until a reload.
    logs.wait_for(
        &["upstream dial failed", "HTTP 401"],
        Duration::from_secs(5),
    )
    .await
    .expect("the refusal is logged");

    // Public: no metrics, a plain readiness that names no account.
    let (status, body) = http_get(gateway.addr, "/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("admin listener (admin_listen)"), "{body}");
    let (status, body) = http_get(gateway.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"status":"ready"}"#);
    assert_eq!(http_get(gateway.addr, "/healthz").await.0, 200);

    // Admin: the metrics, and each account's state.
    let (status, metrics) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"wsv2_pool_conns{account="good",state="open"} "#),
        "{metrics}"
    );
    let (status, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["status"], "ready");
    assert_eq!(detail["upgrades"], "accepted", "{detail}");
    let accounts = detail["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 2, "{detail}");
    assert_eq!(accounts[0]["name"], "good");
    assert_eq!(accounts[0]["state"], "usable");
    assert_eq!(accounts[0]["transport"], "websocket");
    assert!(accounts[0]["pool"]["open"].is_u64(), "{detail}");
    assert_eq!(accounts[1]["name"], "refused");
    assert_eq!(accounts[1]["state"], "disabled", "{detail}");
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/v1/responses").await.0, 404);
    assert!(!body.contains(UPSTREAM_KEY) && !metrics.contains(UPSTREAM_KEY));

    // Shut down: the admin listener says why it is not ready.
    gateway.shutdown().await;
    let (status, body) = http_get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["reason"], "shutting down", "{detail}");
}

async fn the_admin_listener_serves_at_most_its_connection_cap(shell: Shell) {
    let good = mock(|_| {}).await;
    let mut config = two_accounts(&good.ws_url(), &good.ws_url(), "");
    config.core.ingress.max_admin_connections = 1;
    let gateway = shell.start(config).await.unwrap();
    let admin = gateway.admin_addr.unwrap();
    // One connection holds the only place (it sends nothing yet).
    let mut held = TcpStream::connect(admin).await.unwrap();
    // Served, so the held one was accepted first.
    let mut probe = TcpStream::connect(admin).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), probe.read_to_end(&mut answer))
        .await
        .expect("closed in time");
    assert!(
        answer.is_empty(),
        "over the cap: closed without an answer ({read:?}, {:?})",
        String::from_utf8_lossy(&answer)
    );
    // The held connection is still served.
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
