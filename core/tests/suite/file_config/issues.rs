//! No setting is ever silently ignored: every unknown key and every bad value comes back with its
//! path, all of them in one pass, and the cross-checks name the entry they concern.

use wsv2_core::file_config::{ConfigIssue, GatewayConfig};

/// A valid file: one client key, one account
const BASE: &str =
    "[[client_keys]]\nkey = \"k\"\n\n[[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n";

fn issues(text: &str) -> Vec<ConfigIssue> {
    GatewayConfig::from_toml_str(text, &|name| (name == "SET").then(|| "value".to_owned()))
        .expect_err("the file has problems")
}

fn paths(issues: &[ConfigIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.path.as_str()).collect()
}

/// The message reported for `path`, failing if there is none
fn message<'a>(issues: &'a [ConfigIssue], path: &str) -> &'a str {
    issues
        .iter()
        .find(|i| i.path == path)
        .map(|i| i.message.as_str())
        .unwrap_or_else(|| panic!("no issue at {path}: {issues:?}"))
}

#[test]
fn every_unknown_key_is_reported_with_its_path_at_once() {
    let text = format!(
        "lisen = \"0.0.0.0:1\"\ncolour = 1\n{BASE}tokn = \"x\"\nmodel_mapp = {{}}\n\
         [[accounts]]\nid = 2\nname = \"b\"\ntoken = \"t\"\nconcurency = 3\n\
         [pool]\nmin_idel = 0\n[upstream]\nping = \"1s\"\n[nonsense]\nx = 1\n"
    );
    let found = issues(&text);
    assert_eq!(
        paths(&found),
        [
            "colour",
            "lisen",
            "nonsense",
            "pool.min_idel",
            "upstream.ping",
            "accounts[0].model_mapp",
            "accounts[0].tokn",
            "accounts[1].concurency",
        ]
    );
    assert_eq!(
        message(&found, "lisen"),
        "unknown key (did you mean `listen`?)"
    );
    assert_eq!(message(&found, "colour"), "unknown key");
    assert_eq!(
        message(&found, "accounts[0].tokn"),
        "unknown key (did you mean `token`?)"
    );
    assert_eq!(
        message(&found, "pool.min_idel"),
        "unknown key (did you mean `min_idle_per_account`?)"
    );
    assert_eq!(
        message(&found, "accounts[1].concurency"),
        "unknown key (did you mean `concurrency`?)"
    );
}

#[test]
fn unknown_keys_in_client_keys_are_reported() {
    let found = issues(&format!(
        "{BASE}\n[[client_keys]]\nkey = \"k2\"\ngroupe = \"g\"\n"
    ));
    assert_eq!(paths(&found), ["client_keys[1].groupe"]);
    assert_eq!(
        message(&found, "client_keys[1].groupe"),
        "unknown key (did you mean `group`?)"
    );
}

#[test]
fn bad_core_values_are_reported_with_their_paths() {
    let found = issues(&format!(
        "{BASE}[upstream]\nping_interval = \"30\"\npong_timeout = 5\n\
         [pool]\nmax_conns_per_account = -1\nmin_idle_per_account = 9\n\
         [protocol]\nforce_http = \"yes\"\n"
    ));
    assert_eq!(
        paths(&found),
        [
            "pool.max_conns_per_account",
            "protocol.force_http",
            "upstream.ping_interval",
            "upstream.pong_timeout",
            "pool.min_idle_per_account",
        ]
    );
    assert!(message(&found, "upstream.ping_interval").contains("missing unit"));
    assert!(message(&found, "upstream.pong_timeout").contains("expected a string"));
    assert!(message(&found, "pool.max_conns_per_account").contains("-1"));
    // Cross-field rules of Config::validate come with the core's own paths.
    assert_eq!(
        message(&found, "pool.min_idle_per_account"),
        "must not exceed pool.max_idle_per_account"
    );
}

#[test]
fn a_core_section_that_is_not_a_table_is_reported() {
    let found = issues(&format!("pool = 3\n{BASE}"));
    assert_eq!(paths(&found), ["pool"]);
    assert!(message(&found, "pool").contains("expected a table"));
}

