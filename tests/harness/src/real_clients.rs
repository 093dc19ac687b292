//! The real-client scripts of `tests/clients` (openai-python, openai-agents, openai-node), written
//! once and run against any target: the mock itself, or a gateway whose upstream is the mock.
//!
//! Each [`RealClient`] runs its script unchanged with `--base-url` / `--api-key`, requires exit 0
//! and a `PASS` line, then checks the mock's records for the upgrades and frames the client is
//! known to send. Checks that only hold on a direct connection (the SDK's own `User-Agent` and
//! extension offers reach the upstream handshake) are stated per [`TargetKind`]; through a gateway
//! the upstream handshake is the gateway's, and pooled warm conns may carry no creates at all.
//!
//! The scripts need `tests/clients/setup.sh`. Without `tests/clients/.venv` a run is skipped with
//! a printed reason, unless `WSV2_REQUIRE_CLIENTS` is set (CI), in which case it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use wsv2_mock::{MockHandle, Record};

use crate::conformance::TargetKind;
use crate::{Failure, ensure, ensure_eq};

/// How long one script may run before it counts as hung
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a real client connects, and the mock behind it whose records prove what happened
pub trait ClientTarget {
    /// The mock itself, or a gateway in front of it
    fn kind(&self) -> TargetKind;
    /// `http://HOST/v1`: the base URL the SDKs take
    fn base_url(&self) -> String;
    /// The key the client presents
    fn api_key(&self) -> String;
    /// The mock upstream (the target itself, or the gateway's only account)
    fn upstream(&self) -> &MockHandle;
    /// The key the upstream handshake must carry (the account's credential through a gateway)
    fn upstream_key(&self) -> String;
}

/// A mock on its own as a [`ClientTarget`]
#[derive(Debug)]
pub struct DirectMock {
    /// The mock
    pub mock: MockHandle,
    /// Its API key
    pub key: String,
}

impl ClientTarget for DirectMock {
    fn kind(&self) -> TargetKind {
        TargetKind::Upstream
    }
    fn base_url(&self) -> String {
        self.mock.http_base()
    }
    fn api_key(&self) -> String {
        self.key.clone()
    }
    fn upstream(&self) -> &MockHandle {
        &self.mock
    }
    fn upstream_key(&self) -> String {
        self.key.clone()
    }
}

/// The language runtime a script needs
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `tests/clients/.venv/bin/python`
    Python,
    /// `node` with `tests/clients/node/node_modules`
    Node,
}

/// One script and what the mock's records must show after it passed
#[derive(Debug, Clone, Copy)]
pub struct RealClient {
    /// Unique name (the test's name)
    pub name: &'static str,
    /// Runtime
    pub runtime: Runtime,
    /// File name under `tests/clients/python` or `tests/clients/node`
    pub script: &'static str,
    /// The record check
    pub check: fn(&Connections, TargetKind) -> Result<(), Failure>,
}

/// Every real-client script, in a stable order
pub const REAL_CLIENTS: &[RealClient] = &[
    RealClient {
        name: "python_connect_two_chained_turns_and_not_found",
        runtime: Runtime::Python,
        script: "connect_chained.py",
        check: check_connect_chained,
    },
    RealClient {
        name: "python_session_two_lanes_two_chained_turns",
        runtime: Runtime::Python,
        script: "session_lanes.py",
        check: check_session_lanes,
    },
    RealClient {
        name: "agents_two_chained_runs_on_one_socket",
        runtime: Runtime::Python,
        script: "agents_runner.py",
        check: check_agents,
    },
    RealClient {
        name: "node_responses_ws_two_chained_turns_and_not_found",
        runtime: Runtime::Node,
        script: "responses_ws.mjs",
        check: check_node,
    },
];

