//! Security properties (issue 14, workload 6), each one test on every shell.
//!
//! | property | test |
//! |---|---|
//! | no request without a valid key reaches an upstream | [`no_request_without_a_valid_key_reaches_an_upstream`] |
//! | a key over its socket cap is refused | [`a_key_over_its_socket_cap_is_refused_at_both_doors_and_other_keys_are_not`] (and `refusals::a_key_over_its_socket_cap_gets_429_with_retry_after` for the answer's shape) |
//! | a response created in one group cannot be continued from another | `groups::a_key_of_another_group_cannot_continue_a_response_by_id` and `groups::across_gateways_sharing_redis_a_response_stays_in_its_group` (issue 13 item 10) |
//! | planted credentials and prompts never appear in logs at any level | `wsv2_tests::log_leaks::no_log_line_carries_a_credential_a_prompt_or_a_frame_body`, run by each shell's binary tests (issue 13 item 9) |
//! | … nor in `/metrics` or any error sent to a client | [`planted_secrets_never_reach_metrics_or_client_errors`] (every form `wsv2_tests::secrets` searches) |
//! | metric series stay bounded under hostile label values | `operators`' test of issue 13 item 8 |

use serde_json::json;
use wsv2_core::file_config::Secret as Credential;
use wsv2_tests::client::{ConnectError, Credentials, WsClient};
use wsv2_tests::secrets::{Secret, find_leaks};

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup, create};
use crate::support::harden::http_get;
use crate::support::raw::{ANSWER, exchange};

shell_tests! {
    no_request_without_a_valid_key_reaches_an_upstream,
    a_key_over_its_socket_cap_is_refused_at_both_doors_and_other_keys_are_not,
    planted_secrets_never_reach_metrics_or_client_errors,
}

