//! The upstream dial path on real sockets: `wss://` through rustls (test CA via `tls_ca_file`),
//! through an HTTP CONNECT proxy and a SOCKS5 proxy, bounded steps that name themselves, and
//! proxy refusals that fail over; a forwarded POST (an account that resolves to HTTP) takes the
//! same route.

use std::time::{Duration, Instant};

use serde_json::json;
use wsv2_core::file_config::UpstreamUrl;
use wsv2_mock::Record;
use wsv2_tests::client::{Credentials, WsClient};

use crate::support::harden::{
    CLIENT_KEY, LogCapture, ProxyMode, config_for, http_connect_proxy, mock, silent_peer,
    socks5_proxy, tls_front,
};
use crate::support::http::{base, body, post, posts};
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    turns_succeed_through_an_http_connect_proxy_with_basic_auth_to_a_tls_upstream,
    turns_succeed_through_a_socks5_proxy_with_a_password_to_a_tls_upstream,
    an_untrusted_certificate_fails_the_tls_step_without_tls_ca_file,
    a_silent_tls_peer_behind_a_connect_proxy_fails_the_tls_step_at_its_own_limit,
    a_silent_proxy_is_cut_by_dial_timeout_naming_the_proxy_step,
    a_proxy_refusal_is_logged_clearly_and_the_create_fails_over_to_the_next_account,
    a_socks5_refusal_with_no_other_account_reaches_the_client_as_an_error_event,
    a_forward_account_posts_to_a_tls_upstream_signed_by_the_tls_ca_file_roots,
    a_forward_account_posts_through_its_http_connect_proxy_to_a_tls_upstream,
}

fn create(input: &str) -> serde_json::Value {
    json!({"type": "response.create", "model": "gpt-5", "input": input})
}

fn handshakes(mock: &wsv2_mock::MockHandle) -> usize {
    mock.records()
        .iter()
        .filter(|r| matches!(r, Record::Handshake { .. }))
        .count()
}

async fn two_chained_turns(gateway: &GatewayHandle) {
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade");
    ws.send_json(&create("hello")).await.unwrap();
    let first = ws.read_turn().await.unwrap();
    assert_eq!(
        first.last_type(),
        "response.completed",
        "{:?}",
        first.events
    );
    let mut second = create("again");
    second["previous_response_id"] = json!(first.response_id().unwrap());
    ws.send_json(&second).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
}

async fn turns_succeed_through_an_http_connect_proxy_with_basic_auth_to_a_tls_upstream(
    shell: Shell,
) {
    let mock = mock(|_| {}).await;
    let tls = tls_front(mock.addr()).await;
    let proxy = http_connect_proxy(ProxyMode::Tunnel).await;
    let mut config = config_for(&format!("wss://127.0.0.1:{}/v1/responses", tls.addr.port()));
    config.accounts[0].proxy = Some(proxy.url("http", Some(("gw", "s3cret"))));
    let gateway = shell.start(config).await.expect("starts");
    two_chained_turns(&gateway).await;
    let log = proxy.log();
    assert!(log.tunnels >= 1, "{log:?}");
    let target = format!("127.0.0.1:{}", tls.addr.port());
    assert!(log.targets.iter().all(|t| *t == target), "{log:?}");
    // base64("gw:s3cret")
    assert!(
        log.auth
            .iter()
            .all(|a| a.as_deref() == Some("Basic Z3c6czNjcmV0")),
        "{log:?}"
    );
    assert!(
        handshakes(&mock) >= 1,
        "the mock saw the upgrade through TLS"
    );
}

