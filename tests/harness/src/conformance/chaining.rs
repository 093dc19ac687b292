//! Conversation scenarios: chained turns, the connection-local cache, warm-up, tool calls, steer.

use serde_json::{Value, json};

use super::registry::{Outcome, Scenario};
use super::target::Ctx;
use crate::client::{DEFAULT_FRAME_TIMEOUT, Incoming};
use crate::protocol::{Create, Turn};
use crate::{Failure, ensure, ensure_eq};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "chained_turns",
        tags: &[],
        outcome: Outcome {
            upstream: "three turns on one socket complete; each continuation echoes its \
                       previous_response_id; store:false chains within the socket",
            gateway: "same as upstream (the client socket stays pinned to one upstream socket)",
        },
        run: |c| Box::pin(chained_turns(c)),
    },
    Scenario {
        name: "store_false_unknown_id",
        tags: &[],
        outcome: Outcome {
            upstream: "store:false + an id this socket never saw ⇒ error event status 400, \
                       invalid_request_error/previous_response_not_found, param \
                       previous_response_id; the socket stays open",
            gateway: "same exact error event; the socket stays open",
        },
        run: |c| Box::pin(store_false_unknown_id(c)),
    },
    Scenario {
        name: "store_false_new_socket",
        tags: &[],
        outcome: Outcome {
            upstream: "a store:false response is forgotten with its socket: continuing it on a \
                       NEW socket ⇒ previous_response_not_found (status 400)",
            gateway: "same: the gateway must not continue it on another upstream socket nor \
                      replay it; the client gets the exact error and resends",
        },
        run: |c| Box::pin(store_false_new_socket(c)),
    },
    Scenario {
        name: "prewarm_then_turn",
        tags: &[],
        outcome: Outcome {
            upstream: "generate:false ⇒ exactly response.created + response.completed with empty \
                       output and zero usage; a store:false turn chained to it completes",
            gateway: "same as upstream",
        },
        run: |c| Box::pin(prewarm_then_turn(c)),
    },
    Scenario {
        name: "tool_call_round_trip",
        tags: &[],
        outcome: Outcome {
            upstream: "a function_call response (call_id, name, arguments) is continued by a \
                       function_call_output create that completes with text",
            gateway: "same as upstream",
        },
        run: |c| Box::pin(tool_call_round_trip(c)),
    },
    Scenario {
        name: "steer",
        tags: &[],
        outcome: Outcome {
            upstream: "response.steer to a running (stalled) response ⇒ response.steer.accepted, \
                       the target ends response.incomplete (reason steered), and a successor \
                       response.created + response.completed follows without a new create",
            gateway: "same as upstream; the successor is relayed on the same client socket",
        },
        run: |c| Box::pin(steer(c)),
    },
    Scenario {
        name: "ping_mid_stream",
        tags: &[],
        outcome: Outcome {
            upstream: "a ping sent while a response streams is answered with a pong carrying the \
                       same payload; the response still completes",
            gateway: "same as upstream",
        },
        run: |c| Box::pin(ping_mid_stream(c)),
    },
    Scenario {
        name: "http_sse_turn",
        tags: &[],
        outcome: Outcome {
            upstream: "POST /v1/responses with stream:true ⇒ 200 text/event-stream carrying the \
                       canonical sequence, sequence_number from 0, ending response.completed",
            gateway: "same as upstream",
        },
        run: |c| Box::pin(http_sse_turn(c)),
    },
];

/// Sends one create and reads its events to the end.
pub(super) async fn turn(
    ws: &mut crate::client::WsClient,
    create: &Create,
) -> Result<Turn, Failure> {
    ws.send_json(&create.build()).await?;
    ws.read_turn().await
}

/// Sends a create that must complete on the default lane; returns its id.
pub(super) async fn completed_turn(
    ws: &mut crate::client::WsClient,
    create: &Create,
) -> Result<String, Failure> {
    let t = turn(ws, create).await?;
    t.check_stream(None)?;
    Ok(t.expect_completed()?.to_owned())
}

/// Checks the exact `previous_response_not_found` event of the protocol reference.
pub(super) fn check_not_found(event: &Value, id: &str) -> Result<(), Failure> {
    ensure_eq!(event["status"].as_u64(), Some(400), "error status");
    ensure_eq!(
        event["error"]["type"].as_str(),
        Some("invalid_request_error"),
        "error.type"
    );
    ensure_eq!(
        event["error"]["code"].as_str(),
        Some("previous_response_not_found"),
        "error.code"
    );
    ensure_eq!(
        event["error"]["param"].as_str(),
        Some("previous_response_id"),
        "error.param"
    );
    let message = format!("Previous response with id '{id}' not found.");
    ensure_eq!(
        event["error"]["message"].as_str(),
        Some(message.as_str()),
        "error.message"
    );
    ensure!(
        event.get("stream_id").is_none(),
        "default-lane error must carry no stream_id"
    );
    Ok(())
}

