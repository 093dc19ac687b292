//! Credentials from the environment (`key_env` / `token_env`) and `WSV2_*` overrides of file
//! values, all through injected variables (no test touches the process environment).

use std::time::Duration;

use wsv2_core::file_config::{ConfigIssue, GatewayConfig, apply_env_overrides, parse_table};

const BASE: &str =
    "[[client_keys]]\nkey = \"k\"\n\n[[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, pairs: &[(&str, &str)]) -> Result<GatewayConfig, Vec<ConfigIssue>> {
    GatewayConfig::load(text, vars(pairs))
}

#[test]
fn key_env_and_token_env_read_through_the_injected_lookup() {
    let text = "[[client_keys]]\nkey_env = \"GW_KEY\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken_env = \"UP_TOKEN\"\n";
    let lookup = |name: &str| match name {
        "GW_KEY" => Some("sk-gw-from-env".to_owned()),
        "UP_TOKEN" => Some("sk-up-from-env\n".to_owned()),
        _ => None,
    };
    let config = GatewayConfig::from_toml_str(text, &lookup).expect("valid");
    assert_eq!(config.client_keys[0].key.expose(), "sk-gw-from-env");
    assert_eq!(config.client_keys[0].key_env.as_deref(), Some("GW_KEY"));
    assert_eq!(
        config.accounts[0].token.expose(),
        "sk-up-from-env",
        "the newline is dropped"
    );
    assert_eq!(config.accounts[0].token_env.as_deref(), Some("UP_TOKEN"));
}

#[test]
fn an_empty_variable_is_as_bad_as_an_unset_one() {
    let text = "[[client_keys]]\nkey_env = \"GW_KEY\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken_env = \"UP_TOKEN\"\n";
    let issues = GatewayConfig::from_toml_str(text, &|_| Some("  ".to_owned())).unwrap_err();
    let messages: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "client_keys[0].key_env: environment variable `GW_KEY` is empty",
            "accounts[0].token_env: environment variable `UP_TOKEN` is empty",
        ]
    );
}

#[test]
fn load_resolves_key_env_from_the_same_variables() {
    let text = "[[client_keys]]\nkey_env = \"GW_KEY\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";
    let config = load(text, &[("GW_KEY", "sk-1")]).expect("valid");
    assert_eq!(config.client_keys[0].key.expose(), "sk-1");
}

#[test]
fn top_level_overrides_replace_file_values() {
    let text = format!("listen = \"127.0.0.1:1\"\nmetrics = true\n{BASE}");
    let config = load(
        &text,
        &[
            ("WSV2_LISTEN", "0.0.0.0:9000"),
            ("WSV2_REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("WSV2_METRICS", "false"),
            ("WSV2_TLS_CA_FILE", "/tmp/ca.pem"),
            ("UNRELATED", "ignored"),
        ],
    )
    .expect("valid");
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.redis_url.as_ref().map(|s| s.expose()),
        Some("redis://127.0.0.1:6379/0")
    );
    assert!(!config.metrics);
    assert_eq!(config.tls_ca_file.as_deref(), Some("/tmp/ca.pem"));
}

#[test]
fn section_overrides_parse_numbers_booleans_and_millisecond_durations() {
    let text = format!("{BASE}[pool]\nmin_idle_per_account = 2\n");
    let config = load(
        &text,
        &[
            ("WSV2_POOL__MIN_IDLE_PER_ACCOUNT", "0"),
            ("WSV2_POOL__MAX_CONNS_PER_ACCOUNT", "1"),
            ("WSV2_POOL__MAX_IDLE_PER_ACCOUNT", "1"),
            ("WSV2_UPSTREAM__PING_INTERVAL", "250ms"),
            ("WSV2_SESSION__SLOT_WAIT_TIMEOUT", "1500ms"),
            ("WSV2_PROTOCOL__FORCE_HTTP", "true"),
            ("WSV2_STORE__DEFAULT_GROUP", "123"),
        ],
    )
    .expect("valid");
    assert_eq!(
        config.core.pool.min_idle_per_account, 0,
        "the variable beats the file"
    );
    assert_eq!(config.core.pool.max_conns_per_account, 1);
    assert_eq!(
        config.core.upstream.ping_interval,
        Duration::from_millis(250)
    );
    assert_eq!(
        config.core.session.slot_wait_timeout,
        Duration::from_millis(1500)
    );
    assert!(config.core.protocol.force_http);
    assert_eq!(
        config.core.store.default_group, "123",
        "text keys take the value verbatim"
    );
    assert_eq!(
        config.client_keys[0].group, "123",
        "and the default group reaches the keys"
    );
}