async fn turns_succeed_through_a_socks5_proxy_with_a_password_to_a_tls_upstream(shell: Shell) {
    let mock = mock(|_| {}).await;
    let tls = tls_front(mock.addr()).await;
    let proxy = socks5_proxy(ProxyMode::Tunnel).await;
    let mut config = config_for(&format!("wss://127.0.0.1:{}/v1/responses", tls.addr.port()));
    config.accounts[0].proxy = Some(proxy.url("socks5", Some(("gw", "s3cret"))));
    let gateway = shell.start(config).await.expect("starts");
    two_chained_turns(&gateway).await;
    let log = proxy.log();
    assert!(log.tunnels >= 1, "{log:?}");
    let target = format!("127.0.0.1:{}", tls.addr.port());
    assert!(log.targets.iter().all(|t| *t == target), "{log:?}");
    assert!(
        log.auth.iter().all(|a| a.as_deref() == Some("gw:s3cret")),
        "{log:?}"
    );
    assert!(handshakes(&mock) >= 1);
}

async fn an_untrusted_certificate_fails_the_tls_step_without_tls_ca_file(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let mock = mock(|_| {}).await;
    let tls = tls_front(mock.addr()).await;
    let mut config = config_for(&format!("wss://127.0.0.1:{}/v1/responses", tls.addr.port()));
    config.tls_ca_file = None;
    let _gateway = shell.start(config).await.expect("starts");
    let (_, line) = logs
        .wait_for(
            &["upstream dial failed", "TLS handshake"],
            Duration::from_secs(5),
        )
        .await
        .expect("a TLS failure is logged");
    assert!(line.contains("failed"), "{line}");
    assert_eq!(handshakes(&mock), 0, "nothing reached upstream");
}

async fn a_silent_tls_peer_behind_a_connect_proxy_fails_the_tls_step_at_its_own_limit(
    shell: Shell,
) {
    let (logs, _guard) = LogCapture::install();
    let silent = silent_peer().await;
    let proxy = http_connect_proxy(ProxyMode::Tunnel).await;
    let mut config = config_for(&format!(
        "wss://127.0.0.1:{}/v1/responses",
        silent.addr.port()
    ));
    config.accounts[0].proxy = Some(proxy.url("http", None));
    config.core.upstream.tls_handshake_timeout = Duration::from_millis(300);
    config.core.upstream.dial_timeout = Duration::from_millis(3000);
    let started = Instant::now();
    let _gateway = shell.start(config).await.expect("starts");
    // The pool's warm dial starts at once.
    let (at, line) = logs
        .wait_for(&["upstream dial failed"], Duration::from_secs(5))
        .await
        .expect("the dial fails");
    let took = at - started;
    assert!(
        line.contains("TLS handshake") && line.contains("upstream.tls_handshake_timeout"),
        "the TLS step's own limit fired: {line}"
    );
    assert!(!line.contains("upstream.dial_timeout"), "{line}");
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(proxy.log().tunnels, 1, "the tunnel itself was up");
}

