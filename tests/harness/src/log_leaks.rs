//! No log line of a gateway binary carries a credential, a prompt or a frame body, whatever
//! `RUST_LOG` says and in both log formats.
//!
//! Planted: the upstream token (the mock accepts only it), the client key, a prompt (in two
//! WebSocket turns, a POST and a client close reason), a wrong client key (a WebSocket upgrade and
//! a POST, both refused 401) and the password of the HTTP CONNECT proxy the account dials through
//! (the proxy accepts only it). Each run serves that traffic, then SIGTERM; its stdout and stderr
//! are searched for every form of every secret ([`crate::secrets`]). The runs cover each level,
//! and `trace` with every wire crate named explicitly, in text and JSON.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{ConnectError, Credentials, WsClient};
use crate::gateway_process::{Output, mock, temp_file, without_runner_settings};
use crate::secrets::{Secret, find_leaks};
use crate::sse::SseClient;

const UPSTREAM_TOKEN: &str = "sk-upstream-PLANTED-3f9a0c7e";
const CLIENT_KEY: &str = "sk-client-PLANTED-81d4b2aa";
const WRONG_KEY: &str = "sk-wrong-PLANTED-c0ffee11";
const PROMPT: &str = "the \"planted\" prompt 7e21 — never log me";
const PROXY_USER: &str = "relay";
const PROXY_PASSWORD: &str = "pw-PLANTED-5b9e17d2";

/// `RUST_LOG` values: every level, then `trace` naming every crate on the wire
const FILTERS: &[&str] = &[
    "error",
    "warn",
    "info",
    "debug",
    "trace",
    "trace,tungstenite=trace,async_tungstenite=trace,hyper=trace,rustls=trace,redis=trace",
];

fn secrets() -> Vec<Secret> {
    vec![
        Secret::new("upstream token", UPSTREAM_TOKEN),
        Secret::new("client key", CLIENT_KEY),
        Secret::new("wrong client key", WRONG_KEY),
        Secret::new("prompt", PROMPT),
        Secret::new("proxy password", PROXY_PASSWORD),
    ]
}

