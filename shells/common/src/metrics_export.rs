//! `GET /metrics`: the core's metric names ([`wsv2_core::metrics`]) exported with
//! `prometheus-client` in the OpenMetrics text format.
//!
//! Three sources feed it:
//! - **handles** held by tasks (counters, histograms), resolved once per session or turn and
//!   bumped there — never a lookup per event;
//! - **per-event overhead** in the session's [`LocalHistogram`](wsv2_core::metrics::LocalHistogram),
//!   merged once per turn into the [`SharedHistogram`]s here;
//! - **control snapshots** (pool and store state) the `/metrics` handler asks the control task
//!   for on each scrape, so the control task does no metric work per turn.
//!
//! Labels hold account names, client model names and enum labels only: never keys, credentials
//! or prompt content. A client's model name becomes a label through the core's
//! [`ModelLabels`] (sanitized, bounded: the `model_map` keys, at most `telemetry.max_model_labels`
//! names clients use, the rest `other`), decided once per response. Counter names lose their `_total` suffix at registration because the
//! OpenMetrics encoder adds it back.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use wsv2_core::config::TelemetryConfig;
use wsv2_core::metrics::labels::UsageSeries;
use wsv2_core::metrics::{
    self as names, AcquireResult, BUCKET_BOUNDS_SECONDS, MetricDef, SharedHistogram,
};
use wsv2_core::pool::{CloseReason, PoolStats};
use wsv2_core::store::{RequestKind, StoreFailure, StoreStats};

/// One series' labels: (name, value) in the order of the metric's definition
pub(crate) type Labels = Vec<(&'static str, String)>;

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(BUCKET_BOUNDS_SECONDS)
}

/// A client transport, the `transport` label
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientTransport {
    /// A client WebSocket session
    Ws,
    /// `POST /v1/responses`
    Http,
}

impl ClientTransport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Http => "http",
        }
    }
}

/// What the control task reports on each scrape
#[derive(Clone, Debug, Default)]
pub(crate) struct ControlSnapshot {
    /// (account name, its pool stats) for every account with a pool
    pub(crate) pools: Vec<(String, PoolStats)>,
    /// (account name, its state) for every account
    pub(crate) accounts: Vec<(String, wsv2_core::control::AccountState)>,
    /// The store machine's counters
    pub(crate) store: StoreStats,
    /// Whether the store breaker is open
    pub(crate) breaker_open: bool,
}

/// Every exported series of one gateway process
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    sessions_total: Counter,
    responses: Family<Labels, Counter>,
    cut_at_conn_limit: Family<Labels, Counter>,
    tokens: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    cooldowns: Family<Labels, Counter>,
    store_errors: Family<Labels, Counter>,
    store_timeouts: Family<Labels, Counter>,
    bind_failures: Family<Labels, Counter>,
    store_op: HistogramFamily,
    time_to_first_event: HistogramFamily,
    dial: HistogramFamily,
    overhead_event: [Arc<SharedHistogram>; 2],
    overhead_turn: [Arc<SharedHistogram>; 2],
    control: Arc<ControlCollector>,
    spans: crate::traces::SpanCounters,
    /// The core's choice of `key` and `model` labels (held for one decision, never across an
    /// await)
    usage: Mutex<UsageSeries>,
}

/// `pairs` as one series' labels
fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.map(|(name, value)| (name, value.to_owned())).into()
}

