//! The text `wsv2-gateway check-config FILE` prints.

use std::fmt::Write as _;

use super::authority::redact_query;
use super::{ConfigIssue, GatewayConfig};
use crate::resolver::Transport;

/// Reads `text` (resolving `key_env` / `token_env` through `env`, without `WSV2_*` overrides)
/// and reports the outcome as [`format_report`] does
pub fn check_config_report(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    format_report(&GatewayConfig::from_toml_str(text, env))
}

/// The check-config report of a read configuration.
///
/// Valid: a summary line
/// `ok: N accounts (M WebSocket, K HTTP by the resolver), L client keys, listen ADDR, admin ADDR|off, state: memory|redis`,
/// then one line per account with the resolver's decision and reason, its endpoint and proxy
/// (never a credential), and a `traces:` line when spans are exported (never a header value). Invalid: one `path: message` line per issue. Every line ends in `\n`.
pub fn format_report(outcome: &Result<GatewayConfig, Vec<ConfigIssue>>) -> String {
    let mut out = String::new();
    match outcome {
        Err(issues) => {
            for issue in issues {
                let _ = writeln!(out, "{}: {}", issue.path, issue.message);
            }
        }
        Ok(config) => {
            let decisions: Vec<_> = config
                .accounts
                .iter()
                .map(|a| a.transport(&config.core.protocol))
                .collect();
            let ws = decisions
                .iter()
                .filter(|d| d.transport == Transport::WsV2)
                .count();
            let _ = writeln!(
                out,
                "ok: {} ({ws} WebSocket, {} HTTP by the resolver), {}, listen {}, admin {}, state: {}",
                plural(config.accounts.len(), "account"),
                decisions.len() - ws,
                plural(config.client_keys.len(), "client key"),
                config.listen,
                config
                    .admin_listen
                    .map_or_else(|| "off".to_owned(), |a| a.to_string()),
                if config.redis_url.is_some() {
                    "redis"
                } else {
                    "memory"
                },
            );
            for (account, decision) in config.accounts.iter().zip(&decisions) {
                let url = &account.base_url;
                let (transport, endpoint) = match decision.transport {
                    Transport::WsV2 => ("WebSocket", url.ws_url()),
                    Transport::Http => ("HTTP", url.http_url()),
                };
                let endpoint = redact_query(endpoint);
                let _ = write!(
                    out,
                    "  account {} {:?}: {transport} ({}), {}, auth {}",
                    account.id.0, account.name, decision.reason, endpoint, account.auth_type
                );
                if let Some(proxy) = &account.proxy {
                    let _ = write!(out, ", via {proxy}");
                }
                out.push('\n');
            }
            if let Some(traces) = &config.traces {
                let _ = writeln!(
                    out,
                    "  traces: OTLP/HTTP to {}, service {:?}, {} header(s)",
                    traces.url(),
                    traces.service_name,
                    traces.headers.len()
                );
            }
        }
    }
    out
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