/// A WebSocket upgrade carrying `auth` (whole header lines)
fn upgrade_with(auth: &str) -> String {
    format!(
        "GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
}

/// A POST carrying `auth` (whole header lines)
fn post_with(auth: &str) -> String {
    let body = json!({"model": "gpt-5", "input": "hi", "stream": true}).to_string();
    format!(
        "POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{auth}\r\n{body}",
        body.len()
    )
}

/// Authorization attempts that must all be refused
fn invalid_auth() -> Vec<String> {
    vec![
        String::new(),
        "Authorization: Bearer \r\n".into(),
        "Authorization: Bearer sk-not-a-key\r\n".into(),
        format!(
            "Authorization: Bearer {}\r\n",
            CLIENT_KEY.to_ascii_uppercase()
        ),
        format!("Authorization: Bearer {CLIENT_KEY}x\r\n"),
        format!(
            "Authorization: Bearer {}\r\n",
            &CLIENT_KEY[..CLIENT_KEY.len() - 1]
        ),
        format!("Authorization: Basic {CLIENT_KEY}\r\n"),
        format!("Authorization: {CLIENT_KEY}\r\n"),
        format!("Authorization: Bearer  {CLIENT_KEY} trailing\r\n"),
        format!("X-Api-Key-Guess: {CLIENT_KEY}\r\n"),
        "Authorization: Bearer sk-a\r\nAuthorization: Bearer sk-b\r\n".into(),
    ]
}

async fn no_request_without_a_valid_key_reaches_an_upstream(shell: Shell) {
    // No warm conns: any upstream handshake would come from a request.
    let setup = Setup::new(shell, |c| c.core.pool.min_idle_per_account = 0).await;
    for auth in invalid_auth() {
        for request in [upgrade_with(&auth), post_with(&auth)] {
            let answer = exchange(setup.gateway.addr, request.as_bytes()).await;
            assert_eq!(
                answer.status,
                Some(401),
                "{auth:?} was not refused: {answer:?}"
            );
        }
    }
    assert!(
        setup.handshakes().is_empty() && setup.frames().is_empty(),
        "a request without a valid key reached the upstream"
    );
    // The property can fail: the valid key does reach it.
    let valid = post_with(&format!("Authorization: Bearer {CLIENT_KEY}\r\n"));
    let answer = exchange(setup.gateway.addr, valid.as_bytes()).await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_eq!(setup.frames().len(), 1);
}

async fn a_key_over_its_socket_cap_is_refused_at_both_doors_and_other_keys_are_not(shell: Shell) {
    const OTHER_KEY: &str = "sk-gw-other-tenant";
    let setup = Setup::new(shell, |c| {
        c.client_keys[0].max_sockets = 1;
        let mut other = c.client_keys[0].clone();
        other.key = Credential::new(OTHER_KEY);
        other.max_sockets = 1;
        c.client_keys.push(other);
    })
    .await;
    let held = setup.client().await;
    let over = WsClient::connect(&setup.gateway.ws_url(), &Credentials::bearer(CLIENT_KEY)).await;
    match over {
        Err(ConnectError::Rejected { status, .. }) => assert_eq!(status, 429),
        other => panic!(
            "a second socket of a key capped at 1: {:?}",
            other.map(|_| ())
        ),
    }
    let over = post_with(&format!("Authorization: Bearer {CLIENT_KEY}\r\n"));
    let answer = exchange(setup.gateway.addr, over.as_bytes()).await;
    assert_eq!(answer.status, Some(429), "a POST over the cap: {answer:?}");
    // Another key is not affected by the first key's cap.
    let mut other = WsClient::connect(&setup.gateway.ws_url(), &Credentials::bearer(OTHER_KEY))
        .await
        .expect("another key gets in");
    other
        .send_json(&create("other tenant", json!({})))
        .await
        .unwrap();
    let turn = other.read_turn().await.unwrap();
    assert_eq!(turn.last_type(), "response.completed");
    drop(held);
}

async fn planted_secrets_never_reach_metrics_or_client_errors(shell: Shell) {
    const UPSTREAM_TOKEN: &str = "sk-upstream-PLANTED-token-7f3a";
    const WRONG_KEY: &str = "sk-client-PLANTED-wrong-key-91c2";
    const PROMPT: &str = "PLANTED prompt: the launch codes are 0000";
    // The account's token is not the one the mock accepts: every dial is refused with 401.
    let setup = Setup::new(shell, |c| {
        c.accounts[0].token = Credential::new(UPSTREAM_TOKEN);
        c.core.pool.min_idle_per_account = 0;
    })
    .await;
    let mut seen = Vec::new();
    // A wrong key, in both doors.
    let wrong = format!("Authorization: Bearer {WRONG_KEY}\r\n");
    for request in [upgrade_with(&wrong), post_with(&wrong)] {
        let answer = exchange(setup.gateway.addr, request.as_bytes()).await;
        assert_eq!(answer.status, Some(401), "{answer:?}");
        seen.push(format!("{}{}", answer.head, answer.body));
    }
    // A prompt in an invalid frame, in a create the upstream refuses, and in a POST.
    let mut ws = setup.client().await;
    ws.send_text(format!(
        "{{\"type\":\"response.create\",\"input\":\"{PROMPT}\""
    ))
    .await
    .unwrap();
    seen.push(ws.recv_event(ANSWER).await.unwrap().to_string());
    ws.send_json(&json!({"type": "response.create", "model": "gpt-5", "input": PROMPT, "instructions": PROMPT}))
        .await
        .unwrap();
    let (events, close) = match ws.recv_event(ANSWER).await {
        Ok(event) => (vec![event], None),
        Err(e) => (Vec::new(), Some(format!("{e:?}"))),
    };
    assert!(
        events.iter().any(|e| e["type"] == "error"),
        "the refused dial is answered with an error event: {events:?} {close:?}"
    );
    seen.extend(events.iter().map(ToString::to_string));
    seen.extend(close);
    let body = json!({"model": "gpt-5", "input": PROMPT}).to_string();
    let post = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(setup.gateway.addr, post.as_bytes()).await;
    assert_ne!(answer.status, Some(200), "the upstream refuses: {answer:?}");
    seen.push(format!("{}{}", answer.head, answer.body));
    let (status, metrics) = http_get(
        setup.gateway.admin_addr.expect("admin listener"),
        "/metrics",
    )
    .await;
    assert_eq!(status, 200);
    assert!(metrics.contains("wsv2_"), "a real scrape: {metrics}");
    seen.push(metrics);

    let secrets = [
        Secret::new("upstream token", UPSTREAM_TOKEN),
        Secret::new("wrong client key", WRONG_KEY),
        Secret::new("client key", CLIENT_KEY),
        Secret::new("prompt", PROMPT),
    ];
    let leaks: Vec<String> = seen
        .iter()
        .flat_map(|text| find_leaks(text, &secrets))
        .map(|leak| leak.to_string())
        .collect();
    assert!(leaks.is_empty(), "reached a client or /metrics: {leaks:#?}");
}
