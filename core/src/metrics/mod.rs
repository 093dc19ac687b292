//! Metric names, label sets and the session-local histogram: one place both shells use.
//!
//! No exporter here: the shells register [`ALL`] with theirs (`metrics` +
//! `metrics-exporter-prometheus`, or `prometheus-client`), resolve the handles once per session
//! (never per event), and read label values from the `as_str` of the core's own enums
//! ([`Transport`](crate::resolver::Transport), [`Outcome`](crate::conn::Outcome),
//! [`GiveUpReason`](crate::scheduler::GiveUpReason), …) or from the mappings below. Labels
//! never hold credentials, keys or prompt content: accounts are named by their configured
//! name, models by the client's model name as [`labels::ModelLabels`] bounds and sanitizes it
//! (the `model_map` keys, a few names clients use most, the rest `other`).
//!
//! The per-event gateway overhead is recorded into a [`LocalHistogram`] owned by the session
//! (fixed log buckets, no allocation, no atomics) and merged once per turn into the process's
//! [`SharedHistogram`], which the `/metrics` handler renders.

pub mod labels;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::pool::CloseReason;

/// What kind of series a metric is
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up
    Counter,
    /// Goes up and down
    Gauge,
    /// Distribution in seconds ([`BUCKET_BOUNDS_SECONDS`])
    Histogram,
}

/// One metric: name, help text, kind and label names
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// Prometheus name
    pub name: &'static str,
    /// `# HELP` text
    pub help: &'static str,
    /// Series kind
    pub kind: MetricKind,
    /// Label names, in this order
    pub labels: &'static [&'static str],
}

macro_rules! metrics {
    ($($(#[$doc:meta])* $id:ident = $name:literal, $kind:ident, [$($label:literal),*], $help:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $id: MetricDef = MetricDef {
                name: $name,
                help: $help,
                kind: MetricKind::$kind,
                labels: &[$($label),*],
            };
        )*
        /// Every metric, for registration
        pub const ALL: &[MetricDef] = &[$($id),*];
    };
}

