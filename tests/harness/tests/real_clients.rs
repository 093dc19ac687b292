//! The official SDKs (openai-python, openai-agents, openai-node) against an in-process mock: each
//! script must print PASS and exit 0, and the mock's records must show the upgrades and frames the
//! client is known to send. The table lives in `wsv2_tests::real_clients`; the gateways run the
//! same table in their own test crates.
//!
//! Needs `tests/clients/setup.sh` to have run. Without `tests/clients/.venv` the tests skip with a
//! printed reason, unless `WSV2_REQUIRE_CLIENTS` is set (CI), in which case they fail.

use wsv2_mock::MockConfig;
use wsv2_tests::real_clients::{DirectMock, REAL_CLIENTS};

const KEY: &str = "sk-real-clients";

async fn mock() -> DirectMock {
    let mock = wsv2_mock::start(MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts");
    DirectMock {
        mock,
        key: KEY.into(),
    }
}

wsv2_tests::real_client_tests!(mock().await;
    python_connect_two_chained_turns_and_not_found,
    python_session_two_lanes_two_chained_turns,
    agents_two_chained_runs_on_one_socket,
    node_responses_ws_two_chained_turns_and_not_found,
);

#[test]
fn every_real_client_runs_against_the_mock() {
    let all: Vec<&str> = REAL_CLIENTS.iter().map(|c| c.name).collect();
    assert_eq!(COVERED, all.as_slice());
}
