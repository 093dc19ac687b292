//! Event streams of single responses: the canonical sequences, outputs, usage, determinism,
//! frame handling and pings.

mod common;

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use common::{Client, cfg, create, final_response, mock, types};
use serde_json::{Value, json};
use wsv2_mock::MockConfig;

fn text_sequence(deltas: usize) -> Vec<&'static str> {
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    expected
}

fn assert_sequence_numbers_from_zero(events: &[Value]) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event["sequence_number"],
            json!(index),
            "event {index}: {event}"
        );
    }
}

#[tokio::test]
async fn text_response_follows_the_canonical_sequence_with_full_usage() {
    let mock = mock(MockConfig {
        deterministic: true,
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    let events = client
        .turn(create(json!({"metadata": {"topic": "t"}, "client_metadata": {"session_id": "s"}, "instructions": "be brief"})))
        .await;
    assert_eq!(types(&events), text_sequence(8));
    assert_sequence_numbers_from_zero(&events);
    assert!(
        events.iter().all(|e| e.get("stream_id").is_none()),
        "default lane carries no stream_id"
    );
    assert!(
        events.iter().all(|e| e.get("mock_ts_ns").is_none()),
        "deterministic mode has no timestamps"
    );
    let created = &events[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["id"], "resp_mock_0001");
    let response = final_response(&events);
    assert_eq!(response["id"], "resp_mock_0001");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "mock-model");
    assert_eq!(response["store"], true);
    assert_eq!(response["previous_response_id"], Value::Null);
    assert_eq!(response["metadata"], json!({"topic": "t"}));
    assert_eq!(response["instructions"], "be brief");
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas.len(), 8 * 8);
    assert_eq!(response["output"][0]["content"][0]["text"], deltas);
    assert_eq!(response["output"][0]["status"], "completed");
    let usage = &response["usage"];
    let (input, output) = (
        usage["input_tokens"].as_u64().unwrap(),
        usage["output_tokens"].as_u64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{usage}");
    assert_eq!(usage["total_tokens"], input + output);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    mock.shutdown().await;
}

#[tokio::test]
async fn deltas_carry_send_timestamps_unless_deterministic() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let events = client.turn(create(json!({}))).await;
    let stamps: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["mock_ts_ns"].as_u64().expect("mock_ts_ns on every delta"))
        .collect();
    assert_eq!(stamps.len(), 8);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    let id = final_response(&events)["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("resp_") && !id.contains("mock"), "{id}");
    mock.shutdown().await;
}

