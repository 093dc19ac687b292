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
