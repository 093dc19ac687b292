//! The conformance scenarios of `wsv2-tests`, unchanged, through the gateway of each shell (a
//! fresh mock and gateway per test).

use wsv2_tests::conformance::{Target, TargetKind};

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup};

fn target(setup: &Setup) -> Target {
    let http_base = format!("http://{}/v1", setup.gateway.addr);
    Target::new(
        TargetKind::Gateway,
        setup.gateway.ws_url(),
        http_base,
        CLIENT_KEY,
    )
}

async fn setup(shell: Shell) -> (Target, Setup) {
    let setup = Setup::new(shell, |_| {}).await;
    (target(&setup), setup)
}

wsv2_tests::conformance_tests!(|shell: Shell| setup(shell).await => shell_tests;
    chained_turns,
    store_false_unknown_id,
    store_false_new_socket,
    prewarm_then_turn,
    tool_call_round_trip,
    steer,
    ping_mid_stream,
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
    http_sse_turn,
    gateway_message_too_big,
);

/// Every account resolves to HTTP: the upgrade is refused with 426
mod http_only {
    use super::*;

    async fn setup(shell: Shell) -> (Target, Setup) {
        let setup = Setup::new(shell, |c| c.accounts[0].force_http = true).await;
        (target(&setup), setup)
    }

    wsv2_tests::conformance_tests!(|shell: Shell| setup(shell).await => shell_tests;
        gateway_upgrade_426);

    /// The scenarios this module runs
    pub(super) const HTTP_ONLY: &[&str] = COVERED;
}

#[test]
fn every_gateway_scenario_runs_through_the_gateway() {
    let mut covered: Vec<&str> = COVERED
        .iter()
        .chain(http_only::HTTP_ONLY)
        .copied()
        .collect();
    covered.sort_unstable();
    let mut all: Vec<&str> = wsv2_tests::conformance::scenarios()
        .iter()
        .filter(|s| s.applies_to(TargetKind::Gateway))
        .map(|s| s.name)
        .collect();
    all.sort_unstable();
    assert_eq!(covered, all);
}