#[tokio::test]
async fn deterministic_mocks_produce_byte_identical_streams() {
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mock = mock(MockConfig {
            deterministic: true,
            ..cfg()
        })
        .await;
        let mut client = Client::connect(&mock).await;
        client
            .send(create(json!({"metadata": {"mock_output": "reasoning"}})))
            .await;
        let mut raw = Vec::new();
        loop {
            match client.recv().await {
                Some(Ok(Message::Text(text))) => {
                    let done = text.as_str().contains("\"type\":\"response.completed\"");
                    raw.push(text.as_str().to_owned());
                    if done {
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        streams.push(raw);
        mock.shutdown().await;
    }
    assert!(streams[0].len() > 10);
    assert_eq!(streams[0], streams[1]);
}

#[tokio::test]
async fn function_call_output_streams_arguments_and_names_the_first_tool() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let tools =
        json!([{"type": "function", "name": "exec_command", "parameters": {"type": "object"}}]);
    let events = client
        .turn(create(
            json!({"tools": tools, "metadata": {"mock_output": "function_call"}}),
        ))
        .await;
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ];
    expected.extend(std::iter::repeat_n(
        "response.function_call_arguments.delta",
        8,
    ));
    expected.extend([
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let item = &final_response(&events)["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "exec_command");
    assert_eq!(item["arguments"], streamed);
    assert!(
        serde_json::from_str::<Value>(&streamed).is_ok(),
        "arguments are JSON: {streamed}"
    );
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(final_response(&events)["tools"], tools);
    mock.shutdown().await;
}

#[tokio::test]
async fn reasoning_item_precedes_the_message_and_carries_encrypted_content_when_asked() {
    let mock = mock(MockConfig { deltas: 2, ..cfg() }).await;
    let mut client = Client::connect(&mock).await;
    let asked = client
        .turn(create(json!({"metadata": {"mock_output": "reasoning"}, "include": ["reasoning.encrypted_content"], "store": false})))
        .await;
    assert_eq!(
        types(&asked)[..9],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
        ]
    );
    let output = &final_response(&asked)["output"];
    assert_eq!(output[0]["type"], "reasoning");
    assert!(output[0]["encrypted_content"].is_string());
    assert_eq!(output[1]["type"], "message");
    assert!(
        final_response(&asked)["usage"]["output_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let plain = client
        .turn(create(json!({"metadata": {"mock_output": "reasoning"}})))
        .await;
    assert!(
        final_response(&plain)["output"][0]
            .get("encrypted_content")
            .is_none()
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn delta_count_and_size_follow_config_and_metadata() {
    let mock = mock(MockConfig {
        delta_bytes: 5,
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    let events = client
        .turn(create(json!({"metadata": {"mock_deltas": "3"}})))
        .await;
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .collect();
    assert_eq!(deltas.len(), 3);
    assert!(
        deltas
            .iter()
            .all(|d| d["delta"].as_str().unwrap().len() == 5)
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn generate_false_answers_created_then_completed_with_zero_usage_and_can_be_chained() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let warm = client
        .turn(create(json!({"generate": false, "store": false})))
        .await;
    assert_eq!(types(&warm), ["response.created", "response.completed"]);
    assert_sequence_numbers_from_zero(&warm);
    let response = final_response(&warm);
    assert_eq!(response["output"], json!([]));
    assert_eq!(response["usage"]["input_tokens"], 0);
    assert_eq!(response["usage"]["total_tokens"], 0);
    let id = response["id"].clone();
    let turn = client
        .turn(create(json!({"previous_response_id": id, "store": false})))
        .await;
    assert_eq!(final_response(&turn)["status"], "completed");
    assert_eq!(final_response(&turn)["previous_response_id"], id);
    mock.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_error_events_and_the_socket_stays_open() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    client.send(json!({"type": "response.cancel"})).await;
    let unknown = client.event().await;
    assert_eq!(unknown["type"], "error");
    assert_eq!(unknown["status"], 400);
    assert_eq!(unknown["error"]["type"], "invalid_request_error");
    client.ws.send(Message::text("{not json")).await.unwrap();
    let not_json = client.event().await;
    assert_eq!(
        (not_json["type"].as_str(), not_json["status"].as_u64()),
        (Some("error"), Some(400))
    );
    client
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    let binary = client.event().await;
    assert_eq!(
        (binary["type"].as_str(), binary["status"].as_u64()),
        (Some("error"), Some(400))
    );
    let background = client.turn(create(json!({"background": true}))).await;
    assert_eq!(background.len(), 1);
    assert_eq!(background[0]["status"], 400);
    assert_eq!(background[0]["error"]["type"], "invalid_request_error");
    let events = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&events)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn pings_are_answered_mid_stream() {
    let mock = mock(MockConfig {
        deltas: 100,
        delta_interval: Duration::from_millis(5),
        ..cfg()
    })
    .await;
    let mut client = Client::connect(&mock).await;
    client.send(create(json!({}))).await;
    loop {
        let event = client.event().await;
        if event["type"] == "response.output_text.delta" {
            break;
        }
    }
    client
        .ws
        .send(Message::Ping(b"mid".to_vec().into()))
        .await
        .unwrap();
    let mut pong_before_end = false;
    loop {
        match client.recv().await {
            Some(Ok(Message::Pong(payload))) => {
                assert_eq!(&payload[..], b"mid");
                pong_before_end = true;
            }
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"response.completed\"") => {
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pong_before_end,
        "the pong must arrive while the response is still streaming"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn accepts_a_twenty_mebibyte_create() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let big = "x".repeat(20 << 20);
    let events = client
        .turn(create(
            json!({"input": big, "metadata": {"mock_deltas": "1"}}),
        ))
        .await;
    let response = final_response(&events);
    assert_eq!(response["status"], "completed");
    assert!(response["usage"]["input_tokens"].as_u64().unwrap() > 5_000_000);
    mock.shutdown().await;
}
