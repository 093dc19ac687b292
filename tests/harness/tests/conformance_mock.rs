//! Every untagged conformance scenario against an in-process mock upstream, one mock per test.

use wsv2_mock::{MockConfig, MockHandle};
use wsv2_tests::client::{ConnectError, Credentials, WsClient};
use wsv2_tests::conformance::{Target, TargetKind, run_scenario, scenarios};

const KEY: &str = "sk-conformance";

async fn mock() -> MockHandle {
    wsv2_mock::start(MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts")
}

fn target(mock: &MockHandle) -> Target {
    Target::new(TargetKind::Upstream, mock.ws_url(), mock.http_base(), KEY)
}

/// A fresh mock per test, and a target pointing at it.
async fn setup() -> (Target, MockHandle) {
    let mock = mock().await;
    (target(&mock), mock)
}

wsv2_tests::conformance_tests!(setup().await;
    chained_turns,
    store_false_unknown_id,
    store_false_new_socket,
    prewarm_then_turn,
    tool_call_round_trip,
    steer,
    ping_mid_stream,
    http_sse_turn,
    interleaved_lanes,
    invalid_stream_id,
    fault_error_400,
    fault_error_429,
    fault_error_500,
    fault_failed,
    fault_incomplete,
    fault_drop_mid_stream,
    fault_close_1011_mid_stream,
    fault_slow_first_event,
    fault_stall_lane,
    fault_stop_reading,
    fault_stop_pong,
    fault_tail_packet,
    auth_rejected_before_upgrade,
);

#[test]
fn every_untagged_scenario_runs_against_the_mock() {
    let missing: Vec<&str> = scenarios()
        .iter()
        .filter(|s| s.applies_to(TargetKind::Upstream))
        .map(|s| s.name)
        .filter(|name| !COVERED.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios without a mock test: {missing:?}"
    );
    let gateway_only: Vec<&str> = scenarios()
        .iter()
        .filter(|s| !s.applies_to(TargetKind::Upstream))
        .map(|s| s.name)
        .collect();
    assert_eq!(
        gateway_only,
        ["gateway_message_too_big", "gateway_upgrade_426"]
    );
}

#[tokio::test]
async fn tagged_scenarios_refuse_to_run_against_an_upstream() {
    let mock = mock().await;
    let err = run_scenario(&target(&mock), "gateway_upgrade_426")
        .await
        .unwrap_err();
    assert!(err.0.contains("does not apply"), "{err}");
    let err = run_scenario(&target(&mock), "no_such_scenario")
        .await
        .unwrap_err();
    assert!(err.0.contains("no scenario named"), "{err}");
}

#[tokio::test]
async fn a_failing_scenario_reports_the_outcome_it_expected() {
    // Against a key the mock rejects, chained_turns cannot even connect.
    let mock = mock().await;
    let wrong = Target::new(
        TargetKind::Upstream,
        mock.ws_url(),
        mock.http_base(),
        "sk-wrong",
    );
    let err = run_scenario(&wrong, "chained_turns").await.unwrap_err();
    assert!(
        err.0.starts_with("chained_turns [upstream: three turns"),
        "{err}"
    );
    assert!(err.0.contains("HTTP 401"), "{err}");
}

#[tokio::test]
async fn the_account_hook_chooses_each_scenarios_credentials() {
    let mock = mock().await;
    // Only the scenario named here gets the right key.
    let hooked = target(&mock).with_account_hook(|scenario| {
        Credentials::bearer(if scenario == "invalid_stream_id" {
            KEY
        } else {
            "sk-other"
        })
    });
    run_scenario(&hooked, "invalid_stream_id")
        .await
        .expect("hooked key works");
    assert!(run_scenario(&hooked, "chained_turns").await.is_err());
}

#[tokio::test]
async fn upgrade_status_switch_is_seen_as_a_rejected_upgrade() {
    let mock = mock().await;
    let creds = Credentials::bearer(KEY);
    for status in [426u16, 429, 500] {
        mock.set_upgrade_status(Some(status));
        match WsClient::connect(&mock.ws_url(), &creds).await {
            Err(ConnectError::Rejected { status: got, .. }) => assert_eq!(got, status),
            Err(other) => panic!("upgrade {status}: {other:?}"),
            Ok(_) => panic!("upgrade {status}: connected"),
        }
    }
    mock.set_upgrade_status(None);
    let ws = WsClient::connect(&mock.ws_url(), &creds)
        .await
        .expect("upgrade works again");
    ws.close(1000).await.expect("clean close");
}