metrics! {
    /// Client WebSocket sessions open now
    SESSIONS_OPEN = "wsv2_sessions_open", Gauge, [], "Client WebSocket sessions open now";
    /// Client WebSocket sessions accepted
    SESSIONS_TOTAL = "wsv2_sessions_total", Counter, [], "Client WebSocket sessions accepted";
    /// Responses that ended, by client transport (`ws`, `http`) and `Outcome::as_str`
    RESPONSES_TOTAL = "wsv2_responses_total", Counter, ["transport", "outcome", "client"], "Responses ended, by client transport, outcome and client key name";
    /// Responses still open when upstream cut their conn at its connection limit (60 minutes):
    /// they got upstream's `websocket_connection_limit_reached` error (or lost their conn at
    /// `upstream.connection_limit`); by client transport
    RESPONSES_CUT_AT_CONN_LIMIT_TOTAL = "wsv2_responses_cut_at_conn_limit_total", Counter, ["transport"], "Responses still open when upstream cut their conn at its connection limit, by client transport";
    /// Pool conns by state: `open`, `idle`, `leased`, `creating`
    POOL_CONNS = "wsv2_pool_conns", Gauge, ["account", "state"], "Upstream conns of the account's pool, by state";
    /// Holders waiting for a conn
    POOL_WAITERS = "wsv2_pool_waiters", Gauge, ["account"], "Holders waiting for a conn of the account";
    /// Acquires by [`AcquireResult`]
    POOL_ACQUIRES_TOTAL = "wsv2_pool_acquires_total", Counter, ["account", "result"], "Conn acquires by result";
    /// Pool closes by [`close_reason_label`]
    POOL_CLOSES_TOTAL = "wsv2_pool_closes_total", Counter, ["account", "reason"], "Conns closed by the pool, by reason";
    /// Dial (TCP + TLS + upgrade) latency
    DIAL_SECONDS = "wsv2_dial_seconds", Histogram, ["account"], "Upstream dial latency";
    /// Create sent → first upstream event
    TIME_TO_FIRST_EVENT_SECONDS = "wsv2_time_to_first_event_seconds", Histogram, ["transport"], "Create sent to first upstream event";
    /// Time inside the gateway per relayed event (receive → send)
    OVERHEAD_EVENT_SECONDS = "wsv2_gateway_overhead_event_seconds", Histogram, ["transport"], "Time inside the gateway per relayed event";
    /// Time inside the gateway per turn (sum over its events and its create)
    OVERHEAD_TURN_SECONDS = "wsv2_gateway_overhead_turn_seconds", Histogram, ["transport"], "Time inside the gateway per turn";
    /// Tokens by [`TokenKind`]
    TOKENS_TOTAL = "wsv2_tokens_total", Counter, ["client", "account", "model", "kind"], "Tokens by client key name, account, client model and kind";
    /// Retries of responses before their first event reached the client
    RETRIES_TOTAL = "wsv2_retries_total", Counter, ["transport", "failure"], "Retries by client transport and failure";
    /// Retries that moved to another account
    FAILOVERS_TOTAL = "wsv2_failovers_total", Counter, ["transport"], "Retries that switched account";
    /// Account cooldowns started
    COOLDOWNS_TOTAL = "wsv2_cooldowns_total", Counter, ["account"], "Account cooldowns started";
    /// Store command latency by op (`get`, `set`, `delete`, `expire`)
    STORE_OP_SECONDS = "wsv2_store_op_seconds", Histogram, ["op"], "State store command latency";
    /// Store commands that failed
    STORE_ERRORS_TOTAL = "wsv2_store_errors_total", Counter, ["op"], "State store commands that failed";
    /// Store commands that timed out
    STORE_TIMEOUTS_TOTAL = "wsv2_store_timeouts_total", Counter, ["op"], "State store commands that timed out";
    /// Whether the account takes new sessions now (1) or is cooling or disabled (0)
    ACCOUNT_USABLE = "wsv2_account_usable", Gauge, ["account"], "Account usable now (1) or cooling down or disabled (0)";
    /// Store breaker: 1 open, 0 closed
    STORE_BREAKER_OPEN = "wsv2_store_breaker_open", Gauge, [], "State store breaker open (1) or closed (0)";
    /// Bindings that could not be written to the store
    BIND_FAILURES_TOTAL = "wsv2_bind_failures_total", Counter, ["kind"], "Bindings not written to the store (response, session)";
    /// Response spans the trace collector accepted
    SPANS_EXPORTED_TOTAL = "wsv2_spans_exported_total", Counter, [], "Response spans the trace collector accepted";
    /// Response spans not exported: `queue_full` (the export queue was full when the response
    /// ended) or `export_failed` (the collector refused, failed or timed out)
    SPANS_DROPPED_TOTAL = "wsv2_spans_dropped_total", Counter, ["reason"], "Response spans not exported, by reason (queue_full, export_failed)";
}

/// `result` of [`POOL_ACQUIRES_TOTAL`]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcquireResult {
    /// An idle conn was leased again
    Reused,
    /// A conn was dialed for the holder
    Dialed,
    /// The holder waited in a queue
    Queued,
    /// Every queue was full
    QueueFull,
    /// The wait ran out
    Timeout,
}

impl AcquireResult {
    /// The label value
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reused => "reused",
            Self::Dialed => "dialed",
            Self::Queued => "queued",
            Self::QueueFull => "queue_full",
            Self::Timeout => "timeout",
        }
    }
}

/// `kind` of [`TOKENS_TOTAL`]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `input_tokens`
    Input,
    /// `input_tokens_details.cached_tokens`
    Cached,
    /// `output_tokens`
    Output,
    /// `output_tokens_details.reasoning_tokens`
    Reasoning,
}

impl TokenKind {
    /// Every kind, in label order
    pub const ALL: [Self; 4] = [Self::Input, Self::Cached, Self::Output, Self::Reasoning];