async fn a_silent_proxy_is_cut_by_dial_timeout_naming_the_proxy_step(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let silent = silent_peer().await;
    let mut config = config_for("wss://127.0.0.1:9/v1/responses");
    config.accounts[0].proxy =
        Some(wsv2_core::file_config::ProxyUrl::parse(&format!("http://{}", silent.addr)).unwrap());
    config.core.upstream.tls_handshake_timeout = Duration::from_millis(200);
    config.core.upstream.dial_timeout = Duration::from_millis(400);
    let started = Instant::now();
    let _gateway = shell.start(config).await.expect("starts");
    let (at, line) = logs
        .wait_for(&["upstream dial failed"], Duration::from_secs(5))
        .await
        .expect("the dial fails");
    let took = at - started;
    assert!(
        line.contains("upstream.dial_timeout") && line.contains("proxy handshake step"),
        "the overall limit fired in the proxy step: {line}"
    );
    assert!(took >= Duration::from_millis(400), "took {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

async fn a_proxy_refusal_is_logged_clearly_and_the_create_fails_over_to_the_next_account(
    shell: Shell,
) {
    let (logs, _guard) = LogCapture::install();
    let mock = mock(|_| {}).await;
    let proxy = http_connect_proxy(ProxyMode::Refuse(407)).await;
    // Account 1 (preferred) sits behind a proxy that refuses; account 2 is direct.
    let mut config = config_for("wss://127.0.0.1:9/v1/responses");
    config.accounts[0].proxy = Some(proxy.url("http", None));
    config.accounts[0].priority = 10;
    let mut direct = config.accounts[0].clone();
    direct.id = wsv2_core::AccountId(2);
    direct.name = "direct".to_owned();
    direct.priority = 0;
    direct.proxy = None;
    direct.base_url = UpstreamUrl::parse(&mock.ws_url()).unwrap();
    config.accounts.push(direct);
    let gateway = shell.start(config).await.expect("starts");
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade");
    let sent = Instant::now();
    ws.send_json(&create("fail over")).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let (_, line) = logs
        .wait_for(
            &["upstream dial failed", "refused the tunnel"],
            Duration::ZERO,
        )
        .await
        .expect("the refusal was logged before the turn ended");
    assert!(
        line.contains("407") && line.contains(&proxy.fixture.addr.to_string()),
        "{line}"
    );
    assert!(!proxy.log().targets.is_empty());
    assert!(handshakes(&mock) >= 1, "account 2 served the turn");
    eprintln!("fail-over turn took {:?}", sent.elapsed());
}

async fn a_socks5_refusal_with_no_other_account_reaches_the_client_as_an_error_event(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let proxy = socks5_proxy(ProxyMode::Refuse(2)).await;
    let mut config = config_for("wss://127.0.0.1:9/v1/responses");
    config.accounts[0].proxy = Some(proxy.url("socks5", None));
    config.core.pool.session_acquire_wait = Duration::from_millis(300);
    config.core.scheduler.retry_total_budget = Duration::from_millis(600);
    let gateway = shell.start(config).await.expect("starts");
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade");
    let sent = Instant::now();
    ws.send_json(&create("nowhere to go")).await.unwrap();
    let event = ws.recv_event(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event["type"], "error", "{event}");
    eprintln!("error event after {:?}: {event}", sent.elapsed());
    let (_, line) = logs
        .wait_for(&["upstream dial failed", "SOCKS5"], Duration::ZERO)
        .await
        .expect("the refusal was logged");
    assert!(line.contains("not allowed by ruleset"), "{line}");
}

async fn a_forward_account_posts_to_a_tls_upstream_signed_by_the_tls_ca_file_roots(shell: Shell) {
    let mock = mock(|_| {}).await;
    let tls = tls_front(mock.addr()).await;
    // The test CA is only in `tls_ca_file`: the webpki roots alone refuse the leaf.
    let mut config = config_for(&format!("wss://127.0.0.1:{}/v1/responses", tls.addr.port()));
    config.accounts[0].force_http = true;
    let gateway = shell.start(config).await.expect("starts");
    let (status, text) = post(&base(gateway.addr), &body("over TLS", json!({}))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(posts(&mock), 1, "the POST reached upstream through TLS");
}

async fn a_forward_account_posts_through_its_http_connect_proxy_to_a_tls_upstream(shell: Shell) {
    let mock = mock(|_| {}).await;
    let tls = tls_front(mock.addr()).await;
    let proxy = http_connect_proxy(ProxyMode::Tunnel).await;
    let mut config = config_for(&format!("wss://127.0.0.1:{}/v1/responses", tls.addr.port()));
    config.accounts[0].force_http = true;
    config.accounts[0].proxy = Some(proxy.url("http", Some(("gw", "s3cret"))));
    let gateway = shell.start(config).await.expect("starts");
    let (status, text) = post(&base(gateway.addr), &body("via proxy", json!({}))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(posts(&mock), 1);
    let log = proxy.log();
    assert_eq!(log.tunnels, 1, "the POST went through the proxy: {log:?}");
    assert_eq!(log.targets, [format!("127.0.0.1:{}", tls.addr.port())]);
    // base64("gw:s3cret")
    assert_eq!(log.auth, [Some("Basic Z3c6czNjcmV0".to_owned())]);
}
