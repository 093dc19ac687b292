//! `examples/gateway.toml` served by a gateway *binary* exactly as its comments say: its
//! `WSV2_EXAMPLE_*` credentials exported, `check-config` first, then `serve --config`, a turn
//! through it. The only edits are the upstream endpoints (pointed at local mocks instead of
//! api.openai.com and chatgpt.com) and the SOCKS5 proxy line (no proxy runs here); every other
//! line is the shipped file. Run by each shell's package through
//! [`gateway_process_tests!`](crate::gateway_process_tests).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::client::{Credentials, WsClient};
use crate::gateway_process::{Output, UPSTREAM_KEY, mock, temp_file, without_runner_settings};

/// The shipped example
const EXAMPLE: &str = include_str!("../../../examples/gateway.toml");

/// The client key the example reads from `WSV2_EXAMPLE_CLIENT_KEY`
const ENV_CLIENT_KEY: &str = "sk-gw-team-a-from-env";
/// The example's inline client key
const INLINE_CLIENT_KEY: &str = "sk-gw-ci-0123456789";
/// The example's inline token of account 3 (`rollback`)
const ROLLBACK_TOKEN: &str = "sk-example-rollback";

/// Replaces the one line of `text` equal to `line` (after trimming) with `with`; panics when the
/// example no longer has exactly one such line, so the test follows the file
fn replace_line(text: &str, line: &str, with: &str) -> String {
    let hits = text
        .lines()
        .filter(|l| l.trim_start().starts_with(line))
        .count();
    assert_eq!(
        hits, 1,
        "examples/gateway.toml has {hits} lines starting {line:?}"
    );
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with(line) {
                with.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The variables the example's comments tell an operator to set, plus what a shell may carry:
/// `WSV2_LISTEN` and `WSV2_ADMIN_LISTEN` (overrides the comments show; port 0 so tests never
/// collide) and `WSV2_KEY`
/// (the variable `demo` tells Codex users to export)
fn example_env(command: &mut tokio::process::Command, client_key: Option<&str>) {
    without_runner_settings(command);
    if let Some(key) = client_key {
        command.env("WSV2_EXAMPLE_CLIENT_KEY", key);
    }
    command
        .env("WSV2_EXAMPLE_OPENAI_KEY", UPSTREAM_KEY)
        .env("WSV2_EXAMPLE_OAUTH_TOKEN", UPSTREAM_KEY)
        .env("WSV2_LISTEN", "127.0.0.1:0")
        .env("WSV2_ADMIN_LISTEN", "127.0.0.1:0")
        .env("WSV2_KEY", "sk-gw-demo")
        .env("RUST_LOG", "info");
}

/// `check-config` on `config`: (exit code, stdout)
async fn check_config(bin: &str, config: &Path, client_key: Option<&str>) -> (i32, String) {
    let mut command = tokio::process::Command::new(bin);
    example_env(&mut command, client_key);
    let out = command
        .arg("check-config")
        .arg(config)
        .output()
        .await
        .expect("check-config runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The example as shipped, its variables set: `check-config` and `serve` agree (warning about
/// `WSV2_KEY`, never refusing it), a turn completes through each client key, and without a
/// credential both refuse with the same words and exit code
pub async fn the_shipped_example_serves_as_its_comments_say(bin: &str) {
    let upstream = mock(|_| {}).await;
    let rollback = mock(|c| c.api_key = ROLLBACK_TOKEN.into()).await;
    let mut text = replace_line(
        EXAMPLE,
        "base_url = \"wss://api.openai.com/v1/responses\"",
        &format!("base_url = \"{}\"", upstream.ws_url()),
    );
    text = replace_line(
        &text,
        "base_url = \"https://chatgpt.com/backend-api/codex\"",
        &format!(
            "base_url = \"http://{}/backend-api/codex\"",
            upstream.addr()
        ),
    );
    text = replace_line(&text, "proxy = \"socks5://", "");
    text = replace_line(
        &text,
        "base_url = \"https://api.openai.com/v1\"",
        &format!("base_url = \"{}\"", rollback.http_base()),
    );
    let config = temp_file("shipped-example.toml", &text);

    let (code, report) = check_config(bin, &config, Some(ENV_CLIENT_KEY)).await;
    assert_eq!(code, 0, "{report}");
    let warning = "warning: WSV2_KEY: no such setting `key` (ignored)";
    assert!(
        report.starts_with(&format!("{warning}\nok: 3 accounts")),
        "{report}"
    );

    let mut command = tokio::process::Command::new(bin);
    example_env(&mut command, Some(ENV_CLIENT_KEY));
    let mut child = command
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut out = Output::spawn(child.stdout.take().unwrap());
    let mut err = Output::spawn(child.stderr.take().unwrap());
    let ws_url = out.wait_for_ws_url().await;
    assert_eq!(
        err.wait_for("WSV2_KEY").await,
        warning,
        "the same words as check-config"
    );

    for key in [ENV_CLIENT_KEY, INLINE_CLIENT_KEY] {
        let mut client = WsClient::connect(&ws_url, &Credentials::bearer(key))
            .await
            .unwrap_or_else(|e| panic!("{key}: upgrade: {e:?}"));
        client
            .send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "hello"}))
            .await
            .unwrap();
        let turn = client.read_turn().await.unwrap();
        assert_eq!(turn.last_type(), "response.completed", "{key}");
    }
    let upgrades = upstream
        .records()
        .iter()
        .filter(|r| matches!(r, wsv2_mock::Record::Handshake { .. }))
        .count();
    assert!(upgrades >= 1, "the turns went to the example's accounts");
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    // Without its client key the example is invalid: the same report, the same exit code.
    let (code, report) = check_config(bin, &config, None).await;
    let mut command = tokio::process::Command::new(bin);
    example_env(&mut command, None);
    let served = command
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("serve runs");
    assert_eq!(code, 2, "{report}");
    assert_eq!(served.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&served.stderr), report);
    assert!(
        report.contains("client_keys[0].key_env: environment variable `WSV2_EXAMPLE_CLIENT_KEY`"),
        "{report}"
    );
}
