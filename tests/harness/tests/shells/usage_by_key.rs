//! Usage per client key (issue 15 item 2): keys have names, token and response counters carry
//! them, the per-response log lines name the key, and `telemetry.max_usage_series` caps the
//! key × account × model combinations.

use std::time::Duration;

use serde_json::json;
use wsv2_core::file_config::GatewayConfig;
use wsv2_tests::client::{Credentials, WsClient};

use crate::support::Shell;
use crate::support::harden::{LogCapture, UPSTREAM_KEY, mock};
use crate::support::http::{body, scrape, series};

shell_tests! {
    tokens_and_responses_are_counted_by_key_name_within_the_series_cap,
}

async fn turn(ws_url: &str, key: &str) {
    let mut client = WsClient::connect(ws_url, &Credentials::bearer(key))
        .await
        .expect("upgrade");
    client
        .send_json(&json!({"type": "response.create", "model": "team-model", "input": "hi"}))
        .await
        .unwrap();
    let done = client.read_turn().await.unwrap();
    assert_eq!(done.last_type(), "response.completed", "{key}");
    crate::support::common::fence(&mut client).await;
}

async fn tokens_and_responses_are_counted_by_key_name_within_the_series_cap(shell: Shell) {
    let (logs, _guard) = LogCapture::install();
    let upstream = mock(|_| {}).await;
    let text = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [telemetry]\nmax_usage_series = 2\n\n\
         [[client_keys]]\nkey = \"sk-alice-secret\"\nname = \"alice\"\n\n\
         [[client_keys]]\nkey = \"sk-bob-secret\"\nname = \"bob\"\n\n\
         [[client_keys]]\nkey = \"sk-carol-secret\"\nname = \"carol\"\n\n\
         [[accounts]]\nid = 1\nname = \"mock\"\ntoken = \"{UPSTREAM_KEY}\"\nbase_url = \"{}\"\n\
         model_map = {{ \"team-model\" = \"gpt-5\" }}\n",
        upstream.ws_url()
    );
    let config = GatewayConfig::from_toml_str(&text, &|_| None).expect("valid");
    let gateway = shell.start(config).await.unwrap();
    let ws_url = gateway.ws_url();
    turn(&ws_url, "sk-alice-secret").await;
    turn(&ws_url, "sk-alice-secret").await;
    turn(&ws_url, "sk-bob-secret").await;
    // A third combination is past the cap of 2.
    turn(&ws_url, "sk-carol-secret").await;
    // POST turns count the same way.
    let answer = wsv2_tests::sse::SseClient::new()
        .post(
            &format!("http://{}/v1", gateway.addr),
            &Credentials::bearer("sk-bob-secret"),
            &body("hi", json!({"model": "team-model"})),
        )
        .await
        .expect("POST");
    assert_eq!(answer.status(), 200);
    let _ = answer.text().await;

    let (_, line) = logs
        .wait_for(
            &["http response ended", "client=bob"],
            Duration::from_secs(5),
        )
        .await
        .expect("the POST's line names its key");
    assert!(!line.contains("sk-bob-secret"), "{line}");
    let (_, line) = logs
        .wait_for(&["response ended", "client=alice"], Duration::from_secs(5))
        .await
        .expect("a WebSocket response's line names its key");
    assert!(!line.contains("sk-alice-secret"), "{line}");

    let text = scrape(gateway.admin_addr.expect("admin listener")).await;
    let tokens = |key: &str, model: &str| {
        series(
            &text,
            &format!(
                r#"wsv2_tokens_total{{client="{key}",account="mock",model="{model}",kind="output"}}"#
            ),
        )
    };
    assert!(tokens("alice", "team-model") > 0.0, "{text}");
    assert!(tokens("bob", "team-model") > 0.0, "{text}");
    assert_eq!(tokens("carol", "team-model"), 0.0, "{text}");
    assert!(
        tokens("other", "other") > 0.0,
        "carol's combination folds: {text}"
    );
    let responses = |transport: &str, key: &str| {
        series(
            &text,
            &format!(
                r#"wsv2_responses_total{{transport="{transport}",outcome="completed",client="{key}"}}"#
            ),
        )
    };
    assert_eq!(responses("ws", "alice"), 2.0, "{text}");
    assert_eq!(responses("ws", "bob"), 1.0, "{text}");
    assert_eq!(
        responses("ws", "carol"),
        1.0,
        "responses are bounded by the keys: {text}"
    );
    assert_eq!(responses("http", "bob"), 1.0, "{text}");
    let token_series = text
        .lines()
        .filter(|l| l.starts_with("wsv2_tokens_total{"))
        .count();
    assert!(token_series <= 4 * (2 + 1), "{token_series} series: {text}");
    for secret in ["sk-alice-secret", "sk-bob-secret", "sk-carol-secret"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
}
