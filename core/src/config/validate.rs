//! [`Config::validate`]: the values that cannot work, each with its path.

use std::time::Duration;

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
        let mut c = Checks(Vec::new());
        let u = &self.upstream;
        c.check(
            u.max_message_size > 0 && u.max_message_size <= MAX_MESSAGE_SIZE_LIMIT,
            "upstream.max_message_size",
            "must be between 1 and 67108864 (64 MiB)",
        );
        c.at_least_one("upstream.max_inflight_per_conn", u.max_inflight_per_conn);
        c.positive("upstream.ping_interval", u.ping_interval);
        c.positive("upstream.pong_timeout", u.pong_timeout);
        c.positive("upstream.max_age", u.max_age);
        c.check(
            u.max_age < u.connection_limit,
            "upstream.max_age",
            "must be below upstream.connection_limit (upstream cuts a conn at that age)",
        );
        c.check(
            self.pool.session_min_remaining_life <= u.max_age,
            "pool.session_min_remaining_life",
            "must not exceed upstream.max_age (no conn, not even a fresh one, would have that long left)",
        );
        c.check(
            u.tls_handshake_timeout <= u.dial_timeout,
            "upstream.tls_handshake_timeout",
            "must not exceed upstream.dial_timeout",
        );
        let p = &self.pool;
        c.at_least_one("pool.max_conns_per_account", p.max_conns_per_account);
        c.at_least_one("pool.queue_limit_per_conn", p.queue_limit_per_conn);
        c.check(
            p.min_idle_per_account <= p.max_idle_per_account,
            "pool.min_idle_per_account",
            "must not exceed pool.max_idle_per_account",
        );
        c.check(
            p.max_idle_per_account <= p.max_conns_per_account,
            "pool.max_idle_per_account",
            "must not exceed pool.max_conns_per_account",
        );
        c.check(
            p.dial_backoff_initial <= p.dial_backoff_max,
            "pool.dial_backoff_initial",
            "must not exceed pool.dial_backoff_max",
        );
        c.positive("pool.ping_tick", p.ping_tick);
        c.positive("pool.dial_wait", p.dial_wait);
        c.check(
            p.dial_wait <= self.upstream.dial_timeout,
            "pool.dial_wait",
            "must not exceed upstream.dial_timeout",
        );
        c.positive("pool.cleanup_tick", p.cleanup_tick);
        let s = &self.scheduler;
        c.check(
            s.retry_backoff_initial <= s.retry_backoff_max,
            "scheduler.retry_backoff_initial",
            "must not exceed scheduler.retry_backoff_max",
        );
        c.at_least_one("scheduler.server_error_limit", s.server_error_limit);
        c.at_least_one("scheduler.dial_failure_limit", s.dial_failure_limit);
        c.positive("scheduler.probe_interval", s.probe_interval);
        let st = &self.store;
        c.at_least_one("store.breaker_failure_limit", st.breaker_failure_limit);
        c.positive("store.store_op_timeout", st.store_op_timeout);
        c.check(
            st.local_copy_max_age >= st.store_op_timeout,
            "store.local_copy_max_age",
            "must not be below store.store_op_timeout",
        );
        c.check(
            !st.default_group.is_empty(),
            "store.default_group",
            "must not be empty",
        );
        c.at_least_one("store.max_pending_ops", st.max_pending_ops);
        let se = &self.session;
        c.at_least_one(
            "session.max_held_creates_per_session",
            se.max_held_creates_per_session,
        );
        c.positive("session.blocked_client_timeout", se.blocked_client_timeout);
        c.at_least_one("session.client_write_buffer", se.client_write_buffer);
        let i = &self.ingress;
        c.positive("ingress.header_read_timeout", i.header_read_timeout);
        c.positive("ingress.body_read_timeout", i.body_read_timeout);
        c.positive("ingress.accept_error_backoff", i.accept_error_backoff);
        c.at_least_one(
            "ingress.max_unauthenticated_connections",
            i.max_unauthenticated_connections,
        );
        c.at_least_one("ingress.max_admin_connections", i.max_admin_connections);
        let t = &self.telemetry;
        c.at_least_one(
            "telemetry.model_label_min_responses",
            t.model_label_min_responses,
        );
        c.at_least_one("telemetry.span_queue", t.span_queue);
        c.at_least_one("telemetry.span_batch", t.span_batch);
        c.positive("telemetry.export_interval", t.export_interval);
        c.positive("telemetry.export_timeout", t.export_timeout);
        c.0
    }
}

/// The errors found so far, in the order the checks ran
struct Checks(Vec<ConfigError>);

impl Checks {
    /// Records `message` against `path` unless `ok`
    fn check(&mut self, ok: bool, path: &str, message: &str) {
        if !ok {
            self.0.push(ConfigError {
                path: path.to_owned(),
                message: message.to_owned(),
            });
        }
    }

    /// A duration that zero would break (a timer that fires at once, a tick that spins)
    fn positive(&mut self, path: &str, value: Duration) {
        self.check(!value.is_zero(), path, "must be positive");
    }

    /// A count or limit that zero would break
    fn at_least_one<N: Default + PartialOrd>(&mut self, path: &str, value: N) {
        self.check(value > N::default(), path, "must be at least 1");
    }
}
