//! The real-client scripts of `tests/clients` (openai-python sync and lanes, openai-agents,
//! openai-node), unchanged, through the gateway of each shell: the same table as the mock's own
//! run (`wsv2_tests::real_clients`), checked through the mock's records behind the gateway.

use wsv2_tests::real_clients::REAL_CLIENTS;

use crate::support::Shell;
use crate::support::common::Setup;

wsv2_tests::real_client_tests!(|shell: Shell| Setup::new(shell, |_| {}).await => shell_tests;
    python_connect_two_chained_turns_and_not_found,
    python_session_two_lanes_two_chained_turns,
    agents_two_chained_runs_on_one_socket,
    node_responses_ws_two_chained_turns_and_not_found,
);

#[test]
fn every_real_client_runs_through_the_gateway() {
    let all: Vec<&str> = REAL_CLIENTS.iter().map(|c| c.name).collect();
    assert_eq!(COVERED, all.as_slice());
}