#[test]
fn bad_account_values_are_reported_with_their_paths() {
    let text = "[[client_keys]]\nkey = \"k\"\n\
        [[accounts]]\nid = -4\nname = \"\"\ntoken = 12\nconcurrency = -1\npriority = 1.5\n\
        base_url = \"ftp://example.com\"\nproxy = \"socks4://127.0.0.1:1080\"\nforce_http = 1\n\
        model_map = { \"gpt-5\" = 5 }\n";
    let found = issues(text);
    for (path, expected) in [
        ("accounts[0].id", "-4 is out of range (expected 0 to"),
        ("accounts[0].name", "must not be empty"),
        ("accounts[0].token", "expected a string, found an integer"),
        (
            "accounts[0].concurrency",
            "-1 is out of range (expected 1 to 4294967295)",
        ),
        ("accounts[0].priority", "expected an integer, found a float"),
        ("accounts[0].base_url", "unsupported scheme `ftp`"),
        ("accounts[0].proxy", "unsupported proxy scheme `socks4`"),
        (
            "accounts[0].force_http",
            "expected true or false, found an integer",
        ),
        (
            "accounts[0].model_map.gpt-5",
            "expected a string, found an integer",
        ),
    ] {
        assert!(
            message(&found, path).contains(expected),
            "{path}: {:?}",
            message(&found, path)
        );
    }
    assert_eq!(found.len(), 9, "{found:?}");
}

#[test]
fn zero_concurrency_and_zero_max_sockets_are_refused() {
    let found = issues(
        "[[client_keys]]\nkey = \"k\"\nmax_sockets = 0\n\
         [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\nconcurrency = 0\n",
    );
    assert_eq!(
        paths(&found),
        ["client_keys[0].max_sockets", "accounts[0].concurrency"]
    );
    assert!(message(&found, "accounts[0].concurrency").starts_with("0 is out of range"));
}

#[test]
fn bad_top_level_values_are_reported() {
    let found = issues(&format!(
        "listen = \"localhost:8080\"\nredis_url = \"http://127.0.0.1:6379\"\nmetrics = \"on\"\n{BASE}"
    ));
    assert_eq!(paths(&found), ["listen", "redis_url", "metrics"]);
    assert!(message(&found, "listen").contains("IP address and port"));
    assert!(message(&found, "redis_url").contains("redis://"));
}

#[test]
fn missing_and_duplicate_credentials_are_reported() {
    let found = issues(
        "[[client_keys]]\ngroup = \"g\"\n\
         [[client_keys]]\nkey = \"k\"\nkey_env = \"SET\"\n\
         [[client_keys]]\nkey_env = \"UNSET\"\n\
         [[accounts]]\nid = 1\nname = \"a\"\n\
         [[accounts]]\nid = 2\nname = \"b\"\ntoken = \"t\"\ntoken_env = \"SET\"\n\
         [[accounts]]\nid = 3\nname = \"c\"\ntoken_env = \"UNSET\"\n",
    );
    assert_eq!(
        found,
        [
            issue("client_keys[0].key", "missing (set `key` or `key_env`)"),
            issue(
                "client_keys[1].key_env",
                "set either `key` or `key_env`, not both"
            ),
            issue(
                "client_keys[2].key_env",
                "environment variable `UNSET` is not set"
            ),
            issue("accounts[0].token", "missing (set `token` or `token_env`)"),
            issue(
                "accounts[1].token_env",
                "set either `token` or `token_env`, not both"
            ),
            issue(
                "accounts[2].token_env",
                "environment variable `UNSET` is not set"
            ),
        ]
    );
}

#[test]
fn duplicate_ids_names_and_client_keys_name_the_first_entry() {
    let found = issues(
        "[[client_keys]]\nkey = \"value\"\n[[client_keys]]\nkey_env = \"SET\"\n\
         [[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n\
         [[accounts]]\nid = 1\nname = \"b\"\ntoken = \"t\"\n\
         [[accounts]]\nid = 3\nname = \"a\"\ntoken = \"t\"\n",
    );
    assert_eq!(
        found,
        [
            issue("client_keys[1].key_env", "the same key as client_keys[0]"),
            issue("accounts[1].id", "duplicate id 1 (also accounts[0])"),
            issue(
                "accounts[2].name",
                "duplicate name \"a\" (also accounts[0])"
            ),
        ]
    );
}

#[test]
fn an_empty_file_needs_accounts_and_client_keys() {
    let found = issues("");
    assert_eq!(paths(&found), ["client_keys", "accounts"]);
    let found = issues("client_keys = []\naccounts = []\n");
    assert_eq!(paths(&found), ["client_keys", "accounts"]);
    let found = issues("accounts = 3\nclient_keys = [1]\n");
    assert_eq!(paths(&found), ["client_keys[0]", "accounts"]);
    assert!(message(&found, "accounts").contains("expected an array of tables"));
}

