//! The shipped example parses cleanly and documents every core key; a minimal file takes every
//! default; the demo configuration is what `wsv2-gateway demo` needs.

use std::net::SocketAddr;
use std::time::Duration;

use wsv2_core::Config;
use wsv2_core::file_config::{
    DEFAULT_BASE_URL, DEMO_CLIENT_KEY, GatewayConfig, ProxyKind, check_config_report,
};
use wsv2_core::resolver::{AuthType, Transport};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/gateway.toml"
));

fn example_env(name: &str) -> Option<String> {
    match name {
        "WSV2_EXAMPLE_CLIENT_KEY" => Some("sk-gw-team-a".to_owned()),
        "WSV2_EXAMPLE_OPENAI_KEY" => Some("sk-openai-main".to_owned()),
        "WSV2_EXAMPLE_OAUTH_TOKEN" => Some("oauth-token-2".to_owned()),
        _ => None,
    }
}

#[test]
fn the_example_parses_with_its_environment() {
    let config = GatewayConfig::from_toml_str(EXAMPLE, &example_env).expect("example is valid");
    assert_eq!(
        config.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert!(config.redis_url.is_none());
    assert_eq!(config.client_keys.len(), 2);
    assert_eq!(config.client_keys[0].key.expose(), "sk-gw-team-a");
    assert_eq!(
        config.client_keys[0].key_env.as_deref(),
        Some("WSV2_EXAMPLE_CLIENT_KEY")
    );
    assert_eq!(config.client_keys[0].group, "team-a");
    assert_eq!(config.client_keys[1].group, "default");

    let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["main", "codex-oauth", "rollback"]);
    let main = &config.accounts[0];
    assert_eq!(main.token.expose(), "sk-openai-main");
    assert_eq!(main.priority, 10);
    assert_eq!(
        main.model_map.upstream_of(b"gpt-5"),
        Some("gpt-5-2026-08-01")
    );
    let oauth = &config.accounts[1];
    assert_eq!(oauth.auth_type, AuthType::OAuth);
    assert_eq!(
        oauth.base_url.ws_url(),
        "wss://chatgpt.com/backend-api/codex/responses"
    );
    let proxy = oauth.proxy.as_ref().expect("proxy");
    assert_eq!(
        (proxy.kind(), proxy.host(), proxy.port()),
        (ProxyKind::Socks5, "127.0.0.1", 1080)
    );
    let rollback = &config.accounts[2];
    assert_eq!(
        rollback.auth_type,
        AuthType::ApiKey,
        "auth_type defaults to api_key"
    );
    assert_eq!(
        rollback.transport(&config.core.protocol).transport,
        Transport::Http
    );
    assert_eq!(
        config.core,
        Config::default(),
        "the example's core values are the defaults"
    );
}

#[test]
fn the_example_without_its_environment_names_each_missing_variable() {
    let issues = GatewayConfig::from_toml_str(EXAMPLE, &|_| None).unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "client_keys[0].key_env",
            "accounts[0].token_env",
            "accounts[1].token_env"
        ]
    );
}

#[test]
fn the_example_mentions_every_core_key() {
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    for (section, keys) in &defaults {
        assert!(
            EXAMPLE.contains(&format!("[{section}]")),
            "[{section}] missing"
        );
        for key in keys.as_table().unwrap().keys() {
            let mentioned = EXAMPLE
                .lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = ")));
            assert!(mentioned, "{section}.{key} is not in examples/gateway.toml");
        }
    }
}

