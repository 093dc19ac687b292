//! `stream_id` lanes, the in-flight and lane limits, serial mode, the lifetime limit and steering.

mod common;

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use common::{Client, cfg, create, final_response, is_terminal, mock, types};
use serde_json::{Value, json};
use wsv2_mock::{CloseSide, MockConfig, Record};

fn position(events: &[Value], lane: &str, event_type: &str) -> usize {
    events
        .iter()
        .position(|e| e["stream_id"] == lane && e["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} on lane {lane}"))
}

#[tokio::test]
async fn lanes_run_concurrently_interleave_and_echo_their_stream_id() {
    let mock = mock(MockConfig {
        deltas: 20,
        delta_interval: Duration::from_millis(2),
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    client.send(create(json!({"stream_id": "a"}))).await;
    client.send(create(json!({"stream_id": "b"}))).await;
    client.send(create(json!({}))).await;
    let events = client.terminals(3).await;
    assert!(
        position(&events, "b", "response.created") < position(&events, "a", "response.completed")
    );
    assert!(
        position(&events, "a", "response.created") < position(&events, "b", "response.completed")
    );
    for lane in ["a", "b"] {
        let lane_events: Vec<&Value> = events.iter().filter(|e| e["stream_id"] == lane).collect();
        assert_eq!(
            lane_events.len(),
            4 + 20 + 4,
            "every event of lane {lane} echoes it"
        );
        for (index, event) in lane_events.iter().enumerate() {
            assert_eq!(event["sequence_number"], json!(index));
        }
    }
    let default: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("stream_id").is_none())
        .collect();
    assert_eq!(default.len(), 28, "default-lane events carry no stream_id");
    mock.shutdown().await;
}

#[tokio::test]
async fn a_lane_is_fifo_and_sequence_numbers_restart_per_response() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client.send(create(json!({"stream_id": "a"}))).await;
    client.send(create(json!({"stream_id": "a"}))).await;
    let events = client.terminals(2).await;
    let completed_first = events
        .iter()
        .position(|e| e["type"] == "response.completed")
        .unwrap();
    let created_second = events
        .iter()
        .rposition(|e| e["type"] == "response.created")
        .unwrap();
    assert!(completed_first < created_second, "no overlap within a lane");
    assert_eq!(events[created_second]["sequence_number"], 0);
    mock.shutdown().await;
}

