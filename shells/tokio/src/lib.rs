//! # wsv2-tokio
//!
//! The tokio shell of wsv2: the runtime-neutral driver (`wsv2-shell`) on tokio. This crate is
//! what tokio contributes — [`TokioRuntime`] (spawn, `Sleep`, `tokio::net`) and the signal
//! handlers — plus the `demo` (the mock upstream it embeds runs on tokio). Every task, route
//! and decision lives in `wsv2-shell` and `wsv2-core`.

pub mod demo;
mod runtime;
pub mod signals;

use std::sync::Arc;

pub use runtime::TokioRuntime;
pub use wsv2_shell::{
    GatewayConfig, GatewayHandle, ReloadError, ReloadReport, ShutdownReport, StartError,
};

/// Starts the gateway described by `config` on the current tokio runtime
pub async fn start(config: GatewayConfig) -> Result<GatewayHandle, StartError> {
    wsv2_shell::start(Arc::new(TokioRuntime), config).await
}
