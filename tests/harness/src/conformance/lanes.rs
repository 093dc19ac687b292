//! Lane scenarios: concurrent `stream_id` lanes, FIFO per lane, lane-id validation.

use std::collections::HashMap;

use serde_json::Value;

use super::chaining::turn;
use super::registry::{Outcome, Scenario};
use super::target::Ctx;
use crate::client::DEFAULT_FRAME_TIMEOUT;
use crate::protocol::{Create, Turn, is_response_terminal};
use crate::{Failure, ensure, ensure_eq};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "interleaved_lanes",
        tags: &[],
        outcome: Outcome {
            upstream: "two lanes × two chained creates sent without waiting: every event echoes \
                       its lane's stream_id, each lane runs its responses FIFO without overlap, \
                       every response completes with sequence_number from 0",
            gateway: "same as upstream (lanes are relayed, not re-ordered or stripped)",
        },
        run: |c| Box::pin(interleaved_lanes(c)),
    },
    Scenario {
        name: "invalid_stream_id",
        tags: &[],
        outcome: Outcome {
            upstream: "stream_id \"\" ⇒ error event status 400 invalid_stream_id, param \
                       stream_id, no stream_id echoed; the socket stays open",
            gateway: "same exact error event (from the gateway or relayed)",
        },
        run: |c| Box::pin(invalid_stream_id(c)),
    },
];

/// Lane events: per response id, its events in arrival order, plus the order responses started.
#[derive(Default)]
struct LaneLog {
    order: Vec<String>,
    turns: HashMap<String, Turn>,
    open: Option<String>,
}

async fn interleaved_lanes(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let lanes = ["lane-a", "lane-b"];
    for lane in lanes {
        ws.send_json(&Create::user(lane).lane(lane).deltas(64).build())
            .await?;
    }
    let mut logs: HashMap<String, LaneLog> = HashMap::new();
    let mut continued: Vec<&str> = Vec::new();
    let mut terminals = 0;
    while terminals < 4 {
        let event = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        ensure!(kind != "error", "error event on lanes: {}", event);
        let lane = event["stream_id"]
            .as_str()
            .ok_or_else(|| Failure::new(format!("{kind} carries no stream_id")))?
            .to_owned();
        ensure!(lanes.contains(&lane.as_str()), "unknown stream_id {lane}");
        let log = logs.entry(lane.clone()).or_default();
        if kind == "response.created" {
            ensure!(
                log.open.is_none(),
                "{lane}: a response started while {:?} was running",
                log.open
            );
            let id = event["response"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            log.order.push(id.clone());
            log.open = Some(id.clone());
            // Continue each lane as soon as its first response exists: the second create queues.
            if !continued.contains(&lane.as_str()) {
                let lane_name = lanes
                    .iter()
                    .find(|l| **l == lane)
                    .copied()
                    .unwrap_or_default();
                continued.push(lane_name);
                ws.send_json(
                    &Create::user("again")
                        .lane(lane_name)
                        .previous(&id)
                        .deltas(64)
                        .build(),
                )
                .await?;
            }
        }
        let open = log
            .open
            .clone()
            .ok_or_else(|| Failure::new(format!("{lane}: {kind} outside a response")))?;
        log.turns
            .entry(open.clone())
            .or_default()
            .events
            .push(event);
        if is_response_terminal(&kind) {
            log.open = None;
            terminals += 1;
        }
    }
    for lane in lanes {
        let log = logs
            .get(lane)
            .ok_or_else(|| Failure::new(format!("{lane} saw no events")))?;
        ensure_eq!(log.order.len(), 2, "{lane}: responses");
        for (i, id) in log.order.iter().enumerate() {
            let t = &log.turns[id];
            t.check_stream(Some(lane))
                .map_err(|f| f.context(&format!("{lane} response {i}")))?;
            t.expect_completed()?;
        }
        let second: &Value = log.turns[&log.order[1]].last();
        ensure_eq!(
            second["response"]["previous_response_id"].as_str(),
            Some(log.order[0].as_str()),
            "{lane}: continuation echo"
        );
    }
    ws.close(1000).await
}

async fn invalid_stream_id(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let t = turn(&mut ws, &Create::user("bad lane").lane("")).await?;
    let e = t.expect_error()?;
    ensure_eq!(e["status"].as_u64(), Some(400), "status");
    ensure_eq!(
        e["error"]["type"].as_str(),
        Some("invalid_request_error"),
        "error.type"
    );
    ensure_eq!(
        e["error"]["code"].as_str(),
        Some("invalid_stream_id"),
        "error.code"
    );
    ensure_eq!(
        e["error"]["param"].as_str(),
        Some("stream_id"),
        "error.param"
    );
    ensure!(
        e.get("stream_id").is_none(),
        "invalid_stream_id must not echo a stream_id"
    );
    super::chaining::completed_turn(&mut ws, &Create::user("still open")).await?;
    ws.close(1000).await
}
