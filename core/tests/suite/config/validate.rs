//! `Config::validate()`: every value that cannot work is reported with its dotted path, all at once.

use std::time::Duration;

use wsv2_core::Config;
use wsv2_core::config::MAX_MESSAGE_SIZE_LIMIT;

/// The paths `validate()` reports for a config, in order
fn bad_paths(config: &Config) -> Vec<String> {
    config.validate().into_iter().map(|e| e.path).collect()
}

/// One change to a config
type Change = fn(&mut Config);

/// A default config with one change applied
fn with(change: Change) -> Config {
    let mut config = Config::default();
    change(&mut config);
    config
}

#[test]
fn the_default_config_is_valid() {
    assert_eq!(Config::default().validate(), []);
}

#[test]
fn each_rule_reports_exactly_its_own_path() {
    let cases: [(&str, Change); 23] = [
        ("upstream.max_message_size", |c| {
            c.upstream.max_message_size = 0
        }),
        ("upstream.max_message_size", |c| {
            c.upstream.max_message_size = MAX_MESSAGE_SIZE_LIMIT + 1
        }),
        ("upstream.max_inflight_per_conn", |c| {
            c.upstream.max_inflight_per_conn = 0
        }),
        ("upstream.ping_interval", |c| {
            c.upstream.ping_interval = Duration::ZERO
        }),
        ("upstream.pong_timeout", |c| {
            c.upstream.pong_timeout = Duration::ZERO
        }),
        ("upstream.max_age", |c| {
            c.upstream.max_age = Duration::ZERO;
            c.pool.session_min_remaining_life = Duration::ZERO;
        }),
        ("upstream.max_age", |c| {
            c.upstream.max_age = c.upstream.connection_limit
        }),
        ("pool.session_min_remaining_life", |c| {
            c.pool.session_min_remaining_life = c.upstream.max_age + Duration::from_millis(1)
        }),
        ("upstream.tls_handshake_timeout", |c| {
            c.upstream.tls_handshake_timeout = c.upstream.dial_timeout + Duration::from_millis(1)
        }),
        ("pool.max_conns_per_account", |c| {
            // Idle bounds follow the cap down so only the cap itself is wrong.
            c.pool.max_conns_per_account = 0;
            c.pool.max_idle_per_account = 0;
            c.pool.min_idle_per_account = 0;
        }),
        ("pool.queue_limit_per_conn", |c| {
            c.pool.queue_limit_per_conn = 0
        }),
        ("pool.min_idle_per_account", |c| {
            c.pool.min_idle_per_account = c.pool.max_idle_per_account + 1
        }),
        ("pool.max_idle_per_account", |c| {
            c.pool.max_idle_per_account = c.pool.max_conns_per_account + 1
        }),
        ("pool.dial_backoff_initial", |c| {
            c.pool.dial_backoff_initial = c.pool.dial_backoff_max * 2
        }),
        ("pool.ping_tick", |c| c.pool.ping_tick = Duration::ZERO),
        ("pool.cleanup_tick", |c| {
            c.pool.cleanup_tick = Duration::ZERO
        }),
        ("scheduler.retry_backoff_initial", |c| {
            c.scheduler.retry_backoff_initial = c.scheduler.retry_backoff_max * 2
        }),
        ("scheduler.server_error_limit", |c| {
            c.scheduler.server_error_limit = 0
        }),
        ("store.breaker_failure_limit", |c| {
            c.store.breaker_failure_limit = 0
        }),
        ("store.store_op_timeout", |c| {
            c.store.store_op_timeout = Duration::ZERO
        }),
        ("store.default_group", |c| c.store.default_group.clear()),
        ("session.max_held_creates_per_session", |c| {
            c.session.max_held_creates_per_session = 0
        }),
        ("session.client_write_buffer", |c| {
            c.session.client_write_buffer = 0
        }),
    ];
    for (path, change) in cases {
        let config = with(change);
        assert_eq!(bad_paths(&config), [path], "{path}");
        let shown = config.validate()[0].to_string();
        assert!(shown.starts_with(&format!("{path}: ")), "{shown}");
    }
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let config = with(|c| {
        c.pool.min_idle_per_account = 5;
        c.pool.max_idle_per_account = 4;
        c.upstream.dial_timeout = Duration::from_secs(5);
        c.upstream.tls_handshake_timeout = Duration::from_secs(10);
        c.upstream.max_message_size = 65 * 1024 * 1024;
    });
    let errors = config.validate();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "upstream.max_message_size",
            "upstream.tls_handshake_timeout",
            "pool.min_idle_per_account"
        ]
    );
    assert!(errors[0].message.contains("64 MiB"), "{}", errors[0]);
    assert!(
        errors[1].message.contains("upstream.dial_timeout"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].message.contains("pool.max_idle_per_account"),
        "{}",
        errors[2]
    );
}

