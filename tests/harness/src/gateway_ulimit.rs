//! The gateway binary under a low descriptor limit (`ulimit -n 128`), as an operator would run it:
//! idle connects neither spin the accept loop nor flood the log, the client socket cap derived
//! from the limit keeps the process off the limit, and a real client is served throughout.
//!
//! Written once here and run by each shell's package next to [`crate::gateway_process`]:
//!
//! ```ignore
//! wsv2_tests::gateway_ulimit_tests!(env!("CARGO_BIN_EXE_wsv2-gateway"));
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Credentials, WsClient};
use crate::gateway_process::{Output, UPSTREAM_KEY, mock, temp_file, without_runner_settings};

/// The client key of the test configuration
const CLIENT_KEY: &str = "sk-gw-ulimit";
/// The descriptor limit the gateway runs under
const NOFILE: u32 = 128;
/// Idle connects: more than the limit
const IDLE_CONNECTS: usize = 140;

/// Generates the low-descriptor-limit tests, each a `#[tokio::test]` running the binary at `$bin`
#[macro_export]
macro_rules! gateway_ulimit_tests {
    ($bin:expr) => {
        #[tokio::test]
        async fn under_ulimit_128_idle_connects_give_way_to_a_client_below_the_descriptor_limit() {
            $crate::gateway_ulimit::idle_connects_give_way_to_a_client_below_the_descriptor_limit(
                $bin,
            )
            .await;
        }

        #[tokio::test]
        async fn out_of_descriptors_the_accept_loop_pauses_logs_once_a_second_and_recovers() {
            $crate::gateway_ulimit::out_of_descriptors_the_accept_loop_pauses_and_recovers($bin)
                .await;
        }
    };
}

/// A running gateway binary and its stdout
struct Gateway {
    _child: tokio::process::Child,
    out: Output,
    addr: std::net::SocketAddr,
    ws_url: String,
}

/// Starts `bin serve` under `ulimit -n 128` with JSON logs and the `WSV2_*` settings `env`
async fn start(bin: &str, name: &str, env: &[(&str, &str)]) -> (Gateway, wsv2_mock::MockHandle) {
    let mock = mock(|_| {}).await;
    let config = temp_file(
        name,
        &format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[[client_keys]]\nkey = \"{CLIENT_KEY}\"\n\n\
             [[accounts]]\nid = 1\nname = \"mock\"\ntoken = \"{UPSTREAM_KEY}\"\nbase_url = \"{}\"\n",
            mock.ws_url()
        ),
    );
    let mut command = tokio::process::Command::new("sh");
    // The shell lowers the limit, then becomes the gateway.
    command
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&config);
    without_runner_settings(&mut command);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut out = Output::spawn(child.stdout.take().unwrap());
    let ws_url = out.wait_for_ws_url().await;
    let addr = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a socket address");
    let gateway = Gateway {
        _child: child,
        out,
        addr,
        ws_url,
    };
    (gateway, mock)
}

/// The JSON log lines whose message contains `needle`
fn logged(out: &Output, needle: &str) -> Vec<Value> {
    out.lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
        })
        .collect()
}

/// A client's turn, which must complete within 10 s
async fn serve_a_client(ws_url: &str) {
    let turn = async {
        let mut ws = WsClient::connect(ws_url, &Credentials::bearer(CLIENT_KEY))
            .await
            .expect("upgrade");
        ws.send_json(&json!({"type": "response.create", "model": "gpt-5", "input": "hi"}))
            .await
            .unwrap();
        ws.read_turn().await.unwrap().last_type().to_owned()
    };
    let last = tokio::time::timeout(Duration::from_secs(10), turn)
        .await
        .expect("a client is served within 10 s");
    assert_eq!(last, "response.completed");
}

/// Whether the gateway closed `tcp` within `within`
async fn closed(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 256];
    let eof = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(within, eof).await.is_ok()
}

/// No more than one line a second (the default `ingress.client_log_interval`) since `since`
fn assert_rate_limited(lines: &[Value], since: Instant, what: &str) {
    let allowed = since.elapsed().as_secs() as usize + 1;
    assert!(
        lines.len() <= allowed,
        "{} {what} lines in {:?}: {lines:#?}",
        lines.len(),
        since.elapsed()
    );
}

/// `ulimit -n 128`, the socket cap derived (48): 140 idle connects are served or give their
/// place to newer ones, `accept` never fails, and a client is served at once
pub async fn idle_connects_give_way_to_a_client_below_the_descriptor_limit(bin: &str) {
    let (mut gateway, _mock) = start(bin, "ulimit-derived.toml", &[]).await;
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..IDLE_CONNECTS {
        idle.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    // Accepted in connect order, the client last: every connect over the cap, and the client,
    // closed the oldest silent one.
    serve_a_client(&gateway.ws_url).await;
    let evicted = IDLE_CONNECTS - 48 + 1;
    for (i, tcp) in idle[..evicted].iter_mut().enumerate() {
        assert!(
            closed(tcp, Duration::from_secs(5)).await,
            "idle connect {i} made room"
        );
    }
    // The newest are still served.
    let newest = idle.last_mut().unwrap();
    newest
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), newest.read_to_end(&mut answer)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let accept_failed = logged(&gateway.out, "accept failed");
    assert!(
        accept_failed.is_empty(),
        "the cap kept accept off the descriptor limit: {accept_failed:#?}"
    );
    assert_rate_limited(
        &logged(&gateway.out, "closed to make room"),
        started,
        "eviction",
    );
    let capped = gateway.out.wait_for("client sockets capped").await;
    let capped: Value = serde_json::from_str(&capped).unwrap();
    // (128 − 32 reserved) − min(64 upstream conns of the account, half of 96)
    assert_eq!(capped["fields"]["nofile"], NOFILE, "{capped}");
    assert_eq!(capped["fields"]["max_client_sockets"], 48, "{capped}");
}

/// `ulimit -n 128` with the cap set above it (1000), so `accept` does fail: the loop pauses
/// (the count of failures per logged line stays small), logs at most a line a second, and
/// serves a client by itself once the idle connects leave
pub async fn out_of_descriptors_the_accept_loop_pauses_and_recovers(bin: &str) {
    let env = [
        ("WSV2_INGRESS__MAX_CLIENT_SOCKETS", "1000"),
        ("WSV2_INGRESS__MAX_UNAUTHENTICATED_CONNECTIONS", "1000"),
    ];
    let (gateway, _mock) = start(bin, "ulimit-emfile.toml", &env).await;
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..IDLE_CONNECTS {
        idle.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    // The second line comes a second after the first and counts the failures between them.
    let two = gateway
        .out
        .wait_until(Duration::from_secs(10), |lines| {
            lines.iter().filter(|l| l.contains("accept failed")).count() >= 2
        })
        .await;
    let lines = logged(&gateway.out, "accept failed");
    assert!(two, "two accept failed lines: {lines:#?}");
    let failures = lines[1]["fields"]["suppressed"].as_u64().expect("a count");
    // One retry per accept_error_backoff (50 ms) is ~20 a second; a spinning loop is ~10⁵.
    assert!(
        failures < 200,
        "{failures} failed accepts in a second: the loop spins"
    );
    assert!(
        lines[0]["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Too many open files"))
    );
    // The idle connects leave: the gateway recovers by itself.
    drop(idle);
    serve_a_client(&gateway.ws_url).await;
    assert_rate_limited(
        &logged(&gateway.out, "accept failed"),
        started,
        "accept failed",
    );
}
