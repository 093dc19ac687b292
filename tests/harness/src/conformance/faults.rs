//! Fault scenarios: each asks the mock for one fault on one response (`metadata.mock_fault`) and
//! asserts what a client sees, directly and through a gateway. A fault never sticks: where the
//! socket survives, a normal turn on it must still complete.

use std::time::Instant;

use super::chaining::{completed_turn, turn};
use super::registry::{Outcome, Scenario};
use super::target::{Ctx, SILENCE_WINDOW, TargetKind};
use crate::client::{CloseInfo, DEFAULT_FRAME_TIMEOUT, Incoming, WsClient};
use crate::protocol::{Create, Turn, is_response_terminal};
use crate::{Failure, ensure, ensure_eq};

/// The delay asked of `slow_first_event`.
const SLOW_FIRST_EVENT_MS: u64 = 300;

macro_rules! fault {
    ($name:literal, $up:literal, $gw:literal, $body:path) => {
        Scenario {
            name: $name,
            tags: &[],
            outcome: Outcome {
                upstream: $up,
                gateway: $gw,
            },
            run: |c| Box::pin($body(c)),
        }
    };
}

pub(super) const SCENARIOS: &[Scenario] = &[
    fault!(
        "fault_error_400",
        "error event status 400 (invalid_request_error) instead of the response; socket stays open",
        "the same error event, not retried (a 4xx is the request's fault); socket stays open",
        error_400
    ),
    fault!(
        "fault_error_429",
        "error event status 429 whose error.headers name the rate-limit reset (50 ms); socket stays open",
        "either the same 429 error event (the account cools for the named 50 ms), or — since no \
         event was written yet — a transparent retry that completes the response cleanly \
         (one response.created, sequence_number from 0); socket stays open",
        error_429
    ),
    fault!(
        "fault_error_500",
        "error event status 500 (server_error); socket stays open",
        "either a 5xx error event, or a transparent retry before any event that completes the \
         response cleanly; socket stays open",
        error_500
    ),
    fault!(
        "fault_failed",
        "response.created … response.failed with response.error.code; socket stays open",
        "same as upstream (events were already written, so no retry)",
        failed
    ),
    fault!(
        "fault_incomplete",
        "response.created … response.incomplete with incomplete_details.reason max_output_tokens",
        "same as upstream",
        incomplete
    ),
    fault!(
        "fault_drop_mid_stream",
        "some events, then the TCP connection ends without a close frame (client sees 1006)",
        "once an event was written: an error event with status 502, then close 1011; \
         a gateway may instead retry transparently if it had written nothing",
        drop_mid_stream
    ),
    fault!(
        "fault_close_1011_mid_stream",
        "some events, then a close frame with code 1011",
        "once an event was written: an error event with status 502, then close 1011 \
         (or a clean transparent retry if nothing was written)",
        close_1011_mid_stream
    ),
    fault!(
        "fault_slow_first_event",
        "the response completes; its first event arrives no sooner than mock_delay_ms (300 ms)",
        "same (the gateway must not time out a 300 ms first-event gap)",
        slow_first_event
    ),
    fault!(
        "fault_stall_lane",
        "the stalled lane emits no terminal event while another lane on the same socket \
         completes a whole response",
        "same: one stalled lane does not block the others",
        stall_lane
    ),
    fault!(
        "fault_stop_reading",
        "the response completes, then the peer reads nothing more: a ping gets no pong within \
         the silence window",
        "the response completes and client pings are still answered (the gateway reads the \
         client itself and detects the stuck upstream on its own)",
        stop_reading
    ),
    fault!(
        "fault_stop_pong",
        "the response completes; pings go unanswered from then on, but frames are still read: \
         a later turn on the socket completes",
        "the response completes and client pings are answered by the gateway",
        stop_pong
    ),
    fault!(
        "fault_tail_packet",
        "the response completes, then one more frame arrives after the terminal event; the next \
         turn on the socket is clean",
        "the response completes; a stray frame, if relayed at all, precedes the next turn, whose \
         events are all its own (one response.created, sequence_number from 0)",
        tail_packet
    ),
];

/// A normal turn on the same socket completes: the fault did not stick.
async fn still_usable(ws: &mut WsClient) -> Result<(), Failure> {
    completed_turn(ws, &Create::user("after the fault"))
        .await
        .map(drop)
        .map_err(|f| f.context("turn after the fault"))
}

async fn error_status(c: &Ctx, fault: &str) -> Result<(WsClient, Turn), Failure> {
    let mut ws = c.connect().await?;
    let t = turn(&mut ws, &Create::user(fault).fault(fault)).await?;
    Ok((ws, t))
}

