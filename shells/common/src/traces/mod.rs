//! OpenTelemetry traces: one span per response, exported over OTLP/HTTP protobuf.
//!
//! ```text
//!  session / HTTP task ──ResponseReport──▶ span_of ──try_send──▶ [bounded queue] ──▶ exporter task
//!   (once per response,                                 │ full: dropped,          batches of
//!    never per event)                                   ▼ counted queue_full      span_batch or
//!                                                                                 export_interval,
//!                                                                                 one POST at a time
//! ```
//!
//! The session task never waits on the collector: it builds one small record when a response
//! ends and hands it over with `try_send`. The exporter task owns the batch and the HTTP
//! request; while it waits on a slow or absent collector (at most `export_timeout`) the queue
//! fills and later spans are dropped and counted, so memory stays within `span_queue` spans
//! plus one batch. No span carries a credential, a prompt or a frame body: only names, ids,
//! counts and times (the shells suite checks the exported bytes).

mod otlp;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use wsv2_core::config::TelemetryConfig;
use wsv2_core::conn::Outcome;
use wsv2_core::file_config::TraceExport;
use wsv2_core::trace_context::TraceContext;
use wsv2_core::turn::ResponseReport;
use wsv2_core::{AccountId, SessionId};

use crate::runtime::{Clock, Rt, spawn, timeout};
use crate::upstream::{DialRoute, UpstreamTls, open_stream};

/// Longest text attribute (client-chosen model names are cut here)
const MAX_ATTR_LEN: usize = 256;