/// Adds one to the series of `family` labelled `pairs`
fn inc<const N: usize>(family: &Family<Labels, Counter>, pairs: [(&'static str, &str); N]) {
    family.get_or_create(&labels(pairs)).inc();
}

/// Registers `metric` under `def`'s name (a counter's without `_total`, which the encoder adds
/// back) and help; returns a handle to it
fn register<M: Metric + Clone>(registry: &mut Registry, def: &MetricDef, metric: M) -> M {
    registry.register(counter_name(def), def.help, metric.clone());
    metric
}

fn counter_name(def: &MetricDef) -> &'static str {
    def.name.strip_suffix("_total").unwrap_or(def.name)
}

impl Metrics {
    /// A registry with every metric of the core registered; `models` (the configuration's
    /// `model_map` keys) are `model` labels of their own
    pub(crate) fn new(telemetry: &TelemetryConfig, models: &[&str]) -> Self {
        let mut registry = Registry::default();
        let sessions_open = register(&mut registry, &names::SESSIONS_OPEN, Gauge::default());
        let sessions_total = register(&mut registry, &names::SESSIONS_TOTAL, Counter::default());
        let mut counter = |def| register(&mut registry, def, Family::<Labels, Counter>::default());
        let responses = counter(&names::RESPONSES_TOTAL);
        let cut_at_conn_limit = counter(&names::RESPONSES_CUT_AT_CONN_LIMIT_TOTAL);
        let tokens = counter(&names::TOKENS_TOTAL);
        let retries = counter(&names::RETRIES_TOTAL);
        let failovers = counter(&names::FAILOVERS_TOTAL);
        let cooldowns = counter(&names::COOLDOWNS_TOTAL);
        let store_errors = counter(&names::STORE_ERRORS_TOTAL);
        let store_timeouts = counter(&names::STORE_TIMEOUTS_TOTAL);
        let bind_failures = counter(&names::BIND_FAILURES_TOTAL);
        let spans_dropped = counter(&names::SPANS_DROPPED_TOTAL);
        let mut histogram = |def| {
            let family: HistogramFamily = Family::new_with_constructor(new_histogram);
            register(&mut registry, def, family)
        };
        let store_op = histogram(&names::STORE_OP_SECONDS);
        let time_to_first_event = histogram(&names::TIME_TO_FIRST_EVENT_SECONDS);
        let dial = histogram(&names::DIAL_SECONDS);
        let spans_exported = register(
            &mut registry,
            &names::SPANS_EXPORTED_TOTAL,
            Counter::default(),
        );
        // One call each: a family's guard held while creating another label deadlocks (the
        // guard of `get_or_create` ends with the closure's call).
        let dropped = |reason: &str| -> Counter {
            spans_dropped
                .get_or_create(&labels([("reason", reason)]))
                .clone()
        };
        let spans = crate::traces::SpanCounters {
            exported: spans_exported,
            dropped_queue_full: dropped("queue_full"),
            dropped_export_failed: dropped("export_failed"),
        };
        let overhead_event = [Arc::default(), Arc::default()];
        let overhead_turn = [Arc::default(), Arc::default()];
        registry.register_collector(Box::new(OverheadCollector {
            event: overhead_event.clone(),
            turn: overhead_turn.clone(),
        }));
        let control = Arc::new(ControlCollector::default());
        registry.register_collector(Box::new(control.clone()));
        #[cfg(feature = "alloc-count")]
        registry.register_collector(Box::new(AllocationsCollector));
        Self {
            registry,
            sessions_open,
            sessions_total,
            responses,
            cut_at_conn_limit,
            tokens,
            retries,
            failovers,
            cooldowns,
            store_errors,
            store_timeouts,
            bind_failures,
            store_op,
            time_to_first_event,
            dial,
            overhead_event,
            overhead_turn,
            control,
            spans,
            usage: Mutex::new(UsageSeries::new(telemetry, models.iter().copied())),
        }
    }

    /// The `wsv2_spans_*` counters, for the trace exporter and the tasks that feed it
    pub(crate) fn span_counters(&self) -> crate::traces::SpanCounters {
        self.spans.clone()
    }

    /// A reload changed the configured models
    pub(crate) fn set_configured_models(&self, models: &[&str]) {
        self.usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .models_mut()
            .set_configured(models.iter().copied());
    }

    /// A client session opened
    pub(crate) fn session_opened(&self) {
        self.sessions_open.inc();
        self.sessions_total.inc();
    }

    /// A client session ended
    pub(crate) fn session_closed(&self) {
        self.sessions_open.dec();
    }

    /// The handles one turn or session needs, resolved once
    pub(crate) fn turn_handles(&self, transport: ClientTransport) -> TurnHandles {
        let t = labels([("transport", transport.as_str())]);
        TurnHandles {
            transport,
            time_to_first_event: self.time_to_first_event.get_or_create_owned(&t),
            failovers: self.failovers.get_or_create_owned(&t),
            cut_at_conn_limit: self.cut_at_conn_limit.get_or_create_owned(&t),
            overhead_event: self.overhead_event[transport as usize].clone(),
            overhead_turn: self.overhead_turn[transport as usize].clone(),
        }
    }

    /// A response of client key `key` ended with `outcome` (its `Outcome::as_str`)
    pub(crate) fn response_ended(&self, transport: ClientTransport, outcome: &str, key: &str) {
        inc(
            &self.responses,
            [
                ("transport", transport.as_str()),
                ("outcome", outcome),
                ("client", key),
            ],
        );
    }

    /// Tokens of one response, by client key, account name and the client's model, each
    /// label as the core's [`UsageSeries`] bounds it
    pub(crate) fn tokens(
        &self,
        key: &Arc<str>,
        account: &str,
        model: Option<&[u8]>,
        usage: &wsv2_core::event::Usage,
    ) {
        let account: Arc<str> = Arc::from(account);
        let labels = self
            .usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .labels(key, &account, model);
        for kind in names::TokenKind::ALL {
            let n = kind.of(usage);
            if n > 0 {
                self.tokens
                    .get_or_create(&vec![
                        ("client", labels.key.to_string()),
                        ("account", account.to_string()),
                        ("model", labels.model.to_string()),
                        ("kind", kind.as_str().to_owned()),
                    ])
                    .inc_by(n);
            }
        }
    }

    /// A retry before the first event reached the client
    pub(crate) fn retry(&self, transport: ClientTransport, failure: &str) {
        let labels = [("transport", transport.as_str()), ("failure", failure)];
        inc(&self.retries, labels);
    }

    /// An account cooldown (counted when the control plane reports it)
    pub(crate) fn cooldown(&self, account: &str) {
        inc(&self.cooldowns, [("account", account)]);
    }

    /// A dial took `seconds`
    pub(crate) fn dial(&self, account: &str, seconds: f64) {
        self.dial
            .get_or_create(&labels([("account", account)]))
            .observe(seconds);
    }

    /// One store command of `kind`, run since `started`: its latency, and its failure if any
    /// (a timeout, or an error)
    pub(crate) fn store_op(
        &self,
        kind: &RequestKind,
        started: Instant,
        result: &Result<Option<String>, StoreFailure>,
    ) {
        let op = match kind {
            RequestKind::Get { .. } => "get",
            RequestKind::Set { .. } => "set",
            RequestKind::Delete { .. } => "delete",
            RequestKind::Expire { .. } => "expire",
        };
        let labels = labels([("op", op)]);
        let seconds = started.elapsed().as_secs_f64();
        self.store_op.get_or_create(&labels).observe(seconds);
        match result {
            Ok(_) => 0,
            Err(StoreFailure::TimedOut) => self.store_timeouts.get_or_create(&labels).inc(),
            Err(_) => self.store_errors.get_or_create(&labels).inc(),
        };
    }

    /// A binding could not be written to the store
    pub(crate) fn bind_failure(&self, kind: &str) {
        inc(&self.bind_failures, [("kind", kind)]);
    }

    /// The OpenMetrics text of every series, with `snapshot` as the control plane's state
    pub(crate) fn render(&self, snapshot: ControlSnapshot) -> String {
        *self.control.0.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an encoder error would be a bug in a collector.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("metrics encoding failed");
        }
        out
    }
}