#[test]
fn an_empty_override_removes_the_key() {
    let text = format!("redis_url = \"redis://db:6379\"\n{BASE}[pool]\nmin_idle_per_account = 0\n");
    let config = load(
        &text,
        &[
            ("WSV2_REDIS_URL", ""),
            ("WSV2_POOL__MIN_IDLE_PER_ACCOUNT", ""),
        ],
    )
    .expect("valid");
    assert!(config.redis_url.is_none(), "back to in-memory state");
    assert_eq!(
        config.core.pool.min_idle_per_account, 1,
        "back to the default"
    );
}

#[test]
fn unknown_override_names_are_warnings_that_stop_nothing() {
    let verdict = GatewayConfig::check(
        BASE,
        vars(&[
            ("WSV2_POOL__MIN_IDEL", "0"),
            ("WSV2_POLL__MIN_IDLE_PER_ACCOUNT", "0"),
            ("WSV2_LISTN", "0.0.0.0:1"),
            ("WSV2_ACCOUNTS__0__TOKEN", "x"),
            ("WSV2_KEY", "sk-gw-demo"),
            ("WSV2_CONFIG", "/etc/wsv2.toml"),
            ("WSV2_LOG_FORMAT", "json"),
            ("WSV2_PID_FILE", "/run/wsv2.pid"),
        ]),
    );
    assert!(verdict.is_valid(), "{}", verdict.report());
    assert_eq!(verdict.exit_code(), 0);
    let messages: Vec<String> = verdict.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "WSV2_ACCOUNTS__0__TOKEN: accounts and client_keys cannot be set from the environment; use token_env / key_env in the file",
            "WSV2_KEY: no such setting `key`",
            "WSV2_LISTN: no such setting `listn` (did you mean `listen`?)",
            "WSV2_POLL__MIN_IDLE_PER_ACCOUNT: no such section `poll` (did you mean `pool`?)",
            "WSV2_POOL__MIN_IDEL: no such key `pool.min_idel` (did you mean `min_idle_per_account`?)",
        ],
        "the shell's own WSV2_CONFIG, WSV2_LOG_FORMAT and WSV2_PID_FILE are not overrides"
    );
    let report = verdict.report();
    assert!(
        report.starts_with(
            "warning: WSV2_ACCOUNTS__0__TOKEN: accounts and client_keys cannot be set from the environment; use token_env / key_env in the file (ignored)\n"
        ),
        "{report}"
    );
    assert!(report.contains("\nok: 1 account"), "{report}");
    let config = load(BASE, &[("WSV2_LISTN", "0.0.0.0:1")]).expect("a warning is no refusal");
    assert_eq!(
        config.listen.to_string(),
        "127.0.0.1:8080",
        "and sets nothing"
    );
}

#[test]
fn a_variable_the_file_names_for_a_credential_is_never_an_override() {
    // Operators name their credentials WSV2_SOMETHING; those are read, never taken for settings.
    let text = "[[client_keys]]\nkey_env = \"WSV2_CLIENT_KEY\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken_env = \"WSV2_OPENAI_KEY\"\n\
                [[accounts]]\nid = 2\nname = \"b\"\ntoken_env = \"WSV2_POOL__MIN_IDLE_PER_ACCOUNT\"\n";
    let verdict = GatewayConfig::check(
        text,
        vars(&[
            ("WSV2_CLIENT_KEY", "sk-gw-1"),
            ("WSV2_OPENAI_KEY", "sk-up-1"),
            ("WSV2_POOL__MIN_IDLE_PER_ACCOUNT", "sk-up-2"),
        ]),
    );
    assert!(verdict.warnings.is_empty(), "{:?}", verdict.warnings);
    let config = verdict.outcome.expect("valid");
    assert_eq!(config.client_keys[0].key.expose(), "sk-gw-1");
    assert_eq!(config.accounts[0].token.expose(), "sk-up-1");
    assert_eq!(config.accounts[1].token.expose(), "sk-up-2");
    assert_eq!(
        config.core.pool.min_idle_per_account, 1,
        "a credential's variable sets no key, even one it looks like"
    );
}

