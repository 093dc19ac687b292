//! The text `wsv2-gateway check-config` prints, and the rule that credentials never reach it or
//! any `Debug` output.

use wsv2_core::file_config::{GatewayConfig, Secret, check_config_report};

use crate::support::assert_trace as snapshot;

const GOOD: &str = r#"
listen = "0.0.0.0:8443"
redis_url = "redis://:redis-password@10.0.0.5:6379/0"

[[client_keys]]
key = "sk-gw-SECRET-CLIENT"

[[accounts]]
id = 1
name = "main"
token = "sk-SECRET-UPSTREAM-1"
base_url = "https://api.openai.com/v1"

[[accounts]]
id = 2
name = "oauth-proxied"
auth_type = "oauth"
token_env = "OAUTH_TOKEN"
proxy = "http://proxyuser:SECRET-PROXY-PASS@10.0.0.9:3128"

[[accounts]]
id = 3
name = "partner"
auth_type = "bearer"
token = "SECRET-PARTNER"
base_url = "http://partner.internal:8080/v1?key=SECRET-IN-QUERY"
"#;

const SECRETS: &[&str] = &[
    "SECRET-CLIENT",
    "SECRET-UPSTREAM-1",
    "SECRET-OAUTH",
    "SECRET-PROXY-PASS",
    "SECRET-PARTNER",
    "SECRET-IN-QUERY",
    "redis-password",
];

fn env(name: &str) -> Option<String> {
    (name == "OAUTH_TOKEN").then(|| "SECRET-OAUTH".to_owned())
}

#[test]
fn file_config_report_ok_counts_accounts_by_resolver_transport() {
    let report = check_config_report(GOOD, &env);
    assert!(
        report.starts_with(
            "ok: 3 accounts (2 WebSocket, 1 HTTP by the resolver), 1 client key, listen 0.0.0.0:8443, admin 127.0.0.1:9464, state: redis\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("HTTP (unknown_auth_type)"),
        "the bearer account resolves to HTTP"
    );
    for secret in SECRETS {
        assert!(
            !report.contains(secret),
            "{secret} leaked into the report:\n{report}"
        );
    }
    snapshot("file_config_report_ok", &report);
}

#[test]
fn file_config_report_lists_every_issue_one_per_line() {
    let bad = r#"
listen = "localhost"
colour = "blue"

[[client_keys]]
key_env = "MISSING_KEY"

[[accounts]]
id = 1
name = "main"
tokn = "sk-SECRET-TYPO"
concurrency = -2
base_url = "ftp://example.com"
proxy = "socks5://user:SECRET-PROXY-PASS@127.0.0.1"

[[accounts]]
id = 1
name = "main"
token = "t"

[pool]
min_idel = 0
session_acquire_wait = "2"

[upstream]
tls_handshake_timeout = "20s"
"#;
    let report = check_config_report(bad, &|_| None);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 13, "{report}");
    assert!(
        lines.iter().all(|l| l.contains(": ")),
        "every line is `path: message`"
    );
    assert!(lines.contains(&"accounts[0].tokn: unknown key (did you mean `token`?)"));
    assert!(lines.contains(&"pool.min_idel: unknown key (did you mean `min_idle_per_account`?)"));
    assert!(
        lines.contains(&"client_keys[0].key_env: environment variable `MISSING_KEY` is not set")
    );
    assert!(!report.contains("SECRET"), "{report}");
    assert!(!report.starts_with("ok"));
    snapshot("file_config_report_issues", &report);
}

#[test]
fn secrets_never_appear_in_debug_output_of_the_whole_config() {
    let config = GatewayConfig::from_toml_str(GOOD, &env).expect("valid");
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    for secret in SECRETS {
        assert!(
            !debug.contains(secret),
            "{secret} leaked into Debug:\n{debug}"
        );
        assert!(!pretty.contains(secret), "{secret} leaked into {{:#?}}");
    }
    assert!(debug.contains("***"), "the secrets are shown redacted");
    // The values are still there for the wire.
    assert_eq!(config.accounts[1].token.expose(), "SECRET-OAUTH");
    assert_eq!(
        config.redis_url.as_ref().map(Secret::expose),
        Some("redis://:redis-password@10.0.0.5:6379/0")
    );
}

#[test]
fn secret_display_and_debug_are_redacted() {
    let secret = Secret::new("sk-live-123");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.expose(), "sk-live-123");
}

#[test]
fn check_config_names_the_trace_export_and_the_otel_variables_without_their_secrets() {
    const FILE: &str = r#"
[[client_keys]]
key = "sk-gw-SECRET-CLIENT"

[[accounts]]
id = 1
name = "main"
token = "sk-SECRET-UPSTREAM-1"

[telemetry]
traces_endpoint = "http://127.0.0.1:4318/v1/traces"
export_interval = "1s"
"#;
    let env = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("authorization=Bearer%20SECRET-COLLECTOR".to_owned()),
        "OTEL_SERVICE_NAME" => Some("edge".to_owned()),
        _ => None,
    };
    let report = check_config_report(FILE, &env);
    assert!(
        report.contains(
            "  traces: OTLP/HTTP to http://127.0.0.1:4318/v1/traces, service \"edge\", 1 header(s)\n"
        ),
        "{report}"
    );
    assert!(!report.contains("SECRET"), "{report}");
    let bad = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => Some("SECRET-COLLECTOR".to_owned()),
        _ => None,
    };
    let report = check_config_report(FILE, &bad);
    assert!(
        report.starts_with("OTEL_EXPORTER_OTLP_TRACES_HEADERS: expected"),
        "{report}"
    );
    assert!(!report.contains("SECRET"), "{report}");
    let off = check_config_report(
        FILE.replace("http://127.0.0.1:4318/v1/traces", "").as_str(),
        &env,
    );
    assert!(!off.contains("traces:"), "{off}");
}
