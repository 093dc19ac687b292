//! OpenTelemetry traces (issue 15 item 1): one span per response over OTLP/HTTP, WebSocket and
//! HTTP alike, parented on the client's W3C trace context (the upgrade's or POST's
//! `traceparent`, or a create's `client_metadata.traceparent`), with a failover as a span
//! event; no secret or prompt in the exported bytes. A collector that never answers costs the
//! turns nothing: its spans are dropped and counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wsv2_core::AccountId;
use wsv2_core::file_config::{GatewayConfig, UpstreamUrl, resolve_trace_export};
use wsv2_core::turn::ModelMap;
use wsv2_tests::client::{Credentials, WsClient};
use wsv2_tests::sse::SseClient;

use crate::support::harden::{CLIENT_KEY, UPSTREAM_KEY, mock, silent_peer};
use crate::support::http::{base, scrape, series};
use crate::support::{GatewayHandle, Shell};

shell_tests! {
    spans_follow_the_clients_trace_on_both_transports_without_secrets,
    a_collector_that_never_answers_costs_turns_nothing,
}

const PROMPT: &str = "PROMPT-TEXT-NEVER-IN-A-SPAN";
/// The upgrade's header (WS turn 1), a create's client_metadata (WS turn 2), a POST's header
const WS_HEADER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const WS_METADATA: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const POST_HEADER: &str = "00-11111111111111111111111111111111-2222222222222222-01";
const COLLECTOR_TOKEN: &str = "collector-token-never-logged";

/// Every request the receiver got, head and body as sent
type Requests = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// An OTLP/HTTP receiver: answers each POST 200 and keeps it
async fn receiver() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let requests: Requests = Arc::default();
    let kept = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_len, body_len) = loop {
                    let n = tcp.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&chunk[..n]);
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, len);
                    }
                };
                while raw.len() < head_len + body_len {
                    let n = tcp.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&chunk[..n]);
                }
                let body = raw[head_len..head_len + body_len].to_vec();
                raw.truncate(head_len);
                kept.lock().unwrap().push((raw, body));
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, requests)
}

/// Account 1 a closed port (tried first), account 2 the mock with a model map; spans to
/// `endpoint` through the standard variables
fn config(dead: &str, healthy: &str, endpoint: &str) -> GatewayConfig {
    let mut config = GatewayConfig::demo(dead, UPSTREAM_KEY).expect("config");
    let mut second = config.accounts[0].clone();
    second.id = AccountId(2);
    second.name = "healthy".to_owned();
    second.base_url = UpstreamUrl::parse(healthy).unwrap();
    second.model_map = Arc::new(ModelMap::new([("team-model".into(), "gpt-5".into())]));
    config.accounts[0].name = "dead".to_owned();
    config.accounts.push(second);
    config.client_keys[0].name = "otel-team".to_owned();
    config.core.pool.min_idle_per_account = 0;
    config.core.telemetry.export_interval = Duration::from_millis(20);
    let headers = format!("x-collector-token={COLLECTOR_TOKEN}");
    let env = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some(endpoint.to_owned()),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some(headers.clone()),
        "OTEL_SERVICE_NAME" => Some("wsv2-under-test".to_owned()),
        _ => None,
    };
    config.traces = resolve_trace_export(&config.core.telemetry, &env).expect("valid");
    config
}

async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("ws://{}/v1", listener.local_addr().unwrap())
}

fn create(extra: serde_json::Value) -> serde_json::Value {
    let mut create = json!({"type": "response.create", "model": "team-model", "input": PROMPT});
    for (k, v) in extra.as_object().unwrap() {
        create[k] = v.clone();
    }
    create
}

