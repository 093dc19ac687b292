//! How a configuration file is read: every key optional, unknown keys rejected by name, durations
//! as human strings down to milliseconds, and a lossless round trip through serde.
//!
//! The core carries no TOML parser; serde_json drives the same `Deserialize` impls the gateway's
//! TOML loader uses, so these rules hold for the file format too.

use std::time::Duration;

use wsv2_core::Config;

/// Parses a JSON rendering of a config file
fn parse(json: &str) -> Result<Config, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn the_default_config_round_trips() {
    let text = serde_json::to_string(&Config::default()).expect("serializes");
    let back: Config = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(back, Config::default());
}

#[test]
fn a_changed_config_round_trips_including_milliseconds() {
    let mut config = Config::default();
    config.upstream.ping_interval = Duration::from_millis(250);
    config.upstream.max_age = Duration::from_secs(90);
    config.pool.max_conns_per_account = 1;
    config.pool.min_idle_per_account = 0;
    config.store.default_group = "team-a".to_owned();
    config.protocol.force_http = true;
    let value = serde_json::to_value(&config).expect("serializes");
    assert_eq!(value["upstream"]["ping_interval"], "250ms");
    assert_eq!(value["upstream"]["max_age"], "90s");
    let back: Config = serde_json::from_value(value).expect("deserializes");
    assert_eq!(back, config);
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(parse("{}"), Ok(Config::default()));
    assert_eq!(parse(r#"{"pool": {}}"#), Ok(Config::default()));
}

#[test]
fn missing_keys_take_their_defaults() {
    let config = parse(r#"{"pool": {"max_conns_per_account": 1, "min_idle_per_account": 0}}"#)
        .expect("parses");
    let mut expected = Config::default();
    expected.pool.max_conns_per_account = 1;
    expected.pool.min_idle_per_account = 0;
    assert_eq!(config, expected);
}

#[test]
fn durations_parse_in_milliseconds_and_sums() {
    let config = parse(
        r#"{"upstream": {"ping_interval": "250ms", "pong_timeout": "1m30s", "max_age": "55min"}}"#,
    )
    .expect("parses");
    assert_eq!(config.upstream.ping_interval, Duration::from_millis(250));
    assert_eq!(config.upstream.pong_timeout, Duration::from_secs(90));
    assert_eq!(config.upstream.max_age, Duration::from_secs(55 * 60));
}

#[test]
fn a_bad_duration_is_rejected_with_a_reason() {
    let unitless = parse(r#"{"session": {"drain_timeout": "30"}}"#).unwrap_err();
    assert!(unitless.contains("missing unit"), "{unitless}");
    let days = parse(r#"{"session": {"drain_timeout": "2d"}}"#).unwrap_err();
    assert!(days.contains("unknown unit"), "{days}");
    let number = parse(r#"{"session": {"drain_timeout": 30}}"#).unwrap_err();
    assert!(number.contains("expected a string"), "{number}");
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    for (json, name) in [
        (r#"{"pool": {"max_conn": 4}}"#, "`max_conn`"),
        (r#"{"pools": {}}"#, "`pools`"),
        (
            r#"{"upstream": {"ping_interval": "1s", "ping_intervall": "2s"}}"#,
            "`ping_intervall`",
        ),
        (r#"{"store": {"ttl": "1s"}}"#, "`ttl`"),
        (r#"{"protocol": {"http_only": true}}"#, "`http_only`"),
    ] {
        let error = parse(json).unwrap_err();
        assert!(
            error.contains("unknown field") && error.contains(name),
            "{json}: {error}"
        );
    }
}

#[test]
fn every_section_rejects_unknown_keys() {
    let sections = serde_json::to_value(Config::default()).expect("serializes");
    let names: Vec<&String> = sections.as_object().expect("an object").keys().collect();
    assert_eq!(
        names,
        [
            "ingress",
            "pool",
            "protocol",
            "scheduler",
            "session",
            "store",
            "telemetry",
            "upstream"
        ]
    );
    for section in names {
        let error = parse(&format!(r#"{{"{section}": {{"no_such_key": 1}}}}"#)).unwrap_err();
        assert!(error.contains("`no_such_key`"), "{section}: {error}");
    }
}
