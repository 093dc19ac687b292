//! # wsv2-tokio
//!
//! The tokio shell of wsv2: a gateway that serves the OpenAI Responses API in WebSocket mode
//! over pooled upstream WebSocket connections. It performs the I/O the sans-IO core
//! (`wsv2-core`) asks for and nothing else: every decision — account, conn, lane rules,
//! retries, cooldowns, timeouts — is the core's.
//!
//! ## Tasks
//!
//! ```text
//!   client socket ──▶ session task (Session) ──frames──▶ conn writer ──▶ upstream socket
//!        ▲               │  ▲      ▲                                        │
//!        └── client ◀────┘  │      └────────── conn reader (resident) ◀─────┘
//!            writer         │ leases, admissions, slots      │ idle frames, pongs, closes
//!                           ▼                                ▼
//!                     control task (Control: scheduler, store, pools, slots)
//! ```
//!
//! - **One control task** per process owns the core's `Control`. It is on the per-turn path
//!   only (schedule, lease, slot, release, dial, idle ping), never on the per-event path.
//! - **One session task** per client socket owns its `Session`: it reads the client and the
//!   frames of its leased conns, writes both hops, and keeps one timer set to
//!   `poll_timeout()`, re-reading the clock when it fires.
//! - **One resident reader** per upstream conn for the conn's whole life forwards frames to
//!   whoever holds the lease (the session task while leased, the control task while idle), so
//!   idle pings are answered and tail packets are seen. Its **writer** is independent: a bounded
//!   queue, every write under the core's deadline, abandoned when the session is cancelled.
//! - The **client writer** takes a bounded outbox; when it holds more than
//!   `session.client_write_buffer` bytes the session is told (`handle_client_backpressure`)
//!   and stops reading upstream.
//!
//! Both hops use one message limit (`upstream.max_message_size`); a bigger message on either
//! closes the client with 1009. Sockets use `TCP_NODELAY` and 8 KiB tungstenite buffers;
//! writers feed every ready frame and flush once.
//!
//! ## Handshakes
//!
//! Before the 101, a missing or wrong client key gets 401, a key over its socket cap 429 with
//! `Retry-After`, and the core's upgrade refusals 503 / 426, each with an OpenAI error body.
//! Upstream dials replace the client's `Authorization` with the account's credential, send the
//! pool-key headers (`OpenAI-Beta`, `x-codex-beta-features`) and, only on a dial made for one
//! session, that session's own headers (`session-id`, `thread-id`, `x-client-request-id`,
//! `x-codex-*`, `originator`, `User-Agent`). **Upstream 101 response headers are not relayed**
//! to the client: a pooled conn is shared by many client sockets, so its handshake answer
//! belongs to none of them.

mod client;
mod control;
mod control_task;
pub mod demo;
mod forward;
mod http_task;
mod ingress;
mod metrics_export;
mod relay_config;
mod session_task;
mod store_backend;
mod store_redis;
mod time;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wsv2_core::pool::PoolStats;

use crate::control::{AccountSpec, Control};
use crate::control_task::{AccountDial, CONTROL_INBOX, ControlMsg, ControlTask, ControlTx};
use crate::ingress::{ClientKey, Ingress};
pub use wsv2_core::file_config::GatewayConfig;

/// Why the gateway could not start
#[derive(Debug)]
pub enum StartError {
    /// The configuration asks for something this build cannot do
    Unsupported(String),
    /// The listener could not be bound
    Bind(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "unsupported configuration: {what}"),
            Self::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running gateway
#[derive(Debug)]
pub struct GatewayHandle {
    /// The address it listens on
    pub addr: SocketAddr,
    control: ControlTx,
    accept: JoinHandle<()>,
}

impl GatewayHandle {
    /// `ws://ADDR/v1/responses`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/responses", self.addr)
    }

    /// Pool totals over every account
    pub async fn pool_stats(&self) -> Option<PoolStats> {
        let (reply, answer) = oneshot::channel();
        self.control.send(ControlMsg::Stats { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Stops accepting connections (open sessions end with their sockets)
    pub fn shutdown(&self) {
        self.accept.abort();
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Starts the gateway described by `config` on the current tokio runtime
pub async fn start(config: GatewayConfig) -> Result<GatewayHandle, StartError> {
    upstream::install_crypto_provider();
    let redis = match &config.redis_url {
        Some(url) => {
            let store =
                store_redis::RedisStore::new(url.expose(), config.core.store.store_op_timeout)
                    .map_err(|e| StartError::Unsupported(format!("redis_url: {e}")))?;
            let store = Arc::new(store);
            let warm = store.clone();
            tokio::spawn(async move { warm.warm_up().await });
            Some(store)
        }
        None => None,
    };
    if let Some(account) = config.accounts.iter().find(|a| a.proxy.is_some()) {
        return Err(StartError::Unsupported(format!(
            "accounts[{}].proxy: upstream proxies are not supported by this build yet",
            account.id
        )));
    }
    if config.tls_ca_file.is_some() {
        return Err(StartError::Unsupported(
            "tls_ca_file: extra root certificates are not supported by this build yet".to_owned(),
        ));
    }
    let cfg = Arc::new(config.core.clone());
    let mut specs = Vec::with_capacity(config.accounts.len());
    let mut dials = HashMap::new();
    let mut names = HashMap::new();
    let mut forward = HashMap::new();
    for a in &config.accounts {
        let id = a.id;
        specs.push(AccountSpec {
            id,
            name: a.name.clone(),
            protocol: a.protocol(),
            concurrency: a.concurrency,
            priority: a.priority,
            model_map: a.model_map.clone(),
        });
        dials.insert(
            id,
            AccountDial {
                url: a.base_url.ws_url().to_owned(),
                token: Arc::from(a.token.expose()),
            },
        );
        names.insert(id, a.name.clone());
        forward.insert(
            id,
            forward::ForwardTarget {
                url: a.base_url.clone(),
                token: Arc::from(a.token.expose()),
            },
        );
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let control = Control::new(cfg.clone(), specs, seed, Instant::now());
    let (control_tx, control_rx) = mpsc::channel(CONTROL_INBOX);
    let metrics = config
        .metrics
        .then(|| Arc::new(metrics_export::Metrics::new()));
    let names = Arc::new(names);
    let task = ControlTask::new(control, cfg.clone(), dials, control_tx.clone()).with_extension(
        redis.map(store_backend::StoreBackend::Redis),
        metrics.clone(),
        names.clone(),
    );
    tokio::spawn(task.run(control_rx));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let keys = config
        .client_keys
        .iter()
        .map(|k| {
            let cap = usize::try_from(k.max_sockets).unwrap_or(usize::MAX);
            (
                k.key.expose().to_owned(),
                ClientKey::new(k.group.clone(), cap),
            )
        })
        .collect();
    let ingress = Arc::new(Ingress {
        keys,
        control: control_tx.clone(),
        cfg,
        account_names: names,
        next_session: AtomicU64::new(1),
        metrics,
        forward: Arc::new(forward),
    });
    let accept = tokio::spawn(ingress::serve(listener, ingress));
    tracing::info!(%addr, "wsv2 gateway listening");
    Ok(GatewayHandle {
        addr,
        control: control_tx,
        accept,
    })
}
