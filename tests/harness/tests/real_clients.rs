//! The official SDKs (openai-python, openai-agents, openai-node) against an in-process mock: each
//! script must print PASS and exit 0, and the mock's records must show the upgrades and frames the
//! client is known to send.
//!
//! Needs `tests/clients/setup.sh` to have run. Without `tests/clients/.venv` the tests skip with a
//! printed reason, unless `WSV2_REQUIRE_CLIENTS` is set (CI), in which case they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use wsv2_mock::{MockConfig, MockHandle, Record};

const KEY: &str = "sk-real-clients";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients")
}

/// The interpreter for a script, or `None` (after printing why) when the clients are not
/// installed and CI did not require them.
fn interpreter(kind: &str) -> Option<PathBuf> {
    let dir = clients_dir();
    let (path, installed) = match kind {
        "python" => {
            let python = dir.join(".venv/bin/python");
            (python.clone(), python.exists())
        }
        _ => (
            PathBuf::from("node"),
            dir.join("node/node_modules/openai/package.json").exists(),
        ),
    };
    if installed {
        return Some(path);
    }
    let venv_present = dir.join(".venv").exists();
    if std::env::var_os("WSV2_REQUIRE_CLIENTS").is_some() || venv_present {
        panic!("{kind} clients are not installed; run tests/clients/setup.sh");
    }
    eprintln!(
        "SKIP: tests/clients/.venv is absent and WSV2_REQUIRE_CLIENTS is unset; run tests/clients/setup.sh"
    );
    None
}

async fn mock() -> MockHandle {
    wsv2_mock::start(MockConfig {
        api_key: KEY.into(),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts")
}

/// Runs one script with the mock's base URL; asserts exit 0 and a PASS line.
async fn run_script(kind: &str, script: &str, mock: &MockHandle) -> bool {
    let Some(program) = interpreter(kind) else {
        return false;
    };
    let path = match kind {
        "python" => clients_dir().join("python").join(script),
        _ => clients_dir().join("node").join(script),
    };
    let child = tokio::process::Command::new(program)
        .arg(&path)
        .args(["--base-url", &mock.http_base(), "--api-key", KEY])
        .current_dir(path.parent().unwrap())
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_WEBSOCKET_BASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PASS"),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    true
}

/// Connections seen by the mock: handshake headers and the `response.create` frames of each.
struct Connections(Vec<(u64, std::collections::BTreeMap<String, String>, Vec<Value>)>);

impl Connections {
    fn of(mock: &MockHandle) -> Self {
        let records = mock.records();
        let mut conns = Vec::new();
        for r in &records {
            if let Record::Handshake { conn, headers, .. } = r {
                conns.push((*conn, headers.clone(), Vec::new()));
            }
        }
        for r in records {
            if let Record::Frame { conn, frame } = r
                && frame["type"] == "response.create"
                && let Some(c) = conns.iter_mut().find(|c| c.0 == conn)
            {
                c.2.push(frame);
            }
        }
        Self(conns)
    }

    /// The single connection's headers and creates (fails if there were more or fewer).
    fn single(&self) -> (&std::collections::BTreeMap<String, String>, &[Value]) {
        assert_eq!(
            self.0.len(),
            1,
            "expected exactly one upgrade, saw {}",
            self.0.len()
        );
        (&self.0[0].1, &self.0[0].2)
    }
}

#[tokio::test]
async fn python_connect_two_chained_turns_and_not_found() {
    let mock = mock().await;
    if !run_script("python", "connect_chained.py", &mock).await {
        return;
    }
    let conns = Connections::of(&mock);
    let (headers, creates) = conns.single();
    assert!(
        headers["user-agent"].starts_with("OpenAI/Python"),
        "{headers:?}"
    );
    assert_eq!(
        creates.len(),
        3,
        "two turns and the error case on ONE connection"
    );
    assert!(creates[0]["previous_response_id"].is_null());
    assert!(
        creates[1]["previous_response_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("resp"))
    );
    assert_eq!(
        creates[2]["previous_response_id"],
        "resp_wsv2_client_unknown"
    );
}

#[tokio::test]
async fn python_session_two_lanes_two_chained_turns() {
    let mock = mock().await;
    if !run_script("python", "session_lanes.py", &mock).await {
        return;
    }
    let conns = Connections::of(&mock);
    let (_, creates) = conns.single();
    assert_eq!(creates.len(), 4);
    for lane in ["alpha", "beta"] {
        let mine: Vec<&Value> = creates.iter().filter(|c| c["stream_id"] == lane).collect();
        assert_eq!(mine.len(), 2, "{lane} creates");
        assert!(mine[0]["previous_response_id"].is_null());
        assert!(
            mine[1]["previous_response_id"].is_string(),
            "{lane} turn 2 chains"
        );
    }
}

#[tokio::test]
async fn agents_two_chained_runs_on_one_socket() {
    let mock = mock().await;
    if !run_script("python", "agents_runner.py", &mock).await {
        return;
    }
    let conns = Connections::of(&mock);
    let (headers, creates) = conns.single();
    assert!(
        headers
            .get("sec-websocket-extensions")
            .is_some_and(|e| e.contains("permessage-deflate")),
        "openai-agents offers permessage-deflate: {headers:?}"
    );
    assert_eq!(creates.len(), 2, "two Runner.run calls on one socket");
    assert_eq!(
        creates[1]["stream"], true,
        "the Agents SDK forces stream: true"
    );
    assert!(
        creates[1]["previous_response_id"].is_string(),
        "run 2 chains to run 1"
    );
}

#[tokio::test]
async fn node_responses_ws_two_chained_turns_and_not_found() {
    let mock = mock().await;
    if !run_script("node", "responses_ws.mjs", &mock).await {
        return;
    }
    let conns = Connections::of(&mock);
    let (_, creates) = conns.single();
    assert_eq!(creates.len(), 3);
    assert!(creates[1]["previous_response_id"].is_string());
    assert_eq!(creates[2]["previous_response_id"], "resp_wsv2_node_unknown");
}