/// Generates one `#[tokio::test]` per named real client, plus a `COVERED` list of the names.
///
/// `$setup` is an expression evaluated inside each (async) test that yields a [`ClientTarget`];
/// it lives until the test ends.
///
/// ```ignore
/// wsv2_tests::real_client_tests!(start_gateway().await; python_session_two_lanes_two_chained_turns);
/// ```
///
/// The parameterised form runs each client against several targets (e.g. every gateway shell).
/// It generates `async fn name(param: Type)` per client instead of tests, and hands the names to
/// the caller's instantiating macro, which makes the tests (one per target). `$setup` may use the
/// parameter; the parameter's `Display` names the target in a failure:
///
/// ```ignore
/// wsv2_tests::real_client_tests!(|shell: Shell| Setup::new(shell, |_| {}).await => shell_tests;
///     python_session_two_lanes_two_chained_turns);
/// ```
#[macro_export]
macro_rules! real_client_tests {
    (|$param:ident: $ty:ty| $setup:expr => $instantiate:ident; $($name:ident),* $(,)?) => {
        $(
            async fn $name($param: $ty) {
                let label = ::std::string::ToString::to_string(&$param);
                let target = $setup;
                if let Err(failure) = $crate::real_clients::run_real_client(&target, stringify!($name)).await {
                    panic!("{failure} (through {label})");
                }
            }
        )*
        $instantiate! { $($name),* }
        /// The real clients this module runs.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
    };
    ($setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let target = $setup;
                if let Err(failure) = $crate::real_clients::run_real_client(&target, stringify!($name)).await {
                    panic!("{failure}");
                }
            }
        )*
        /// The real clients this file runs.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
    };
}

/// Runs one real client by name against `target`: `Ok` when it passed or was skipped (with a
/// printed reason), a failure otherwise
pub async fn run_real_client(target: &impl ClientTarget, name: &str) -> Result<(), Failure> {
    let client = REAL_CLIENTS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Failure::new(format!("no real client named {name}")))?;
    let Some(program) = interpreter(client.runtime) else {
        return Ok(());
    };
    run_script(program, client, target).await?;
    let conns = Connections::of(target.upstream());
    (client.check)(&conns, target.kind())
        .and_then(|()| check_upstream_key(&conns, &target.upstream_key()))
        .map_err(|f| f.context(&format!("{name} [{}]", target.kind())))
}

/// `tests/clients`: the scripts, and the venv and node packages `setup.sh` installs there
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients")
}

/// The interpreter for a runtime, or `None` (after printing why) when the clients are not
/// installed and CI did not require them
fn interpreter(runtime: Runtime) -> Option<PathBuf> {
    let dir = clients_dir();
    let (path, installed) = match runtime {
        Runtime::Python => {
            let python = dir.join(".venv/bin/python");
            (python.clone(), python.exists())
        }
        Runtime::Node => (
            PathBuf::from("node"),
            dir.join("node/node_modules/openai/package.json").exists(),
        ),
    };
    if installed {
        return Some(path);
    }
    let venv_present = dir.join(".venv").exists();
    if std::env::var_os("WSV2_REQUIRE_CLIENTS").is_some() || venv_present {
        panic!("{runtime:?} clients are not installed; run tests/clients/setup.sh");
    }
    eprintln!(
        "SKIP: tests/clients/.venv is absent and WSV2_REQUIRE_CLIENTS is unset; run tests/clients/setup.sh"
    );
    None
}

/// Runs one script; requires exit 0 and a PASS line
async fn run_script(
    program: PathBuf,
    client: &RealClient,
    target: &impl ClientTarget,
) -> Result<(), Failure> {
    let folder = match client.runtime {
        Runtime::Python => "python",
        Runtime::Node => "node",
    };
    let path = clients_dir().join(folder).join(client.script);
    let child = tokio::process::Command::new(program)
        .arg(&path)
        .args([
            "--base-url",
            &target.base_url(),
            "--api-key",
            &target.api_key(),
        ])
        .current_dir(clients_dir().join(folder))
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_WEBSOCKET_BASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::new(format!("{} does not start: {e}", client.script)))?;
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Failure::new(format!(
                "{} did not finish within {SCRIPT_TIMEOUT:?}",
                client.script
            ))
        })??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success() && stdout.contains("PASS"),
        "{} failed against {} ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        client.script,
        target.kind(),
        output.status
    );
    Ok(())
}

/// One upstream connection the mock saw: its handshake headers and its `response.create` frames
#[derive(Debug, Clone)]
pub struct Connection {
    /// Mock connection id
    pub conn: u64,
    /// Handshake headers (lower-case names, credentials masked)
    pub headers: BTreeMap<String, String>,
    /// The creates it carried, in order
    pub creates: Vec<Value>,
}

/// Connections seen by the mock
#[derive(Debug, Clone)]
pub struct Connections(pub Vec<Connection>);

impl Connections {
    /// From the mock's records so far
    pub fn of(mock: &MockHandle) -> Self {
        let records = mock.records();
        let mut conns = Vec::new();
        for r in &records {
            if let Record::Handshake { conn, headers, .. } = r {
                conns.push(Connection {
                    conn: *conn,
                    headers: headers.clone(),
                    creates: Vec::new(),
                });
            }
        }
        for r in records {
            if let Record::Frame { conn, frame } = r
                && frame["type"] == "response.create"
                && let Some(c) = conns.iter_mut().find(|c| c.conn == conn)
            {
                c.creates.push(frame);
            }
        }
        Self(conns)
    }

