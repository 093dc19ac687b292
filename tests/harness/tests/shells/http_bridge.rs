//! `POST /v1/responses` through the gateway onto pooled upstream WebSockets: answers, reuse
//! proven from the mock's records, SSE bytes against the mock's own, the error mapping.

use serde_json::{Value, json};
use wsv2_mock::MockConfig;
use wsv2_tests::client::Credentials;
use wsv2_tests::sse::SseClient;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup, UPSTREAM_KEY, single_conn};

shell_tests! {
    a_streamed_post_is_one_turn_on_a_pooled_websocket_and_no_post_upstream,
    a_non_streamed_post_answers_the_final_response_object_as_json,
    twenty_store_true_turns_share_one_upgrade,
    a_twenty_turn_store_false_chain_shares_one_upgrade,
    sse_bytes_equal_the_mocks_own_sse_in_deterministic_mode,
    error_mapping_table,
}

fn http_base(setup: &Setup) -> String {
    format!("http://{}/v1", setup.gateway.addr)
}

fn creds() -> Credentials {
    Credentials::bearer(CLIENT_KEY)
}

fn body(input: &str, extra: Value) -> Value {
    let mut b = json!({"model": "gpt-5", "input": input, "stream": true});
    if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

/// POSTs the mock saw (the gateway must never POST for a WebSocket account)
fn posts(setup: &Setup) -> usize {
    crate::support::http::posts(&setup.mock)
}

/// Events of one streamed answer, as JSON
async fn stream_events(base: &str, body: &Value) -> (u16, Vec<Value>) {
    let client = SseClient::new();
    let mut stream = client.post(base, &creds(), body).await.expect("POST");
    let status = stream.status();
    let mut events = Vec::new();
    while let Some(event) = stream.next_event().await.expect("SSE") {
        events.push(event);
    }
    (status, events)
}

/// The whole answer as text
async fn answer_text(base: &str, creds: &Credentials, body: &Value) -> (u16, String) {
    let client = SseClient::new();
    let stream = client.post(base, creds, body).await.expect("POST");
    let status = stream.status();
    (status, stream.text().await.expect("body"))
}

async fn a_streamed_post_is_one_turn_on_a_pooled_websocket_and_no_post_upstream(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let (status, events) = stream_events(&http_base(&setup), &body("hi", json!({}))).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"response.created"));
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    assert_eq!(posts(&setup), 0, "no POST reached the mock");
    assert_eq!(setup.handshakes(), [1]);
    let creates: Vec<Value> = setup.frames().into_iter().map(|(_, f)| f).collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0]["type"], "response.create");
    assert_eq!(
        creates[0]["stream"], true,
        "the bridge always streams upstream"
    );
}

async fn a_non_streamed_post_answers_the_final_response_object_as_json(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let (status, text) = answer_text(
        &http_base(&setup),
        &creds(),
        &body("hi", json!({"stream": false})),
    )
    .await;
    let creates: Vec<Value> = setup.frames().into_iter().map(|(_, f)| f).collect();
    assert_eq!(
        creates[0]["stream"], true,
        "stream:false is still streamed upstream"
    );
    assert_eq!(status, 200);
    let response: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert!(
        response["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("resp_"))
    );
    assert_eq!(posts(&setup), 0);
}

async fn sequential_turns_on_one_conn(shell: Shell, store: bool) {
    let setup = Setup::new(shell, single_conn).await;
    let base = http_base(&setup);
    let mut previous: Option<String> = None;
    for i in 0..20 {
        let mut extra = json!({"store": store, "stream": false});
        if let Some(p) = &previous
            && !store
        {
            extra["previous_response_id"] = json!(p);
        }
        let (status, text) = answer_text(&base, &creds(), &body(&format!("turn {i}"), extra)).await;
        assert_eq!(status, 200, "turn {i}: {text}");
        let response: Value = serde_json::from_str(&text).expect("JSON");
        previous = response["id"].as_str().map(str::to_owned);
    }
    assert_eq!(setup.handshakes(), [1], "exactly one upgrade for 20 turns");
    let conns: Vec<u64> = setup.frames().iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, vec![1; 20], "all 20 creates on that conn");
    let reuse = 1.0 - setup.handshakes().len() as f64 / 20.0;
    assert!((reuse - 0.95).abs() < 1e-9, "reuse ratio {reuse}");
    assert_eq!(posts(&setup), 0);
}

async fn twenty_store_true_turns_share_one_upgrade(shell: Shell) {
    sequential_turns_on_one_conn(shell, true).await;
}

async fn a_twenty_turn_store_false_chain_shares_one_upgrade(shell: Shell) {
    sequential_turns_on_one_conn(shell, false).await;
}

async fn sse_bytes_equal_the_mocks_own_sse_in_deterministic_mode(shell: Shell) {
    let deterministic = |m: &mut MockConfig| m.deterministic = true;
    let setup = Setup::with_mock(shell, deterministic, single_conn).await;
    let direct = wsv2_mock::start(MockConfig {
        api_key: UPSTREAM_KEY.into(),
        deterministic: true,
        ..MockConfig::default()
    })
    .await
    .expect("mock");
    let request = body("same script", json!({"metadata": {"mock_deltas": 5}}));
    let (status, through) = answer_text(&http_base(&setup), &creds(), &request).await;
    assert_eq!(status, 200);
    let (direct_status, own) = answer_text(
        &format!("{}/v1", direct.http_base().trim_end_matches("/v1")),
        &Credentials::bearer(UPSTREAM_KEY),
        &request,
    )
    .await;
    assert_eq!(direct_status, 200);
    assert!(own.contains("response.completed"), "{own}");
    assert_eq!(
        through, own,
        "SSE bytes through the gateway equal the mock's"
    );
}

async fn error_mapping_table(shell: Shell) {
    let setup = Setup::single_conn(shell).await;
    let base = http_base(&setup);
    let cases: Vec<(&str, Credentials, Value, u16, &str)> = vec![
        (
            "no key",
            Credentials::bearer(""),
            body("x", json!({})),
            401,
            "invalid_api_key",
        ),
        (
            "stream_id in the body",
            creds(),
            body("x", json!({"stream_id": "a"})),
            400,
            "invalid_request_error",
        ),
        (
            "upstream 400 before the first event (stream)",
            creds(),
            body("x", json!({"metadata": {"mock_fault": "error_400"}})),
            400,
            "invalid_request_error",
        ),
        (
            "upstream 400 before the reply (json)",
            creds(),
            body(
                "x",
                json!({"stream": false, "metadata": {"mock_fault": "error_400"}}),
            ),
            400,
            "invalid_request_error",
        ),
        (
            "unknown store:false previous response goes upstream",
            creds(),
            body(
                "x",
                json!({"store": false, "previous_response_id": "resp_unknown"}),
            ),
            400,
            "previous_response_not_found",
        ),
    ];
    for (name, creds, request, want_status, want_text) in cases {
        let (status, text) = answer_text(&base, &creds, &request).await;
        assert_eq!(status, want_status, "{name}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: {text}"));
        assert!(error["error"].is_object(), "{name}: {text}");
        assert!(text.contains(want_text), "{name}: {text}");
    }
}
