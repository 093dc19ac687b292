//! [`Config::validate`]: the values that cannot work, each with its path.

use super::Config;

/// A configuration value that cannot work
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `pool.min_idle_per_account`
    pub path: String,
    /// What is wrong with it
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The largest `max_message_size` the gateway accepts (64 MiB)
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 64 * 1024 * 1024;

impl Config {
    /// Every value that cannot work, each with its path (empty when the config is usable)
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, path: &str, message: &str| {
            if !ok {
                errors.push(ConfigError {
                    path: path.to_owned(),
                    message: message.to_owned(),
                });
            }
        };
        let u = &self.upstream;
        check(
            u.max_message_size > 0 && u.max_message_size <= MAX_MESSAGE_SIZE_LIMIT,
            "upstream.max_message_size",
            "must be between 1 and 67108864 (64 MiB)",
        );
        check(
            u.max_inflight_per_conn > 0,
            "upstream.max_inflight_per_conn",
            "must be at least 1",
        );
        check(
            !u.ping_interval.is_zero(),
            "upstream.ping_interval",
            "must be positive",
        );
        check(
            !u.pong_timeout.is_zero(),
            "upstream.pong_timeout",
            "must be positive",
        );
        check(!u.max_age.is_zero(), "upstream.max_age", "must be positive");
        check(
            u.max_age < u.connection_limit,
            "upstream.max_age",
            "must be below upstream.connection_limit (upstream cuts a conn at that age)",
        );
        check(
            self.pool.session_min_remaining_life <= u.max_age,
            "pool.session_min_remaining_life",
            "must not exceed upstream.max_age (no conn, not even a fresh one, would have that long left)",
        );
        check(
            u.tls_handshake_timeout <= u.dial_timeout,
            "upstream.tls_handshake_timeout",
            "must not exceed upstream.dial_timeout",
        );
        let p = &self.pool;
        check(
            p.max_conns_per_account > 0,
            "pool.max_conns_per_account",
            "must be at least 1",
        );
        check(
            p.queue_limit_per_conn > 0,
            "pool.queue_limit_per_conn",
            "must be at least 1",
        );
        check(
            p.min_idle_per_account <= p.max_idle_per_account,
            "pool.min_idle_per_account",
            "must not exceed pool.max_idle_per_account",
        );
        check(
            p.max_idle_per_account <= p.max_conns_per_account,
            "pool.max_idle_per_account",
            "must not exceed pool.max_conns_per_account",
        );
        check(
            p.dial_backoff_initial <= p.dial_backoff_max,
            "pool.dial_backoff_initial",
            "must not exceed pool.dial_backoff_max",
        );
        check(!p.ping_tick.is_zero(), "pool.ping_tick", "must be positive");
        check(!p.dial_wait.is_zero(), "pool.dial_wait", "must be positive");
        check(
            p.dial_wait <= self.upstream.dial_timeout,
            "pool.dial_wait",
            "must not exceed upstream.dial_timeout",
        );
        check(
            !p.cleanup_tick.is_zero(),
            "pool.cleanup_tick",
            "must be positive",
        );
        let s = &self.scheduler;
        check(
            s.retry_backoff_initial <= s.retry_backoff_max,
            "scheduler.retry_backoff_initial",
            "must not exceed scheduler.retry_backoff_max",
        );
        check(
            s.server_error_limit > 0,
            "scheduler.server_error_limit",
            "must be at least 1",
        );
        check(
            s.dial_failure_limit > 0,
            "scheduler.dial_failure_limit",
            "must be at least 1",
        );
        check(
            !s.probe_interval.is_zero(),
            "scheduler.probe_interval",
            "must be positive",
        );
        let st = &self.store;
        check(
            st.breaker_failure_limit > 0,
            "store.breaker_failure_limit",
            "must be at least 1",
        );
        check(
            !st.store_op_timeout.is_zero(),
            "store.store_op_timeout",
            "must be positive",
        );
        check(
            st.local_copy_max_age >= st.store_op_timeout,
            "store.local_copy_max_age",
            "must not be below store.store_op_timeout",
        );
        check(
            !st.default_group.is_empty(),
            "store.default_group",
            "must not be empty",
        );
        check(
            st.max_pending_ops > 0,
            "store.max_pending_ops",
            "must be at least 1",
        );
        let se = &self.session;
        check(
            se.max_held_creates_per_session > 0,
            "session.max_held_creates_per_session",
            "must be at least 1",
        );
        check(
            !se.blocked_client_timeout.is_zero(),
            "session.blocked_client_timeout",
            "must be positive",
        );
        check(
            se.client_write_buffer > 0,
            "session.client_write_buffer",
            "must be at least 1",
        );
        let i = &self.ingress;
        check(
            !i.header_read_timeout.is_zero(),
            "ingress.header_read_timeout",
            "must be positive",
        );
        check(
            !i.body_read_timeout.is_zero(),
            "ingress.body_read_timeout",
            "must be positive",
        );
        check(
            !i.accept_error_backoff.is_zero(),
            "ingress.accept_error_backoff",
            "must be positive",
        );
        check(
            i.max_unauthenticated_connections > 0,
            "ingress.max_unauthenticated_connections",
            "must be at least 1",
        );
        check(
            i.max_admin_connections > 0,
            "ingress.max_admin_connections",
            "must be at least 1",
        );
        check(
            self.telemetry.model_label_min_responses > 0,
            "telemetry.model_label_min_responses",
            "must be at least 1",
        );
        let t = &self.telemetry;
        check(
            t.span_queue > 0,
            "telemetry.span_queue",
            "must be at least 1",
        );
        check(
            t.span_batch > 0,
            "telemetry.span_batch",
            "must be at least 1",
        );
        check(
            !t.export_interval.is_zero(),
            "telemetry.export_interval",
            "must be positive",
        );
        check(
            !t.export_timeout.is_zero(),
            "telemetry.export_timeout",
            "must be positive",
        );
        errors
    }
}
