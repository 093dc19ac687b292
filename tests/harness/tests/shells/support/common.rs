//! Shared setup: the mock upstream and a gateway of one shell in-process, on real sockets.

use serde_json::{Value, json};
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{CloseSide, MockConfig, MockHandle, Record};
use wsv2_tests::client::{Credentials, WsClient};

use super::{GatewayHandle, Shell};

/// The upstream account's key at the mock
pub const UPSTREAM_KEY: &str = "sk-upstream-test";
/// The client key the gateway accepts
pub const CLIENT_KEY: &str = "sk-gw-demo";

/// A mock and a gateway whose only account is that mock
pub struct Setup {
    pub mock: MockHandle,
    pub gateway: GatewayHandle,
}

impl Setup {
    /// Defaults, with `tweak` applied to the gateway configuration
    pub async fn new(shell: Shell, tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::with_mock(shell, |_| {}, tweak).await
    }

    /// Both configurations tweaked
    pub async fn with_mock(
        shell: Shell,
        mock_tweak: impl FnOnce(&mut MockConfig),
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        let mut mock_config = MockConfig {
            api_key: UPSTREAM_KEY.into(),
            ..MockConfig::default()
        };
        mock_tweak(&mut mock_config);
        let mock = wsv2_mock::start(mock_config).await.expect("mock starts");
        let mut config = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("demo config");
        tweak(&mut config);
        let gateway = shell.start(config).await.expect("gateway starts");
        Self { mock, gateway }
    }

    /// Pool-fact settings: no warm conns, one conn per account
    pub async fn single_conn(shell: Shell) -> Self {
        Self::new(shell, single_conn).await
    }

    pub async fn client(&self) -> WsClient {
        self.client_with(Credentials::bearer(CLIENT_KEY)).await
    }

    pub async fn client_with(&self, creds: Credentials) -> WsClient {
        WsClient::connect(&self.gateway.ws_url(), &creds)
            .await
            .expect("gateway upgrade")
    }

    /// Upgrades the mock accepted (one per upstream conn)
    pub fn handshakes(&self) -> Vec<u64> {
        self.mock
            .records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Handshake { conn, .. } => Some(conn),
                _ => None,
            })
            .collect()
    }

    /// `(mock conn, frame)` of every frame the mock received
    pub fn frames(&self) -> Vec<(u64, Value)> {
        self.mock
            .records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Frame { conn, frame } => Some((conn, frame)),
                _ => None,
            })
            .collect()
    }
}

/// Pool-fact settings: no warm conns, one conn per account, so a later session can only reuse
/// an earlier conn or be refused
pub fn single_conn(c: &mut GatewayConfig) {
    c.core.pool.min_idle_per_account = 0;
    c.core.pool.max_idle_per_account = 1;
    c.core.pool.max_conns_per_account = 1;
}

