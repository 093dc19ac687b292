//! Upstream's 60-minute connection limit through real sockets, compressed: the mock cuts each
//! conn at `--lifetime` even while a response streams (`--cut-at-lifetime`), the gateway retires
//! conns earlier (`upstream.max_age`).

use std::time::Duration;

use serde_json::json;

use crate::support::Shell;
use crate::support::common::{Setup, create, fence, single_conn};
use crate::support::http::{scrape, series};

shell_tests! {
    a_response_open_at_upstreams_cut_gets_its_error_and_is_counted,
}

async fn a_response_open_at_upstreams_cut_gets_its_error_and_is_counted(shell: Shell) {
    let setup = Setup::with_mock(
        shell,
        |m| {
            m.lifetime = Duration::from_secs(2);
            m.cut_at_lifetime = true;
        },
        |c| {
            single_conn(c);
            c.core.upstream.max_age = Duration::from_secs(1);
            c.core.upstream.connection_limit = Duration::from_secs(2);
            c.core.pool.session_min_remaining_life = Duration::from_millis(500);
        },
    )
    .await;
    let mut client = setup.client().await;
    // Started on a fresh conn, it stalls past max_age (the conn retires, the response runs on)
    // until the mock's lifetime cuts the conn under it.
    client
        .send_json(&create("long", json!({"mock_fault": "stall_lane"})))
        .await
        .unwrap();
    let cut = client.read_turn().await.unwrap();
    let types: Vec<&str> = cut
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["response.created", "error"], "{:?}", cut.events);
    let error = &cut.events[1];
    assert_eq!(error["status"], 400, "{error}");
    assert_eq!(error["error"]["code"], "websocket_connection_limit_reached");
    assert_eq!(
        error["error"]["message"],
        "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue."
    );
    // The client stays connected; its resend runs on a fresh conn.
    client.send_json(&create("again", json!({}))).await.unwrap();
    assert_eq!(
        client.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    assert_eq!(setup.handshakes().len(), 2);
    fence(&mut client).await;
    let text = scrape(setup.gateway.admin_addr.expect("admin listener")).await;
    assert_eq!(
        series(
            &text,
            r#"wsv2_responses_cut_at_conn_limit_total{transport="ws"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            r#"wsv2_responses_total{transport="ws",outcome="completed",client="key-1"}"#
        ),
        1.0,
        "{text}"
    );
}
