//! Codex CLI 0.169.0 through the gateway, proven by the mock's record to have used WebSocket
//! (Codex falls back to HTTP silently). Optional and not in CI: the npm package is ~400 MB.
//!
//! `WITH_CODEX=1 cargo test -p wsv2-tests --test shells codex -- --nocapture` installs
//! `@openai/codex@0.169.0` with npm into a temporary folder per shell and runs `codex exec` with a
//! custom provider (`wire_api = "responses"`, `supports_websockets = true`, protocol.md §5.4).
//! Without `WITH_CODEX=1` the test prints why it skips and passes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use wsv2_mock::Record;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup};

shell_tests! {
    codex_exec_runs_through_the_gateway_over_websocket,
}

const CODEX_PACKAGE: &str = "@openai/codex@0.169.0";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
const EXEC_TIMEOUT: Duration = Duration::from_secs(180);

/// A folder removed when the test ends
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run(cmd: &mut tokio::process::Command, timeout: Duration, what: &str) -> String {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {timeout:?}"))
        .expect("the process runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

fn write_config(home: &Path, base_url: &str) {
    std::fs::create_dir_all(home).unwrap();
    let config = format!(
        r#"model = "mock-model"
model_provider = "wsv2"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.wsv2]
name = "wsv2 gateway"
base_url = "{base_url}"
wire_api = "responses"
env_key = "WSV2_CODEX_KEY"
supports_websockets = true
request_max_retries = 0
stream_max_retries = 0
"#
    );
    std::fs::write(home.join("config.toml"), config).unwrap();
}

async fn codex_exec_runs_through_the_gateway_over_websocket(shell: Shell) {
    if std::env::var("WITH_CODEX").as_deref() != Ok("1") {
        eprintln!(
            "SKIP: set WITH_CODEX=1 to install {CODEX_PACKAGE} (~400 MB, npm) and run `codex exec` \
             through the gateway"
        );
        return;
    }
    // One folder per shell: the shells' instances of this test run at once in one process.
    let dir =
        TempDir(std::env::temp_dir().join(format!("wsv2-codex-{}-{shell}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    run(
        tokio::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir.0)
            .arg(CODEX_PACKAGE),
        INSTALL_TIMEOUT,
        "npm install",
    )
    .await;
    let codex = dir.0.join("node_modules/.bin/codex");
    assert!(codex.exists(), "npm installed no codex binary");

    let setup = Setup::new(shell, |_| {}).await;
    let home = dir.0.join("codex-home");
    write_config(&home, &format!("http://{}/v1", setup.gateway.addr));
    let stdout = run(
        tokio::process::Command::new(&codex)
            .args(["exec", "--skip-git-repo-check", "--json", "Say pong"])
            .current_dir(&dir.0)
            .env("CODEX_HOME", &home)
            .env("WSV2_CODEX_KEY", CLIENT_KEY)
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL"),
        EXEC_TIMEOUT,
        "codex exec",
    )
    .await;
    assert!(
        stdout.lines().any(|l| l.contains("turn.completed")),
        "codex reported no completed turn:\n{stdout}"
    );

    // The record proves WebSocket mode: the creates arrived as WebSocket frames, and no HTTP
    // POST (Codex's silent fallback) reached the mock.
    let records = setup.mock.records();
    let posts = records
        .iter()
        .filter(|r| matches!(r, Record::Http { method, .. } if method == "POST"))
        .count();
    assert_eq!(posts, 0, "codex fell back to HTTP: {records:?}");
    let creates: Vec<&Value> = records
        .iter()
        .filter_map(|r| match r {
            Record::Frame { frame, .. } if frame["type"] == "response.create" => Some(frame),
            _ => None,
        })
        .collect();
    assert!(creates.len() >= 2, "prewarm and turn: {creates:?}");
    // Frame 1 is the prewarm (generate:false); frame 2 chains to it (protocol.md §5.4).
    assert_eq!(creates[0]["generate"], false, "{}", creates[0]);
    let prewarm_id = records.iter().find_map(|r| match r {
        Record::Sent {
            response_id: Some(id),
            r#type,
            ..
        } if r#type == "response.completed" => Some(id.clone()),
        _ => None,
    });
    assert_eq!(
        creates[1]["previous_response_id"].as_str(),
        prewarm_id.as_deref(),
        "the turn chains to the prewarm"
    );
}