/// Metric handles of one turn (HTTP) or one session (WebSocket), resolved once
#[derive(Clone, Debug)]
pub(crate) struct TurnHandles {
    /// Which transport they count for
    pub(crate) transport: ClientTransport,
    /// Create sent → first event
    pub(crate) time_to_first_event: Histogram,
    /// Retries that switched account
    pub(crate) failovers: Counter,
    /// Responses still open when upstream cut their conn at its connection limit
    pub(crate) cut_at_conn_limit: Counter,
    /// Where the per-event local histogram merges once per turn
    pub(crate) overhead_event: Arc<SharedHistogram>,
    /// Where the per-turn overhead merges
    pub(crate) overhead_turn: Arc<SharedHistogram>,
}

/// Encodes the core's lock-free overhead histograms (merged once per turn by the tasks)
#[derive(Debug)]
struct OverheadCollector {
    event: [Arc<SharedHistogram>; 2],
    turn: [Arc<SharedHistogram>; 2],
}

impl Collector for OverheadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (def, set) in [
            (&names::OVERHEAD_EVENT_SECONDS, &self.event),
            (&names::OVERHEAD_TURN_SECONDS, &self.turn),
        ] {
            let mut metric =
                encoder.encode_descriptor(def.name, def.help, None, MetricType::Histogram)?;
            for transport in [ClientTransport::Ws, ClientTransport::Http] {
                let snap = set[transport as usize].snapshot();
                // The encoder wants per-bucket counts and accumulates them itself.
                let mut buckets = Vec::with_capacity(snap.buckets.len() + 1);
                let mut previous = 0;
                for (le, cumulative) in &snap.buckets {
                    buckets.push((*le, cumulative - previous));
                    previous = *cumulative;
                }
                buckets.push((f64::INFINITY, snap.count - previous));
                let labels = vec![("transport", transport.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<Vec<(&str, &str)>>(
                        snap.sum_seconds,
                        snap.count,
                        &buckets,
                        None,
                    )?;
            }
        }
        Ok(())
    }
}

