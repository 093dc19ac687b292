//! # wsv2-shell
//!
//! The runtime-neutral driver of wsv2: the tasks that serve the OpenAI Responses API in
//! WebSocket mode over pooled upstream WebSocket connections, written once for every async
//! runtime. They perform the I/O the sans-IO core (`wsv2-core`) asks for and nothing else:
//! every decision — account, conn, lane rules, retries, cooldowns, timeouts — is the core's.
//!
//! A shell (`wsv2-tokio`, `wsv2-smol`) implements [`Runtime`] for its executor — spawn, a
//! resettable timer, the clock, TCP connect and listen — and calls [`start`]; the binary's
//! command line is [`cli`]. Nothing else in a shell decides anything.
//!
//! ## Tasks
//!
//! ```text
//!   client socket ◀──▶ session task (Session) ──frames──▶ conn writer ──▶ upstream socket
//!     (read and written      │  ▲      ▲                                       │
//!      by the session task)  │  │      └───────── conn reader (resident) ◀─────┘
//!                            │  │ leases, admissions, slots   │ idle frames, pongs, closes
//!                            ▼  │                             ▼
//!                     control task (Control: scheduler, store, pools, slots)
//! ```
//!
//! - **One control task** per process owns the core's `Control`. It is on the per-turn path
//!   only (schedule, lease, slot, release, dial, idle ping), never on the per-event path.
//! - **One session task** per client socket owns its `Session`: it reads the client and the
//!   frames of its leased conns, writes the client socket itself and queues upstream writes, and
//!   keeps one timer set to the earlier of `poll_timeout()` and its client write deadline,
//!   re-reading the clock when it fires.
//! - **One resident reader** per upstream conn for the conn's whole life reads it while it
//!   idles (reporting to the control task, so idle pings are answered and tail packets are
//!   seen) and lends its socket's read half to the task that leases it, which reads its frames
//!   itself: no relayed event crosses a task. Its **writer** is independent: a bounded queue,
//!   every write under the core's deadline, abandoned when the session is cancelled.
//! - The session's **client outbox** is drained whenever the socket takes more; when more than
//!   `session.client_write_buffer` bytes wait in it the session is told
//!   (`handle_client_backpressure`) and stops reading upstream, and a write still unfinished
//!   after `session.client_write_timeout` fails the client.
//!
//! Both hops use one message limit (`upstream.max_message_size`); a bigger message on either
//! closes the client with 1009. Sockets use `TCP_NODELAY` and 4 KiB tungstenite buffers;
//! writers feed every ready frame and flush once.
//!
//! ## Handshakes
//!
//! Every accepted connection first passes the core's client socket caps (`[ingress]`: a cap
//! derived from `RLIMIT_NOFILE`, the oldest unauthenticated connection making room for a newer
//! one); hyper then reads it under `ingress.header_read_timeout`. Before the 101, a request that
//! breaks RFC 6455's handshake gets 400 (426 with `Sec-WebSocket-Version: 13` for another
//! version), a missing or wrong client key 401, a key over its socket cap 429 with
//! `Retry-After`, and the core's upgrade refusals 503 / 426, each with an OpenAI error body.
//! Upstream dials replace the client's `Authorization` with the account's credential, send the
//! pool-key headers (`OpenAI-Beta`, `x-codex-beta-features`) and, only on a dial made for one
//! session, that session's own headers (`session-id`, `thread-id`, `x-client-request-id`,
//! `x-codex-*`, `originator`, `User-Agent`). **Upstream 101 response headers are not relayed**
//! to the client: a pooled conn is shared by many client sockets, so its handshake answer
//! belongs to none of them.

mod admin;
#[cfg(feature = "alloc-count")]
pub mod alloc_count;
mod allocator;
pub mod cli;
mod client;
mod control_task;
mod forward;
mod health;
mod holder;
mod http_task;
mod hyper_timer;
mod ingress;
mod io;
mod lifecycle;
mod log_limit;
pub mod logging;
mod metrics_export;
mod operations;
mod relay_config;
mod reload;
pub mod runtime;
mod session_task;
mod shared;
pub mod signals;
mod store_backend;
mod store_redis;
mod traces;
mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use wsv2_core::control::Control;
use wsv2_core::ingress::ClientKeys;
use wsv2_core::pool::PoolStats;
use wsv2_core::store::MemoryBackend;

use crate::control_task::{CONTROL_INBOX, ControlTask, Extension};
use crate::ingress::Ingress;
use crate::lifecycle::Lifecycle;
use crate::reload::{AccountPlan, Swap, key_specs};
use crate::runtime::{spawn, spawn_abortable};
use crate::shared::{ControlMsg, ControlTx};
use crate::store_backend::StoreBackend;
use crate::upstream::UpstreamTls;
pub use operations::{ReloadError, ShutdownReport};
pub use reload::ReloadReport;
pub use runtime::{AsyncTimer, BoxIo, Listener, Rt, Runtime};
pub use wsv2_core::file_config::GatewayConfig;

/// Why the gateway could not start
#[derive(Debug)]
pub enum StartError {
    /// The configuration asks for something this build cannot do
    Unsupported(String),
    /// The listener could not be bound
    Bind(std::io::Error),
    /// The admin listener (`admin_listen`) could not be bound
    AdminBind(std::io::Error),
    /// The upstream TLS client could not be built (`tls_ca_file`)
    Tls(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "unsupported configuration: {what}"),
            Self::Bind(e) => write!(f, "cannot listen: {e}"),
            Self::AdminBind(e) => write!(f, "cannot listen on admin_listen: {e}"),
            Self::Tls(e) => write!(f, "upstream TLS: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running gateway
pub struct GatewayHandle {
    /// The address it listens on
    pub addr: SocketAddr,
    /// The admin listener's address (`None` with `admin_listen = "off"`)
    pub admin_addr: Option<SocketAddr>,
    control: ControlTx,
    accept: futures_util::future::AbortHandle,
    admin: Option<futures_util::future::AbortHandle>,
    ingress: Arc<Ingress>,
    lifecycle: Arc<Lifecycle>,
    /// The configuration last applied (start or reload)
    applied: Mutex<GatewayConfig>,
}

impl GatewayHandle {
    /// `ws://ADDR/v1/responses`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/responses", self.addr)
    }

    /// Pool totals over every account
    pub async fn pool_stats(&self) -> Option<PoolStats> {
        shared::ask(&self.control, |reply| ControlMsg::Stats { reply }).await
    }
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(admin) = &self.admin {
            admin.abort();
        }
    }
}

