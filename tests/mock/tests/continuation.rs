//! Continuation exactly as documented: per connection and lane only the latest response is
//! cached; `store: false` misses are errors; `store: true` ids rehydrate; failed same-lane
//! continuations evict; cross-lane fork errors keep the parent; closing forgets everything.

mod common;

use common::{Client, cfg, create, final_response, mock};
use serde_json::{Value, json};

fn id_of(events: &[Value]) -> Value {
    final_response(events)["id"].clone()
}

fn not_found(id: &Value, stream_id: Option<&str>) -> Value {
    let mut expected = json!({"type": "error", "status": 400,
        "error": {"type": "invalid_request_error", "code": "previous_response_not_found",
                  "message": format!("Previous response with id '{}' not found.", id.as_str().unwrap()),
                  "param": "previous_response_id"}});
    if let Some(stream_id) = stream_id {
        expected["stream_id"] = stream_id.into();
    }
    expected
}

#[tokio::test]
async fn chained_turns_continue_from_the_cache_and_only_the_latest_is_kept() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let first = client.turn(create(json!({"store": false}))).await;
    let r1 = id_of(&first);
    let second = client
        .turn(create(json!({"store": false, "previous_response_id": r1})))
        .await;
    let response = final_response(&second);
    assert_eq!(response["status"], "completed");
    assert_eq!(response["previous_response_id"], r1);
    assert_eq!(response["store"], false);
    let usage1 = &final_response(&first)["usage"];
    let usage2 = &response["usage"];
    let cached = usage2["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached > usage1["input_tokens"].as_u64().unwrap(),
        "cached context covers turn 1's input and output: {usage1} / {usage2}"
    );
    assert!(usage2["input_tokens"].as_u64().unwrap() > cached);
    let r2 = id_of(&second);
    let third = client
        .turn(create(json!({"store": false, "previous_response_id": r2})))
        .await;
    assert!(
        final_response(&third)["usage"]["input_tokens"].as_u64() > usage2["input_tokens"].as_u64(),
        "context keeps growing along the chain"
    );
    let stale = client
        .turn(create(json!({"store": false, "previous_response_id": r1})))
        .await;
    assert_eq!(
        stale,
        vec![not_found(&r1, None)],
        "r1 is no longer the lane's latest response"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn uncached_store_false_id_gets_the_exact_not_found_error_and_the_socket_stays_open() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let id = json!("resp_unknown");
    let default_lane = client
        .turn(create(json!({"store": false, "previous_response_id": id})))
        .await;
    assert_eq!(default_lane, vec![not_found(&id, None)]);
    let named = client
        .turn(create(
            json!({"store": false, "previous_response_id": id, "stream_id": "main"}),
        ))
        .await;
    assert_eq!(named, vec![not_found(&id, Some("main"))]);
    let fresh = client.turn(create(json!({}))).await;
    assert_eq!(final_response(&fresh)["status"], "completed");
    mock.shutdown().await;
}

#[tokio::test]
async fn store_true_ids_rehydrate_on_another_connection_but_store_false_ones_do_not() {
    let mock = mock(cfg()).await;
    let mut a = Client::connect(&mock).await;
    let stored = a.turn(create(json!({"store": true}))).await;
    let unstored = a
        .turn(create(json!({"store": false, "stream_id": "other"})))
        .await;
    let (stored_id, unstored_id) = (id_of(&stored), id_of(&unstored));
    a.close().await;
    let mut b = Client::connect(&mock).await;
    let rehydrated = b
        .turn(create(
            json!({"store": true, "previous_response_id": stored_id}),
        ))
        .await;
    let response = final_response(&rehydrated);
    assert_eq!(response["status"], "completed");
    assert_eq!(response["previous_response_id"], stored_id);
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"], 0,
        "rehydration is not a cache hit"
    );
    assert!(
        response["usage"]["input_tokens"].as_u64()
            > final_response(&stored)["usage"]["input_tokens"].as_u64()
    );
    let no_fallback = b
        .turn(create(
            json!({"store": false, "previous_response_id": stored_id}),
        ))
        .await;
    assert_eq!(
        no_fallback,
        vec![not_found(&stored_id, None)],
        "store:false has no persisted fallback"
    );
    let forgotten = b
        .turn(create(
            json!({"store": true, "previous_response_id": unstored_id}),
        ))
        .await;
    assert_eq!(
        forgotten,
        vec![not_found(&unstored_id, None)],
        "the cache died with connection a"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn a_failed_same_lane_continuation_evicts_the_parent() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    for fault in ["error_500", "error_400", "failed"] {
        let parent = id_of(
            &client
                .turn(create(json!({"store": false, "stream_id": "a"})))
                .await,
        );
        let failed = client
            .turn(create(
                json!({"store": false, "stream_id": "a", "previous_response_id": parent,
                "metadata": {"mock_fault": fault}}),
            ))
            .await;
        let last = failed.last().unwrap();
        assert!(
            last["type"] == "error" || last["type"] == "response.failed",
            "{fault}: {last}"
        );
        let retry = client
            .turn(create(
                json!({"store": false, "stream_id": "a", "previous_response_id": parent}),
            ))
            .await;
        assert_eq!(
            retry,
            vec![not_found(&parent, Some("a"))],
            "{fault} must evict the parent"
        );
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn a_failed_cross_lane_fork_keeps_the_parent_and_a_successful_fork_does_not_move_it() {
    let mock = mock(cfg()).await;
    let mut client = Client::connect(&mock).await;
    let parent = id_of(
        &client
            .turn(create(json!({"store": false, "stream_id": "a"})))
            .await,
    );
    let fork_error = client
        .turn(create(
            json!({"store": false, "stream_id": "b", "previous_response_id": parent,
            "metadata": {"mock_fault": "error_400"}}),
        ))
        .await;
    assert_eq!(fork_error[0]["status"], 400);
    assert_eq!(fork_error[0]["stream_id"], "b");
    let fork = client
        .turn(create(
            json!({"store": false, "stream_id": "b", "previous_response_id": parent}),
        ))
        .await;
    assert_eq!(final_response(&fork)["previous_response_id"], parent);
    assert!(fork.iter().all(|e| e["stream_id"] == "b"));
    let source = client
        .turn(create(
            json!({"store": false, "stream_id": "a", "previous_response_id": parent}),
        ))
        .await;
    assert_eq!(
        final_response(&source)["status"],
        "completed",
        "the source lane still continues from its parent"
    );
    mock.shutdown().await;
}
