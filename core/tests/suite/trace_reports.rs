//! What a response's report carries for its span: the client's `client_metadata.traceparent`,
//! the instant the create arrived, the upstream model, and its retries and failovers.

use std::time::Duration;

use crate::support::session::{Sim, create};
use serde_json::json;
use wsv2_core::Config;
use wsv2_core::http::HttpEvent;
use wsv2_core::scheduler::FailureKind;
use wsv2_core::trace_context::TraceContext;
use wsv2_core::turn::TurnEvent;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn parent() -> TraceContext {
    TraceContext::parse(PARENT.as_bytes()).expect("valid")
}

#[test]
fn a_ws_report_carries_the_creates_traceparent_its_start_and_its_retry() {
    let mut sim = Sim::new(Config::default());
    let t0 = sim.now;
    let mut traced = create(Some("gpt-test"), None, None, true);
    traced["client_metadata"] = json!({"session_id": "s", "traceparent": PARENT});
    sim.client(traced);
    // Lost before any event reached the client: retried on a fresh conn.
    sim.upstream_closed(1);
    sim.advance(Duration::from_millis(300));
    sim.respond(2, "resp_1", None, 1, true);
    let mut plain = create(Some("gpt-test"), None, None, true);
    plain["client_metadata"] = json!({"traceparent": "not-a-traceparent"});
    sim.client(plain);
    sim.respond(2, "resp_2", None, 1, true);

    let ended = sim.ended();
    assert_eq!(ended.len(), 2);
    assert_eq!(ended[0].trace_parent, Some(parent()));
    assert_eq!(
        ended[0].accepted_at, t0,
        "the span starts when the create arrived"
    );
    assert_eq!(ended[0].retries.len(), 1, "{:?}", ended[0].retries);
    let retry = ended[0].retries[0];
    assert_eq!(retry.failure, FailureKind::UpstreamLost);
    assert_eq!(retry.at, t0);
    assert_eq!(ended[1].trace_parent, None, "a malformed value is ignored");
    assert!(ended[1].retries.is_empty());
    assert!(
        !sim.to_client.iter().any(|v| v["type"] == "error"),
        "neither create was refused"
    );
}

#[test]
fn an_http_report_carries_the_bodys_traceparent_and_its_failover() {
    use crate::support::gateway::*;
    let mut gw = Gateway::new(vec![account(1, false), account(2, false)]);
    let t0 = gw.now;
    let mut traced = body(true, true, None);
    traced["client_metadata"] = json!({"traceparent": PARENT});
    let id = gw.post(1, traced);
    gw.advance(Duration::from_millis(10));
    gw.upstream(
        id,
        error_event(429, "rate_limit_error", "rate_limit_exceeded"),
    );
    gw.advance(Duration::from_millis(500));
    gw.respond(id, "resp_1", true, 0);
    let reports: Vec<_> = gw
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            HttpEvent::Turn(TurnEvent::ResponseEnded(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1);
    let r = reports[0];
    assert_eq!(r.trace_parent, Some(parent()));
    assert_eq!(r.accepted_at, t0);
    assert_eq!(r.retries.len(), 1, "{:?}", r.retries);
    assert!(r.retries[0].switch_account, "a 429 fails over");
    assert_eq!(r.retries[0].failure.as_str(), "rate_limited");
    assert_ne!(
        r.retries[0].account, r.account,
        "it ended on the other account"
    );
}