#[test]
fn an_invalid_configuration_has_one_report_and_one_exit_code() {
    let verdict = GatewayConfig::check(
        BASE,
        vars(&[
            ("WSV2_POOL__MIN_IDLE_PER_ACCOUNT", "lots"),
            ("WSV2_LISTN", "x"),
        ]),
    );
    assert!(!verdict.is_valid());
    assert_eq!(verdict.exit_code(), 2);
    assert_eq!(
        verdict.report(),
        "warning: WSV2_LISTN: no such setting `listn` (did you mean `listen`?) (ignored)\n\
         pool.min_idle_per_account: invalid type: string \"lots\", expected usize\n"
    );
    let syntax = GatewayConfig::check("[pool", vars(&[]));
    assert_eq!(syntax.exit_code(), 2);
    assert!(
        syntax.report().starts_with("line 1, column"),
        "{}",
        syntax.report()
    );
}

#[test]
fn a_bad_override_value_is_reported_against_its_key() {
    let issues = load(
        BASE,
        &[
            ("WSV2_POOL__MIN_IDLE_PER_ACCOUNT", "lots"),
            ("WSV2_UPSTREAM__PING_INTERVAL", "30"),
        ],
    )
    .unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        ["pool.min_idle_per_account", "upstream.ping_interval"]
    );
    assert_eq!(
        issues[0].message,
        "invalid type: string \"lots\", expected usize"
    );
    assert!(issues[1].message.contains("missing unit"), "{issues:?}");
}

#[test]
fn apply_env_overrides_creates_missing_sections() {
    let mut table = parse_table("").expect("empty file parses");
    let issues = apply_env_overrides(
        &mut table,
        vars(&[("WSV2_SCHEDULER__MAX_ACCOUNT_SWITCHES", "5")]).into_iter(),
    );
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(
        table["scheduler"]["max_account_switches"].as_integer(),
        Some(5)
    );
}

#[test]
fn admin_listen_defaults_to_loopback_and_takes_an_address_or_off() {
    let config = load(BASE, &[]).expect("valid");
    assert_eq!(
        config.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9464")
    );
    let config = load(BASE, &[("WSV2_ADMIN_LISTEN", "127.0.0.1:0")]).expect("valid");
    assert_eq!(
        config.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:0")
    );
    let off = format!("admin_listen = \"off\"\n{BASE}");
    assert_eq!(load(&off, &[]).expect("valid").admin_listen, None);
    let issues = load(&format!("admin_listen = \"localhost\"\n{BASE}"), &[]).unwrap_err();
    assert_eq!(issues[0].path, "admin_listen", "{issues:?}");
}

#[test]
fn client_keys_have_label_safe_unique_names_or_key_n() {
    let text = "[[client_keys]]\nkey = \"k1\"\nname = \"alice\"\n\
                [[client_keys]]\nkey = \"k2\"\n\
                [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";
    let config = load(text, &[]).expect("valid");
    let names: Vec<&str> = config.client_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["alice", "key-2"]);
    let bad = "[[client_keys]]\nkey = \"k1\"\nname = \"al ice\"\n\
               [[client_keys]]\nkey = \"k2\"\nname = \"bob\"\n\
               [[client_keys]]\nkey = \"k3\"\nname = \"bob\"\n\
               [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";
    let messages: Vec<String> = load(bad, &[])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        messages,
        [
            "client_keys[0].name: use at most 64 ASCII letters, digits, '.', '_' or '-' (it is a metric label)",
            "client_keys[2].name: the same name as client_keys[1]",
        ]
    );
}
