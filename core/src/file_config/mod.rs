//! The gateway's configuration file: one TOML file for the process, read the same way by every
//! shell (tokio now, smol later), since reading it needs no runtime.
//!
//! The file holds the shell's own keys at the top level (`listen`, `redis_url`, `metrics`,
//! `tls_ca_file`, `[[client_keys]]`, `[[accounts]]`) and the core's sections (`[upstream]`,
//! `[session]`, `[pool]`, `[scheduler]`, `[store]`, `[protocol]`, `[ingress]`, see `docs/config.md`).
//! `docs/gateway-config.md` documents every key; `examples/gateway.toml` is a full example.
//!
//! ## Reading it
//!
//! ```text
//! text ──parse_table──▶ toml::Table ──apply_env_overrides(WSV2_*)──▶ Table ──from_table──▶ GatewayConfig
//! ```
//!
//! [`GatewayConfig::load`] runs all three steps; [`GatewayConfig::from_toml_str`] skips the
//! overrides. No setting is ever silently ignored: every unknown key, every bad value and every
//! broken cross-check (duplicate ids, a `token_env` naming an unset variable, …) comes back as
//! a [`ConfigIssue`] with its path (`accounts[1].tokn`, `pool.min_idle_per_account`), all of
//! them at once. [`check_config_report`] turns the outcome into the text
//! `wsv2-gateway check-config` prints.
//!
//! ```
//! use wsv2_core::file_config::GatewayConfig;
//!
//! let text = r#"
//! [[client_keys]]
//! key_env = "GW_KEY"
//!
//! [[accounts]]
//! id = 1
//! name = "main"
//! token = "sk-upstream"
//! base_url = "https://api.openai.com/v1"
//!
//! [pool]
//! min_idle_per_account = 0
//! "#;
//! let env = |name: &str| (name == "GW_KEY").then(|| "sk-gw-1".to_owned());
//! let config = GatewayConfig::from_toml_str(text, &env).expect("valid");
//! assert_eq!(config.accounts[0].base_url.ws_url(), "wss://api.openai.com/v1/responses");
//! assert_eq!(config.client_keys[0].key.expose(), "sk-gw-1");
//! assert_eq!(format!("{:?}", config.client_keys[0].key), "***");
//!
//! let issues = GatewayConfig::from_toml_str("[pool]\nmin_idel = 0\n", &env).unwrap_err();
//! assert!(issues.iter().any(|i| i.path == "pool.min_idel"));
//! ```

mod authority;
mod core_sections;
mod env;
mod proxy_url;
mod reader;
mod redis_url;
mod report;
mod secret;
mod shell_keys;
mod traces;
mod upstream_url;

use std::net::SocketAddr;
use std::sync::Arc;

use toml::{Table, Value};

pub use env::{ENV_PREFIX, SHELL_ENV_VARS, apply_env_overrides};
pub use proxy_url::{ProxyHandshake, ProxyKind, ProxyUrl};
pub use redis_url::{
    REDIS_CLUSTER_SCHEME, REDIS_SENTINEL_SCHEME, SentinelTarget, redis_cluster_seeds,
    redis_sentinel,
};
pub use report::{check_config_report, format_report};
pub use secret::Secret;
pub use shell_keys::{ACCOUNT_KEYS, CLIENT_KEY_KEYS};
pub use traces::{MAX_RESOURCE_ATTRIBUTES, TraceExport, resolve_trace_export};
pub use upstream_url::{DEFAULT_BASE_URL, UpstreamUrl};

use crate::resolver::{AccountProtocol, AuthType, ProtocolDecision, resolve};
use crate::turn::ModelMap;
use crate::{AccountId, Config};
use reader::{Fields, Issues, push, unknown_keys};

/// What reading a configuration came to: the configuration or every issue, and the warnings
/// (`WSV2_*` variables that set nothing), which never make it invalid. `serve` and
/// `check-config` print the same [`report`](Self::report) and exit with the same
/// [`exit_code`](Self::exit_code).
#[derive(Clone, Debug)]
pub struct ConfigVerdict {
    /// The configuration, or every issue that makes it invalid
    pub outcome: Result<GatewayConfig, Vec<ConfigIssue>>,
    /// Problems that change nothing: each is reported and ignored
    pub warnings: Vec<ConfigIssue>,
}

/// The exit code of `serve` and `check-config` for an invalid or unreadable configuration
pub const EXIT_INVALID_CONFIG: u8 = 2;