#[tokio::test]
async fn serial_mode_runs_every_lane_on_one_queue() {
    let mock = mock(MockConfig {
        serial: true,
        deltas: 20,
        delta_interval: Duration::from_millis(1),
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    client.send(create(json!({"stream_id": "a"}))).await;
    client.send(create(json!({"stream_id": "b"}))).await;
    let events = client.terminals(2).await;
    assert!(
        position(&events, "a", "response.completed") < position(&events, "b", "response.created")
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn the_thirty_third_named_lane_is_refused_with_its_stream_id() {
    let mock = mock(MockConfig { deltas: 0, ..cfg() }).await;
    let mut client = Client::connect(&mock).await;
    for n in 1..=32 {
        let events = client
            .turn(create(json!({"stream_id": format!("lane_{n}")})))
            .await;
        assert_eq!(final_response(&events)["status"], "completed", "lane {n}");
    }
    let refused = client.turn(create(json!({"stream_id": "lane_33"}))).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]["error"]["code"],
        "websocket_stream_limit_reached"
    );
    assert_eq!(refused[0]["stream_id"], "lane_33");
    let reused = client.turn(create(json!({"stream_id": "lane_7"}))).await;
    assert_eq!(
        final_response(&reused)["status"],
        "completed",
        "existing lanes keep working"
    );
    let default = client.turn(create(json!({}))).await;
    assert_eq!(
        final_response(&default)["status"],
        "completed",
        "the default lane does not count"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn invalid_stream_ids_are_refused_without_echo() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    for bad in [
        json!(""),
        json!("has space"),
        json!("x".repeat(257)),
        json!(5),
        json!("ünïcode"),
    ] {
        let refused = client.turn(create(json!({"stream_id": bad}))).await;
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["error"]["code"], "invalid_stream_id", "{bad}");
        assert!(refused[0].get("stream_id").is_none());
    }
    let ok = client
        .turn(create(json!({"stream_id": "x".repeat(256)})))
        .await;
    assert_eq!(final_response(&ok)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn at_most_sixteen_responses_are_in_flight_and_the_rest_queue() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    for n in 0..17 {
        client
            .send(create(
                json!({"stream_id": format!("s{n}"), "metadata": {"mock_fault": "stall_lane"}}),
            ))
            .await;
    }
    let mut created = Vec::new();
    while created.len() < 16 {
        let event = client.event().await;
        assert_eq!(event["type"], "response.created");
        created.push(event);
    }
    assert!(
        created.iter().all(|e| e["stream_id"] != "s16"),
        "the 17th must wait for a slot"
    );
    let target = created[0]["response"]["id"].clone();
    let lane = created[0]["stream_id"].clone();
    client
        .send(json!({"type": "response.steer", "previous_response_id": target, "input": "go on"}))
        .await;
    let mut order = Vec::new();
    loop {
        let event = client.event().await;
        let seventeenth = event["stream_id"] == "s16" && event["type"] == "response.created";
        order.push(event);
        if seventeenth {
            break;
        }
    }
    let successor_done = order
        .iter()
        .position(|e| e["stream_id"] == lane && e["type"] == "response.completed")
        .expect("the steered lane's successor completes first");
    assert_eq!(
        successor_done,
        order.len() - 2,
        "the 17th starts right after a slot frees: {:?}",
        types(&order)
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn steer_ends_the_target_as_steered_and_starts_a_successor_on_its_lane() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client
        .send(create(
            json!({"stream_id": "s", "store": false, "metadata": {"mock_fault": "stall_lane"}}),
        ))
        .await;
    let created = client.event().await;
    assert_eq!(created["type"], "response.created");
    let target = created["response"]["id"].clone();
    client
        .send(json!({"type": "response.steer", "previous_response_id": target, "input": "focus"}))
        .await;
    let accepted = client.event().await;
    assert_eq!(accepted["type"], "response.steer.accepted");
    assert_eq!(accepted["stream_id"], "s");
    assert_eq!(accepted["steer"]["previous_response_id"], target);
    assert_eq!(accepted["sequence_number"], 1);
    let incomplete = client.event().await;
    assert_eq!(incomplete["type"], "response.incomplete");
    assert_eq!(incomplete["response"]["id"], target);
    assert_eq!(
        incomplete["response"]["incomplete_details"]["reason"],
        "steered"
    );
    let successor = client.response().await;
    assert_eq!(successor[0]["type"], "response.created");
    assert_eq!(successor[0]["sequence_number"], 0);
    let response = final_response(&successor);
    assert_eq!(response["status"], "completed");
    assert_eq!(response["previous_response_id"], target);
    assert_ne!(response["id"], target);
    assert!(successor.iter().all(|e| e["stream_id"] == "s"));
    let successor_id = response["id"].clone();
    let next = client
        .turn(create(
            json!({"stream_id": "s", "store": false, "previous_response_id": successor_id}),
        ))
        .await;
    assert_eq!(
        final_response(&next)["status"],
        "completed",
        "the successor is the lane's cached latest"
    );

    client
        .send(json!({"type": "response.steer", "previous_response_id": "resp_nope", "input": "x"}))
        .await;
    let failed = client.event().await;
    assert_eq!(failed["type"], "response.steer.failed");
    assert_eq!(failed["error"]["code"], "response_not_found");
    assert_eq!(failed["steer"]["previous_response_id"], "resp_nope");
    mock.shutdown().await;
}

#[tokio::test]
async fn after_the_lifetime_the_next_create_gets_the_connection_limit_error() {
    let mock = mock(MockConfig {
        lifetime: Duration::from_millis(300),
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    // The mock itself waits past the lifetime (400 ms before response.created): no test sleep.
    let before = client
        .turn(create(
            json!({"metadata": {"mock_fault": "slow_first_event", "mock_delay_ms": "400"}}),
        ))
        .await;
    assert_eq!(
        final_response(&before)["status"],
        "completed",
        "a response started before expiry finishes"
    );
    for _ in 0..2 {
        let after = client.turn(create(json!({}))).await;
        assert_eq!(after.len(), 1);
        assert_eq!(
            after[0]["error"]["code"],
            "websocket_connection_limit_reached"
        );
        assert_eq!(after[0]["status"], 400);
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn with_unsolicited_limit_an_idle_socket_gets_the_error_then_a_close() {
    let mock = mock(MockConfig {
        lifetime: Duration::from_millis(100),
        unsolicited_limit: true,
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    let error = client.event().await;
    assert_eq!(error["error"]["code"], "websocket_connection_limit_reached");
    assert!(is_terminal(&error));
    match client.recv().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let records = mock.records();
    assert!(
        records.contains(&Record::Close {
            conn: 1,
            by: CloseSide::Server,
            code: Some(1001)
        }),
        "{records:?}"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn with_cut_at_lifetime_each_open_response_gets_the_error_on_its_lane_then_a_close() {
    let mock = mock(MockConfig {
        lifetime: Duration::from_millis(300),
        cut_at_lifetime: true,
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    // Both stall after response.created: still open when the lifetime runs out.
    for lane in ["a", "b"] {
        client
            .send(create(
                json!({"stream_id": lane, "metadata": {"mock_fault": "stall_lane"}}),
            ))
            .await;
    }
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let event = client.event().await;
        if event["type"] == "error" {
            assert_eq!(event["error"]["code"], "websocket_connection_limit_reached");
            errors.push(event["stream_id"].clone());
        } else {
            assert_eq!(event["type"], "response.created", "{event}");
        }
    }
    assert_eq!(errors, [json!("a"), json!("b")]);
    match client.recv().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    mock.shutdown().await;
}
