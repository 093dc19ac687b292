//! Pool facts proven from the mock's records (not the gateway's counters), with
//! `min_idle_per_account = 0` and `max_conns_per_account = 1`: a later session can only reuse
//! the earlier conn or be refused.

use std::time::Duration;

use serde_json::json;
use wsv2_tests::client::Credentials;

use wsv2_mock::Record;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, LogCapture, Setup, create, single_conn};

shell_tests! {
    a_second_session_with_another_session_id_reuses_the_first_ones_conn,
    a_conn_that_carried_an_upstream_error_is_never_used_by_a_later_session,
    client_gone_mid_turn_the_conn_carries_the_drained_terminal_then_the_next_create,
    after_a_tail_packet_the_conn_is_closed_and_never_used_again,
}

fn with_session_id(id: &str) -> Credentials {
    Credentials::bearer(CLIENT_KEY).with_header("session-id", id)
}

async fn a_second_session_with_another_session_id_reuses_the_first_ones_conn(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let mut a = setup.client_with(with_session_id("sess-a")).await;
    a.send_json(&create("one", json!({}))).await.unwrap();
    assert_eq!(
        a.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    a.close(1000).await.unwrap();
    let mut b = setup.client_with(with_session_id("sess-b")).await;
    b.send_json(&create("two", json!({}))).await.unwrap();
    assert_eq!(
        b.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    assert_eq!(
        setup.handshakes(),
        [1],
        "one upstream upgrade for both sessions"
    );
    let conns: Vec<u64> = setup.frames().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [1, 1], "both creates on mock conn 1");
    // The dial was made for session A: its session-id went upstream, B's never did.
    let sent_ids: Vec<String> = setup
        .mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            wsv2_mock::Record::Handshake { headers, .. } => headers.get("session-id").cloned(),
            _ => None,
        })
        .collect();
    assert_eq!(sent_ids, ["sess-a"]);
}

async fn a_conn_that_carried_an_upstream_error_is_never_used_by_a_later_session(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let mut a = setup.client().await;
    a.send_json(&create("fail", json!({"mock_fault": "error_400"})))
        .await
        .unwrap();
    let turn = a.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "error", "{:?}", turn.events);
    a.close(1000).await.unwrap();
    let mut b = setup.client().await;
    b.send_json(&create("next", json!({}))).await.unwrap();
    assert_eq!(
        b.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    let conns: Vec<u64> = setup.frames().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns.len(), 2);
    assert_ne!(
        conns[0], conns[1],
        "the errored conn was not reused: {conns:?}"
    );
    assert_eq!(setup.handshakes().len(), 2);
}

async fn client_gone_mid_turn_the_conn_carries_the_drained_terminal_then_the_next_create(
    shell: Shell,
) {
    let mut logs = LogCapture::start();
    let setup = Setup::with_mock(
        shell,
        |m| m.delta_interval = Duration::from_millis(20),
        single_conn,
    )
    .await;
    let mut a = setup.client().await;
    a.send_json(&create("long", json!({"mock_deltas": 10})))
        .await
        .unwrap();
    let created = a.recv_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(created["type"], "response.created");
    let drained_id = created["response"]["id"].as_str().unwrap().to_owned();
    drop(a); // gone mid-turn, without a close frame
    let mut b = setup.client().await;
    b.send_json(&create("after", json!({}))).await.unwrap();
    let turn = b.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    let next_id = turn.response_id().unwrap().to_owned();
    // One conn: the drained response's terminal, then the next session's response on it.
    assert_eq!(setup.handshakes(), [1]);
    let order: Vec<(u64, String, String)> = setup
        .mock
        .records()
        .into_iter()
        .filter_map(|r| match r {
            wsv2_mock::Record::Sent {
                conn,
                response_id: Some(id),
                r#type,
                ..
            } => Some((conn, id, r#type)),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            (1, drained_id.clone(), "response.completed".to_owned()),
            (1, next_id, "response.completed".to_owned())
        ]
    );
    // The drained response was billed: its usage line exists although its client had left.
    let usage = logs
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("response ended") && l.contains(&format!("response=\"{drained_id}\""))
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no usage line for {drained_id}:\n{}",
                logs.lines().join("\n")
            )
        });
    assert!(usage.contains("drained=true"), "{usage}");
    assert!(usage.contains("outcome=\"completed\""), "{usage}");
    for field in ["input_tokens=", "output_tokens=", "total_tokens="] {
        let value = usage
            .split(field)
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(value.is_some_and(|v| v > 0), "{field} in {usage}");
    }
}

async fn after_a_tail_packet_the_conn_is_closed_and_never_used_again(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::single_conn(shell).await;
    let mut a = setup.client().await;
    a.send_json(&create("with a tail", json!({"mock_fault": "tail_packet"})))
        .await
        .unwrap();
    let turn = a.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    // The stray frame after the terminal reaches the session that holds the conn.
    let seen = logs
        .wait_for(Duration::from_secs(5), |l| l.contains("tail packet"))
        .await;
    assert!(seen.is_some(), "the gateway saw the tail packet");
    a.close(1000).await.unwrap();

    let mut b = setup.client().await;
    b.send_json(&create("next", json!({}))).await.unwrap();
    let turn = b.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);

    let closed = setup
        .mock
        .wait_for_record(Duration::from_secs(5), |r| {
            matches!(r, Record::Close { conn: 1, .. })
        })
        .await;
    assert!(closed.is_some(), "the mock saw conn 1 closed");
    assert_eq!(setup.handshakes(), [1, 2], "the next session dialed anew");
    let conns: Vec<u64> = setup.frames().iter().map(|(c, _)| *c).collect();
    assert_eq!(
        conns,
        [1, 2],
        "conn 1 carried nothing after its tail packet"
    );
}