/// Starts the gateway described by `config`: every task runs on `rt`
pub async fn start(rt: Rt, config: GatewayConfig) -> Result<GatewayHandle, StartError> {
    upstream::install_crypto_provider();
    let store = match &config.redis_url {
        Some(url) => {
            let op_timeout = config.core.store.store_op_timeout;
            let store = store_redis::RedisStore::new(rt.clone(), url.expose(), op_timeout)
                .map_err(|e| StartError::Unsupported(format!("redis_url: {e}")))?;
            let store = Arc::new(store);
            let warm = store.clone();
            spawn(&rt, async move { warm.warm_up().await });
            StoreBackend::Redis(store)
        }
        None => StoreBackend::Memory(MemoryBackend::new(config.core.store.local_cache_entries)),
    };
    let cfg = Arc::new(config.core.clone());
    let tls = UpstreamTls::new(
        config.tls_ca_file.as_deref(),
        cfg.upstream.tls_handshake_timeout,
    )
    .map_err(StartError::Tls)?;
    let plan = AccountPlan::new(&config, &tls);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let control = Control::new(cfg.clone(), plan.specs, seed, rt.now());
    let (control_tx, control_rx) = mpsc::channel(CONTROL_INBOX);
    let metrics = config.metrics.then(|| {
        let models = config.configured_models();
        Arc::new(metrics_export::Metrics::new(
            &config.core.telemetry,
            &models,
        ))
    });
    let traces = config.traces.clone().map(|export| {
        let counters = metrics
            .as_ref()
            .map(|m| m.span_counters())
            .unwrap_or_default();
        traces::start(&rt, export, &config.core.telemetry, counters)
    });
    let names = Arc::new(plan.names.clone());
    let ext = Extension::new(store, metrics.clone(), names);
    let task = ControlTask::new(
        control,
        cfg.clone(),
        plan.dials,
        control_tx.clone(),
        rt.clone(),
        ext,
    );
    spawn(&rt, task.run(control_rx));

    let listener = rt.bind(config.listen).await.map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let sockets = client_sockets(&config);
    let lifecycle = Lifecycle::new();
    let ingress = Arc::new(Ingress {
        rt: rt.clone(),
        keys: Arc::new(Mutex::new(ClientKeys::new(
            key_specs(&config),
            cfg.session.socket_cap_retry_after,
        ))),
        control: control_tx.clone(),
        cfg,
        account_names: Swap::new(plan.names),
        next_session: AtomicU64::new(1),
        metrics,
        traces,
        forward: Swap::new(plan.forward),
        lifecycle: lifecycle.clone(),
        sockets,
        logs: Arc::new(log_limit::LogLimits::new(
            config.core.ingress.client_log_interval,
        )),
    });
    let (admin_addr, admin) = match config.admin_listen {
        Some(admin_listen) => {
            let listener = rt.bind(admin_listen).await.map_err(StartError::AdminBind)?;
            let admin_addr = listener.local_addr().map_err(StartError::AdminBind)?;
            let task = spawn_abortable(&rt, admin::serve(listener, ingress.clone()));
            tracing::info!(addr = %admin_addr, "admin listener (/metrics, /readyz detail)");
            (Some(admin_addr), Some(task))
        }
        None => (None, None),
    };
    let accept = spawn_abortable(&rt, ingress::serve(listener, ingress.clone()));
    tracing::info!(%addr, "wsv2 gateway listening");
    Ok(GatewayHandle {
        addr,
        admin_addr,
        control: control_tx,
        accept,
        admin,
        ingress,
        lifecycle,
        applied: Mutex::new(config),
    })
}

/// The table of client sockets, its caps derived from the process's descriptor limit when
/// `ingress.max_client_sockets` is 0 (read once, at start)
fn client_sockets(config: &GatewayConfig) -> Arc<ingress::SocketTable> {
    use wsv2_core::ingress::{ClientSockets, SocketLimits, derive_max_client_sockets};
    let cfg = &config.core.ingress;
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let budget = derive_max_client_sockets(cfg, nofile, config.upstream_conn_cap());
    let limits = SocketLimits::new(cfg, budget.max_client_sockets);
    tracing::info!(
        max_client_sockets = limits.max_open,
        max_unauthenticated = limits.max_unauthenticated,
        nofile = budget.nofile,
        reserved_fds = cfg.reserved_fds,
        upstream_headroom = budget.upstream_headroom,
        "client sockets capped"
    );
    ingress::SocketTable::new(ClientSockets::new(cfg, limits))
}

/// The tokio shell's runtime, compiled in for the driver's own unit tests
#[cfg(test)]
#[path = "../../tokio/src/runtime.rs"]
#[allow(unreachable_pub)]
mod tokio_runtime;

#[cfg(test)]
extern crate self as wsv2_shell;

/// A tokio runtime handle for unit tests (call inside `#[tokio::test]`)
#[cfg(test)]
pub(crate) fn test_rt() -> Rt {
    Arc::new(tokio_runtime::TokioRuntime)
}
