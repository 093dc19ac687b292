//! Every timeout, limit and default of the core, in one place.
//!
//! `docs/config.md` documents each key with its default; a test parses that table and compares
//! it with [`Config::default()`], so the two cannot drift. Durations are written as human strings
//! (`"30s"`, `"250ms"`, `"55m"`, `"1h"`), so tests can run on milliseconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod duration;
mod validate;

pub use validate::{ConfigError, MAX_MESSAGE_SIZE_LIMIT};

/// The whole core configuration, grouped the way `docs/config.md` and the TOML file group it
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Upstream connection lifecycle: pings, age, writes, message size
    pub upstream: UpstreamConfig,
    /// Client sessions: lanes, held creates, idle and drain timeouts
    pub session: SessionConfig,
    /// Per-account connection pools
    pub pool: PoolConfig,
    /// Account choice, cooldowns, retries and failover
    pub scheduler: SchedulerConfig,
    /// Sticky bindings and the state store
    pub store: StoreConfig,
    /// Which accounts speak WebSocket to upstream
    pub protocol: ProtocolConfig,
    /// The client listener: socket caps, HTTP read timeouts, accept back-off
    pub ingress: IngressConfig,
    /// Metrics: how many label values clients may bring
    pub telemetry: TelemetryConfig,
}

/// Upstream connection lifecycle
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Ping a conn whose socket has been silent this long (leased or idle)
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// Close a conn that has not answered a ping within this long
    #[serde(with = "duration")]
    pub pong_timeout: Duration,
    /// Retire a conn this old: no new creates or leases, close when its responses end;
    /// must stay below `connection_limit`, so responses sent just before it can finish
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Upstream's own limit on a conn's age (OpenAI: 60 minutes): a response still open on a
    /// conn cut at this age is counted as cut at the connection limit
    #[serde(with = "duration")]
    pub connection_limit: Duration,
    /// Deadline of each upstream write; a write abandoned after its first byte closes the conn
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    /// Longest silence within one response (only its own events restart the clock); then it
    /// ends with a 504 and its conn retires
    #[serde(with = "duration")]
    pub read_timeout: Duration,
    /// Bound on TCP connect + proxy + TLS + WebSocket upgrade
    #[serde(with = "duration")]
    pub dial_timeout: Duration,
    /// Bound on the TLS handshake alone
    #[serde(with = "duration")]
    pub tls_handshake_timeout: Duration,
    /// How long to wait for upstream to answer a close frame before dropping the socket
    #[serde(with = "duration")]
    pub close_timeout: Duration,
    /// Largest message accepted on either hop; bigger ones close the client with 1009
    pub max_message_size: usize,
    /// Unfinished responses forwarded at once on one conn (upstream's limit)
    pub max_inflight_per_conn: usize,
    /// Distinct named lanes one conn may use over its lifetime (upstream's limit)
    pub max_named_lanes_per_conn: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(55 * 60),
            connection_limit: Duration::from_secs(60 * 60),
            write_timeout: Duration::from_secs(120),
            read_timeout: Duration::from_secs(900),
            dial_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            max_message_size: 16 * 1024 * 1024,
            max_inflight_per_conn: 16,
            max_named_lanes_per_conn: 32,
        }
    }
}

/// Client sessions (one client WebSocket or one HTTP request)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Close 1008 if the first client message does not arrive within this long
    #[serde(with = "duration")]
    pub first_message_timeout: Duration,
    /// Close 1000 after this long with no open response and no client message
    #[serde(with = "duration")]
    pub inter_turn_idle_timeout: Duration,
    /// Creates held per session while the conn has `max_inflight_per_conn` open; beyond: 429
    pub max_held_creates_per_session: usize,
    /// How long a create waits for an account concurrency slot before a 429 `error` event
    #[serde(with = "duration")]
    pub slot_wait_timeout: Duration,
    /// Total bound on draining upstream after the client left mid-turn
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
    /// A client whose write buffer stays full this long counts as gone
    #[serde(with = "duration")]
    pub client_write_timeout: Duration,
    /// A client whose write buffer stays full this long while its responses hold concurrency
    /// slots gives them up as soon as another create waits for one of the account's slots:
    /// closed 1008, its open responses cut, their conns closed
    #[serde(with = "duration")]
    pub blocked_client_timeout: Duration,
    /// Bytes queued towards one client before the session stops reading upstream
    pub client_write_buffer: usize,
    /// Ping idle client sockets this often
    #[serde(with = "duration")]
    pub client_ping_interval: Duration,
    /// A client that does not answer a ping within this long is gone
    #[serde(with = "duration")]
    pub client_pong_timeout: Duration,
    /// On shutdown, let in-flight responses finish for this long, then close 1012
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// On shutdown, each idle socket is closed 1012 at a random instant within this long (a
    /// value over `shutdown_grace` acts as `shutdown_grace`), so clients do not all reconnect at
    /// once
    #[serde(with = "duration")]
    pub shutdown_close_spread: Duration,
    /// After sending a close, keep reading the client socket this long so the client reads it
    /// (instead of a TCP reset)
    #[serde(with = "duration")]
    pub close_linger: Duration,
    /// `Retry-After` of the 429 that answers an upgrade over a client key's socket cap
    #[serde(with = "duration")]
    pub socket_cap_retry_after: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            first_message_timeout: Duration::from_secs(30),
            inter_turn_idle_timeout: Duration::from_secs(300),
            max_held_creates_per_session: 64,
            slot_wait_timeout: Duration::from_secs(12),
            drain_timeout: Duration::from_secs(900),
            client_write_timeout: Duration::from_secs(120),
            blocked_client_timeout: Duration::from_secs(2),
            client_write_buffer: 1024 * 1024,
            client_ping_interval: Duration::from_secs(20),
            client_pong_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(30),
            shutdown_close_spread: Duration::from_secs(5),
            close_linger: Duration::from_secs(2),
            socket_cap_retry_after: Duration::from_secs(1),
        }
    }
}

