//! Fixes over the seed gateway, over real sockets and proven from the mock's records: the
//! upstream hop is full duplex, and a blocked upstream write follows the session's cancellation.

use std::time::Duration;

use serde_json::json;
use wsv2_mock::Record;

use crate::support::Shell;
use crate::support::common::{
    LogCapture, Setup, create, only_cancellation_ends_writes, wait_for_upstream_write,
};

shell_tests! {
    full_duplex_a_create_on_lane_b_reaches_the_mock_while_lane_a_is_stalled,
    a_blocked_upstream_write_is_abandoned_when_the_client_leaves,
}

/// How long a test waits for an event before it fails
const WAIT: Duration = Duration::from_secs(10);

async fn full_duplex_a_create_on_lane_b_reaches_the_mock_while_lane_a_is_stalled(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let mut ws = setup.client().await;
    let mut stalled = create("a waits forever", json!({"mock_fault": "stall_lane"}));
    stalled["stream_id"] = json!("a");
    ws.send_json(&stalled).await.unwrap();
    let created = ws.recv_event(WAIT).await.unwrap();
    assert_eq!(created["type"], "response.created", "{created}");
    assert_eq!(created["stream_id"], "a", "{created}");

    let mut other = create("b flows", json!({}));
    other["stream_id"] = json!("b");
    ws.send_json(&other).await.unwrap();
    let completed = loop {
        let event = ws.recv_event(WAIT).await.unwrap();
        assert_ne!(event["type"], "error", "{event}");
        if event["type"] == "response.completed" {
            break event;
        }
    };
    assert_eq!(completed["stream_id"], "b", "{completed}");
    let b_id = completed["response"]["id"].as_str().unwrap();

    // Both creates went up the one conn, lane b's after lane a's had stalled, and the mock
    // answered lane b on that conn.
    let lanes: Vec<(u64, String)> = setup
        .frames()
        .into_iter()
        .map(|(conn, f)| (conn, f["stream_id"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(lanes, [(1, "a".to_owned()), (1, "b".to_owned())]);
    assert_eq!(setup.sent_on(b_id), [(1, "response.completed".to_owned())]);
}

async fn a_blocked_upstream_write_is_abandoned_when_the_client_leaves(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, only_cancellation_ends_writes).await;
    let mut a = setup.client().await;
    // The turn completes, then the mock stops reading this conn until the test resumes it (after
    // the next session was served): no window to fit in, however loaded the machine.
    a.send_json(&create("then deaf", json!({"mock_fault": "stop_reading"})))
        .await
        .unwrap();
    assert_eq!(
        a.read_turn().await.unwrap().last_type(),
        "response.completed"
    );

    // 15 MiB cannot fit in the loopback socket buffers (≤ 4 MiB send side): the upstream write
    // blocks while the mock is not reading.
    let big = "x".repeat(15 * 1024 * 1024);
    a.send_json(&create(&big, json!({}))).await.unwrap();
    wait_for_upstream_write(&mut logs, big.len()).await;
    drop(a); // the client leaves while the write is blocked

    // The conn is gone at the gateway at once: with one conn per account, a new session can only
    // be served by a fresh dial, and it is served while the mock is still not reading conn 1.
    let mut b = setup.client().await;
    b.send_json(&create("next", json!({}))).await.unwrap();
    let turn = b.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    assert_eq!(setup.handshakes(), [1, 2]);
    setup.mock.resume_reading();

    // When the mock reads conn 1 again it finds the abandoned frame's head and the socket's end,
    // without a close frame (the framing could not be trusted after a half-written frame).
    let records = setup.assert_conn_1_abandoned_mid_frame().await;
    let close_at = records
        .iter()
        .position(|r| matches!(r, Record::Close { conn: 1, .. }))
        .unwrap();
    let next_create_at = records
        .iter()
        .position(|r| matches!(r, Record::Frame { conn: 2, .. }))
        .unwrap();
    assert!(
        next_create_at < close_at,
        "the next session was served before the mock read conn 1 again"
    );
}