impl ConfigVerdict {
    /// Whether the configuration can be served (warnings or not)
    pub fn is_valid(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The process exit code this verdict means: 0 valid, [`EXIT_INVALID_CONFIG`] invalid
    pub fn exit_code(&self) -> u8 {
        if self.is_valid() {
            0
        } else {
            EXIT_INVALID_CONFIG
        }
    }

    /// One `warning: VARIABLE: message (ignored)` line per warning, then
    /// [`format_report`] of the outcome
    pub fn report(&self) -> String {
        let mut out = String::new();
        for warning in &self.warnings {
            out.push_str(&format!(
                "warning: {}: {} (ignored)\n",
                warning.path, warning.message
            ));
        }
        out.push_str(&format_report(&self.outcome));
        out
    }
}

/// One problem with the configuration: the dotted path of the key (`accounts[1].tokn`, or the
/// name of a `WSV2_*` variable) and what is wrong. The same type the core's
/// [`Config::validate`] returns.
pub type ConfigIssue = crate::config::ConfigError;

/// `listen` when the file names none
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `admin_listen` when the file names none: loopback only
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";
/// `client_keys[].max_sockets` when the entry names none
pub const DEFAULT_MAX_SOCKETS: u32 = 64;
/// `accounts[].concurrency` when the entry names none
pub const DEFAULT_CONCURRENCY: u32 = 64;
/// `accounts[].auth_type` when the entry names none
pub const DEFAULT_AUTH_TYPE: &str = "api_key";
/// The client key of [`GatewayConfig::demo`]
pub const DEMO_CLIENT_KEY: &str = "sk-gw-demo";

/// Every top-level key of the gateway's own (the core's sections come on top)
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "metrics",
    "redis_url",
    "tls_ca_file",
    "client_keys",
    "accounts",
];

/// The top-level keys that hold one value, each with whether its value is text (for
/// environment overrides)
pub(crate) const TOP_LEVEL_SCALARS: &[(&str, bool)] = &[
    ("listen", true),
    ("admin_listen", true),
    ("metrics", false),
    ("redis_url", true),
    ("tls_ca_file", true),
];

/// The whole gateway configuration: the shell's keys plus the core's [`Config`]
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// Address the gateway listens on (default `127.0.0.1:8080`)
    pub listen: SocketAddr,
    /// Address of the admin listener (`/metrics`, per-account `/readyz`); default
    /// `127.0.0.1:9464`, `None` when the file says `"off"`
    pub admin_listen: Option<SocketAddr>,
    /// Redis for sticky bindings shared across gateway instances; `None` keeps state in memory.
    /// A [`Secret`]: the URL may carry a password.
    pub redis_url: Option<Secret>,
    /// Serve `GET /metrics` (Prometheus text) on the listen address (default `true`)
    pub metrics: bool,
    /// PEM file of extra root certificates trusted for upstream TLS, besides the built-in roots
    pub tls_ca_file: Option<String>,
    /// The keys clients authenticate with
    pub client_keys: Vec<ClientKey>,
    /// The upstream accounts, in file order
    pub accounts: Vec<AccountConfig>,
    /// The core's sections: pools, timeouts, limits
    pub core: Config,
    /// Where spans go (`[telemetry]` and the `OTEL_*` variables); `None`: no spans
    pub traces: Option<TraceExport>,
}

/// A key clients present (`Authorization: Bearer …`) to use the gateway
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKey {
    /// The key
    pub key: Secret,
    /// The environment variable it was read from, if any (for messages; not secret)
    pub key_env: Option<String>,
    /// What logs and metric labels call the key (never the key itself): `name` in the file,
    /// else `key-N` for the N-th entry
    pub name: String,
    /// Isolation and stickiness scope: a response created under one group is never continued
    /// by a key of another, and session bindings are per group (default `store.default_group`)
    pub group: String,
    /// Open WebSocket sockets allowed at once for this key; the next upgrade gets 429 (default 64)
    pub max_sockets: u32,
}

