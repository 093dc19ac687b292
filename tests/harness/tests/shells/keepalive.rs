//! Client keepalive (`session.client_ping_interval`, `client_pong_timeout`): the session decides,
//! the shell sends the pings and reports the pongs.

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::Shell;
use crate::support::common::{LogCapture, Setup, create};

shell_tests! {
    a_client_that_answers_pings_is_pinged_again_and_stays_open,
    a_client_that_never_answers_a_ping_is_closed_with_1001,
    dials_carry_the_pool_keys_beta_headers_and_the_sessions_own_headers,
}

const WAIT: Duration = Duration::from_secs(10);

/// The pong timeout is kept below the interval: the core re-arms the pong deadline with every
/// ping, so a timeout longer than the interval would never fire (reported to the core's owner).
fn fast_keepalive(c: &mut wsv2_core::file_config::GatewayConfig) {
    c.core.session.client_ping_interval = Duration::from_millis(100);
    c.core.session.client_pong_timeout = Duration::from_millis(60);
}

async fn next_message(ws: &mut wsv2_tests::client::WsStream) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a frame in time")
        .expect("socket open")
        .expect("no error")
}

async fn a_client_that_answers_pings_is_pinged_again_and_stays_open(shell: Shell) {
    let setup = Setup::new(shell, fast_keepalive).await;
    let mut ws = setup.client().await.into_stream();
    // Reading answers each ping (tungstenite queues the pong and flushes it on the next read).
    for _ in 0..3 {
        let msg = next_message(&mut ws).await;
        assert!(matches!(msg, Message::Ping(_)), "{msg:?}");
    }
    // Three intervals later, the socket still serves a turn.
    ws.send(Message::text(create("still here", json!({})).to_string()))
        .await
        .unwrap();
    loop {
        match next_message(&mut ws).await {
            Message::Text(text) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_ne!(event["type"], "error", "{event}");
                if event["type"] == "response.completed" {
                    break;
                }
            }
            Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn a_client_that_never_answers_a_ping_is_closed_with_1001(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, fast_keepalive).await;
    let mut ws = setup.client().await.into_stream();
    // Not reading means not answering: wait until the session has given the client up.
    let gone = logs.wait_for(WAIT, |l| l.contains("ClientGone")).await;
    assert!(
        gone.is_some(),
        "the session gave the silent client up:\n{}",
        logs.lines().join("\n")
    );
    let first = next_message(&mut ws).await;
    assert!(matches!(first, Message::Ping(_)), "{first:?}");
    let close = loop {
        match next_message(&mut ws).await {
            Message::Close(frame) => break frame,
            Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let code = close.map(|f| u16::from(f.code));
    assert_eq!(code, Some(1001));
}

async fn dials_carry_the_pool_keys_beta_headers_and_the_sessions_own_headers(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let beta = "responses_websockets=2026-02-06";
    let creds = wsv2_tests::client::Credentials::bearer(crate::support::common::CLIENT_KEY)
        .with_header("openai-beta", beta)
        .with_header("x-codex-beta-features", "b,a")
        .with_header("session-id", "sess-beta");
    let mut ws = setup.client_with(creds).await;
    ws.send_json(&create("beta", json!({}))).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let handshakes: Vec<_> = setup
        .mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            wsv2_mock::Record::Handshake { headers, .. } => Some(headers),
            _ => None,
        })
        .collect();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    let h = &handshakes[0];
    assert_eq!(h.get("openai-beta").map(String::as_str), Some(beta));
    // The key's normalized form: sorted, de-duplicated.
    assert_eq!(
        h.get("x-codex-beta-features").map(String::as_str),
        Some("a,b")
    );
    assert_eq!(h.get("session-id").map(String::as_str), Some("sess-beta"));
}
