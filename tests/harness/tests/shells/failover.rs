//! Failover from dead accounts on real sockets (issue 13 items 1 and 12): one account a closed
//! port or a listener that accepts TCP and never answers, the other a healthy mock. Every
//! session and POST completes, the moves show in `wsv2_failovers_total`, and when every account
//! is rate limited the client gets 429 with `Retry-After`.

use std::time::Duration;

use serde_json::json;
use wsv2_core::AccountId;
use wsv2_core::file_config::{GatewayConfig, UpstreamUrl};
use wsv2_tests::client::{Credentials, WsClient};

use crate::support::harden::{CLIENT_KEY, UPSTREAM_KEY, mock, silent_peer};
use crate::support::http::{base, body, post, scrape, series};
use crate::support::raw::exchange;
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    sessions_and_posts_fail_over_from_a_closed_port_to_the_healthy_account,
    sessions_and_posts_fail_over_from_a_silent_listener_to_the_healthy_account,
    every_account_rate_limited_answers_429_with_retry_after_on_upgrade_and_post,
}

const SESSIONS: usize = 8;

/// A port nothing listens on
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Account 1 at `dead` (tried first: equal priority, lower id), account 2 the mock
fn two_accounts(dead: &str, healthy: &str) -> GatewayConfig {
    let mut config = GatewayConfig::demo(dead, UPSTREAM_KEY).expect("config");
    config.listen = "127.0.0.1:0".parse().unwrap();
    let mut second = config.accounts[0].clone();
    second.id = AccountId(2);
    second.name = "healthy".to_owned();
    second.base_url = UpstreamUrl::parse(healthy).unwrap();
    config.accounts[0].name = "dead".to_owned();
    config.accounts.push(second);
    // No warm dials: the first session itself meets the dead account.
    config.core.pool.min_idle_per_account = 0;
    config.core.upstream.dial_timeout = Duration::from_secs(2);
    config.core.upstream.tls_handshake_timeout = Duration::from_secs(2);
    config
}

async fn first_turns_complete(gateway: &GatewayHandle) {
    for i in 0..SESSIONS {
        let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
            .await
            .expect("upgrade");
        ws.send_json(
            &json!({"type": "response.create", "model": "gpt-5", "input": format!("s{i}")}),
        )
        .await
        .unwrap();
        let turn = ws.read_turn().await.expect("a turn");
        assert_eq!(
            turn.last_type(),
            "response.completed",
            "session {i}: {:?}",
            turn.events
        );
    }
    for i in 0..SESSIONS {
        let (status, text) = post(&base(gateway.addr), &body(&format!("p{i}"), json!({}))).await;
        assert_eq!(status, 200, "POST {i}: {text}");
    }
}

async fn failovers(gateway: &GatewayHandle, transport: &str) -> f64 {
    let text = scrape(gateway.admin_addr.expect("admin listener")).await;
    series(
        &text,
        &format!("wsv2_failovers_total{{transport=\"{transport}\"}}"),
    )
}

async fn sessions_and_posts_fail_over_from_a_closed_port_to_the_healthy_account(shell: Shell) {
    let mock = mock(|_| {}).await;
    let dead = format!("ws://127.0.0.1:{}/v1/responses", closed_port().await);
    let gateway = shell
        .start(two_accounts(&dead, &mock.ws_url()))
        .await
        .expect("starts");
    first_turns_complete(&gateway).await;
    assert!(failovers(&gateway, "ws").await > 0.0, "WS sessions moved");
    let readyz = exchange(
        gateway.addr,
        b"GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(readyz.status, Some(200), "{readyz:?}");
}

async fn sessions_and_posts_fail_over_from_a_silent_listener_to_the_healthy_account(shell: Shell) {
    let mock = mock(|_| {}).await;
    let silent = silent_peer().await;
    let dead = format!("ws://{}/v1/responses", silent.addr);
    let gateway = shell
        .start(two_accounts(&dead, &mock.ws_url()))
        .await
        .expect("starts");
    let started = std::time::Instant::now();
    first_turns_complete(&gateway).await;
    assert!(failovers(&gateway, "ws").await > 0.0, "WS sessions moved");
    eprintln!(
        "{SESSIONS} sessions + {SESSIONS} POSTs took {:?}",
        started.elapsed()
    );
}

async fn every_account_rate_limited_answers_429_with_retry_after_on_upgrade_and_post(shell: Shell) {
    // Both accounts answer every upgrade with 429.
    let mock = mock(|m| m.upgrade_status = Some(429)).await;
    let gateway = shell
        .start(two_accounts(&mock.ws_url(), &mock.ws_url()))
        .await
        .expect("starts");
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade: no account has failed yet");
    ws.send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "hi"}))
        .await
        .unwrap();
    let event = ws.recv_event(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event["type"], "error", "{event}");
    assert_eq!(
        event["status"], 429,
        "every account is rate limited: {event}"
    );

    let upgrade = exchange(
        gateway.addr,
        b"GET /v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-gw-demo\r\n\
          Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(upgrade.status, Some(429), "{upgrade:?}");
    assert_retry_after(&upgrade.head);

    let payload = body("p", json!({})).to_string();
    let request = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let answer = exchange(gateway.addr, request.as_bytes()).await;
    assert_eq!(answer.status, Some(429), "{answer:?}");
    assert_retry_after(&answer.head);
    let (status, text) = post(&base(gateway.addr), &body("again", json!({}))).await;
    assert_eq!(status, 429, "{text}");
}

fn assert_retry_after(head: &str) {
    let value = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    let seconds: u64 = value.parse().expect("whole seconds");
    assert!((1..=60).contains(&seconds), "{seconds}");
}