/// A frame the session refuses without upstream: once its `error` arrives, the session task
/// has finished every earlier turn (merges and control reports included), so a scrape after
/// it sees them all
pub async fn fence(client: &mut WsClient) {
    client.send_text("{".to_owned()).await.unwrap();
    let event = client
        .recv_event(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(event["type"], "error", "{event}");
}

/// A `response.create` with an input text and optional metadata
pub fn create(input: &str, metadata: Value) -> Value {
    json!({"type": "response.create", "model": "gpt-5", "input": input, "metadata": metadata})
}

impl Setup {
    /// Mock conn ids that carried a terminal or `error` event of `response_id`
    pub fn sent_on(&self, response_id: &str) -> Vec<(u64, String)> {
        self.mock
            .records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Sent {
                    conn,
                    response_id: Some(id),
                    r#type,
                    ..
                } if id == response_id => Some((conn, r#type)),
                _ => None,
            })
            .collect()
    }
}

impl wsv2_tests::real_clients::ClientTarget for Setup {
    fn kind(&self) -> wsv2_tests::conformance::TargetKind {
        wsv2_tests::conformance::TargetKind::Gateway
    }
    fn base_url(&self) -> String {
        format!("http://{}/v1", self.gateway.addr)
    }
    fn api_key(&self) -> String {
        CLIENT_KEY.to_owned()
    }
    fn upstream(&self) -> &MockHandle {
        &self.mock
    }
    fn upstream_key(&self) -> String {
        UPSTREAM_KEY.to_owned()
    }
}

/// The gateway's tracing output, captured for one test.
///
/// A DEBUG subscriber installed as the test thread's default (see `support::capture`): every
/// task of a `#[tokio::test]` (current-thread) runtime, and so every task of a [`Shell::Tokio`]
/// gateway, logs to it, and each test sees exactly its own gateway's lines. A shell whose tasks
/// run on threads of its own must carry the caller's subscriber to its tasks
/// (`tracing::instrument::WithSubscriber`).
pub struct LogCapture {
    sink: CaptureSink,
    written: tokio::sync::watch::Receiver<u64>,
    _installed: tracing::subscriber::DefaultGuard,
}

/// Where the capture's subscriber writes: one formatted event per write
#[derive(Clone)]
struct CaptureSink {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    written: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::io::Write for CaptureSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(text.lines().map(str::to_owned));
        self.written.send_modify(|n| *n += 1);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CaptureSink {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogCapture {
    /// Captures DEBUG and above logged under this thread's default until the capture is dropped
    pub fn start() -> Self {
        let (tx, written) = tokio::sync::watch::channel(0);
        let sink = CaptureSink {
            lines: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
            written: std::sync::Arc::new(tx),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(sink.clone())
            .finish();
        let installed = super::capture::install(subscriber);
        Self {
            sink,
            written,
            _installed: installed,
        }
    }

    /// Every line so far
    pub fn lines(&self) -> Vec<String> {
        self.sink
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (woken per written line, no polling) for a line that satisfies `found`
    pub async fn wait_for(
        &mut self,
        timeout: std::time::Duration,
        mut found: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let search = async {
            loop {
                self.written.borrow_and_update();
                if let Some(hit) = self.lines().into_iter().find(|l| found(l)) {
                    return hit;
                }
                if self.written.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok()
    }
}

/// Gateway settings under which only a cancellation can end a blocked upstream write: one conn
/// per account and no timer (write, read, ping, drain) that could fire during a test
pub fn only_cancellation_ends_writes(c: &mut GatewayConfig) {
    const NEVER: std::time::Duration = std::time::Duration::from_secs(600);
    single_conn(c);
    c.core.upstream.write_timeout = NEVER;
    c.core.upstream.read_timeout = NEVER;
    c.core.upstream.ping_interval = NEVER;
    c.core.upstream.pong_timeout = NEVER;
    c.core.session.drain_timeout = NEVER;
}

/// Waits for the gateway's log line of an upstream write of more than `bytes` bytes
pub async fn wait_for_upstream_write(logs: &mut LogCapture, bytes: usize) {
    let started = logs
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l.contains("upstream write")
                && l.split("bytes=")
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|b| b > bytes)
        })
        .await;
    assert!(
        started.is_some(),
        "an upstream write of more than {bytes} bytes started:\n{}",
        logs.lines().join("\n")
    );
}

impl Setup {
    /// After [`MockHandle::resume_reading`]: the mock finds conn 1 ended by the gateway without
    /// a close frame (the framing could not be trusted after a half-written frame), and only
    /// one frame on it; returns the records up to then
    pub async fn assert_conn_1_abandoned_mid_frame(&self) -> Vec<Record> {
        let closed = self
            .mock
            .wait_for_record(std::time::Duration::from_secs(10), |r| {
                matches!(r, Record::Close { conn: 1, .. })
            })
            .await
            .expect("the mock saw conn 1 end");
        assert_eq!(
            closed,
            Record::Close {
                conn: 1,
                by: CloseSide::Client,
                code: None
            }
        );
        let conn1_frames = self.frames().iter().filter(|(c, _)| *c == 1).count();
        assert_eq!(conn1_frames, 1, "the abandoned create never arrived whole");
        self.mock.records()
    }
}