/// Per-account connection pools
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Hard cap on open + dialing conns per account; the effective cap is
    /// min(account concurrency, this)
    pub max_conns_per_account: usize,
    /// How long a WebSocket session waits for a conn before its create gets a 503 `error` event
    #[serde(with = "duration")]
    pub session_acquire_wait: Duration,
    /// How long a new session (or HTTP turn) waits for a dial already in flight, or for its
    /// own dial, before it tries another usable account; with no other account it waits for
    /// the dial (bounded by `upstream.dial_timeout`)
    #[serde(with = "duration")]
    pub dial_wait: Duration,
    /// How long an HTTP turn waits for a conn in total
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// A WebSocket session is leased only a conn with at least this long left before
    /// `upstream.max_age`, so the `store:false` chains it starts there are not cut by the
    /// conn's retirement within minutes; older idle conns serve HTTP turns
    #[serde(with = "duration")]
    pub session_min_remaining_life: Duration,
    /// HTTP turns that may wait on one busy conn; the next gets QueueFull
    pub queue_limit_per_conn: usize,
    /// Idle conns kept warm per account
    pub min_idle_per_account: usize,
    /// Idle conns kept per account; extra ones are closed, least recently used first
    pub max_idle_per_account: usize,
    /// Close idle conns unused this long (never below `min_idle_per_account`)
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Least time between two warm-idle dials of one account
    #[serde(with = "duration")]
    pub warm_cooldown: Duration,
    /// Dial failures within `warm_failure_window` that suppress warm-idle dials
    pub warm_failure_limit: u32,
    /// Window over which warm-idle dial failures are counted
    #[serde(with = "duration")]
    pub warm_failure_window: Duration,
    /// First back-off after a dial failure (doubles, with jitter)
    #[serde(with = "duration")]
    pub dial_backoff_initial: Duration,
    /// Largest back-off after dial failures
    #[serde(with = "duration")]
    pub dial_backoff_max: Duration,
    /// Period of the tick that pings idle conns
    #[serde(with = "duration")]
    pub ping_tick: Duration,
    /// Period of the tick that evicts closed, dirty, expired and surplus idle conns
    #[serde(with = "duration")]
    pub cleanup_tick: Duration,
    /// How long a conn stays held for a `store:false` HTTP chain
    #[serde(with = "duration")]
    pub http_chain_hold: Duration,
    /// Chain holds per account; a new one ends the oldest
    pub max_chain_holds_per_account: usize,
    /// A conn that has used more distinct named lanes than this is retired on release
    pub lane_reuse_limit: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_conns_per_account: 128,
            session_acquire_wait: Duration::from_secs(2),
            dial_wait: Duration::from_millis(500),
            acquire_timeout: Duration::from_secs(12),
            session_min_remaining_life: Duration::from_secs(15 * 60),
            queue_limit_per_conn: 16,
            min_idle_per_account: 1,
            max_idle_per_account: 4,
            idle_timeout: Duration::from_secs(300),
            warm_cooldown: Duration::from_millis(300),
            warm_failure_limit: 2,
            warm_failure_window: Duration::from_secs(30),
            dial_backoff_initial: Duration::from_millis(120),
            dial_backoff_max: Duration::from_secs(2),
            ping_tick: Duration::from_secs(30),
            cleanup_tick: Duration::from_secs(30),
            http_chain_hold: Duration::from_secs(60),
            max_chain_holds_per_account: 8,
            lane_reuse_limit: 16,
        }
    }
}

