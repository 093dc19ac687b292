//! The four verbatim error shapes of protocol.md §4.4, stored under `tests/fixtures/`, compared
//! with what the mock sends. The ids in the fixtures (`resp_abc`, `main`, `agent_33`) are chosen
//! by the client, so the test sends exactly those and no masking is needed.

mod common;

use std::time::Duration;

use common::{Client, cfg, create, mock};
use serde_json::{Value, json};
use wsv2_mock::MockConfig;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

#[tokio::test]
async fn previous_response_not_found_matches_the_reference() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let sent = client
        .turn(create(
            json!({"stream_id": "main", "store": false, "previous_response_id": "resp_abc"}),
        ))
        .await;
    assert_eq!(
        sent,
        vec![fixture(include_str!(
            "fixtures/previous_response_not_found.json"
        ))]
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn invalid_stream_id_matches_the_reference() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let sent = client.turn(create(json!({"stream_id": ""}))).await;
    assert_eq!(
        sent,
        vec![fixture(include_str!("fixtures/invalid_stream_id.json"))]
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn websocket_stream_limit_reached_matches_the_reference() {
    let mock = mock(MockConfig { deltas: 0, ..cfg() }).await;
    let mut client = Client::connect(&mock).await;
    for n in 1..=32 {
        client
            .turn(create(json!({"stream_id": format!("agent_{n}")})))
            .await;
    }
    let sent = client.turn(create(json!({"stream_id": "agent_33"}))).await;
    assert_eq!(
        sent,
        vec![fixture(include_str!(
            "fixtures/websocket_stream_limit_reached.json"
        ))]
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn websocket_connection_limit_reached_matches_the_reference() {
    let mock = mock(MockConfig {
        lifetime: Duration::ZERO,
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    let sent = client.turn(create(json!({}))).await;
    assert_eq!(
        sent,
        vec![fixture(include_str!(
            "fixtures/websocket_connection_limit_reached.json"
        ))]
    );
    mock.shutdown().await;
}