async fn chained_turns(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    // Codex-style extras (stream:true, client_metadata) must be accepted and ignored.
    let first = Create::user("turn one").field("client_metadata", json!({"session_id": "conf"}));
    let t1 = turn(&mut ws, &first).await?;
    t1.check_stream(None)?;
    let id1 = t1.expect_completed()?.to_owned();
    ensure!(
        !t1.output_text().is_empty(),
        "turn one streamed no text ({})",
        t1.summary()
    );
    ensure!(
        t1.last()["response"]["usage"]["total_tokens"]
            .as_u64()
            .is_some(),
        "no usage on completed"
    );

    let t2 = turn(&mut ws, &Create::user("turn two").previous(&id1)).await?;
    t2.check_stream(None)?;
    let id2 = t2.expect_completed()?.to_owned();
    ensure!(id2 != id1, "turn two reused id {id1}");
    ensure_eq!(
        t2.last()["response"]["previous_response_id"].as_str(),
        Some(id1.as_str()),
        "echo"
    );

    let t3 = turn(
        &mut ws,
        &Create::user("turn three").previous(&id2).store(false),
    )
    .await?;
    t3.check_stream(None)?;
    t3.expect_completed()?;
    ensure_eq!(
        t3.last()["response"]["store"].as_bool(),
        Some(false),
        "store echo"
    );
    ensure_eq!(
        t3.last()["response"]["previous_response_id"].as_str(),
        Some(id2.as_str()),
        "echo"
    );
    ws.close(1000).await
}

async fn store_false_unknown_id(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let unknown = "resp_wsv2_never_issued";
    let t = turn(
        &mut ws,
        &Create::user("orphan").previous(unknown).store(false),
    )
    .await?;
    check_not_found(t.expect_error()?, unknown)?;
    completed_turn(&mut ws, &Create::user("after the error")).await?;
    ws.close(1000).await
}

async fn store_false_new_socket(c: Ctx) -> Result<(), Failure> {
    let mut first = c.connect().await?;
    let id = completed_turn(&mut first, &Create::user("ephemeral").store(false)).await?;
    first.close(1000).await?;

    let mut second = c.connect().await?;
    let t = turn(
        &mut second,
        &Create::user("continue elsewhere")
            .previous(&id)
            .store(false),
    )
    .await?;
    check_not_found(t.expect_error()?, &id)?;
    completed_turn(&mut second, &Create::user("start over").store(false)).await?;
    second.close(1000).await
}

async fn prewarm_then_turn(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let warm = turn(
        &mut ws,
        &Create::user("system prompt").store(false).generate(false),
    )
    .await?;
    warm.check_stream(None)?;
    let kinds: Vec<&str> = warm
        .events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    ensure_eq!(
        kinds,
        vec!["response.created", "response.completed"],
        "warm-up sequence"
    );
    let done = &warm.last()["response"];
    ensure_eq!(
        done["output"].as_array().map(Vec::len),
        Some(0),
        "warm-up output"
    );
    ensure_eq!(
        done["usage"]["total_tokens"].as_u64(),
        Some(0),
        "warm-up usage.total_tokens"
    );
    let warm_id = warm.expect_completed()?.to_owned();

    let t = turn(
        &mut ws,
        &Create::user("real turn").previous(&warm_id).store(false),
    )
    .await?;
    t.check_stream(None)?;
    t.expect_completed()?;
    ensure!(!t.output_text().is_empty(), "chained turn streamed no text");
    ensure_eq!(
        t.last()["response"]["previous_response_id"].as_str(),
        Some(warm_id.as_str()),
        "echo"
    );
    ws.close(1000).await
}