/// Account choice, cooldowns, retries and failover
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Cooldown after a 429 that names no reset time
    #[serde(with = "duration")]
    pub rate_limit_cooldown: Duration,
    /// 5xx failures within `server_error_window` that cool an account down
    pub server_error_limit: u32,
    /// Window over which 5xx failures are counted
    #[serde(with = "duration")]
    pub server_error_window: Duration,
    /// Cooldown after `server_error_limit` 5xx failures
    #[serde(with = "duration")]
    pub server_error_cooldown: Duration,
    /// Retries of one response stop when this long has passed since its first attempt
    #[serde(with = "duration")]
    pub retry_total_budget: Duration,
    /// First retry back-off (doubles, with jitter)
    #[serde(with = "duration")]
    pub retry_backoff_initial: Duration,
    /// Largest retry back-off
    #[serde(with = "duration")]
    pub retry_backoff_max: Duration,
    /// Accounts one response may move to after its first
    pub max_account_switches: u32,
    /// Consecutive failed dials (refused, timed out, TLS, proxy, upgrade 5xx) that cool an
    /// account down until a probe dial succeeds
    pub dial_failure_limit: u32,
    /// While an account cools down after failed dials, a probe dial this often; the first
    /// that succeeds makes the account usable again
    #[serde(with = "duration")]
    pub probe_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            rate_limit_cooldown: Duration::from_secs(60),
            server_error_limit: 3,
            server_error_window: Duration::from_secs(60),
            server_error_cooldown: Duration::from_secs(30),
            retry_total_budget: Duration::from_secs(5),
            retry_backoff_initial: Duration::from_millis(120),
            retry_backoff_max: Duration::from_secs(2),
            max_account_switches: 3,
            dial_failure_limit: 2,
            probe_interval: Duration::from_secs(5),
        }
    }
}

/// Sticky bindings and the state store
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Lifetime of a `store:true` response's binding: as long as upstream keeps the response
    /// (OpenAI: 30 days), not refreshed by use. A `store:false` response's binding lives as
    /// long as a conn can (`upstream.max_age`), since its chain dies with its conn.
    #[serde(with = "duration")]
    pub response_binding_ttl: Duration,
    /// A continuation whose previous response has no binding record: forwarded as an
    /// unbound create, or refused with `previous_response_not_found`
    pub unknown_previous_response: UnknownPreviousResponse,
    /// Lifetime of a session→account binding (refreshed on hit)
    #[serde(with = "duration")]
    pub session_binding_ttl: Duration,
    /// Bound on each store command; a get past it is a miss
    #[serde(with = "duration")]
    pub store_op_timeout: Duration,
    /// Consecutive store failures that open the breaker
    pub breaker_failure_limit: u32,
    /// While the breaker is open, one probe is let through this often
    #[serde(with = "duration")]
    pub breaker_probe_interval: Duration,
    /// Local copies of remote bindings kept per gateway
    pub local_cache_entries: usize,
    /// How long a local binding (a copy read from the store, or this gateway's own write once
    /// the store took it) is trusted; a lookup after that reads the store again, so a delete or
    /// rebind made by another gateway is seen within this long even while the key keeps being
    /// hit. At least `store_op_timeout` (a write of this gateway is trusted until answered)
    #[serde(with = "duration")]
    pub local_copy_max_age: Duration,
    /// Stickiness scope of client keys that name no group
    pub default_group: String,
    /// Store commands in flight at once; beyond it a lookup is a miss and a write is skipped
    /// (both counted), so a stalled store cannot grow the op table without limit
    pub max_pending_ops: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            response_binding_ttl: Duration::from_secs(30 * 24 * 3600),
            unknown_previous_response: UnknownPreviousResponse::Forward,
            session_binding_ttl: Duration::from_secs(3600),
            store_op_timeout: Duration::from_secs(3),
            breaker_failure_limit: 3,
            breaker_probe_interval: Duration::from_secs(5),
            local_cache_entries: 65536,
            local_copy_max_age: Duration::from_secs(5),
            default_group: "default".to_owned(),
            max_pending_ops: 4096,
        }
    }
}

/// What a continuation gets when its previous response has no binding record (expired,
/// evicted, a restarted memory store, a store outage, or an id this gateway never saw)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPreviousResponse {
    /// Forward it as an unbound create: upstream answers for the id (chains survive a lost
    /// binding; a key of another group could continue a response whose record is gone)
    #[default]
    Forward,
    /// Answer `previous_response_not_found` without going upstream (strict isolation; every
    /// chain whose record is lost, e.g. during a store outage, must start over)
    Refuse,
}

