//! What an operator does to a running gateway: graceful shutdown and configuration reload.
//!
//! Shutdown, in order:
//!
//! ```text
//!  stop accepting ─▶ every session: handle_shutdown (new creates 503, in-flight responses run
//!  on) ─▶ wait for every socket, up to shutdown_grace + close_linger + margin (a session closes
//!  its client 1012 at the grace) ─▶ close the pool (every idle conn gets a close frame) ─▶ wait
//!  for the conns, up to upstream.close_timeout
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use wsv2_core::AccountId;

use crate::reload::{AccountPlan, ReloadReport, key_specs, restart_only_changes};
use crate::runtime::timeout;
use crate::shared::{ControlMsg, ask};
use crate::upstream::UpstreamTls;
use crate::{GatewayConfig, GatewayHandle};

/// Time past `shutdown_grace + close_linger` that shutdown waits for the last socket (its close
/// frame and the session's release still have to be written)
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

/// How a graceful shutdown went
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Client sockets open when shutdown began
    pub sockets_at_start: usize,
    /// Responses still open at `session.shutdown_grace`, ended by the gateway (each also logged
    /// as `response ended outcome=cut_at_shutdown`)
    pub responses_cut: usize,
    /// Sockets closed with a response cut, plus any still open when shutdown stopped waiting
    pub sockets_cut: usize,
    /// Whether every upstream conn ended within `upstream.close_timeout` of closing the pool
    pub pool_closed: bool,
    /// Time from the call to its return
    pub elapsed: Duration,
}

/// Why a reload was not applied (the running configuration stays)
#[derive(Debug)]
pub enum ReloadError {
    /// The upstream TLS client could not be built from it (`tls_ca_file`)
    Tls(String),
    /// The gateway is shutting down
    ShuttingDown,
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "upstream TLS: {e}"),
            Self::ShuttingDown => f.write_str("the gateway is shutting down"),
        }
    }
}

impl std::error::Error for ReloadError {}

impl GatewayHandle {
    /// Graceful shutdown (what SIGTERM and SIGINT do): stop accepting, let in-flight responses
    /// finish for up to `session.shutdown_grace`, close clients with 1012, close the pool
    pub async fn shutdown(&self) -> ShutdownReport {
        let started = Instant::now();
        let cfg = self.ingress.cfg.clone();
        self.accept.abort();
        let sockets_at_start = self.lifecycle.open_sockets();
        info!(
            sockets = sockets_at_start,
            grace_ms = cfg.session.shutdown_grace.as_millis() as u64,
            "shutting down: no new connections; in-flight responses may finish"
        );
        self.lifecycle.begin_shutdown();
        let wait = cfg.session.shutdown_grace + cfg.session.close_linger + SHUTDOWN_MARGIN;
        let left_open = match timeout(&self.ingress.rt, wait, self.lifecycle.all_closed()).await {
            Ok(()) => 0,
            Err(_) => {
                let left = self.lifecycle.open_sockets();
                warn!(
                    sockets = left,
                    "shutdown: sockets still open after the grace; cut"
                );
                left
            }
        };
        let (responses_cut, sockets_closed_cut) = self.lifecycle.cut();
        let sockets_cut = sockets_closed_cut + left_open;
        // Closing the pool is a reload to no accounts: every idle conn is closed now, leased
        // ones (if a session was cut) as their sessions release them.
        let closing = async {
            self.control
                .send(ControlMsg::Reload {
                    accounts: Vec::new(),
                    dials: Default::default(),
                    names: None,
                })
                .await
                .ok()?;
            ask(&self.control, |reply| ControlMsg::WhenNoConns { reply }).await
        };
        let pool_closed = matches!(
            timeout(&self.ingress.rt, cfg.upstream.close_timeout, closing).await,
            Ok(Some(()))
        );
        let report = ShutdownReport {
            sockets_at_start,
            responses_cut,
            sockets_cut,
            pool_closed,
            elapsed: started.elapsed(),
        };
        info!(
            responses_cut,
            sockets_cut,
            pool_closed,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "shutdown complete"
        );
        report
    }

    /// Applies a new configuration's accounts and client keys without dropping sessions
    /// (what SIGHUP and `wsv2-gateway reload` do)
    ///
    /// New accounts become usable, removed ones take no new sessions (their idle conns close;
    /// open sessions keep their leased conns), a disabled account is re-enabled, and
    /// `tls_ca_file` is re-read. Client keys are replaced; a kept key keeps its open-socket
    /// count, a removed key's open sockets continue. `listen` and the core sections need a
    /// restart: a reload that changes them applies the rest and names them in the report.
    pub async fn reload(&self, config: GatewayConfig) -> Result<ReloadReport, ReloadError> {
        if self.lifecycle.is_shutting_down() {
            return Err(ReloadError::ShuttingDown);
        }
        let cfg = &self.ingress.cfg;
        let tls = UpstreamTls::new(
            config.tls_ca_file.as_deref(),
            cfg.upstream.tls_handshake_timeout,
        )
        .map_err(ReloadError::Tls)?;
        let plan = AccountPlan::new(&config, &tls);
        let report = {
            let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
            let before: BTreeSet<AccountId> = applied.accounts.iter().map(|a| a.id).collect();
            let after: BTreeSet<AccountId> = config.accounts.iter().map(|a| a.id).collect();
            ReloadReport {
                accounts: config.accounts.len(),
                added: after.difference(&before).copied().collect(),
                removed: before.difference(&after).copied().collect(),
                client_keys: config.client_keys.len(),
                needs_restart: restart_only_changes(&applied, &config),
            }
        };
        // Before the core can schedule an added account: a POST admitted from now on finds it.
        self.ingress.forward.store(plan.forward);
        self.control
            .send(ControlMsg::Reload {
                accounts: plan.specs,
                dials: plan.dials,
                names: Some(Arc::new(plan.names.clone())),
            })
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        crate::shared::lock_keys(&self.ingress.keys).handle_reload(key_specs(&config));
        self.ingress.account_names.store(plan.names);
        if let Some(metrics) = &self.ingress.metrics {
            metrics.set_configured_models(&config.configured_models());
        }
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = config;
        info!(
            accounts = report.accounts,
            added = ?report.added,
            removed = ?report.removed,
            client_keys = report.client_keys,
            "configuration reloaded"
        );
        if !report.needs_restart.is_empty() {
            warn!(settings = ?report.needs_restart, "reload: these settings change only on restart");
        }
        Ok(report)
    }

    /// Whether the gateway would accept an upgrade now (what `/readyz` answers)
    pub async fn is_ready(&self) -> bool {
        crate::health::readiness(&self.lifecycle, &self.control)
            .await
            .is_ok()
    }
}
