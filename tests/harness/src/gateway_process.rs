//! The tests of a gateway *binary* as an operator runs it: `serve --pid-file --log-format json`,
//! `reload` (SIGHUP through the pid file) and SIGTERM, on real sockets and real signals.
//!
//! Written once here and run by each shell's own package, because `CARGO_BIN_EXE_<name>` exists
//! only in the package that builds the binary. A shell's package runs them with one file under its
//! `tests/` (it needs `tokio` and `wsv2-tests` as dev-dependencies):
//!
//! ```ignore
//! wsv2_tests::gateway_process_tests!(
//!     env!("CARGO_BIN_EXE_wsv2-gateway"),
//!     runtime_threads = "tokio-",
//!     foreign_threads = "wsv2-smol-"
//! );
//! ```
//!
//! Every shell's binary takes the same command line and writes the same log lines. The in-process
//! scenarios of the shells are in `tests/harness/tests/shells`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use wsv2_mock::{MockConfig, MockHandle};

use crate::client::{Credentials, WsClient};

/// The upstream key of [`mock`]
pub const UPSTREAM_KEY: &str = "sk-upstream-harden";
/// The client key the test configuration accepts
const CLIENT_KEY: &str = "sk-gw-demo";

/// Generates the gateway-binary tests, each a `#[tokio::test]` running the binary at `$bin`
/// (normally `env!("CARGO_BIN_EXE_<name>")` in the binary's own package).
#[macro_export]
macro_rules! gateway_process_tests {
    ($bin:expr, runtime_threads = $present:expr, foreign_threads = $absent:expr) => {
        #[tokio::test]
        async fn serve_logs_json_reloads_on_the_reload_command_and_drains_on_sigterm() {
            $crate::gateway_process::serve_logs_json_reloads_on_the_reload_command_and_drains_on_sigterm(
                $bin,
                $crate::gateway_process::Threads {
                    present: $present,
                    absent: $absent,
                },
            )
            .await;
        }

        #[tokio::test]
        async fn no_log_line_carries_a_credential_a_prompt_or_a_frame_body() {
            $crate::log_leaks::no_log_line_carries_a_credential_a_prompt_or_a_frame_body($bin)
                .await;
        }

        #[tokio::test]
        async fn the_version_names_the_commit_it_was_built_from() {
            $crate::gateway_process::the_version_names_the_commit_it_was_built_from($bin).await;
        }

        #[tokio::test]
        async fn the_shipped_example_serves_as_its_comments_say() {
            $crate::shipped_example::the_shipped_example_serves_as_its_comments_say($bin).await;
        }
    };
}

/// Which threads a serving gateway runs, by name prefix (`/proc/PID/task/*/comm`, at most 15
/// characters): its own runtime's must be there and another runtime's must not, so a binary is
/// known to run on the runtime it claims (the smol binary starts no tokio runtime)
#[derive(Clone, Copy, Debug)]
pub struct Threads {
    /// A prefix some thread's name starts with
    pub present: &'static str,
    /// A prefix no thread's name starts with
    pub absent: &'static str,
}

/// The names of the threads of process `pid`
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// A mock upstream that accepts [`UPSTREAM_KEY`], with `tweak` applied
pub async fn mock(tweak: impl FnOnce(&mut MockConfig)) -> MockHandle {
    let mut config = MockConfig {
        api_key: UPSTREAM_KEY.into(),
        ..MockConfig::default()
    };
    tweak(&mut config);
    wsv2_mock::start(config).await.expect("mock starts")
}

/// Writes `text` to a fresh file under this process's temp folder and returns its path
pub(crate) fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsv2-harden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn config_text(mock_url: &str, extra_key: Option<&str>) -> String {
    // Idle sockets close within 200 ms of SIGTERM rather than the default 5 s spread.
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[session]\nshutdown_close_spread = \"200ms\"\n\n[[client_keys]]\nkey = \"{CLIENT_KEY}\"\n\n\
         [[accounts]]\nid = 1\nname = \"mock\"\ntoken = \"{UPSTREAM_KEY}\"\nbase_url = \"{mock_url}\"\n"
    );
    if let Some(key) = extra_key {
        text.push_str(&format!("\n[[client_keys]]\nkey = \"{key}\"\n"));
    }
    text
}

/// Removes the test runner's own `WSV2_*` variables (e.g. the ones scripts/test.sh exports)
/// from `command`: the binary reads every one as a setting, and they must not leak into the
/// gateway under test
pub(crate) fn without_runner_settings(command: &mut tokio::process::Command) {
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("WSV2_")) {
        command.env_remove(name);
    }
}

/// Every line of one output pipe of the child (stdout or stderr), awaitable
pub(crate) struct Output(watch::Receiver<Vec<String>>);

impl Output {
    pub(crate) fn spawn(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(Vec::new());
        tokio::spawn(async move {
            // Bytes, not `lines()`: a line that is not UTF-8 must not end the capture early.
            let mut lines = BufReader::new(pipe).split(b'\n');
            while let Ok(Some(line)) = lines.next_segment().await {
                tx.send_modify(|all| all.push(String::from_utf8_lossy(&line).into_owned()));
            }
        });
        Self(rx)
    }

