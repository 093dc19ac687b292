//! `/metrics` after a known workload, and accounts that resolve to HTTP (a plain upstream POST,
//! passed through).

use serde_json::json;
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{MockConfig, Record};

use crate::support::http::{base, body, post, post_json, scrape, series};
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    metrics_after_a_known_workload_match_it_and_the_mocks_record,
    metrics_false_serves_no_metrics,
    an_account_that_resolves_to_http_gets_a_plain_post_passed_through,
}

const UPSTREAM_KEY: &str = "sk-upstream-test";

async fn setup(
    shell: Shell,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> (wsv2_mock::MockHandle, GatewayHandle) {
    let mock = wsv2_mock::start(MockConfig {
        api_key: UPSTREAM_KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock");
    let mut c = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("config");
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.core.pool.min_idle_per_account = 0;
    c.core.pool.max_conns_per_account = 1;
    tweak(&mut c);
    let gw = shell.start(c).await.expect("gateway");
    (mock, gw)
}

async fn metrics_after_a_known_workload_match_it_and_the_mocks_record(shell: Shell) {
    let (mock, gw) = setup(shell, |_| {}).await;
    let name = "mock";
    let mut sse_events = 0;
    for i in 0..5 {
        // Three JSON answers, two SSE answers (whose events are relayed one by one).
        let streamed = i >= 3;
        let request = body(&format!("ok {i}"), json!({"stream": streamed}));
        let (status, text) = post(&base(gw.addr), &request).await;
        assert_eq!(status, 200);
        if streamed {
            sse_events +=
                text.matches("\nevent: ").count() + usize::from(text.starts_with("event: "));
        }
    }
    let (status, _) = post(
        &base(gw.addr),
        &body("bad", json!({"metadata": {"mock_fault": "error_400"}})),
    )
    .await;
    assert_eq!(status, 400);
    let text = scrape(gw.admin_addr.expect("admin listener")).await;
    let get = |s: &str| series(&text, s);
    assert_eq!(
        get(r#"wsv2_responses_total{transport="http",outcome="completed",client="key-1"}"#),
        5.0,
        "{text}"
    );
    assert_eq!(
        get(r#"wsv2_responses_total{transport="http",outcome="error",client="key-1"}"#),
        1.0
    );
    // The mock's usage: every completed response reports input and output tokens.
    assert!(
        get(&format!(
            r#"wsv2_tokens_total{{client="key-1",account="{name}",model="gpt-5",kind="input"}}"#
        )) > 0.0,
        "{text}"
    );
    assert!(
        get(&format!(
            r#"wsv2_tokens_total{{client="key-1",account="{name}",model="gpt-5",kind="output"}}"#
        )) > 0.0
    );
    assert_eq!(
        get(r#"wsv2_time_to_first_event_seconds_count{transport="http"}"#),
        6.0,
        "{text}"
    );
    // Per-event overhead merged once per turn: one turn observation per ended response.
    assert_eq!(
        get(r#"wsv2_gateway_overhead_turn_seconds_count{transport="http"}"#),
        6.0
    );
    assert_eq!(
        get(r#"wsv2_gateway_overhead_event_seconds_count{transport="http"}"#),
        sse_events as f64 + 3.0 + 1.0,
        "one observation per relayed SSE event, per JSON reply (3) and per error answer (1)"
    );
    // Pool: the mock saw the upgrades; reused + dialed acquires = HTTP turns on conns.
    let upgrades = mock
        .records()
        .iter()
        .filter(|r| matches!(r, Record::Handshake { .. }))
        .count() as f64;
    assert_eq!(
        get(&format!(
            r#"wsv2_pool_acquires_total{{account="{name}",result="dialed"}}"#
        )),
        upgrades,
        "{text}"
    );
    assert_eq!(
        upgrades, 1.0,
        "one conn for all six turns (the error came last)"
    );
    assert_eq!(
        get(&format!(
            r#"wsv2_pool_acquires_total{{account="{name}",result="reused"}}"#
        )),
        5.0
    );
    assert_eq!(
        get(&format!(r#"wsv2_dial_seconds_count{{account="{name}"}}"#)),
        upgrades
    );
    assert!(
        !text.contains(UPSTREAM_KEY) && !text.contains("sk-gw-demo"),
        "no credentials"
    );
    assert!(!text.contains("ok 1"), "no prompt content");
}

async fn metrics_false_serves_no_metrics(shell: Shell) {
    let (_mock, gw) = setup(shell, |c| c.metrics = false).await;
    let mut tcp = tokio::net::TcpStream::connect(gw.admin_addr.expect("admin listener"))
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 404"));
}

async fn an_account_that_resolves_to_http_gets_a_plain_post_passed_through(shell: Shell) {
    let (mock, gw) = setup(shell, |c| c.accounts[0].force_http = true).await;
    let (status, text) = post(&base(gw.addr), &body("via post", json!({"stream": true}))).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("event: response.completed"), "{text}");
    let (status, response) = post_json(&base(gw.addr), &body("json", json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(response["status"], "completed");
    let records = mock.records();
    let posts = records
        .iter()
        .filter(|r| matches!(r, Record::Http { method, .. } if method == "POST"))
        .count();
    assert_eq!(posts, 2, "each request is one upstream POST");
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Handshake { .. })),
        "no upgrade"
    );
    // The credential sent upstream is the account's, never the client's key.
    let auth: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Http { headers, .. } => headers.get("authorization").cloned(),
            _ => None,
        })
        .collect();
    assert!(
        auth.iter()
            .all(|a| a.ends_with(&UPSTREAM_KEY[UPSTREAM_KEY.len() - 4..])),
        "{auth:?}"
    );
}