async fn error_400(c: Ctx) -> Result<(), Failure> {
    let (mut ws, t) = error_status(&c, "error_400").await?;
    let e = t.expect_error()?;
    ensure_eq!(e["status"].as_u64(), Some(400), "status");
    ensure_eq!(
        e["error"]["type"].as_str(),
        Some("invalid_request_error"),
        "error.type"
    );
    still_usable(&mut ws).await?;
    ws.close(1000).await
}

/// A retryable error: the error event itself, or (gateway only) a clean retried response.
fn retryable(c: &Ctx, t: &Turn, status: u64) -> Result<(), Failure> {
    if c.kind() == TargetKind::Gateway && t.last_type() == "response.completed" {
        ensure_eq!(
            t.count("response.created"),
            1,
            "retried response must start once"
        );
        return t.check_stream(None);
    }
    let e = t.expect_error()?;
    ensure_eq!(e["status"].as_u64(), Some(status), "status");
    Ok(())
}

async fn error_429(c: Ctx) -> Result<(), Failure> {
    let (mut ws, t) = error_status(&c, "error_429").await?;
    retryable(&c, &t, 429)?;
    if t.last_type() == "error" {
        let headers = &t.last()["error"]["headers"];
        ensure!(
            headers.is_object() && !headers.as_object().is_some_and(|h| h.is_empty()),
            "429 error carries no rate-limit headers: {}",
            t.last()["error"]
        );
    }
    still_usable(&mut ws).await?;
    ws.close(1000).await
}

async fn error_500(c: Ctx) -> Result<(), Failure> {
    let (mut ws, t) = error_status(&c, "error_500").await?;
    if c.kind() == TargetKind::Gateway && t.last_type() == "error" {
        let status = t.last()["status"].as_u64().unwrap_or_default();
        ensure!(
            (500..600).contains(&status),
            "gateway error status {status} is not 5xx"
        );
    } else {
        retryable(&c, &t, 500)?;
    }
    still_usable(&mut ws).await?;
    ws.close(1000).await
}

async fn failed(c: Ctx) -> Result<(), Failure> {
    let (mut ws, t) = error_status(&c, "failed").await?;
    t.check_stream(None)?;
    ensure_eq!(
        t.last_type(),
        "response.failed",
        "terminal ({})",
        t.summary()
    );
    ensure_eq!(
        t.last()["response"]["status"].as_str(),
        Some("failed"),
        "response.status"
    );
    ensure!(
        t.last()["response"]["error"]["code"].is_string(),
        "response.failed without error.code"
    );
    still_usable(&mut ws).await?;
    ws.close(1000).await
}

async fn incomplete(c: Ctx) -> Result<(), Failure> {
    let (mut ws, t) = error_status(&c, "incomplete").await?;
    t.check_stream(None)?;
    ensure_eq!(
        t.last_type(),
        "response.incomplete",
        "terminal ({})",
        t.summary()
    );
    let reason = t.last()["response"]["incomplete_details"]["reason"].as_str();
    ensure_eq!(
        reason,
        Some("max_output_tokens"),
        "incomplete_details.reason"
    );
    still_usable(&mut ws).await?;
    ws.close(1000).await
}

/// Shared by the two mid-stream faults: `upstream_code` is what the bare upstream shows.
async fn mid_stream(c: Ctx, fault: &str, upstream_code: u16) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    ws.send_json(&Create::user(fault).fault(fault).deltas(64).build())
        .await?;
    let (events, close) = ws.read_until_closed().await?;
    let t = Turn { events };
    ensure!(
        !t.events.is_empty(),
        "socket ended before any event ({})",
        close.code_or_abnormal()
    );
    match c.kind() {
        TargetKind::Upstream => {
            ensure!(
                t.count("response.created") == 1,
                "no response.created before the fault"
            );
            ensure!(
                !is_response_terminal(t.last_type()),
                "fault came after the terminal event"
            );
            ensure_eq!(
                close.code_or_abnormal(),
                upstream_code,
                "close code ({})",
                t.summary()
            );
        }
        TargetKind::Gateway if t.last_type() == "error" => {
            ensure_eq!(
                t.last()["status"].as_u64(),
                Some(502),
                "gateway error status"
            );
            ensure_eq!(close.code, Some(1011), "gateway close code");
        }
        TargetKind::Gateway => {
            // Only acceptable if the gateway retried before writing anything: a clean response.
            ensure_eq!(
                t.count("response.created"),
                1,
                "retried response ({})",
                t.summary()
            );
            t.expect_completed()?;
        }
    }
    Ok(())
}

async fn drop_mid_stream(c: Ctx) -> Result<(), Failure> {
    mid_stream(c, "drop_mid_stream", CloseInfo::ABNORMAL).await
}

async fn close_1011_mid_stream(c: Ctx) -> Result<(), Failure> {
    mid_stream(c, "close_1011_mid_stream", 1011).await
}

