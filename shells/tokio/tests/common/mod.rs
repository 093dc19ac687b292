//! Shared setup: the mock upstream and the gateway in-process, on real sockets.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use serde_json::{Value, json};
use wsv2_mock::{MockConfig, MockHandle, Record};
use wsv2_tests::client::{Credentials, WsClient};
use wsv2_core::file_config::GatewayConfig;
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
        let mock = wsv2_mock::start(MockConfig {
            api_key: UPSTREAM_KEY.into(),
            ..MockConfig::default()
        })
        .await
        .expect("mock starts");
        let mut config = GatewayConfig::demo(&mock.ws_url(), UPSTREAM_KEY).expect("demo config");
        tweak(&mut config);
        let gateway = start(config).await.expect("gateway starts");
        Self { mock, gateway }
    }

    /// Pool-fact settings: no warm conns, one conn per account
    pub async fn single_conn() -> Self {
        Self::new(|c| {
            c.core.pool.min_idle_per_account = 0;
            c.core.pool.max_idle_per_account = 1;
            c.core.pool.max_conns_per_account = 1;
        })
        .await
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

/// A `response.create` with an input text and optional metadata
pub fn create(input: &str, metadata: Value) -> Value {
    json!({"type": "response.create", "model": "gpt-5", "input": input, "metadata": metadata})
}

/// Waits (bounded) until `check` holds on the mock's records; polls the in-memory record, which
/// the mock fills as frames arrive
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
