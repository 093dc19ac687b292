//! What the gateway answers itself: before the upgrade (HTTP) and after it (`error` events,
//! close codes).

mod common;

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};
use wsv2_tests::client::{ConnectError, Credentials, WsClient};

use common::{CLIENT_KEY, Setup, create};

#[tokio::test]
async fn every_account_on_http_gets_426_before_the_upgrade() {
    let setup = Setup::new(|c| c.accounts[0].force_http = true).await;
    match WsClient::connect(&setup.gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await {
        Err(ConnectError::Rejected { status, body }) => {
            assert_eq!(status, 426, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert!(body["error"]["message"].is_string());
        }
        other => panic!("expected 426, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_key_over_its_socket_cap_gets_429_with_retry_after() {
    let setup = Setup::new(|c| c.client_keys[0].max_sockets = 1).await;
    let first = setup.client().await;
    match WsClient::connect(&setup.gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await {
        Err(ConnectError::Rejected { status, .. }) => assert_eq!(status, 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    drop(first);
}

#[tokio::test]
async fn a_binary_frame_gets_an_error_event_and_the_socket_stays_open() {
    let setup = Setup::new(|_| {}).await;
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

#[tokio::test]
async fn a_message_over_16_mib_closes_the_client_with_1009() {
    let setup = Setup::new(|_| {}).await;
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

#[tokio::test]
async fn a_session_at_capacity_waits_at_most_2s_then_gets_a_503_error_event() {
    let setup = Setup::single_conn().await;
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