async fn tool_call_round_trip(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let tools =
        json!([{"type": "function", "name": "exec_command", "parameters": {"type": "object"}}]);
    let call = Create::user("run a tool")
        .store(false)
        .field("tools", tools.clone())
        .output("function_call");
    let t1 = turn(&mut ws, &call).await?;
    t1.check_stream(None)?;
    let id1 = t1.expect_completed()?.to_owned();
    ensure!(
        t1.count("response.function_call_arguments.delta") > 0,
        "no argument deltas ({})",
        t1.summary()
    );
    let output = t1.last()["response"]["output"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let item = output
        .iter()
        .find(|i| i["type"] == "function_call")
        .ok_or_else(|| Failure::new("completed output has no function_call item"))?;
    let call_id = item["call_id"]
        .as_str()
        .ok_or_else(|| Failure::new("function_call without call_id"))?;
    ensure!(item["name"].is_string(), "function_call without name");
    let args = item["arguments"].as_str().unwrap_or_default();
    ensure!(
        serde_json::from_str::<Value>(args).is_ok(),
        "arguments are not JSON: {args:?}"
    );

    let result = json!([{"type": "function_call_output", "call_id": call_id, "output": "hi\n"}]);
    let t2 = turn(
        &mut ws,
        &Create::items(result)
            .previous(&id1)
            .store(false)
            .field("tools", tools),
    )
    .await?;
    t2.check_stream(None)?;
    t2.expect_completed()?;
    ensure!(
        !t2.output_text().is_empty(),
        "tool continuation streamed no text"
    );
    ws.close(1000).await
}

async fn steer(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    // stall_lane holds the response open after response.created until a steer arrives, so the
    // steer always lands mid-response (the successor runs without the fault).
    ws.send_json(
        &Create::user("long answer")
            .fault("stall_lane")
            .store(false)
            .build(),
    )
    .await?;
    let created = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
    ensure_eq!(
        created["type"].as_str(),
        Some("response.created"),
        "first event"
    );
    let target = created["response"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let steer = json!({"type": "response.steer", "previous_response_id": target,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "shorter"}]}]});
    ws.send_json(&steer).await?;

    let (mut accepted, mut steered_end, mut successor) = (false, false, None::<String>);
    loop {
        let e = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
        let kind = e["type"].as_str().unwrap_or_default();
        let id = e["response"]["id"].as_str();
        match kind {
            "response.steer.accepted" => {
                ensure_eq!(
                    e["steer"]["previous_response_id"].as_str(),
                    Some(target.as_str()),
                    "steer target"
                );
                accepted = true;
            }
            "response.incomplete" if id == Some(target.as_str()) => {
                ensure!(
                    accepted,
                    "steered response ended before response.steer.accepted"
                );
                let reason = e["response"]["incomplete_details"]["reason"].as_str();
                ensure_eq!(reason, Some("steered"), "incomplete_details.reason");
                steered_end = true;
            }
            "response.completed" if id == Some(target.as_str()) => {
                return Err(Failure::new(
                    "steered response completed instead of ending steered",
                ));
            }
            "response.created" => {
                ensure!(
                    steered_end,
                    "successor created before the steered response ended"
                );
                successor = id.map(str::to_owned);
                ensure!(
                    successor.as_deref() != Some(target.as_str()),
                    "successor reuses the target id"
                );
            }
            "response.completed" if successor.is_some() && id == successor.as_deref() => break,
            "error" | "response.steer.failed" | "response.failed" => {
                return Err(Failure::new(format!(
                    "steer flow hit {kind}: {}",
                    e["error"]
                )));
            }
            _ => {}
        }
    }
    ensure!(accepted && steered_end, "steer flow incomplete");
    ws.close(1000).await
}

async fn ping_mid_stream(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    ws.send_json(&Create::user("stream while pinging").deltas(200).build())
        .await?;
    let created = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
    ensure_eq!(
        created["type"].as_str(),
        Some("response.created"),
        "first event"
    );
    ws.ping(b"wsv2-mid-stream").await?;
    let (mut pong, mut completed) = (false, false);
    while !(pong && completed) {
        match ws.recv(DEFAULT_FRAME_TIMEOUT).await? {
            Incoming::Pong(payload) => {
                ensure_eq!(
                    payload.as_ref(),
                    b"wsv2-mid-stream".as_slice(),
                    "pong payload"
                );
                pong = true;
            }
            Incoming::Event(e) if e["type"] == "response.completed" => completed = true,
            Incoming::Event(e) if e["type"] == "error" => {
                return Err(Failure::new(format!("error event: {}", e["error"])));
            }
            Incoming::Event(_) => {}
            Incoming::Closed(info) => {
                return Err(Failure::new(format!(
                    "closed ({}) mid-stream",
                    info.code_or_abnormal()
                )));
            }
        }
    }
    ws.close(1000).await
}

async fn http_sse_turn(c: Ctx) -> Result<(), Failure> {
    let body = Create::user("over http").build();
    let mut stream = crate::sse::SseClient::new()
        .post(&c.target.http_base, &c.creds, &body)
        .await?;
    ensure_eq!(stream.status(), 200, "POST /responses status");
    let mut events = Vec::new();
    while let Some(event) = stream.next_event().await? {
        events.push(event);
    }
    let t = Turn { events };
    t.check_stream(None)?;
    t.expect_completed()?;
    ensure!(!t.output_text().is_empty(), "SSE turn streamed no text");
    Ok(())
}