#[test]
fn an_account_without_id_or_name_is_reported() {
    let found = issues("[[client_keys]]\nkey = \"k\"\n[[accounts]]\ntoken = \"t\"\n");
    assert_eq!(paths(&found), ["accounts[0].id", "accounts[0].name"]);
}

#[test]
fn a_syntax_error_names_line_and_column_without_quoting_the_line() {
    let found = issues("listen = \"127.0.0.1:8080\"\ntoken = \"sk-secret-value\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].path.starts_with("line 2, column "), "{found:?}");
    assert!(found[0].message.starts_with("TOML syntax error"));
    assert!(!format!("{found:?}").contains("sk-secret-value"));
}

fn issue(path: &str, message: &str) -> ConfigIssue {
    ConfigIssue {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn a_redis_cluster_url_lists_host_port_seeds() {
    let found = issues(&format!(
        "redis_url = \"redis+cluster://127.0.0.1:7000,127.0.0.1:nope\"\n{BASE}"
    ));
    assert_eq!(paths(&found), ["redis_url"]);
    assert!(message(&found, "redis_url").contains("host:port"));
    let good = GatewayConfig::from_toml_str(
        &format!("redis_url = \"redis+cluster://:pw@127.0.0.1:7000, 127.0.0.1:7001\"\n{BASE}"),
        &|_| None,
    );
    assert!(good.is_ok(), "{good:?}");
    assert_eq!(
        wsv2_core::file_config::redis_cluster_seeds("redis+cluster://:pw@a:1,b:2"),
        Some(Ok(vec![
            "redis://:pw@a:1".to_owned(),
            "redis://:pw@b:2".to_owned()
        ]))
    );
    assert_eq!(
        wsv2_core::file_config::redis_cluster_seeds("redis://a:1"),
        None
    );
}

#[test]
fn a_redis_sentinel_url_names_sentinels_a_master_and_a_database() {
    use wsv2_core::file_config::redis_sentinel;
    let target = redis_sentinel("redis+sentinel://:pw@s1:26379, s2:26380/wsv2-main/3")
        .expect("a sentinel url")
        .expect("well formed");
    assert_eq!(target.sentinels, ["redis://s1:26379", "redis://s2:26380"]);
    assert_eq!(target.master, "wsv2-main");
    assert_eq!(target.db, 3);
    // The credentials go to the master, never into a log line through Debug.
    assert_eq!(target.node_settings_url(), "redis://:pw@s1:26379/3");
    assert!(!format!("{target:?}").contains("pw"));
    let plain = redis_sentinel("REDIS+SENTINEL://s1:1/m")
        .expect("sentinel")
        .expect("ok");
    assert_eq!((plain.master.as_str(), plain.db), ("m", 0));
    assert_eq!(redis_sentinel("redis://a:1"), None);
    for bad in [
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:26379/",
        "redis+sentinel://s1/m",
        "redis+sentinel://s1:1/m/x",
        "redis+sentinel://s1:1/m/-1",
        "redis+sentinel://s1:1/m n",
        "redis+sentinel:///m",
    ] {
        assert!(matches!(redis_sentinel(bad), Some(Err(_))), "{bad}");
    }
    let found = issues(&format!(
        "redis_url = \"redis+sentinel://127.0.0.1:26379\"\n{BASE}"
    ));
    assert_eq!(paths(&found), ["redis_url"]);
    assert!(message(&found, "redis_url").contains("master"));
    let good = GatewayConfig::from_toml_str(
        &format!("redis_url = \"redis+sentinel://127.0.0.1:26379/wsv2\"\n{BASE}"),
        &|_| None,
    );
    assert!(good.is_ok(), "{good:?}");
}

#[test]
fn a_redis_url_with_a_multibyte_character_where_the_cluster_scheme_would_end_is_not_a_panic() {
    // Found by the config fuzz target: byte 16 fell inside U+2028.
    let url = "redis://:PL,ANT\u{2028}EDredispw@127.0.0.1:6379";
    assert_eq!(wsv2_core::file_config::redis_cluster_seeds(url), None);
    let _ = GatewayConfig::from_toml_str(
        &format!(
            "redis_url = \"{}\"\n{BASE}",
            url.replace('\u{2028}', "\\u2028")
        ),
        &|_| None,
    );
}