    /// Every line, once the pipe has ended (its reader dropped the sender)
    pub(crate) async fn all_when_closed(mut self) -> String {
        while self.0.changed().await.is_ok() {}
        self.0.borrow().join("\n")
    }

    /// Every line so far
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// Waits up to `timeout` until the lines so far satisfy `done`; whether they did
    pub(crate) async fn wait_until(
        &self,
        timeout: Duration,
        done: impl FnMut(&Vec<String>) -> bool,
    ) -> bool {
        let mut rx = self.0.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(done)).await,
            Ok(Ok(_))
        )
    }

    /// The URL of the gateway's `listening on ws://…` line, waiting up to 10 s for it
    pub(crate) async fn wait_for_ws_url(&mut self) -> String {
        self.wait_for("listening on ws://")
            .await
            .trim_start_matches("listening on ")
            .trim()
            .to_owned()
    }

    /// The first line containing `needle`, waiting up to 10 s for it
    pub(crate) async fn wait_for(&mut self, needle: &str) -> String {
        let mut rx = self.0.clone();
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|all| all.iter().any(|l| l.contains(needle))),
        )
        .await;
        let lines = self.0.borrow().clone();
        match waited {
            Ok(Ok(_)) => lines.into_iter().find(|l| l.contains(needle)).unwrap(),
            _ => panic!("no line with {needle:?} in {lines:#?}"),
        }
    }
}

/// `serve` logs JSON and writes its pid file, `reload` applies an edited configuration, SIGTERM
/// closes the open socket 1012 and exits 0, removing the pid file
pub async fn serve_logs_json_reloads_on_the_reload_command_and_drains_on_sigterm(
    bin: &str,
    threads: Threads,
) {
    let mock = mock(|_| {}).await;
    let config = temp_file("process.toml", &config_text(&mock.ws_url(), None));
    let pid_file = config.with_extension("pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut command = tokio::process::Command::new(bin);
    without_runner_settings(&mut command);
    let mut child = command
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut out = Output::spawn(child.stdout.take().unwrap());
    let ws_url = out.wait_for_ws_url().await;
    // JSON log lines: one object each, the message under `fields`.
    let started = out.wait_for("wsv2 gateway listening").await;
    let started: Value = serde_json::from_str(&started).expect("a JSON log line");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["message"], "wsv2 gateway listening");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(Some(pid), child.id());

    let mut open = WsClient::connect(&ws_url, &Credentials::bearer(CLIENT_KEY))
        .await
        .expect("upgrade");
    open.send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "hi"}))
        .await
        .unwrap();
    assert_eq!(
        open.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    // The turn's log line is JSON with its span fields, and never the prompt.
    let ended = out.wait_for("response ended").await;
    let ended: Value = serde_json::from_str(&ended).unwrap();
    assert_eq!(ended["fields"]["outcome"], "completed", "{ended}");
    assert_eq!(ended["span"]["account"], "mock", "{ended}");
    assert!(!ended.to_string().contains("\"hi\""), "{ended}");

    // While it serves: the runtime's threads are its own.
    let names = thread_names(pid);
    assert!(
        names.iter().any(|n| n.starts_with(threads.present)),
        "no thread named {}*: {names:?}",
        threads.present
    );
    assert!(
        !names.iter().any(|n| n.starts_with(threads.absent)),
        "a thread named {}*: {names:?}",
        threads.absent
    );

    // Add a client key, then `wsv2-gateway reload`.
    std::fs::write(&config, config_text(&mock.ws_url(), Some("sk-added"))).unwrap();
    let status = tokio::process::Command::new(bin)
        .arg("reload")
        .arg("--pid-file")
        .arg(&pid_file)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let reloaded = out.wait_for("configuration reloaded").await;
    let reloaded: Value = serde_json::from_str(&reloaded).unwrap();
    assert_eq!(reloaded["fields"]["client_keys"], 2, "{reloaded}");
    let mut added = WsClient::connect(&ws_url, &Credentials::bearer("sk-added"))
        .await
        .expect("the added key upgrades");
    added
        .send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "new key"}))
        .await
        .unwrap();
    assert_eq!(
        added.read_turn().await.unwrap().last_type(),
        "response.completed"
    );
    drop(added);

    // SIGTERM: the idle open socket is closed 1012 within the close spread, exit 0.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let (_, close) = open.read_until_closed().await.unwrap();
    assert_eq!(close.code, Some(1012), "{close:?}");
    drop(open);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the gateway exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    out.wait_for("shutdown complete").await;
    assert!(!pid_file.exists(), "the pid file is removed on exit");
}

/// `--version` prints `NAME VERSION (commit SHA)`: the commit `WSV2_BUILD_COMMIT` names when the
/// build had it, else the checkout's `HEAD` (the binary is rebuilt when `HEAD` moves), else
/// `unknown`
pub async fn the_version_names_the_commit_it_was_built_from(bin: &str) {
    let out = tokio::process::Command::new(bin)
        .arg("--version")
        .output()
        .await
        .expect("the binary runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let name = std::path::Path::new(bin)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a binary name");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let commit = std::env::var("WSV2_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or(head)
        // No git here (a source tarball): the build script had none either.
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        text,
        format!("{name} {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
