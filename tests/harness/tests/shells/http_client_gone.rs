//! An HTTP client that leaves mid-stream: the turn drains upstream to its terminal event,
//! records its usage, and the conn goes back to the pool clean for the next request; one that
//! leaves while its create is still being written upstream has that write abandoned at once
//! (as a WebSocket session's, `seed_fixes`), not after `upstream.write_timeout`.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{MockConfig, Record};

use crate::support::Shell;
use crate::support::common::{
    LogCapture, Setup, only_cancellation_ends_writes, wait_for_upstream_write,
};
use crate::support::http::{base, body, post, raw_post, scrape, series};

shell_tests! {
    a_client_gone_mid_stream_drains_records_usage_and_leaves_the_conn_reusable,
    a_blocked_upstream_write_is_abandoned_when_the_http_client_leaves,
    clients_leaving_while_their_conns_are_dialed_leave_no_conn_leased(
        flavor = "multi_thread",
        worker_threads = 4
    ),
}

/// POSTs that leave while their conns are being dialed
const LEAVERS: usize = 200;

/// Between two looks at a state that has no change signal
const POLL: Duration = Duration::from_millis(5);

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
    let mut tcp = raw_post(
        gw.addr,
        &body(
            "leave early",
            json!({"stream": true, "metadata": {"mock_deltas": 100}}),
        ),
    )
    .await;
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
        only_cancellation_ends_writes(c);
    })
    .await;
    let addr = setup.gateway.addr;
    // The turn completes, then the mock stops reading this conn until the test resumes it (after
    // the next request was served).
    let deaf = body(
        "then deaf",
        json!({"metadata": {"mock_fault": "stop_reading"}}),
    );
    let (status, text) = post(&base(addr), &deaf).await;
    assert_eq!(status, 200, "{text}");

    // 15 MiB cannot fit in the loopback socket buffers (≤ 4 MiB send side): the upstream write
    // blocks while the mock is not reading.
    let big = "x".repeat(15 * 1024 * 1024);
    let tcp = raw_post(addr, &body(&big, json!({"stream": true}))).await;
    wait_for_upstream_write(&mut logs, big.len()).await;
    drop(tcp); // the client leaves while the write is blocked

    // The conn is gone at the gateway at once: with one conn per account, the next request can
    // only be served by a fresh dial, and it is served while the mock is still not reading conn 1.
    let (url, next) = (base(addr), body("next", json!({})));
    let (status, text) = tokio::time::timeout(WAIT, post(&url, &next))
        .await
        .expect("the next request is served without waiting for the blocked write");
    assert_eq!(status, 200, "{text}");
    assert_eq!(setup.handshakes(), [1, 2]);
    setup.mock.resume_reading();
    setup.assert_conn_1_abandoned_mid_frame().await;
}

/// Many POSTs wait for dials of their own, and their clients leave just as the dials end: a
/// request task that ended after queueing its `Close` behind its lease's delivery must not take
/// the lease with it (the reliability suite's "leased 115 with no session open"). Every conn the
/// pool dialed ends up idle, none leased, and the gateway still answers.
async fn clients_leaving_while_their_conns_are_dialed_leave_no_conn_leased(shell: Shell) {
    let setup = Setup::with_mock(
        shell,
        |m| m.handshake_delay = Duration::from_millis(300),
        |c| {
            c.listen = "127.0.0.1:0".parse().expect("addr");
            c.core.pool.min_idle_per_account = 0;
            c.core.pool.max_conns_per_account = LEAVERS;
            c.accounts[0].concurrency = LEAVERS as u32;
            c.client_keys[0].max_sockets = 2 * LEAVERS as u32;
        },
    )
    .await;
    let addr = setup.gateway.addr;
    let mut clients = Vec::new();
    for i in 0..LEAVERS {
        clients.push(raw_post(addr, &body(&format!("leaver {i}"), json!({"stream": true}))).await);
    }
    // The dials end within moments of each other: the clients leave among them.
    let first_dial_done = async {
        while setup.handshakes().is_empty() {
            tokio::time::sleep(POLL).await; // polled: the mock has no handshake signal
        }
    };
    tokio::time::timeout(WAIT, first_dial_done)
        .await
        .expect("a dial ends");
    drop(clients);

    // Every dial ends and every lease comes home: a lease lost with its task stays leased
    // forever.
    let mut last = None;
    let settled = async {
        loop {
            let stats = setup.gateway.pool_stats().await.expect("pool stats");
            if stats.leased == 0 && stats.dialing == 0 && stats.waiters == 0 {
                return stats;
            }
            last = Some(stats);
            tokio::time::sleep(POLL).await; // polled: the gauges have no change signal
        }
    };
    let Ok(stats) = tokio::time::timeout(WAIT, settled).await else {
        panic!("conns stay leased with no request in flight: {last:?}");
    };
    assert!(stats.open > 0, "the dials ended in conns: {stats:?}");
    let (status, text) = post(&base(addr), &body("after", json!({}))).await;
    assert_eq!(status, 200, "{text}");
}