/// Encodes the process's heap allocations so far and the bytes it holds (`alloc-count` builds,
/// for the benchmark and the reliability soak)
#[cfg(feature = "alloc-count")]
#[derive(Debug)]
struct AllocationsCollector;

#[cfg(feature = "alloc-count")]
impl Collector for AllocationsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = encoder.encode_descriptor(
            "wsv2_process_heap_allocations",
            "Heap allocations and reallocations by the process (alloc-count builds only)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(crate::alloc_count::allocations()).encode(m)?;
        let m = encoder.encode_descriptor(
            "wsv2_process_heap_live_bytes",
            "Heap bytes allocated and not yet freed (alloc-count builds only)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(crate::alloc_count::live_bytes() as i64).encode(m)?;
        let Some(held) = crate::alloc_count::allocator_held() else {
            return Ok(());
        };
        let m = encoder.encode_descriptor(
            "wsv2_process_heap_allocator_mapped_bytes",
            "Heap bytes the system allocator obtained from the kernel (alloc-count builds only)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(held.mapped as i64).encode(m)?;
        let m = encoder.encode_descriptor(
            "wsv2_process_heap_allocator_free_bytes",
            "Heap bytes freed and kept by the system allocator (alloc-count builds only)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(held.free as i64).encode(m)
    }
}

/// Encodes the control plane's state as of the scrape
#[derive(Debug, Default)]
struct ControlCollector(Mutex<ControlSnapshot>);

impl Collector for ControlCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let def = &names::POOL_CONNS;
        let mut m = encoder.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
        for (account, s) in &snap.pools {
            for (state, n) in [
                ("open", s.open),
                ("idle", s.idle),
                ("leased", s.leased),
                ("creating", s.dialing),
                ("held", s.held),
            ] {
                let labels = vec![("account", account.as_str()), ("state", state)];
                ConstGauge::new(n as i64).encode(m.encode_family(&labels)?)?;
            }
        }
        let def = &names::POOL_WAITERS;
        let mut m = encoder.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
        for (account, s) in &snap.pools {
            let labels = vec![("account", account.as_str())];
            ConstGauge::new(s.waiters as i64).encode(m.encode_family(&labels)?)?;
        }
        let def = &names::POOL_ACQUIRES_TOTAL;
        let mut m =
            encoder.encode_descriptor(counter_name(def), def.help, None, MetricType::Counter)?;
        for (account, s) in &snap.pools {
            for (result, n) in [
                (AcquireResult::Reused, s.reuses),
                (AcquireResult::Dialed, s.dials),
                (AcquireResult::Queued, s.queued),
                (AcquireResult::QueueFull, s.queue_full),
                (AcquireResult::Timeout, s.acquire_timeouts),
            ] {
                let labels = vec![("account", account.as_str()), ("result", result.as_str())];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        let def = &names::POOL_CLOSES_TOTAL;
        let mut m =
            encoder.encode_descriptor(counter_name(def), def.help, None, MetricType::Counter)?;
        for (account, s) in &snap.pools {
            for reason in CloseReason::ALL {
                let labels = vec![
                    ("account", account.as_str()),
                    ("reason", names::close_reason_label(reason)),
                ];
                ConstCounter::new(s.closes_for(reason)).encode(m.encode_family(&labels)?)?;
            }
        }
        let def = &names::ACCOUNT_USABLE;
        let mut m = encoder.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
        for (account, state) in &snap.accounts {
            let usable = matches!(state, wsv2_core::control::AccountState::Usable);
            let labels = vec![("account", account.as_str())];
            ConstGauge::new(i64::from(usable)).encode(m.encode_family(&labels)?)?;
        }
        let def = &names::STORE_BREAKER_OPEN;
        let m = encoder.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
        ConstGauge::new(i64::from(snap.breaker_open)).encode(m)?;
        let m = encoder.encode_descriptor(
            "wsv2_store_breaker_opened",
            "Times the state store breaker opened",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(snap.store.breaker_opened).encode(m)?;
        let m = encoder.encode_descriptor(
            "wsv2_store_lookup_gets",
            "Store gets sent for routing lookups (at most one per decision)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(snap.store.gets).encode(m)?;
        let m = encoder.encode_descriptor(
            "wsv2_store_breaker_misses",
            "Lookups answered Miss at once because the breaker was open",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(snap.store.breaker_misses).encode(m)?;
        Ok(())
    }
}
