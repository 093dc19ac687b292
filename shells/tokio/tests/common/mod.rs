//! Shared setup: the mock upstream and the gateway in-process, on real sockets.
#![allow(dead_code, unreachable_pub)]

use serde_json::{Value, json};
use wsv2_core::file_config::GatewayConfig;
use wsv2_mock::{MockConfig, MockHandle, Record};
use wsv2_tests::client::{Credentials, WsClient};
use wsv2_tokio::{GatewayHandle, start};

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
    pub async fn new(tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::with_mock(|_| {}, tweak).await
    }

    /// Both configurations tweaked
    pub async fn with_mock(
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
        let gateway = start(config).await.expect("gateway starts");
        Self { mock, gateway }
    }

    /// Pool-fact settings: no warm conns, one conn per account
    pub async fn single_conn() -> Self {
        Self::new(single_conn).await
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
/// One global subscriber (DEBUG) is installed per test binary; it hands each line to the capture
/// of the thread that emitted it. A `#[tokio::test]` runtime runs every task of its test on the
/// test's own thread, so each test sees exactly its own gateway's lines. (A thread-local default
/// subscriber per test is not enough: tracing caches callsite interest process-wide, and a
/// callsite first hit on a thread without a subscriber stays silent.)
pub struct LogCapture {
    sink: CaptureSink,
    written: tokio::sync::watch::Receiver<u64>,
}

#[derive(Clone)]
struct CaptureSink {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    written: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CaptureSink>> = const { std::cell::RefCell::new(None) };
}

/// Writes one formatted event to the current thread's capture, if any
struct ThreadRouter;

impl std::io::Write for ThreadRouter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(sink) = c.borrow().as_ref() {
                let text = String::from_utf8_lossy(buf);
                sink.lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(text.lines().map(str::to_owned));
                sink.written.send_modify(|n| *n += 1);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Captures DEBUG and above emitted on this thread until the capture is dropped
    pub fn start() -> Self {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(|| ThreadRouter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
        });
        let (tx, written) = tokio::sync::watch::channel(0);
        let sink = CaptureSink {
            lines: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
            written: std::sync::Arc::new(tx),
        };
        CAPTURE.with(|c| *c.borrow_mut() = Some(sink.clone()));
        Self { sink, written }
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

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}