#[test]
fn a_minimal_file_takes_every_default() {
    let text = "[[client_keys]]\nkey = \"k\"\n[[accounts]]\nid = 7\nname = \"a\"\ntoken = \"t\"\n";
    let config = GatewayConfig::from_toml_str(text, &|_| None).expect("valid");
    assert_eq!(
        config.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert!(config.redis_url.is_none());
    assert!(config.metrics);
    assert!(config.tls_ca_file.is_none());
    assert_eq!(config.core, Config::default());
    let key = &config.client_keys[0];
    assert_eq!(
        (key.group.as_str(), key.max_sockets, key.key_env.as_deref()),
        ("default", 64, None)
    );
    let a = &config.accounts[0];
    assert_eq!(a.id.0, 7);
    assert_eq!(a.auth_type, AuthType::ApiKey);
    assert_eq!(a.base_url.ws_url(), DEFAULT_BASE_URL);
    assert_eq!(a.base_url.http_url(), "https://api.openai.com/v1/responses");
    assert_eq!((a.concurrency, a.priority, a.force_http), (64, 0, false));
    assert!(a.proxy.is_none());
    assert_eq!(a.model_map.upstream_of(b"gpt-5"), None);
    assert_eq!(
        a.transport(&config.core.protocol).transport,
        Transport::WsV2
    );
}

#[test]
fn a_client_key_without_group_takes_the_configured_default_group() {
    let text = "[store]\ndefault_group = \"shared\"\n[[client_keys]]\nkey = \"k\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";
    let config = GatewayConfig::from_toml_str(text, &|_| None).expect("valid");
    assert_eq!(config.client_keys[0].group, "shared");
}

#[test]
fn core_sections_in_the_file_reach_the_core_config() {
    let text = "[[client_keys]]\nkey = \"k\"\n[[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n\
                [upstream]\nping_interval = \"250ms\"\n[pool]\nmin_idle_per_account = 0\n\
                max_conns_per_account = 1\nmax_idle_per_account = 1\n[protocol]\nforce_http = true\n";
    let config = GatewayConfig::from_toml_str(text, &|_| None).expect("valid");
    assert_eq!(
        config.core.upstream.ping_interval,
        Duration::from_millis(250)
    );
    assert_eq!(config.core.pool.min_idle_per_account, 0);
    assert_eq!(config.core.pool.max_conns_per_account, 1);
    assert_eq!(
        config.accounts[0]
            .transport(&config.core.protocol)
            .transport,
        Transport::Http,
        "protocol.force_http reaches the resolver"
    );
}

#[test]
fn the_demo_config_points_one_account_at_the_mock() {
    let config =
        GatewayConfig::demo("ws://127.0.0.1:45678/v1/responses", "sk-mock").expect("valid");
    assert_eq!(config.listen, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
    assert!(config.redis_url.is_none(), "in-memory state");
    assert_eq!(config.client_keys.len(), 1);
    assert_eq!(config.client_keys[0].key.expose(), DEMO_CLIENT_KEY);
    assert_eq!(config.accounts.len(), 1);
    let a = &config.accounts[0];
    assert_eq!(a.base_url.ws_url(), "ws://127.0.0.1:45678/v1/responses");
    assert_eq!((a.base_url.host(), a.base_url.port()), ("127.0.0.1", 45678));
    assert_eq!(a.token.expose(), "sk-mock");
    assert_eq!(
        a.transport(&config.core.protocol).transport,
        Transport::WsV2
    );
    let bad = GatewayConfig::demo("ftp://x", "k").unwrap_err();
    assert_eq!(bad[0].path, "accounts[0].base_url");
}

#[test]
fn check_config_accepts_the_example() {
    let report = check_config_report(EXAMPLE, &example_env);
    assert!(
        report.starts_with(
            "ok: 3 accounts (2 WebSocket, 1 HTTP by the resolver), 2 client keys, listen 127.0.0.1:8080, admin 127.0.0.1:9464, state: memory\n"
        ),
        "{report}"
    );
}

#[test]
fn the_docs_describe_every_gateway_key() {
    use wsv2_core::file_config::{ACCOUNT_KEYS, CLIENT_KEY_KEYS, TOP_LEVEL_KEYS};
    let docs = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/gateway-config.md"
    ));
    let rows: Vec<String> = TOP_LEVEL_KEYS
        .iter()
        .filter(|k| !matches!(**k, "client_keys" | "accounts"))
        .map(|k| format!("| `{k}` |"))
        .chain(
            CLIENT_KEY_KEYS
                .iter()
                .map(|k| format!("| `client_keys[].{k}` |")),
        )
        .chain(ACCOUNT_KEYS.iter().map(|k| format!("| `accounts[].{k}` |")))
        .collect();
    for row in rows {
        assert!(
            docs.contains(&row),
            "docs/gateway-config.md has no row {row}"
        );
    }
}