/// An attribute value
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValue {
    Str(Box<str>),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl AttrValue {
    fn text(s: &str) -> Self {
        let mut end = s.len().min(MAX_ATTR_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self::Str(s[..end].into())
    }

    fn lossy(b: &[u8]) -> Self {
        Self::text(&String::from_utf8_lossy(&b[..b.len().min(MAX_ATTR_LEN)]))
    }
}

/// A span event (a retry or failover)
#[derive(Debug)]
pub(crate) struct SpanEvent {
    time_ns: u64,
    name: &'static str,
    attributes: Vec<(&'static str, AttrValue)>,
}

/// One ended response's span, as the exporter encodes it
#[derive(Debug)]
pub(crate) struct SpanRecord {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    start_ns: u64,
    end_ns: u64,
    attributes: Vec<(&'static str, AttrValue)>,
    events: Vec<SpanEvent>,
    /// `Some(outcome)` when the response did not end well (status ERROR)
    error: Option<&'static str>,
}

/// Who a holder's responses are counted and traced for
pub(crate) struct Labels {
    /// The client key's name (log lines, metric labels; never the key)
    pub(crate) key_name: Arc<str>,
    pub(crate) account_names: Arc<HashMap<AccountId, String>>,
    /// Where response spans go (`None` when traces are not exported)
    pub(crate) traces: Option<TraceSink>,
    /// The client's `traceparent` header (the upgrade's or the POST's): the parent of spans
    /// whose create names none
    pub(crate) trace_header: Option<TraceContext>,
}

impl Labels {
    /// An account's name (`?` for one not known)
    pub(crate) fn account(&self, account: &AccountId) -> &str {
        self.account_names.get(account).map_or("?", String::as_str)
    }

    /// The response's span to the exporter (once per response; never waits, drops and counts
    /// the span when the queue is full); `transport` is `websocket` or `http`
    pub(crate) fn export_span(
        &self,
        transport: &'static str,
        id: SessionId,
        r: &ResponseReport,
        now: Instant,
    ) {
        let Some(sink) = &self.traces else {
            return;
        };
        if let Some(span) = span_of(r, transport, id, self, now)
            && sink.tx.try_send(span).is_err()
        {
            sink.counters.dropped_queue_full.inc();
        }
    }
}

/// The span of one ended response; `None` when the client's trace context says it did not
/// sample its span (the standard parent-based sampler)
fn span_of(
    r: &ResponseReport,
    transport: &'static str,
    id: SessionId,
    labels: &Labels,
    now: Instant,
) -> Option<SpanRecord> {
    // The create's client_metadata is more specific than the connection's header.
    let parent = r.trace_parent.or(labels.trace_header);
    if parent.is_some_and(|p| !p.sampled()) {
        return None;
    }
    let wall_now = unix_nanos(SystemTime::now());
    let at =
        |instant: Instant| wall_now.saturating_sub(nanos(now.saturating_duration_since(instant)));
    let account = |id: &AccountId| AttrValue::text(labels.account(id));
    let mut attributes = vec![
        ("wsv2.transport", AttrValue::Str(transport.into())),
        ("wsv2.session", AttrValue::Int(id.0 as i64)),
        ("wsv2.client_key", AttrValue::text(&labels.key_name)),
        ("wsv2.account", account(&r.account)),
        ("wsv2.conn", AttrValue::Int(r.conn.0 as i64)),
        ("wsv2.outcome", AttrValue::Str(r.outcome.as_str().into())),
        ("wsv2.retries", AttrValue::Int(r.retries.len() as i64)),
        ("gen_ai.system", AttrValue::Str("openai".into())),
    ];
    if let Some(lane) = &r.lane {
        attributes.push(("wsv2.lane", AttrValue::text(lane.as_str())));
    }
    if let Some(model) = &r.model {
        attributes.push(("gen_ai.request.model", AttrValue::lossy(model)));
    }
    if let Some(model) = r.upstream_model.as_ref().or(r.model.as_ref()) {
        attributes.push(("wsv2.upstream_model", AttrValue::lossy(model)));
    }
    if let Some(id) = &r.response {
        attributes.push(("gen_ai.response.id", AttrValue::text(id.as_str())));
    }
    if let Some(u) = &r.usage {
        for (name, tokens) in [
            ("gen_ai.usage.input_tokens", u.input_tokens),
            ("gen_ai.usage.output_tokens", u.output_tokens),
            ("wsv2.usage.cached_tokens", u.cached_tokens),
            ("wsv2.usage.reasoning_tokens", u.reasoning_tokens),
            ("wsv2.usage.total_tokens", u.total_tokens),
        ] {
            attributes.push((name, AttrValue::Int(tokens as i64)));
        }
    }
    if let Some(ttfe) = r.time_to_first_event {
        attributes.push((
            "wsv2.time_to_first_event_ms",
            AttrValue::Double(ttfe.as_secs_f64() * 1000.0),
        ));
    }
    if let Outcome::Error { status, .. } = r.outcome {
        attributes.push(("wsv2.error_status", AttrValue::Int(i64::from(status))));
    }
    if r.successor {
        attributes.push(("wsv2.successor", AttrValue::Bool(true)));
    }
    if r.drained {
        attributes.push(("wsv2.drained", AttrValue::Bool(true)));
    }
    let events = r
        .retries
        .iter()
        .map(|note| SpanEvent {
            time_ns: at(note.at),
            name: if note.switch_account {
                "failover"
            } else {
                "retry"
            },
            attributes: vec![
                ("wsv2.failure", AttrValue::Str(note.failure.as_str().into())),
                ("wsv2.account", account(&note.account)),
            ],
        })
        .collect();
    let (trace_id, parent) = match parent {
        Some(p) => (p.trace_id, Some(p.parent_span_id)),
        None => (new_trace_id(), None),
    };
    Some(SpanRecord {
        trace_id,
        span_id: new_span_id(),
        parent,
        name: "wsv2.response",
        start_ns: at(r.accepted_at),
        end_ns: wall_now,
        attributes,
        events,
        error: (!matches!(r.outcome, Outcome::Completed | Outcome::Incomplete))
            .then(|| r.outcome.as_str()),
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, nanos)
}

/// A fresh 64-bit id: a process-random key hashing a counter (unique per process, not
/// guessable from outside, never zero)
fn random_u64() -> u64 {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = STATE.get_or_init(Default::default).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}

fn new_span_id() -> [u8; 8] {
    random_u64().to_be_bytes()
}

fn new_trace_id() -> [u8; 16] {
    (u128::from(random_u64()) << 64 | u128::from(random_u64())).to_be_bytes()
}

/// The span counters (`wsv2_spans_*`); unregistered ones when metrics are off
#[derive(Clone, Debug, Default)]
pub(crate) struct SpanCounters {
    pub(crate) exported: Counter,
    pub(crate) dropped_queue_full: Counter,
    pub(crate) dropped_export_failed: Counter,
}

/// Where tasks hand ended spans: never waits, drops and counts when the queue is full
#[derive(Clone, Debug)]
pub(crate) struct TraceSink {
    tx: mpsc::Sender<SpanRecord>,
    counters: SpanCounters,
}

/// Starts the exporter task; the returned sink feeds it
pub(crate) fn start(
    rt: &Rt,
    export: TraceExport,
    cfg: &TelemetryConfig,
    counters: SpanCounters,
) -> TraceSink {
    let (tx, rx) = mpsc::channel(cfg.span_queue);
    let mut resource = vec![(
        "service.name".to_owned(),
        AttrValue::text(&export.service_name),
    )];
    resource.extend(
        export
            .resource
            .iter()
            .map(|(k, v)| (k.clone(), AttrValue::text(v))),
    );
    tracing::info!(url = %export.url(), "exporting response spans over OTLP/HTTP");
    // The collector's route: no proxy, the webpki roots only (never `tls_ca_file`).
    let tls = UpstreamTls::new(None, export.timeout).expect("ring supports the default versions");
    let exporter = Exporter {
        rt: rt.clone(),
        route: DialRoute { proxy: None, tls },
        export,
        resource,
        batch: cfg.span_batch,
        interval: cfg.export_interval,
        counters: counters.clone(),
    };
    spawn(rt, exporter.run(rx));
    TraceSink { tx, counters }
}

struct Exporter {
    rt: Rt,
    route: DialRoute,
    export: TraceExport,
    resource: Vec<(String, AttrValue)>,
    batch: usize,
    interval: Duration,
    counters: SpanCounters,
}

impl Exporter {
    /// Collects a batch (full, or `interval` after its first span), exports it, repeats;
    /// ends once every sink is gone and the queue is empty
    async fn run(self, mut rx: mpsc::Receiver<SpanRecord>) {
        let mut clock = Clock::new(&self.rt);
        let mut batch = Vec::with_capacity(self.batch);
        loop {
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            let deadline = Some(clock.now() + self.interval);
            let mut closed = false;
            while batch.len() < self.batch {
                tokio::select! {
                    span = rx.recv() => match span {
                        Some(span) => batch.push(span),
                        None => {
                            closed = true;
                            break;
                        }
                    },
                    () = clock.until(deadline) => break,
                }
            }
            self.export(&batch).await;
            batch.clear();
            if closed {
                return;
            }
        }
    }

    async fn export(&self, spans: &[SpanRecord]) {
        let body = Bytes::from(otlp::encode_request(&self.resource, spans));
        let n = spans.len() as u64;
        match timeout(&self.rt, self.export.timeout, self.post(body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                self.counters.exported.inc_by(n);
                debug!(spans = n, "spans exported");
            }
            outcome => {
                self.counters.dropped_export_failed.inc_by(n);
                // The URL and headers are never in the line: headers carry credentials.
                let why = match outcome {
                    Ok(Ok(status)) => format!("collector answered {status}"),
                    Ok(Err(e)) => e,
                    Err(_) => "export_timeout passed".to_owned(),
                };
                warn!(spans = n, error = %why, "span export failed; spans dropped");
            }
        }
    }

    /// One POST of `body`; the collector's status
    async fn post(&self, body: Bytes) -> Result<u16, String> {
        let e = &self.export;
        let mut request = hyper::Request::post(e.path.as_str())
            .header(header::HOST, e.host_header.as_str())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONNECTION, "close")
            .body(Full::new(body))
            .map_err(|err| format!("request: {err}"))?;
        for (name, value) in &e.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) else {
                return Err("an OTEL_EXPORTER_OTLP_HEADERS entry is not a valid header".into());
            };
            request.headers_mut().insert(name, value);
        }
        let step = Mutex::new("TCP connect");
        let io = open_stream(&self.rt, &e.host, e.port, e.tls, &self.route, &step)
            .await
            .map_err(|f| f.message)?;
        let response = crate::forward::send(&self.rt, io, request).await?;
        Ok(response.status().as_u16())
    }
}
