//! Log output: human-readable text (the default) or one JSON object per line
//! (`--log-format json`), filtered by `RUST_LOG` (default `info`).
//!
//! Sessions and turns are spans (`session{id, group}`, `turn{turn, account, conn, response,
//! lane}`); JSON lines carry them in `span` / `spans`.
//!
//! # What never reaches a log line
//!
//! Credentials, prompts and frame bodies, whatever `RUST_LOG` says. The gateway's own events
//! are written never to carry them. Its dependencies are not: at DEBUG and TRACE, tungstenite
//! logs every handshake request (`authorization: Bearer <upstream token>`), every frame (payload
//! in hex) and every close reason, and any other crate on the wire may do the same. So
//! [`WireContentCap`] sits beside the `RUST_LOG` filter and no directive can lift it: an event or
//! span of a target outside the gateway's own crates ([`GATEWAY_TARGETS`]) passes only at
//! [`DEPENDENCY_MAX_LEVEL`] (INFO) or above. `RUST_LOG=trace` then traces the gateway, not the
//! bytes it relays. The binary tests plant secrets and grep the output of every level for them
//! (`wsv2_tests::gateway_process`, `wsv2_tests::secrets`).

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-26T10:00:00Z  INFO session{id=1 group=default}: response ended outcome=completed …`
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{…},"span":{…},"spans":[…]}`
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format `{other}` (use text or json)")),
        }
    }
}

/// Installs the process's log subscriber (a second call is a no-op)
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(WireContentCap);
    let installed = match format {
        LogFormat::Text => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true),
            )
            .try_init(),
    };
    if installed.is_ok() {
        ONLY_GLOBAL_SUBSCRIBER.store(true, Ordering::Relaxed);
    }
}

/// Set once [`init`] installed the process's subscriber as the global default. The gateway's
/// binaries set no other (only tests install one per thread), so every thread logs to it.
static ONLY_GLOBAL_SUBSCRIBER: AtomicBool = AtomicBool::new(false);

/// Whether a spawned task logs where its spawner does without carrying the spawner's
/// subscriber (which costs a dispatcher swap per poll of the task)
pub(crate) fn tasks_log_globally() -> bool {
    ONLY_GLOBAL_SUBSCRIBER.load(Ordering::Relaxed)
}

/// The crates whose events and spans pass at any level `RUST_LOG` allows: the gateway's own,
/// which never log credentials, prompts or frame bodies
pub const GATEWAY_TARGETS: &[&str] = &[
    "wsv2_core",
    "wsv2_shell",
    "wsv2_tokio",
    "wsv2_smol",
    "wsv2_gateway",
    "wsv2_gateway_smol",
];

/// The most verbose level at which any other crate's events and spans are written
pub const DEPENDENCY_MAX_LEVEL: LevelFilter = LevelFilter::INFO;

/// Whether `target` (a module path) belongs to one of [`GATEWAY_TARGETS`]
pub fn is_gateway_target(target: &str) -> bool {
    GATEWAY_TARGETS.iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether an event or span with `metadata` may reach the log at all (before `RUST_LOG`)
pub fn passes_wire_content_cap(metadata: &Metadata<'_>) -> bool {
    is_gateway_target(metadata.target()) || *metadata.level() <= DEPENDENCY_MAX_LEVEL
}

/// The filter `RUST_LOG` cannot lift (see the [module doc](self)); decided once per callsite
#[derive(Clone, Copy, Debug, Default)]
pub struct WireContentCap;

impl<S: Subscriber> Layer<S> for WireContentCap {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if passes_wire_content_cap(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        // `log` records (tungstenite's) have no callsite of their own: they are asked here.
        passes_wire_content_cap(metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("yaml"), "{err}");
    }

    #[test]
    fn gateway_targets_are_whole_crate_names() {
        assert!(is_gateway_target("wsv2_shell"));
        assert!(is_gateway_target("wsv2_shell::session_task"));
        assert!(is_gateway_target("wsv2_gateway_smol"));
        assert!(!is_gateway_target("wsv2_shellfish::x"));
        assert!(
            !is_gateway_target("wsv2_mock"),
            "the mock is not the gateway"
        );
        assert!(!is_gateway_target("tungstenite::handshake::client"));
    }
}
