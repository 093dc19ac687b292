//! What a configuration turns into at start and at every reload: the accounts the control task
//! schedules and dials, where forwarded POSTs go, the names logs use, and the client keys the
//! listener accepts.
//!
//! A reload swaps these in place; open sessions keep running on what they already hold (their
//! leased conns, their socket permits), and per-key socket counts carry over for keys that stay.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use wsv2_core::AccountId;
use wsv2_core::control::AccountSpec;
use wsv2_core::file_config::GatewayConfig;
use wsv2_core::ingress::ClientKeySpec;

use crate::forward::ForwardTarget;
use crate::shared::AccountDial;
use crate::upstream::{DialRoute, UpstreamTls};

/// A value swapped whole at reload; readers take a cheap snapshot and never hold the lock
#[derive(Debug, Default)]
pub(crate) struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// The current value
    pub(crate) fn load(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value; snapshots already taken keep the old one
    pub(crate) fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
    }
}

/// The accounts of one configuration, in the four shapes their users need
pub(crate) struct AccountPlan {
    /// What the core decides with
    pub(crate) specs: Vec<AccountSpec>,
    /// How the control task reaches each account
    pub(crate) dials: HashMap<AccountId, AccountDial>,
    /// Where an HTTP task POSTs for an account the core forwards to (one that resolves to HTTP)
    pub(crate) forward: HashMap<AccountId, ForwardTarget>,
    /// Names for log lines
    pub(crate) names: HashMap<AccountId, String>,
}

impl AccountPlan {
    /// The accounts of `config`, each dialed over its proxy (if any) with `tls`
    pub(crate) fn new(config: &GatewayConfig, tls: &UpstreamTls) -> Self {
        let mut plan = Self {
            specs: Vec::with_capacity(config.accounts.len()),
            dials: HashMap::new(),
            forward: HashMap::new(),
            names: HashMap::new(),
        };
        for a in &config.accounts {
            plan.specs.push(AccountSpec {
                id: a.id,
                name: a.name.clone(),
                protocol: a.protocol(),
                concurrency: a.concurrency,
                priority: a.priority,
                model_map: a.model_map.clone(),
            });
            let token: Arc<str> = Arc::from(a.token.expose());
            let route = Arc::new(DialRoute {
                proxy: a.proxy.clone(),
                tls: tls.clone(),
            });
            plan.dials.insert(
                a.id,
                AccountDial {
                    url: a.base_url.ws_url().to_owned(),
                    token: token.clone(),
                    route: route.clone(),
                },
            );
            let url = a.base_url.clone();
            plan.forward
                .insert(a.id, ForwardTarget { url, token, route });
            plan.names.insert(a.id, a.name.clone());
        }
        plan
    }
}

/// The client keys of `config`, for the core's key table
pub(crate) fn key_specs(config: &GatewayConfig) -> Vec<ClientKeySpec> {
    config
        .client_keys
        .iter()
        .map(|k| ClientKeySpec {
            secret: k.key.expose().to_owned(),
            name: k.name.clone(),
            group: k.group.clone(),
            max_sockets: usize::try_from(k.max_sockets).unwrap_or(usize::MAX),
        })
        .collect()
}

/// What a reload changed, for the log line and the caller
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Accounts configured now
    pub accounts: usize,
    /// Account ids that are new
    pub added: Vec<AccountId>,
    /// Account ids that are gone (they take no new sessions; open ones continue)
    pub removed: Vec<AccountId>,
    /// Client keys configured now
    pub client_keys: usize,
    /// Settings that only take effect after a restart and differ from the running ones
    pub needs_restart: Vec<&'static str>,
}

/// Settings a running gateway cannot change, named when a reload tries to
pub(crate) fn restart_only_changes(old: &GatewayConfig, new: &GatewayConfig) -> Vec<&'static str> {
    [
        (old.listen != new.listen, "listen"),
        (old.admin_listen != new.admin_listen, "admin_listen"),
        (
            old.core != new.core,
            "core sections ([upstream], [session], [pool], [scheduler], [store], [protocol], [ingress], [telemetry])",
        ),
        (old.redis_url != new.redis_url, "redis_url"),
        (old.traces != new.traces, "the trace export (OTEL_* variables)"),
    ]
    .into_iter()
    .filter_map(|(changed, setting)| changed.then_some(setting))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restart_only_settings_are_reported() {
        let old = GatewayConfig::demo("ws://127.0.0.1:1/v1/responses", "sk-up").unwrap();
        let mut new = old.clone();
        new.accounts[0].name = "renamed".to_owned();
        assert!(restart_only_changes(&old, &new).is_empty());
        new.core.session.shutdown_grace = std::time::Duration::from_secs(1);
        new.listen = "127.0.0.1:1".parse().unwrap();
        assert_eq!(restart_only_changes(&old, &new).len(), 2);
    }
}