/// Which accounts speak WebSocket to upstream (see the protocol resolver)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Send every account's traffic over HTTP
    pub force_http: bool,
    /// Master switch for upstream WebSocket mode
    pub ws_enabled: bool,
    /// Upstream WebSocket mode for `api_key` accounts
    pub api_key_ws_enabled: bool,
    /// Upstream WebSocket mode for `oauth` accounts
    pub oauth_ws_enabled: bool,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            force_http: false,
            ws_enabled: true,
            api_key_ws_enabled: true,
            oauth_ws_enabled: true,
        }
    }
}

/// The client listener: what an unauthenticated or slow client may hold, and for how long
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressConfig {
    /// Longest wait for a request's whole header; it also bounds the wait for the next request
    /// on an idle keep-alive connection. Then the connection is closed.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// A request body must arrive in full within this long of its header; else 408 and close
    #[serde(with = "duration")]
    pub body_read_timeout: Duration,
    /// Client sockets open at once (0: derived from `RLIMIT_NOFILE` at start, see
    /// [`crate::ingress::derive_max_client_sockets`]); one more is refused with 503
    pub max_client_sockets: usize,
    /// Descriptors a derived `max_client_sockets` leaves to everything that is not a client or
    /// upstream socket: the listener, logs, Redis, DNS, refusals on their way out
    pub reserved_fds: usize,
    /// Client connections open at once that have not yet presented a valid key; a new one
    /// beyond this closes the oldest of them
    pub max_unauthenticated_connections: usize,
    /// Pause of the accept loop after the process or system ran out of descriptors
    #[serde(with = "duration")]
    pub accept_error_backoff: Duration,
    /// `Retry-After` of the 503 that refuses a connection over `max_client_sockets`
    #[serde(with = "duration")]
    pub busy_retry_after: Duration,
    /// Least time between two log lines of one kind that clients can trigger; the lines in
    /// between are counted and the count rides on the next one written
    #[serde(with = "duration")]
    pub client_log_interval: Duration,
    /// Whether `/readyz` also needs an upstream account to be usable. Off by default: in a full
    /// upstream outage every replica going unready would replace the gateway's own answer
    /// (an error with `Retry-After`) with a load balancer's bare 503
    pub ready_requires_upstream: bool,
    /// Connections the admin listener (`admin_listen`) serves at once; one more is closed at once
    pub max_admin_connections: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_client_sockets: 0,
            reserved_fds: 32,
            max_unauthenticated_connections: 1024,
            accept_error_backoff: Duration::from_millis(50),
            busy_retry_after: Duration::from_secs(1),
            client_log_interval: Duration::from_secs(1),
            ready_requires_upstream: false,
            max_admin_connections: 16,
        }
    }
}

/// What clients may add to the metrics (label values they choose, such as the model name, come
/// from a bounded set, see [`crate::metrics::labels`]), and the OpenTelemetry trace export
/// (one span per response over OTLP/HTTP; the standard `OTEL_*` variables override these
/// keys, see [`crate::file_config::TraceExport`])
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Client model names, besides the accounts' `model_map` keys, that may become a `model`
    /// label of their own; every other name is counted as `other`
    pub max_model_labels: usize,
    /// Responses a model name needs before it takes one of the `max_model_labels` places (its
    /// earlier responses stay counted as `other`)
    pub model_label_min_responses: u64,
    /// (client key, account, model) combinations the token counter keeps apart; a response
    /// of a new combination beyond this counts under `client="other", model="other"` of its account
    pub max_usage_series: usize,
    /// OTLP/HTTP traces URL (`http://collector:4318/v1/traces`); empty: no spans are exported
    pub traces_endpoint: String,
    /// `service.name` of the exported spans
    pub service_name: String,
    /// Spans waiting for export at most; a span ended while the queue is full is dropped and
    /// counted (a slow or absent collector never holds up a turn)
    pub span_queue: usize,
    /// Spans per export request at most
    pub span_batch: usize,
    /// Longest wait before a partly filled batch is exported
    #[serde(with = "duration")]
    pub export_interval: Duration,
    /// Bound on one export request (connect, send, answer); its spans are dropped and counted
    /// when it passes
    #[serde(with = "duration")]
    pub export_timeout: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            max_model_labels: 16,
            model_label_min_responses: 3,
            max_usage_series: 1000,
            traces_endpoint: String::new(),
            service_name: "wsv2-gateway".to_owned(),
            span_queue: 2048,
            span_batch: 512,
            export_interval: Duration::from_secs(2),
            export_timeout: Duration::from_secs(10),
        }
    }
}