async fn slow_first_event(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let create = Create::user("slow")
        .fault("slow_first_event")
        .meta("mock_delay_ms", &SLOW_FIRST_EVENT_MS.to_string());
    let sent = Instant::now();
    ws.send_json(&create.build()).await?;
    let first = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
    let waited = sent.elapsed();
    ensure_eq!(
        first["type"].as_str(),
        Some("response.created"),
        "first event"
    );
    ensure!(
        waited.as_millis() >= u128::from(SLOW_FIRST_EVENT_MS),
        "first event after {waited:?}, expected ≥ {SLOW_FIRST_EVENT_MS} ms"
    );
    let mut t = ws.read_turn().await?;
    t.events.insert(0, first);
    t.check_stream(None)?;
    t.expect_completed()?;
    ws.close(1000).await
}

async fn stall_lane(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    ws.send_json(
        &Create::user("stuck")
            .lane("stalled")
            .fault("stall_lane")
            .build(),
    )
    .await?;
    ws.send_json(&Create::user("free").lane("live").build())
        .await?;
    loop {
        let e = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
        let kind = e["type"].as_str().unwrap_or_default();
        match e["stream_id"].as_str() {
            Some("live") if kind == "response.completed" => break,
            Some("live") => ensure!(
                kind != "error" && !is_response_terminal(kind),
                "live lane ended with {kind}"
            ),
            Some("stalled") => ensure!(
                !is_response_terminal(kind) && kind != "error",
                "stalled lane ended with {kind}"
            ),
            other => return Err(Failure::new(format!("{kind} on unexpected lane {other:?}"))),
        }
    }
    // The stalled response is abandoned with the socket.
    ws.close(1000).await
}

/// Sends a ping and reports whether a pong came back within the silence window; events that
/// arrive meanwhile are returned (a pong-less peer may still be streaming).
async fn pong_within_window(ws: &mut WsClient) -> Result<bool, Failure> {
    ws.ping(b"wsv2-silence").await?;
    let deadline = tokio::time::Instant::now() + SILENCE_WINDOW;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        match ws.recv(left).await {
            Ok(Incoming::Pong(_)) => return Ok(true),
            Ok(Incoming::Event(_)) => {}
            Ok(Incoming::Closed(info)) => {
                return Err(Failure::new(format!(
                    "socket closed ({}) while waiting for a pong",
                    info.code_or_abnormal()
                )));
            }
            Err(_) => return Ok(false),
        }
    }
}

async fn stop_reading(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let t = turn(&mut ws, &Create::user("then deaf").fault("stop_reading")).await?;
    t.check_stream(None)?;
    t.expect_completed()?;
    let answered = pong_within_window(&mut ws).await?;
    match c.kind() {
        TargetKind::Upstream => ensure!(!answered, "a peer that stopped reading answered a ping"),
        TargetKind::Gateway => ensure!(answered, "gateway did not answer a client ping"),
    }
    Ok(())
}

async fn stop_pong(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let t = turn(&mut ws, &Create::user("then no pongs").fault("stop_pong")).await?;
    t.check_stream(None)?;
    t.expect_completed()?;
    let answered = pong_within_window(&mut ws).await?;
    match c.kind() {
        TargetKind::Upstream => {
            ensure!(
                !answered,
                "a peer told to stop answering pings answered one"
            );
            still_usable(&mut ws).await?;
        }
        TargetKind::Gateway => ensure!(answered, "gateway did not answer a client ping"),
    }
    ws.close(1000).await
}

async fn tail_packet(c: Ctx) -> Result<(), Failure> {
    let mut ws = c.connect().await?;
    let t = turn(&mut ws, &Create::user("with a tail").fault("tail_packet")).await?;
    t.check_stream(None)?;
    let id = t.expect_completed()?.to_owned();
    ws.send_json(&Create::user("next").build()).await?;
    // Everything before the next response.created is tail; after it, only the next response.
    let mut tail = 0;
    let mut next = Turn::default();
    loop {
        let e = ws.recv_event(DEFAULT_FRAME_TIMEOUT).await?;
        let kind = e["type"].as_str().unwrap_or_default().to_owned();
        if next.events.is_empty() && kind != "response.created" {
            ensure!(
                e["response"]["id"].as_str().is_none_or(|r| r == id),
                "tail names another response"
            );
            tail += 1;
            continue;
        }
        next.events.push(e);
        if is_response_terminal(&kind) || kind == "error" {
            break;
        }
    }
    next.check_stream(None)?;
    let next_id = next.expect_completed()?;
    ensure!(next_id != id, "next turn reused the tailed response id");
    if c.kind() == TargetKind::Upstream {
        ensure_eq!(tail, 1, "frames after the terminal event");
    }
    ws.close(1000).await
}