/// One upstream account
#[derive(Clone, Debug, PartialEq)]
pub struct AccountConfig {
    /// Stable numeric id (bindings in the store refer to it)
    pub id: AccountId,
    /// Unique name, for logs and metric labels
    pub name: String,
    /// How the account authenticates; `api_key` and `oauth` may use WebSocket mode, anything
    /// else resolves to HTTP (default `api_key`)
    pub auth_type: AuthType,
    /// The upstream credential
    pub token: Secret,
    /// The environment variable the token was read from, if any (not secret)
    pub token_env: Option<String>,
    /// The upstream endpoint, normalized (default `wss://api.openai.com/v1/responses`)
    pub base_url: UpstreamUrl,
    /// Turns in flight at once on this account, over all its conns (default 64)
    pub concurrency: u32,
    /// Higher is chosen first while it has a free slot (default 0)
    pub priority: i32,
    /// Client model name → upstream model name
    pub model_map: Arc<ModelMap>,
    /// Outbound proxy for this account's upstream connections
    pub proxy: Option<ProxyUrl>,
    /// This account's traffic goes over HTTP (its rollback switch)
    pub force_http: bool,
}

impl GatewayConfig {
    /// Upstream connections the accounts may hold at once: Σ min(`concurrency`,
    /// `pool.max_conns_per_account`) (a forwarded HTTP turn holds one of its account's slots)
    pub fn upstream_conn_cap(&self) -> usize {
        let per_account = self.core.pool.max_conns_per_account;
        self.accounts
            .iter()
            .map(|a| (a.concurrency as usize).min(per_account))
            .sum()
    }

    /// The client model names the configuration knows (every account's `model_map` keys):
    /// each is a `model` metric label of its own
    pub fn configured_models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = self
            .accounts
            .iter()
            .flat_map(|a| a.model_map.client_models())
            .collect();
        models.sort_unstable();
        models.dedup();
        models
    }
}

impl AccountConfig {
    /// The protocol-relevant part, for the resolver
    pub fn protocol(&self) -> AccountProtocol {
        AccountProtocol {
            auth_type: self.auth_type.clone(),
            force_http: self.force_http,
        }
    }

    /// The transport the resolver picks for this account under `protocol`
    pub fn transport(&self, protocol: &crate::config::ProtocolConfig) -> ProtocolDecision {
        resolve(Some(&self.protocol()), protocol)
    }
}

/// Parses TOML text into a table; a syntax error is one issue whose path is its line and column
/// (the message never quotes the line: it may hold a credential)
pub fn parse_table(text: &str) -> Result<Table, Vec<ConfigIssue>> {
    text.parse::<Table>().map_err(|e| {
        let path = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}")
            }
            None => "file".to_owned(),
        };
        vec![ConfigIssue {
            path,
            message: format!("TOML syntax error: {}", e.message().trim_end()),
        }]
    })
}

