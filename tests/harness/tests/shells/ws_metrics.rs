//! `/metrics` after a known WebSocket workload: per-session handles merged once per turn
//! (overhead, time to first event), tokens by the client's model, pool closes by reason.

use serde_json::json;

use crate::support::Shell;
use crate::support::common::{Setup, create, fence};
use crate::support::http::{scrape, series};

shell_tests! {
    ws_turns_export_overhead_first_event_and_tokens_by_client_model,
    a_conn_dirtied_by_a_tail_packet_is_counted_as_a_close_by_reason,
}

async fn ws_turns_export_overhead_first_event_and_tokens_by_client_model(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let mut client = setup.client().await;
    let mut relayed = 0;
    for i in 0..3 {
        client
            .send_json(&create(&format!("turn {i}"), json!({"mock_deltas": 4 + i})))
            .await
            .unwrap();
        let turn = client.read_turn().await.unwrap();
        assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
        relayed += turn.events.len();
    }
    fence(&mut client).await;
    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    let get = |s: &str| series(&text, s);
    assert_eq!(
        get(r#"wsv2_responses_total{transport="ws",outcome="completed",client="key-1"}"#),
        3.0,
        "{text}"
    );
    assert_eq!(
        get(r#"wsv2_time_to_first_event_seconds_count{transport="ws"}"#),
        3.0,
        "{text}"
    );
    assert_eq!(
        get(r#"wsv2_gateway_overhead_turn_seconds_count{transport="ws"}"#),
        3.0,
        "one per-turn observation per ended response"
    );
    assert_eq!(
        get(r#"wsv2_gateway_overhead_event_seconds_count{transport="ws"}"#),
        relayed as f64,
        "one observation per relayed upstream event"
    );
    for kind in ["input", "output"] {
        assert!(
            get(&format!(
                r#"wsv2_tokens_total{{client="key-1",account="mock",model="gpt-5",kind="{kind}"}}"#
            )) > 0.0,
            "{kind} tokens under the client's model: {text}"
        );
    }
    assert!(
        !text.contains(r#"model="""#),
        "no WS tokens without a model: {text}"
    );
}

async fn a_conn_dirtied_by_a_tail_packet_is_counted_as_a_close_by_reason(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let mut a = setup.client().await;
    a.send_json(&create("with a tail", json!({"mock_fault": "tail_packet"})))
        .await
        .unwrap();
    assert_eq!(
        a.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    a.close(1000).await.unwrap();
    // One conn per account: the next session's turn can only run once conn 1 was closed.
    let mut b = setup.client().await;
    b.send_json(&create("next", json!({}))).await.unwrap();
    assert_eq!(
        b.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    assert_eq!(setup.handshakes(), [1, 2], "the next session dialed anew");
    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    let closes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("wsv2_pool_closes_total{") && !l.ends_with(" 0"))
        .collect();
    assert_eq!(
        closes,
        [r#"wsv2_pool_closes_total{account="mock",reason="dirty"} 1"#],
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            r#"wsv2_pool_acquires_total{account="mock",result="dialed"}"#
        ),
        2.0
    );
}