/// Runs the gateway binary at `bin` once per filter and format; no output may carry a secret
pub async fn no_log_line_carries_a_credential_a_prompt_or_a_frame_body(bin: &str) {
    let mock = mock(|c| c.api_key = UPSTREAM_TOKEN.into()).await;
    let proxy = ConnectProxy::start().await;
    let config = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[[client_keys]]\nkey = \"{CLIENT_KEY}\"\n\n\
         [[accounts]]\nid = 1\nname = \"mock\"\ntoken = \"{UPSTREAM_TOKEN}\"\n\
         base_url = \"{}\"\nproxy = \"http://{PROXY_USER}:{PROXY_PASSWORD}@{}\"\n",
        mock.ws_url(),
        proxy.addr
    );
    let config = temp_file("leaks.toml", &config);
    let runs = FILTERS
        .iter()
        .flat_map(|filter| [(*filter, "text"), (*filter, "json")]);
    // Two gateways at a time: each run is short and mostly waits on its sockets.
    let outputs: Vec<(String, String, String)> = futures_util::stream::iter(runs)
        .map(|(filter, format)| {
            let config = config.clone();
            async move {
                let output = run_once(bin, &config, filter, format).await;
                (filter.to_owned(), format.to_owned(), output)
            }
        })
        .buffer_unordered(2)
        .collect()
        .await;

    // The secrets did travel: the proxy was given the password (base64, in Basic auth) and the
    // mock accepted only the planted token, so the turns prove it was sent.
    let auth = proxy.auth.lock().unwrap().clone();
    assert!(!auth.is_empty(), "no dial went through the proxy");
    for header in &auth {
        let found = find_leaks(header, &[Secret::new("proxy password", PROXY_PASSWORD)]);
        assert!(!found.is_empty(), "the proxy saw no password: {header}");
    }

    let secrets = secrets();
    let mut failures = Vec::new();
    for (filter, format, output) in &outputs {
        for leak in find_leaks(output, &secrets) {
            failures.push(format!("RUST_LOG={filter} --log-format {format}: {leak}"));
        }
        // Not vacuous: the levels that should say something did.
        let level = filter.split(',').next().unwrap_or_default();
        let verbosity = ["error", "warn", "info", "debug", "trace"]
            .iter()
            .position(|l| *l == level)
            .expect("a level");
        if verbosity >= 2 {
            assert!(
                output.contains("response ended"),
                "RUST_LOG={filter} {format}: no turn was logged:\n{output}"
            );
        }
        if verbosity >= 3 {
            assert!(
                output.contains("upstream write"),
                "RUST_LOG={filter} {format}: no DEBUG line of the gateway:\n{output}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} leaks, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(12)].join("\n")
    );
}

/// One gateway process with `RUST_LOG=filter` and `--log-format format`, serving the planted
/// traffic, then SIGTERM: everything it wrote to stdout and stderr
async fn run_once(bin: &str, config: &std::path::Path, filter: &str, format: &str) -> String {
    let mut command = tokio::process::Command::new(bin);
    without_runner_settings(&mut command);
    let mut child = command
        .args(["serve", "--log-format", format, "--config"])
        .arg(config)
        .env("RUST_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut out = Output::spawn(child.stdout.take().unwrap());
    let err = Output::spawn(child.stderr.take().unwrap());
    let ws_url = out.wait_for_ws_url().await;
    serve_planted_traffic(&ws_url).await;
    let pid = child.id().expect("running");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the gateway exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Both pipes are at EOF once the process is gone; their readers finish on their own.
    let stdout = out.all_when_closed().await;
    let stderr = err.all_when_closed().await;
    format!("{stdout}\n{stderr}")
}

/// Two chained WebSocket turns and a close whose reason is the prompt, a streamed POST, and a
/// wrong key on both paths
async fn serve_planted_traffic(ws_url: &str) {
    let creds = Credentials::bearer(CLIENT_KEY);
    let mut ws = WsClient::connect(ws_url, &creds).await.expect("upgrade");
    let create = json!({"type": "response.create", "model": "gpt-5", "input": PROMPT});
    ws.send_json(&create).await.unwrap();
    let first = ws.read_turn().await.unwrap();
    assert_eq!(
        first.last_type(),
        "response.completed",
        "{:?}",
        first.events
    );
    let previous = first.events.last().unwrap()["response"]["id"].clone();
    let mut chained = create.clone();
    chained["previous_response_id"] = previous;
    ws.send_json(&chained).await.unwrap();
    let second = ws.read_turn().await.unwrap();
    assert_eq!(
        second.last_type(),
        "response.completed",
        "{:?}",
        second.events
    );
    let mut stream = ws.into_stream();
    let reason = format!("bye: {PROMPT}");
    let _ = stream
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: reason.into(),
        })))
        .await;
    // The gateway answers the close and ends the socket.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {}

    let http_base = ws_url
        .replacen("ws://", "http://", 1)
        .trim_end_matches("/responses")
        .to_owned();
    let body = json!({"model": "gpt-5", "input": PROMPT, "stream": true});
    let mut post = SseClient::new()
        .post(&http_base, &creds, &body)
        .await
        .expect("POST");
    assert_eq!(post.status(), 200);
    while post.next_event().await.unwrap().is_some() {}

    let wrong = Credentials::bearer(WRONG_KEY);
    match WsClient::connect(ws_url, &wrong).await {
        Err(ConnectError::Rejected { status, .. }) => assert_eq!(status, 401),
        other => panic!("a wrong key upgraded: {:?}", other.map(|_| ())),
    }
    let refused = SseClient::new()
        .post(&http_base, &wrong, &body)
        .await
        .expect("POST");
    assert_eq!(refused.status(), 401);
}

/// An HTTP CONNECT proxy that tunnels only a request carrying `Proxy-Authorization` (answering
/// 407 otherwise) and keeps every value it was given
struct ConnectProxy {
    addr: SocketAddr,
    auth: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let auth = Arc::new(Mutex::new(Vec::new()));
        let seen = auth.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(tunnel(tcp, seen.clone()));
            }
        });
        Self { addr, auth, task }
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    let auth = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    let Some(auth) = auth else {
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .await;
        return;
    };
    seen.lock().unwrap().push(auth);
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
