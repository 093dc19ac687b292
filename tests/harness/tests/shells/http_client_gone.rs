//! An HTTP client that leaves mid-stream: the turn drains upstream to its terminal event,
//! records its usage, and the conn goes back to the pool clean for the next request; one that
//! leaves while its create is still being written upstream has that write abandoned at once
//! (as a WebSocket session's, `seed_fixes`), not after `upstream.write_timeout`.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{CloseSide, MockConfig, Record};

use crate::support::Shell;
use crate::support::common::{LogCapture, Setup, single_conn};
use crate::support::http::{CLIENT_KEY, base, body, post, scrape, series};

shell_tests! {
    a_client_gone_mid_stream_drains_records_usage_and_leaves_the_conn_reusable,
    a_blocked_upstream_write_is_abandoned_when_the_http_client_leaves,
}

/// Long enough that no timer of the gateway can be what ended a wait in these tests
const NEVER: Duration = Duration::from_secs(600);
/// How long a test waits for an event before it fails
const WAIT: Duration = Duration::from_secs(10);

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

async fn a_blocked_upstream_write_is_abandoned_when_the_http_client_leaves(shell: Shell) {
    let mut logs = LogCapture::start();
    let setup = Setup::new(shell, |c| {
        c.listen = "127.0.0.1:0".parse().expect("addr");
        single_conn(c);
        // No gateway timer may be what ends the blocked write: only the cancellation.
        c.core.upstream.write_timeout = NEVER;
        c.core.upstream.read_timeout = NEVER;
        c.core.upstream.ping_interval = NEVER;
        c.core.upstream.pong_timeout = NEVER;
        c.core.session.drain_timeout = NEVER;
    })
    .await;
    let addr = setup.gateway.addr;
    // The turn completes, then the mock stops reading this conn until the test resumes it (after
    // the next request was served).
    let (status, text) = post(
        &base(addr),
        &body(
            "then deaf",
            json!({"metadata": {"mock_fault": "stop_reading"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{text}");

    // 15 MiB cannot fit in the loopback socket buffers (≤ 4 MiB send side): the upstream write
    // blocks while the mock is not reading.
    let big = "x".repeat(15 * 1024 * 1024);
    let request = body(&big, json!({"stream": true})).to_string();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        request.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let started = logs
        .wait_for(WAIT, |l| {
            l.contains("upstream write")
                && l.split("bytes=")
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|b| b > big.len())
        })
        .await;
    assert!(
        started.is_some(),
        "the big create's upstream write started:\n{}",
        logs.lines().join("\n")
    );
    drop(tcp); // the client leaves while the write is blocked

    // The conn is gone at the gateway at once: with one conn per account, the next request can
    // only be served by a fresh dial, and it is served while the mock is still not reading conn 1.
    let (status, text) = tokio::time::timeout(WAIT, post(&base(addr), &body("next", json!({}))))
        .await
        .expect("the next request is served without waiting for the blocked write");
    assert_eq!(status, 200, "{text}");
    assert_eq!(setup.handshakes(), [1, 2]);
    setup.mock.resume_reading();

    // When the mock reads conn 1 again it finds the abandoned frame's head and the socket's end.
    let closed = setup
        .mock
        .wait_for_record(WAIT, |r| matches!(r, Record::Close { conn: 1, .. }))
        .await
        .expect("the mock saw conn 1 end");
    assert_eq!(
        closed,
        Record::Close {
            conn: 1,
            by: CloseSide::Client,
            code: None
        }
    );
    let conn1_frames = setup.frames().iter().filter(|(c, _)| *c == 1).count();
    assert_eq!(conn1_frames, 1, "the abandoned create never arrived whole");
}