async fn ws_turns(gateway: &GatewayHandle) {
    let creds = Credentials::bearer(CLIENT_KEY).with_header("traceparent", WS_HEADER);
    let mut ws = WsClient::connect(&gateway.ws_url(), &creds).await.unwrap();
    for extra in [
        json!({}),
        json!({"client_metadata": {"session_id": "s", "traceparent": WS_METADATA}}),
    ] {
        ws.send_json(&create(extra)).await.unwrap();
        let turn = ws.read_turn().await.expect("a turn");
        assert_eq!(turn.last_type(), "response.completed", "{:?}", turn.events);
    }
}

async fn post_turn(gateway: &GatewayHandle, traceparent: Option<&str>) {
    let mut creds = Credentials::bearer(CLIENT_KEY);
    if let Some(tp) = traceparent {
        creds = creds.with_header("traceparent", tp);
    }
    let body = json!({"model": "team-model", "input": PROMPT, "stream": false});
    let answer = SseClient::new()
        .post(&base(gateway.addr), &creds, &body)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.text().await.unwrap();
}

fn spans_of(requests: &Requests) -> Vec<(ExportTraceServiceRequest, Span)> {
    let mut out = Vec::new();
    for (_, body) in requests.lock().unwrap().iter() {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push((request.clone(), span.clone()));
                }
            }
        }
    }
    out
}

fn attr(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

fn text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{key}: {other:?}"),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(i)) => i,
        other => panic!("{key}: {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits (bounded) until the receiver holds `n` spans
async fn wait_for_spans(requests: &Requests, n: usize) -> Vec<(ExportTraceServiceRequest, Span)> {
    for _ in 0..500 {
        let spans = spans_of(requests);
        if spans.len() >= n {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} spans arrived, expected {n}", spans_of(requests).len());
}

async fn spans_follow_the_clients_trace_on_both_transports_without_secrets(shell: Shell) {
    let (endpoint, requests) = receiver().await;
    let upstream = mock(|_| {}).await;
    let dead = closed_port_url().await;
    let gateway = shell
        .start(config(&dead, &upstream.ws_url(), &endpoint))
        .await
        .unwrap();
    ws_turns(&gateway).await;
    post_turn(&gateway, Some(POST_HEADER)).await;
    post_turn(&gateway, None).await;
    let spans = wait_for_spans(&requests, 4).await;
    assert_eq!(spans.len(), 4, "one span per response");

    let by_parent = |tp: &str| {
        let (trace, parent) = (&tp[3..35], &tp[36..52]);
        spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| hex(&s.trace_id) == trace && hex(&s.parent_span_id) == parent)
            .unwrap_or_else(|| panic!("no span parented on {tp}"))
    };
    let ws_first = by_parent(WS_HEADER);
    let ws_second = by_parent(WS_METADATA);
    let post = by_parent(POST_HEADER);
    let root = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.parent_span_id.is_empty())
        .expect("the POST without traceparent starts a trace");
    assert_eq!(root.trace_id.len(), 16);
    assert!(root.trace_id.iter().any(|b| *b != 0));
    for (span, transport) in [
        (ws_first, "websocket"),
        (ws_second, "websocket"),
        (post, "http"),
        (root, "http"),
    ] {
        assert_eq!(text(span, "wsv2.transport"), transport);
        assert_eq!(text(span, "wsv2.account"), "healthy");
        assert_eq!(text(span, "wsv2.client_key"), "otel-team");
        assert_eq!(text(span, "wsv2.outcome"), "completed");
        assert_eq!(text(span, "gen_ai.request.model"), "team-model");
        assert_eq!(text(span, "wsv2.upstream_model"), "gpt-5");
        assert!(int(span, "gen_ai.usage.input_tokens") > 0);
        assert!(int(span, "gen_ai.usage.output_tokens") > 0);
        assert!(matches!(
            attr(span, "wsv2.time_to_first_event_ms"),
            Some(Any::DoubleValue(ms)) if ms >= 0.0
        ));
        assert_eq!(span.span_id.len(), 8);
        assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
        assert!(text(span, "gen_ai.response.id").starts_with("resp_"));
    }
    // The first create met the dead account: its failover is an event of its span.
    let failover = ws_first
        .events
        .iter()
        .find(|e| e.name == "failover")
        .unwrap_or_else(|| panic!("no failover event: {:?}", ws_first.events));
    assert!(failover.time_unix_nano >= ws_first.start_time_unix_nano);
    assert!(failover.attributes.iter().any(|kv| kv.key == "wsv2.account"
        && kv.value.clone().and_then(|v| v.value) == Some(Any::StringValue("dead".into()))));
    assert_eq!(
        int(ws_first, "wsv2.retries") as usize,
        ws_first.events.len()
    );
    assert_eq!(
        int(ws_first, "wsv2.session"),
        int(ws_second, "wsv2.session")
    );
    let (request, _) = &spans[0];
    let service = request.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.clone()?.value);
    assert_eq!(service, Some(Any::StringValue("wsv2-under-test".into())));
    // The collector's header went along; no secret or prompt is anywhere in what was sent.
    let all = requests.lock().unwrap().clone();
    assert!(all.iter().all(|(head, _)| {
        String::from_utf8_lossy(head).contains(&format!("x-collector-token: {COLLECTOR_TOKEN}"))
    }));
    let sent: Vec<u8> = all.into_iter().flat_map(|(_, body)| body).collect();
    for secret in [CLIENT_KEY, UPSTREAM_KEY, PROMPT, COLLECTOR_TOKEN] {
        assert!(
            !sent.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in an exported span"
        );
    }
    let metrics = scrape(gateway.admin_addr.expect("admin listener")).await;
    assert_eq!(series(&metrics, "wsv2_spans_exported_total"), 4.0);
}