    /// The label value
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Cached => "cached",
            Self::Output => "output",
            Self::Reasoning => "reasoning",
        }
    }

    /// This kind's count in `usage`
    pub fn of(self, usage: &crate::event::Usage) -> u64 {
        match self {
            Self::Input => usage.input_tokens,
            Self::Cached => usage.cached_tokens,
            Self::Output => usage.output_tokens,
            Self::Reasoning => usage.reasoning_tokens,
        }
    }
}

/// `reason` of [`POOL_CLOSES_TOTAL`] for a pool close: the issue's `dirty`, `tail`, `ping`,
/// `age`, `idle`, `max_idle`, plus `lane_limit`, `incompatible`, `session_age` and
/// `account_removed`
pub fn close_reason_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::NotReusable => "dirty",
        CloseReason::Dirty => "tail",
        CloseReason::PongTimeout => "ping",
        CloseReason::MaxAge => "age",
        CloseReason::IdleTimeout => "idle",
        CloseReason::IdleSurplus => "max_idle",
        CloseReason::LaneLimit => "lane_limit",
        CloseReason::Incompatible => "incompatible",
        CloseReason::SessionAge => "session_age",
        CloseReason::AccountRemoved => "account_removed",
    }
}

/// Buckets of every histogram: 1 µs doubling to ~16.8 s (25 bounds), then `+Inf`
pub const BUCKETS: usize = 25;

/// The finite upper bounds, in seconds (`le` labels)
pub const BUCKET_BOUNDS_SECONDS: [f64; BUCKETS] = {
    let mut bounds = [0.0; BUCKETS];
    let mut i = 0;
    while i < BUCKETS {
        bounds[i] = (1u64 << i) as f64 * 1e-6;
        i += 1;
    }
    bounds
};

/// Index of the bucket holding `d` (`BUCKETS` = `+Inf`)
fn bucket_of(nanos: u64) -> usize {
    let micros = nanos.div_ceil(1000);
    if micros <= 1 {
        return 0;
    }
    // Smallest i with micros <= 2^i.
    let i = (64 - (micros - 1).leading_zeros()) as usize;
    i.min(BUCKETS)
}

/// `d` in nanoseconds, saturating (585 years): 64-bit arithmetic on the per-event path, where
/// `Duration::as_nanos`' 128 bits cost a division by a constant that the compiler cannot make a
/// multiplication
fn nanos(d: Duration) -> u64 {
    (d.as_secs().saturating_mul(1_000_000_000)).saturating_add(u64::from(d.subsec_nanos()))
}

/// A histogram owned by one session or turn: plain counters, no allocation, no atomics
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalHistogram {
    counts: [u64; BUCKETS + 1],
    sum_nanos: u64,
}

impl LocalHistogram {
    /// Records one observation (the per-event path: a few integer operations)
    pub fn record(&mut self, d: Duration) {
        let nanos = nanos(d);
        self.counts[bucket_of(nanos)] += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
    }

    /// Observations recorded since the last merge
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations since the last merge
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// Adds everything into `target` and starts over (once per turn)
    pub fn merge_into(&mut self, target: &SharedHistogram) {
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                target.counts[i].fetch_add(n, Ordering::Relaxed);
            }
        }
        target
            .sum_nanos
            .fetch_add(self.sum_nanos, Ordering::Relaxed);
        *self = Self::default();
    }
}

/// The process-wide histogram a [`LocalHistogram`] merges into (shared by reference, lock-free)
#[derive(Debug, Default)]
pub struct SharedHistogram {
    counts: [AtomicU64; BUCKETS + 1],
    sum_nanos: AtomicU64,
}

/// A point-in-time copy of a [`SharedHistogram`], in Prometheus terms
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(le, cumulative count)` for every finite bound
    pub buckets: Vec<(f64, u64)>,
    /// `_count` (the `+Inf` bucket)
    pub count: u64,
    /// `_sum` in seconds
    pub sum_seconds: f64,
}

impl SharedHistogram {
    /// Cumulative buckets, count and sum (for the `/metrics` handler; allocates)
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS);
        for (i, bound) in BUCKET_BOUNDS_SECONDS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.counts[BUCKETS].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
