//! Every `metadata.mock_fault`, each asserting its client-visible effect directly.

mod common;

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use common::{Client, cfg, create, final_response, mock, types};
use serde_json::{Value, json};
use wsv2_mock::{CloseSide, Record};

fn fault(name: &str) -> Value {
    create(json!({"metadata": {"mock_fault": name}}))
}

async fn assert_still_serving(client: &mut Client) {
    let events = client.turn(create(json!({}))).await;
    assert_eq!(
        final_response(&events)["status"],
        "completed",
        "the socket keeps serving after the fault"
    );
}

#[tokio::test]
async fn error_faults_answer_an_error_event_in_place_of_the_response() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    for (name, status, error_type) in [
        ("error_400", 400, "invalid_request_error"),
        ("error_429", 429, "requests"),
        ("error_500", 500, "server_error"),
    ] {
        let events = client.turn(fault(name)).await;
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        assert_eq!(events[0]["type"], "error");
        assert_eq!(events[0]["status"], status);
        assert_eq!(events[0]["error"]["type"], error_type);
        assert!(events[0].get("sequence_number").is_none());
        assert_still_serving(&mut client).await;
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn error_429_names_a_fifty_millisecond_reset() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(fault("error_429")).await;
    for headers in [&events[0]["error"]["headers"], &events[0]["headers"]] {
        assert_eq!(headers["retry-after-ms"], "50", "{headers}");
        assert_eq!(headers["x-ratelimit-reset-requests"], "50ms");
        assert_eq!(headers["retry-after"], "1");
    }
    assert_eq!(events[0]["error"]["code"], "rate_limit_exceeded");
    mock.shutdown().await;
}

#[tokio::test]
async fn failed_ends_with_response_failed_after_two_deltas() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(fault("failed")).await;
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.failed",
        ]
    );
    let response = final_response(&events);
    assert_eq!(response["status"], "failed");
    assert_eq!(response["error"]["code"], "server_error");
    assert_still_serving(&mut client).await;
    mock.shutdown().await;
}

#[tokio::test]
async fn incomplete_ends_with_max_output_tokens() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(fault("incomplete")).await;
    let response = final_response(&events);
    assert_eq!(events.last().unwrap()["type"], "response.incomplete");
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        2
    );
    let id = response["id"].clone();
    let next = client
        .turn(create(json!({"store": false, "previous_response_id": id})))
        .await;
    assert_eq!(
        final_response(&next)["status"],
        "completed",
        "an incomplete response is still cached"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn drop_mid_stream_cuts_tcp_without_a_close_frame() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client.send(fault("drop_mid_stream")).await;
    let mut seen = Vec::new();
    let end = loop {
        match client.recv().await {
            Some(Ok(Message::Text(text))) => {
                seen.push(serde_json::from_str::<Value>(text.as_str()).unwrap())
            }
            other => break other,
        }
    };
    assert!(
        !matches!(end, Some(Ok(Message::Close(_)))),
        "no close frame may arrive: {end:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .count(),
        2
    );
    assert_eq!(seen[0]["type"], "response.created");
    assert!(mock.records().contains(&Record::Close {
        conn: 1,
        by: CloseSide::Server,
        code: None
    }));
    mock.shutdown().await;
}

#[tokio::test]
async fn close_1011_mid_stream_sends_a_close_frame_after_two_deltas() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client.send(fault("close_1011_mid_stream")).await;
    let mut deltas = 0;
    loop {
        match client.recv().await {
            Some(Ok(Message::Text(text))) => {
                deltas += usize::from(text.as_str().contains("response.output_text.delta"));
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1011);
                break;
            }
            other => panic!("expected a 1011 close, got {other:?}"),
        }
    }
    assert_eq!(deltas, 2);
    mock.shutdown().await;
}

#[tokio::test]
async fn slow_first_event_delays_response_created() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let start = Instant::now();
    client
        .send(create(
            json!({"metadata": {"mock_fault": "slow_first_event", "mock_delay_ms": "150"}}),
        ))
        .await;
    let first = client.event().await;
    assert_eq!(first["type"], "response.created");
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn stall_lane_blocks_only_its_own_lane() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client
        .send(create(
            json!({"stream_id": "stuck", "metadata": {"mock_fault": "stall_lane"}}),
        ))
        .await;
    let created = client.event().await;
    assert_eq!(
        (created["type"].as_str(), created["stream_id"].as_str()),
        (Some("response.created"), Some("stuck"))
    );
    client.send(create(json!({"stream_id": "stuck"}))).await;
    for _ in 0..2 {
        let other = client.turn(create(json!({"stream_id": "free"}))).await;
        assert!(
            other.iter().all(|e| e["stream_id"] == "free"),
            "nothing may move on the stalled lane: {other:?}"
        );
        assert_eq!(final_response(&other)["status"], "completed");
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn stop_reading_blocks_client_writes_and_resumes_after_the_delay() {
    let mock = mock(cfg()).await;
    let mut resumed = Client::connect(&mock).await;
    let paused = resumed
        .turn(create(
            json!({"metadata": {"mock_fault": "stop_reading", "mock_delay_ms": "300"}}),
        ))
        .await;
    assert_eq!(
        final_response(&paused)["status"],
        "completed",
        "the mock still writes while not reading"
    );
    let start = Instant::now();
    let next = resumed.turn(create(json!({}))).await;
    assert_eq!(final_response(&next)["status"], "completed");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "frames wait until reading resumes: {:?}",
        start.elapsed()
    );

    let mut stuck = Client::connect(&mock).await;
    let events = stuck
        .turn(create(json!({"metadata": {"mock_fault": "stop_reading"}})))
        .await;
    assert_eq!(final_response(&events)["status"], "completed");
    let chunk = "y".repeat(1 << 20);
    let flood = async {
        loop {
            stuck
                .ws
                .send(Message::text(chunk.clone()))
                .await
                .expect("send");
        }
    };
    let blocked = tokio::time::timeout(Duration::from_secs(2), flood).await;
    assert!(
        blocked.is_err(),
        "writes must block once the socket buffers fill"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn stop_pong_silences_pings_from_then_on() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client
        .ws
        .send(Message::Ping(b"before".to_vec().into()))
        .await
        .unwrap();
    match client.recv().await {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"before"),
        other => panic!("expected a pong, got {other:?}"),
    }
    let events = client.turn(fault("stop_pong")).await;
    assert_eq!(final_response(&events)["status"], "completed");
    // A pong is queued the moment the ping is read, before the create behind it: if none has
    // arrived by the end of that response, the ping went unanswered.
    client
        .ws
        .send(Message::Ping(b"after".to_vec().into()))
        .await
        .unwrap();
    client.send(create(json!({}))).await;
    loop {
        match client.recv().await {
            Some(Ok(Message::Pong(_))) => panic!("no pong may arrive after stop_pong"),
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"response.completed\"") => {
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn tail_packet_follows_the_terminal_event() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(fault("tail_packet")).await;
    let completed = events.last().unwrap();
    let tail = client.event().await;
    assert_eq!(tail["type"], "response.output_text.delta");
    assert_eq!(tail["item_id"], final_response(&events)["output"][0]["id"]);
    assert_eq!(
        tail["sequence_number"],
        completed["sequence_number"].as_u64().unwrap() + 1
    );
    assert_still_serving(&mut client).await;
    mock.shutdown().await;
}

#[tokio::test]
async fn an_unknown_fault_name_is_a_loud_error() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(fault("stal_lane")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], 400);
    assert!(
        events[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stal_lane")
    );
    mock.shutdown().await;
}
