//! An HTTP client that leaves mid-stream: the turn drains upstream to its terminal event,
//! records its usage, and the conn goes back to the pool clean for the next request.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{MockConfig, Record};

use crate::support::Shell;
use crate::support::http::{CLIENT_KEY, base, body, post, scrape, series};

shell_tests! {
    a_client_gone_mid_stream_drains_records_usage_and_leaves_the_conn_reusable,
}

const UPSTREAM_KEY: &str = "sk-upstream-test";

async fn a_client_gone_mid_stream_drains_records_usage_and_leaves_the_conn_reusable(shell: Shell) {
    let mock = wsv2_mock::start(MockConfig {
        api_key: UPSTREAM_KEY.into(),
        // 100 deltas 1 ms apart: the client is long gone before the terminal.
        delta_interval: Duration::from_millis(1),
        ..MockConfig::default()
    })
    .await
    .expect("mock");
    let mut c = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("config");
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.core.pool.min_idle_per_account = 0;
    c.core.pool.max_conns_per_account = 1;
    let gw = shell.start(c).await.expect("gateway");

    // A raw client: POST a streamed turn, read until the first SSE event, then vanish.
    let request = body(
        "leave early",
        json!({"stream": true, "metadata": {"mock_deltas": 100}}),
    )
    .to_string();
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        request.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: response.output_text.delta") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk))
            .await
            .expect("first delta in time")
            .unwrap();
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    drop(tcp);

    // One conn per account: this request runs only once the first turn let the conn go.
    let (status, text) = post(&base(gw.addr), &body("next", json!({}))).await;
    assert_eq!(status, 200, "{text}");

    let records = mock.records();
    let handshakes = records
        .iter()
        .filter(|r| matches!(r, Record::Handshake { .. }))
        .count();
    assert_eq!(handshakes, 1, "the second request reused the drained conn");
    let creates: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Frame { conn, frame } if frame["type"] == "response.create" => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(creates, [1, 1], "both creates on conn 1");
    let completed: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sent { conn, r#type, .. } if r#type == "response.completed" => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        [1, 1],
        "the abandoned turn ran to its terminal upstream"
    );

    let text = scrape(gw.admin_addr.expect("admin listener")).await;
    assert_eq!(
        series(
            &text,
            r#"wsv2_responses_total{transport="http",outcome="completed",client="key-1"}"#
        ),
        2.0,
        "the drained turn is counted: {text}"
    );
    // Two responses of a model no model_map names: under `other` until the third
    // (telemetry.model_label_min_responses).
    assert!(
        series(
            &text,
            r#"wsv2_tokens_total{client="key-1",account="mock",model="other",kind="output"}"#
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            r#"wsv2_pool_acquires_total{account="mock",result="reused"}"#
        ),
        1.0
    );
}
