//! What the gateway answers itself: before the upgrade (HTTP) and after it (`error` events,
//! close codes).

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};
use wsv2_tests::client::{ConnectError, Credentials, WsClient};

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup, create};

shell_tests! {
    every_account_on_http_gets_426_before_the_upgrade,
    a_key_over_its_socket_cap_gets_429_with_retry_after,
    a_binary_frame_gets_an_error_event_and_the_socket_stays_open,
    a_message_over_16_mib_closes_the_client_with_1009,
    a_session_at_capacity_waits_at_most_2s_then_gets_a_503_error_event,
    after_the_clients_close_is_answered_the_gateway_closes_tcp_at_once,
}

async fn every_account_on_http_gets_426_before_the_upgrade(shell: Shell) {
    let setup = Setup::new(shell, |c| c.accounts[0].force_http = true).await;
    match WsClient::connect(&setup.gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await {
        Err(ConnectError::Rejected { status, body }) => {
            assert_eq!(status, 426, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert!(body["error"]["message"].is_string());
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
            assert_eq!(body["error"]["code"], "upgrade_required", "{body}");
        }
        other => panic!("expected 426, got {:?}", other.map(|_| ())),
    }
}

async fn a_key_over_its_socket_cap_gets_429_with_retry_after(shell: Shell) {
    let setup = Setup::new(shell, |c| {
        c.client_keys[0].max_sockets = 1;
        c.core.session.socket_cap_retry_after = Duration::from_millis(2500);
    })
    .await;
    let first = setup.client().await;
    let head = raw_upgrade(setup.gateway.addr).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    // session.socket_cap_retry_after, rounded up to whole seconds
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 3\r\n"),
        "{head}"
    );
    assert!(head.contains("too_many_sockets"), "{head}");
    drop(first);
}

/// Sends a WebSocket upgrade by hand and returns the whole HTTP answer (head and body)
async fn raw_upgrade(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/responses HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {CLIENT_KEY}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_binary_frame_gets_an_error_event_and_the_socket_stays_open(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut ws = setup.client().await.into_stream();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let event = next_event(&mut ws).await;
    assert_eq!(event["type"], "error");
    assert_eq!(event["status"], 400);
    // Still open: a turn works on the same socket.
    ws.send(Message::text(create("hi", json!({})).to_string()))
        .await
        .unwrap();
    loop {
        let event = next_event(&mut ws).await;
        if event["type"] == "response.completed" {
            break;
        }
        assert_ne!(event["type"], "error", "{event}");
    }
}

async fn a_message_over_16_mib_closes_the_client_with_1009(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut ws = setup.client().await;
    let limit = 16 * 1024 * 1024;
    let filler = "x".repeat(limit + 1 - r#"{"type":"response.create","input":""}"#.len());
    let text = format!(r#"{{"type":"response.create","input":"{filler}"}}"#);
    assert_eq!(text.len(), limit + 1);
    // The gateway may close while the client is still writing; that write error is expected.
    let _ = ws.send_text(text).await;
    let (_, close) = ws.read_until_closed().await.unwrap();
    assert_eq!(close.code, Some(1009), "{close:?}");
    assert!(setup.frames().is_empty(), "nothing reached upstream");
}

async fn a_session_at_capacity_waits_at_most_2s_then_gets_a_503_error_event(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    // Session A holds the only conn with a response that never ends.
    let mut a = setup.client().await;
    a.send_json(&create("stall", json!({"mock_fault": "stall_lane"})))
        .await
        .unwrap();
    let created = a.recv_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(created["type"], "response.created");
    let mut b = setup.client().await;
    let started = std::time::Instant::now();
    b.send_json(&create("waits", json!({}))).await.unwrap();
    let event = b.recv_event(Duration::from_secs(5)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(event["type"], "error", "{event}");
    assert_eq!(event["status"], 503, "{event}");
    assert!(waited >= Duration::from_millis(1900), "waited {waited:?}");
    assert!(waited <= Duration::from_millis(2500), "waited {waited:?}");
    assert_eq!(setup.handshakes().len(), 1, "no second conn beyond the cap");
}

async fn next_event(ws: &mut wsv2_tests::client::WsStream) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an event in time")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn after_the_clients_close_is_answered_the_gateway_closes_tcp_at_once(shell: Shell) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A linger this long would outlast the test: only the completed handshake can end it.
    let setup = Setup::new(shell, |c| {
        c.core.session.close_linger = Duration::from_secs(600)
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(setup.gateway.addr)
        .await
        .unwrap();
    let request = format!(
        "GET /v1/responses HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {CLIENT_KEY}\r\n\r\n",
        setup.gateway.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    // A masked close frame, code 1000, mask key 0 (RFC 6455 §5.5.1).
    tcp.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
        .await
        .unwrap();
    // Like RFC-following clients, wait for the server to close TCP after the handshake.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the gateway closed TCP after answering the close")
        .unwrap();
    assert_eq!(rest, [0x88, 0x02, 0x03, 0xE8], "the close answer, then EOF");
}