#[test]
fn limits_are_inclusive() {
    let config = with(|c| {
        c.upstream.max_message_size = MAX_MESSAGE_SIZE_LIMIT;
        c.upstream.tls_handshake_timeout = c.upstream.dial_timeout;
        c.pool.max_idle_per_account = c.pool.max_conns_per_account;
        c.pool.min_idle_per_account = c.pool.max_idle_per_account;
        c.pool.dial_backoff_initial = c.pool.dial_backoff_max;
        c.scheduler.retry_backoff_initial = c.scheduler.retry_backoff_max;
        c.pool.session_min_remaining_life = c.upstream.max_age;
    });
    assert_eq!(config.validate(), []);
    assert_eq!(MAX_MESSAGE_SIZE_LIMIT, 64 * 1024 * 1024);
}

#[test]
fn the_ingress_rules_report_their_own_paths_and_check_config_names_them() {
    let cases: [(&str, Change); 4] = [
        ("ingress.header_read_timeout", |c| {
            c.ingress.header_read_timeout = Duration::ZERO
        }),
        ("ingress.body_read_timeout", |c| {
            c.ingress.body_read_timeout = Duration::ZERO
        }),
        ("ingress.accept_error_backoff", |c| {
            c.ingress.accept_error_backoff = Duration::ZERO
        }),
        ("ingress.max_unauthenticated_connections", |c| {
            c.ingress.max_unauthenticated_connections = 0
        }),
    ];
    for (path, change) in cases {
        assert_eq!(bad_paths(&with(change)), [path]);
    }
    let file = "[[client_keys]]\nkey = \"k\"\n[[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n\
                [ingress]\nheader_read_timeout = \"0s\"\nmax_client_socket = 10\n";
    let report = wsv2_core::file_config::check_config_report(file, &|_| None);
    assert!(
        report.contains("ingress.header_read_timeout: must be positive"),
        "{report}"
    );
    assert!(
        report.contains(
            "ingress.max_client_socket: unknown key (did you mean `max_client_sockets`?)"
        ),
        "{report}"
    );
}

#[test]
fn the_telemetry_rule_reports_its_own_path() {
    let config = with(|c| c.telemetry.model_label_min_responses = 0);
    assert_eq!(bad_paths(&config), ["telemetry.model_label_min_responses"]);
    assert_eq!(
        bad_paths(&with(|c| c.telemetry.max_model_labels = 0)),
        Vec::<String>::new()
    );
}

#[test]
fn check_config_holds_max_age_below_upstreams_limit_and_a_sessions_minimum_life_within_it() {
    let file = "[[client_keys]]\nkey = \"k\"\n[[accounts]]\nid = 1\nname = \"a\"\ntoken = \"t\"\n\
                [upstream]\nmax_age = \"1h\"\n[pool]\nsession_min_remaining_life = \"61m\"\n";
    let report = wsv2_core::file_config::check_config_report(file, &|_| None);
    assert!(
        report.contains("upstream.max_age: must be below upstream.connection_limit"),
        "{report}"
    );
    assert!(
        report.contains("pool.session_min_remaining_life: must not exceed upstream.max_age"),
        "{report}"
    );
    let defaults = Config::default();
    assert_eq!(
        defaults.upstream.connection_limit - defaults.upstream.max_age,
        Duration::from_secs(5 * 60),
        "the default max_age leaves 5 minutes before upstream's 60-minute cut"
    );
    assert_eq!(
        defaults.upstream.connection_limit,
        Duration::from_secs(60 * 60)
    );
}
