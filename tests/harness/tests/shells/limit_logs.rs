//! Per-key socket caps and per-account concurrency are visible in the logs when they bite,
//! naming the key only by its group (the key is a credential and never logged).

use std::time::Duration;

use serde_json::json;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, LogCapture, Setup, create};

shell_tests! {
    a_refused_upgrade_over_the_socket_cap_is_logged_with_the_group_not_the_key,
    a_create_queued_then_refused_for_a_concurrency_slot_is_logged,
    a_refused_post_over_the_socket_cap_is_logged_with_the_group_not_the_key,
}

async fn a_refused_upgrade_over_the_socket_cap_is_logged_with_the_group_not_the_key(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, |c| {
        c.client_keys[0].max_sockets = 1;
        c.client_keys[0].group = "team-capped".into();
    })
    .await;
    let first = setup.client().await;
    let refused = wsv2_tests::client::WsClient::connect(
        &setup.gateway.ws_url(),
        &wsv2_tests::client::Credentials::bearer(CLIENT_KEY),
    )
    .await;
    assert!(refused.is_err(), "the second socket is over the cap");
    let line = logs
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("upgrade refused: the key's socket cap is reached")
        })
        .await
        .unwrap_or_else(|| panic!("no socket-cap line:\n{}", logs.lines().join("\n")));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("max_sockets=1"), "{line}");
    assert!(line.contains("group=team-capped"), "{line}");
    for l in logs.lines() {
        assert!(!l.contains(CLIENT_KEY), "a log line carries the key: {l}");
    }
    drop(first);
}

async fn a_create_queued_then_refused_for_a_concurrency_slot_is_logged(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::with_mock(
        shell,
        |m| m.delta_interval = Duration::from_millis(50),
        |c| {
            c.accounts[0].concurrency = 1;
            c.core.session.slot_wait_timeout = Duration::from_millis(200);
        },
    )
    .await;
    // Two lanes of one session: one conn, and the account's single slot held by lane a.
    let mut a = setup.client().await;
    let mut long = create("long", json!({"mock_deltas": 40}));
    long["stream_id"] = json!("a");
    a.send_json(&long).await.unwrap();
    let created = a.recv_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(created["type"], "response.created");
    let mut second = create("waits", json!({}));
    second["stream_id"] = json!("b");
    a.send_json(&second).await.unwrap();
    let refused = loop {
        let event = a.recv_event(Duration::from_secs(5)).await.unwrap();
        if event["type"] == "error" {
            break event;
        }
    };
    assert_eq!(
        refused["error"]["code"], "concurrency_limit_reached",
        "{refused}"
    );
    let lines = logs.lines().join("\n");
    let waits = logs
        .lines()
        .into_iter()
        .find(|l| l.contains("create waits for an account concurrency slot"))
        .unwrap_or_else(|| panic!("no slot-wait line:\n{lines}"));
    assert!(waits.contains("max_concurrency=1"), "{waits}");
    assert!(waits.contains("INFO"), "{waits}");
    let refusal = logs
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("create refused: no account concurrency slot")
        })
        .await
        .unwrap_or_else(|| panic!("no refusal line:\n{}", logs.lines().join("\n")));
    assert!(refusal.contains("WARN"), "{refusal}");
    // Only lane b's create queued: lane a's got its slot at once and logged no wait.
    let wait_lines = logs
        .lines()
        .iter()
        .filter(|l| l.contains("create waits for an account concurrency slot"))
        .count();
    assert_eq!(wait_lines, 1, "{lines}");
}

async fn a_refused_post_over_the_socket_cap_is_logged_with_the_group_not_the_key(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, |c| {
        c.client_keys[0].max_sockets = 1;
        c.client_keys[0].group = "team-posting".into();
    })
    .await;
    let socket = setup.client().await; // the key's only socket
    let answer = wsv2_tests::sse::SseClient::new()
        .post(
            &format!("http://{}/v1", setup.gateway.addr),
            &wsv2_tests::client::Credentials::bearer(CLIENT_KEY),
            &json!({"model": "gpt-5", "input": "over the cap", "stream": false}),
        )
        .await
        .expect("POST");
    assert_eq!(answer.status(), 429);
    let line = logs
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("POST refused: the key's socket cap is reached")
        })
        .await
        .unwrap_or_else(|| panic!("no socket-cap line:\n{}", logs.lines().join("\n")));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("group=team-posting"), "{line}");
    assert!(line.contains("max_sockets=1"), "{line}");
    for l in logs.lines() {
        assert!(!l.contains(CLIENT_KEY), "a log line carries the key: {l}");
    }
    drop(socket);
}
