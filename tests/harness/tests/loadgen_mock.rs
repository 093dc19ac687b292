//! The load generator library against in-process mocks: counts must be exact and every stream
//! clean.

use std::time::Duration;

use wsv2_mock::{MockConfig, MockHandle};
use wsv2_tests::loadgen::{self, LoadConfig, LoadTarget, Mode};

const KEY: &str = "sk-load";
/// Non-delta events of a canonical text response: created, in_progress, output_item.added,
/// content_part.added, output_text.done, content_part.done, output_item.done, completed.
const FRAMING_EVENTS: u64 = 8;

async fn mock() -> MockHandle {
    wsv2_mock::start(MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts")
}

fn plan(targets: Vec<LoadTarget>, mode: Mode) -> LoadConfig {
    LoadConfig {
        targets,
        api_key: KEY.into(),
        mode,
        sessions: 4,
        turns: 3,
        warmup_turns: 1,
        rounds: 1,
        think_time: Duration::ZERO,
        deltas: Some(20),
        event_timeout: Duration::from_secs(10),
    }
}

async fn exact_counts(mode: Mode) {
    let mock = mock().await;
    let target = LoadTarget::from_url("direct", &mock.ws_url()).unwrap();
    let report = loadgen::run(&plan(vec![target], mode)).await.expect("run");
    let s = &report.summaries[0];
    let measured_turns = 4 * 3;
    assert_eq!(s.errors, 0, "errors: {:?}", s.error_samples);
    assert!(s.integrity.is_clean(), "{:?}", s.integrity);
    assert_eq!(s.turns_ok, measured_turns);
    assert_eq!(s.events, measured_turns * (20 + FRAMING_EVENTS));
    assert_eq!(
        s.turn_start_us.count, measured_turns,
        "warm-up turns must be excluded"
    );
    assert_eq!(
        s.event_latency_us.count,
        measured_turns * 20,
        "one latency sample per delta"
    );
    assert!(s.event_latency_us.p50 > 0.0 && s.event_latency_us.max < 10_000_000.0);
    assert!(s.events_per_sec > 0.0);
    assert!(report.table().contains("direct"));
    // The WS sessions chain: every measured turn after the first of a session continues one.
    let creates = mock
        .records()
        .iter()
        .filter(|r| is_chained_create(r))
        .count();
    if mode == Mode::Ws {
        assert_eq!(creates, 4 * 3, "each session chains 3 of its 4 turns");
    }
}

fn is_chained_create(record: &wsv2_mock::Record) -> bool {
    matches!(record, wsv2_mock::Record::Frame { frame, .. }
        if frame["type"] == "response.create" && frame["previous_response_id"].is_string())
}

#[tokio::test]
async fn websocket_mode_counts_every_event_and_finds_no_loss() {
    exact_counts(Mode::Ws).await;
}

#[tokio::test]
async fn sse_mode_counts_every_event_and_finds_no_loss() {
    exact_counts(Mode::Sse).await;
}

#[tokio::test]
async fn sessions_send_codex_like_unique_headers() {
    let mock = mock().await;
    let target = LoadTarget::from_url("direct", &mock.ws_url()).unwrap();
    let report = loadgen::run(&plan(vec![target], Mode::Ws))
        .await
        .expect("run");
    assert_eq!(report.errors(), 0);
    let mut ids = Vec::new();
    for record in mock.records() {
        if let wsv2_mock::Record::Handshake { headers, .. } = record {
            assert_eq!(
                headers.get("originator").map(String::as_str),
                Some("wsv2-loadgen")
            );
            let id = headers
                .get("session-id")
                .cloned()
                .expect("session-id header");
            assert_eq!(headers.get("x-client-request-id"), Some(&id));
            ids.push(id);
        }
    }
    assert_eq!(ids.len(), 4, "one socket per session");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "session ids must be unique");
}

#[tokio::test]
async fn targets_alternate_round_by_round() {
    let (a, b) = (mock().await, mock().await);
    let targets = vec![
        LoadTarget::from_url("a", &a.ws_url()).unwrap(),
        LoadTarget::from_url("b", &b.http_base()).unwrap(),
    ];
    let mut config = plan(targets, Mode::Ws);
    config.rounds = 2;
    config.sessions = 2;
    let report = loadgen::run(&config).await.expect("run");
    let order: Vec<&str> = report.rounds.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(order, ["a", "b", "b", "a"]);
    for s in &report.summaries {
        assert_eq!(s.turns_ok, 2 * 2 * 3, "{} turns over two rounds", s.target);
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rounds"].as_array().unwrap().len(), 4);
    assert!(json["summaries"][1]["event_latency_us"]["p99"].is_number());
    assert!(report.table().contains("b vs a"));
}

#[tokio::test]
async fn a_rejected_key_counts_as_errors() {
    let mock = mock().await;
    let mut config = plan(
        vec![LoadTarget::from_url("direct", &mock.ws_url()).unwrap()],
        Mode::Ws,
    );
    config.api_key = "sk-wrong".into();
    config.turns = 1;
    config.warmup_turns = 0;
    let report = loadgen::run(&config).await.expect("run");
    assert_eq!(report.errors(), 4, "one failed connect per session");
    assert_eq!(report.summaries[0].turns_ok, 0);
    assert!(
        report.summaries[0].error_samples[0].contains("401"),
        "{:?}",
        report.summaries[0].error_samples
    );
}

/// A hand-made upstream whose one response arrives with sequence numbers 0,1,3,2,2,5,6: one
/// reordered, one duplicated, one lost.
#[tokio::test]
async fn loss_duplication_and_reordering_are_counted() {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = async_tungstenite::tokio::accept_async(tcp).await.unwrap();
        let create = ws.next().await.unwrap().unwrap();
        assert!(create.to_text().unwrap().contains("response.create"));
        let response = serde_json::json!({"id": "resp_broken", "status": "in_progress"});
        let mut events = vec![
            serde_json::json!({"type": "response.created", "sequence_number": 0, "response": response}),
        ];
        for n in [1, 3, 2, 2, 5] {
            events.push(serde_json::json!({"type": "response.output_text.delta", "sequence_number": n, "delta": "x"}));
        }
        events.push(
            serde_json::json!({"type": "response.completed", "sequence_number": 6,
            "response": {"id": "resp_broken", "status": "completed"}}),
        );
        for e in events {
            ws.send(Message::text(e.to_string())).await.unwrap();
        }
        // Wait for the client's close so the turn is read in full.
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    });
    let target = LoadTarget::from_url("broken", &format!("ws://{addr}/v1/responses")).unwrap();
    let mut config = plan(vec![target], Mode::Ws);
    config.sessions = 1;
    config.turns = 1;
    config.warmup_turns = 0;
    let report = loadgen::run(&config).await.expect("run");
    let integrity = report.summaries[0].integrity;
    assert_eq!(
        (integrity.lost, integrity.duplicated, integrity.reordered),
        (1, 1, 1)
    );
    assert!(report.has_integrity_violations());
    server.await.unwrap();
}