    /// The one connection that carried the client's creates.
    ///
    /// Directly, the client's socket is the only upgrade the mock sees. Through a gateway, warm
    /// pooled conns may be dialed too; they carry no creates, and every create of one client
    /// socket must still travel on one upstream conn.
    pub fn single(&self, kind: TargetKind) -> Result<&Connection, Failure> {
        let carrying: Vec<&Connection> = match kind {
            TargetKind::Upstream => self.0.iter().collect(),
            TargetKind::Gateway => self.0.iter().filter(|c| !c.creates.is_empty()).collect(),
        };
        ensure_eq!(
            carrying.len(),
            1,
            "upstream conns carrying the client's creates (of {} upgrades)",
            self.0.len()
        );
        Ok(carrying[0])
    }
}

/// The handshake that carried the creates presented the expected key (through a gateway: the
/// account's credential, never the client's)
fn check_upstream_key(conns: &Connections, key: &str) -> Result<(), Failure> {
    for c in conns.0.iter().filter(|c| !c.creates.is_empty()) {
        let auth = c.headers.get("authorization").map_or("", String::as_str);
        let tail = &key[key.len().saturating_sub(4)..];
        ensure!(
            auth.ends_with(tail),
            "upstream conn {} authorized with {auth:?}, expected the key ending {tail:?}",
            c.conn
        );
    }
    Ok(())
}

fn check_connect_chained(conns: &Connections, kind: TargetKind) -> Result<(), Failure> {
    let c = conns.single(kind)?;
    if kind == TargetKind::Upstream {
        let agent = c.headers.get("user-agent").map_or("", String::as_str);
        ensure!(agent.starts_with("OpenAI/Python"), "user-agent {agent:?}");
    }
    ensure_eq!(
        c.creates.len(),
        3,
        "creates (two turns and the not-found case on one conn)"
    );
    ensure!(
        c.creates[0]["previous_response_id"].is_null(),
        "turn 1 chains"
    );
    ensure!(
        c.creates[1]["previous_response_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("resp")),
        "turn 2 does not chain to turn 1: {}",
        c.creates[1]
    );
    ensure_eq!(
        c.creates[2]["previous_response_id"],
        "resp_wsv2_client_unknown",
        "turn 3 previous_response_id"
    );
    Ok(())
}

fn check_session_lanes(conns: &Connections, kind: TargetKind) -> Result<(), Failure> {
    let c = conns.single(kind)?;
    ensure_eq!(c.creates.len(), 4, "creates");
    for lane in ["alpha", "beta"] {
        let mine: Vec<&Value> = c
            .creates
            .iter()
            .filter(|x| x["stream_id"] == lane)
            .collect();
        ensure_eq!(mine.len(), 2, "{lane} creates");
        ensure!(
            mine[0]["previous_response_id"].is_null(),
            "{lane} turn 1 chains"
        );
        ensure!(
            mine[1]["previous_response_id"].is_string(),
            "{lane} turn 2 does not chain"
        );
    }
    Ok(())
}

fn check_agents(conns: &Connections, kind: TargetKind) -> Result<(), Failure> {
    let c = conns.single(kind)?;
    if kind == TargetKind::Upstream {
        ensure!(
            c.headers
                .get("sec-websocket-extensions")
                .is_some_and(|e| e.contains("permessage-deflate")),
            "openai-agents offers permessage-deflate: {:?}",
            c.headers
        );
    }
    ensure_eq!(c.creates.len(), 2, "creates (two Runner.run calls)");
    ensure_eq!(
        c.creates[1]["stream"],
        true,
        "the Agents SDK forces stream: true"
    );
    ensure!(
        c.creates[1]["previous_response_id"].is_string(),
        "run 2 does not chain to run 1"
    );
    Ok(())
}

fn check_node(conns: &Connections, kind: TargetKind) -> Result<(), Failure> {
    let c = conns.single(kind)?;
    ensure_eq!(c.creates.len(), 3, "creates");
    ensure!(
        c.creates[1]["previous_response_id"].is_string(),
        "turn 2 does not chain"
    );
    ensure_eq!(
        c.creates[2]["previous_response_id"],
        "resp_wsv2_node_unknown",
        "turn 3 previous_response_id"
    );
    Ok(())
}
