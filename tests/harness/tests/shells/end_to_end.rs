//! A WebSocket client through the gateway to the mock upstream, on real sockets.

use serde_json::json;
use wsv2_tests::client::{ConnectError, Credentials, WsClient};

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup, create};

shell_tests! {
    two_chained_turns_stream_through_the_gateway,
    a_bad_key_gets_401_before_the_upgrade,
}

async fn two_chained_turns_stream_through_the_gateway(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    let mut ws = setup.client().await;
    ws.send_json(&create("hello", json!({}))).await.unwrap();
    let first = ws.read_turn().await.unwrap();
    assert_eq!(
        first.last_type(),
        "response.completed",
        "{:?}",
        first.events
    );
    assert!(
        first
            .events
            .iter()
            .any(|e| e["type"] == "response.output_text.delta")
    );
    let id = first.response_id().expect("response id").to_owned();
    let mut second = create("again", json!({}));
    second["previous_response_id"] = json!(id);
    ws.send_json(&second).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    assert_ne!(turn.response_id(), Some(id.as_str()));
    // Both creates reached the mock on one upstream conn, chained.
    let frames = setup.frames();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].0, frames[1].0);
    assert_eq!(frames[1].1["previous_response_id"], json!(id));
    // The mock saw the account's key, never the client's.
    let auth: Vec<String> = setup
        .mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            wsv2_mock::Record::Handshake { headers, .. } => headers.get("authorization").cloned(),
            _ => None,
        })
        .collect();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| !a.contains("demo")),
        "{auth:?}"
    );
    ws.close(1000).await.unwrap();
}

async fn a_bad_key_gets_401_before_the_upgrade(shell: Shell) {
    let setup = Setup::new(shell, |_| {}).await;
    for creds in [Credentials::bearer("sk-wrong"), Credentials::bearer("")] {
        match WsClient::connect(&setup.gateway.ws_url(), &creds).await {
            Err(ConnectError::Rejected { status, body }) => {
                assert_eq!(status, 401);
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"]["code"], "invalid_api_key");
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
    }
    assert!(
        setup.handshakes().is_empty(),
        "no upstream conn for a refused client"
    );
    let _ = CLIENT_KEY;
}