async fn a_collector_that_never_answers_costs_turns_nothing(shell: Shell) {
    const TURNS: usize = 12;
    let upstream = mock(|_| {}).await;
    let silent = silent_peer().await;
    let mut config = GatewayConfig::demo(&upstream.ws_url(), UPSTREAM_KEY).expect("config");
    config.core.pool.min_idle_per_account = 0;
    config.core.telemetry.span_queue = 2;
    config.core.telemetry.span_batch = 1;
    config.core.telemetry.export_interval = Duration::from_millis(1);
    config.core.telemetry.traces_endpoint = format!("http://{}/v1/traces", silent.addr);
    config.core.telemetry.export_timeout = Duration::from_millis(300);
    config.traces = resolve_trace_export(&config.core.telemetry, &|_| None).expect("valid");
    let gateway = shell.start(config).await.unwrap();
    let mut ws = WsClient::connect(&gateway.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    for i in 0..TURNS {
        ws.send_json(
            &json!({"type": "response.create", "model": "gpt-5", "input": format!("t{i}")}),
        )
        .await
        .unwrap();
        let turn = ws.read_turn().await.expect("a turn");
        assert_eq!(turn.last_type(), "response.completed", "turn {i}");
    }
    let admin = gateway.admin_addr.expect("admin listener");
    let metrics = scrape(admin).await;
    let queue_full = series(&metrics, "wsv2_spans_dropped_total{reason=\"queue_full\"}");
    assert!(
        queue_full >= 1.0,
        "the stuck exporter's queue filled and spans were dropped:\n{metrics}"
    );
    assert_eq!(series(&metrics, "wsv2_spans_exported_total"), 0.0);
    // The stuck export ends at export_timeout and its span is counted as failed.
    for _ in 0..300 {
        let metrics = scrape(admin).await;
        if series(
            &metrics,
            "wsv2_spans_dropped_total{reason=\"export_failed\"}",
        ) >= 1.0
        {
            eprintln!(
                "down collector: {TURNS} turns, queue_full {queue_full}, export_failed {}",
                series(
                    &metrics,
                    "wsv2_spans_dropped_total{reason=\"export_failed\"}"
                )
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no export ever failed");
}