impl GatewayConfig {
    /// Reads a file's text; `env` resolves `key_env` / `token_env` names. `WSV2_*` overrides
    /// are not applied (see [`load`](Self::load)).
    pub fn from_toml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        Self::from_table(&parse_table(text)?, env)
    }

    /// Reads a file's text with `WSV2_*` overrides from `vars` (typically the process
    /// environment), which also resolve `key_env` / `token_env`; the warnings of
    /// [`check`](Self::check) are dropped. `std::env::vars()` panics on a non-UTF-8 variable; a
    /// shell that cannot rule those out passes `std::env::vars_os()` filtered to the UTF-8 ones.
    pub fn load(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        Self::check(text, vars).outcome
    }

    /// The one verdict `serve` and `check-config` both act on: the configuration `text` makes
    /// with `WSV2_*` overrides from `vars` (which also resolve `key_env` / `token_env`), or
    /// every issue, plus the warnings about `WSV2_*` variables that set nothing
    pub fn check(text: &str, vars: impl IntoIterator<Item = (String, String)>) -> ConfigVerdict {
        let vars: std::collections::BTreeMap<String, String> = vars.into_iter().collect();
        let mut table = match parse_table(text) {
            Ok(table) => table,
            Err(issues) => {
                return ConfigVerdict {
                    outcome: Err(issues),
                    warnings: Vec::new(),
                };
            }
        };
        let warnings = apply_env_overrides(&mut table, vars.clone().into_iter());
        let lookup = |name: &str| vars.get(name).cloned();
        ConfigVerdict {
            outcome: Self::from_table(&table, &lookup),
            warnings,
        }
    }

    /// Reads a parsed (and possibly overridden) table; every problem is reported, in the order
    /// top-level keys, core sections, client keys, accounts
    pub fn from_table(
        root: &Table,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Issues::new();
        let mut known: Vec<&str> = TOP_LEVEL_KEYS.to_vec();
        let schema = core_sections::schema();
        known.extend(core_sections::section_names(&schema));
        unknown_keys(root, "", &known, &mut issues);

        let top = Fields::new(root, "");
        let listen = match top.string("listen", &mut issues) {
            None => Some(default_address(DEFAULT_LISTEN)),
            Some(text) => text
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| {
                    push(
                        &mut issues,
                        "listen",
                        "expected an IP address and port such as 127.0.0.1:8080 (host names are not resolved)",
                    );
                })
                .ok(),
        };
        let admin_listen = match top.string("admin_listen", &mut issues).map(str::trim) {
            None => Some(Some(default_address(DEFAULT_ADMIN_LISTEN))),
            Some("off") => Some(None),
            Some(text) => text
                .parse::<SocketAddr>()
                .map(Some)
                .map_err(|_| {
                    push(
                        &mut issues,
                        "admin_listen",
                        "expected an IP address and port such as 127.0.0.1:9464, or \"off\"",
                    );
                })
                .ok(),
        };
        let redis_url = top
            .non_empty_string("redis_url", &mut issues)
            .and_then(|url| {
                let topology = redis_cluster_seeds(url.trim())
                    .map(|seeds| seeds.map(drop))
                    .or_else(|| redis_sentinel(url.trim()).map(|target| target.map(drop)));
                let plain = ["redis://", "rediss://", "redis+unix://", "unix://"]
                    .iter()
                    .any(|scheme| url.to_ascii_lowercase().starts_with(scheme));
                let verdict = topology.unwrap_or(if plain {
                    Ok(())
                } else {
                    Err("expected a redis://, rediss://, redis+unix://, unix://, \
                         redis+cluster:// or redis+sentinel:// URL")
                });
                verdict
                    .map(|()| Secret::new(url.trim()))
                    .map_err(|why| push(&mut issues, "redis_url", why))
                    .ok()
            });
        let metrics = top.bool("metrics", &mut issues).unwrap_or(true);
        let tls_ca_file = top
            .non_empty_string("tls_ca_file", &mut issues)
            .map(str::to_owned);

        let core = core_sections::read(root, &mut issues);
        let client_keys =
            shell_keys::read_client_keys(root, &core.store.default_group, env, &mut issues);
        let accounts = shell_keys::read_accounts(root, env, &mut issues);
        let traces = resolve_trace_export(&core.telemetry, env).unwrap_or_else(|errors| {
            issues.extend(errors);
            None
        });

        match (listen, admin_listen) {
            (Some(listen), Some(admin_listen)) if issues.is_empty() => Ok(Self {
                listen,
                admin_listen,
                redis_url,
                metrics,
                tls_ca_file,
                client_keys,
                accounts,
                core,
                traces,
            }),
            _ => Err(issues),
        }
    }

    /// The embedded configuration of `wsv2-gateway demo`: one `api_key` account at the local
    /// mock (`mock_ws_url`, any of the URL forms `base_url` accepts), the client key
    /// [`DEMO_CLIENT_KEY`], in-memory state, listening on `127.0.0.1:0` (a free port; the admin
    /// listener too), core defaults. Built through [`from_table`](Self::from_table), so it obeys
    /// every rule a file does.
    pub fn demo(mock_ws_url: &str, mock_api_key: &str) -> Result<Self, Vec<ConfigIssue>> {
        let mut account = Table::new();
        account.insert("id".into(), Value::Integer(1));
        account.insert("name".into(), Value::String("mock".into()));
        account.insert("auth_type".into(), Value::String("api_key".into()));
        account.insert("token".into(), Value::String(mock_api_key.into()));
        account.insert("base_url".into(), Value::String(mock_ws_url.into()));
        let mut client_key = Table::new();
        client_key.insert("key".into(), Value::String(DEMO_CLIENT_KEY.into()));
        let mut root = Table::new();
        root.insert("listen".into(), Value::String("127.0.0.1:0".into()));
        root.insert("admin_listen".into(), Value::String("127.0.0.1:0".into()));
        root.insert(
            "client_keys".into(),
            Value::Array(vec![Value::Table(client_key)]),
        );
        root.insert("accounts".into(), Value::Array(vec![Value::Table(account)]));
        Self::from_table(&root, &|_| None)
    }
}

/// [`DEFAULT_LISTEN`] or [`DEFAULT_ADMIN_LISTEN`], parsed
fn default_address(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| unreachable!("the default addresses parse"))
}
