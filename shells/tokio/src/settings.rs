//! TEMPORARY stand-in for `wsv2_core::file_config::GatewayConfig` (branch `fileconf`), with the
//! announced field names; deleted when that module is merged.
#![allow(missing_docs, unreachable_pub)]

use std::collections::BTreeMap;

use wsv2_core::Config;

/// A credential that never prints itself
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug)]
pub struct ClientKeyConfig {
    pub key: Secret,
    pub group: Option<String>,
    pub max_sockets: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct AccountConfig {
    pub id: u64,
    pub name: String,
    pub auth_type: String,
    pub token: Secret,
    pub base_url: String,
    pub concurrency: u32,
    pub priority: i32,
    pub model_map: BTreeMap<String, String>,
    pub proxy: Option<String>,
    pub force_http: bool,
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: String,
    pub redis_url: Option<String>,
    pub client_keys: Vec<ClientKeyConfig>,
    pub accounts: Vec<AccountConfig>,
    pub core: Config,
}

impl GatewayConfig {
    /// One client key `sk-gw-demo`, the mock as the only account
    pub fn demo(mock_ws_url: &str, mock_api_key: &str) -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            redis_url: None,
            client_keys: vec![ClientKeyConfig {
                key: Secret::new("sk-gw-demo"),
                group: None,
                max_sockets: None,
            }],
            accounts: vec![AccountConfig {
                id: 1,
                name: "mock".to_owned(),
                auth_type: "api_key".to_owned(),
                token: Secret::new(mock_api_key),
                base_url: mock_ws_url.to_owned(),
                concurrency: 64,
                priority: 0,
                model_map: BTreeMap::new(),
                proxy: None,
                force_http: false,
            }],
            core: Config::default(),
        }
    }
}
