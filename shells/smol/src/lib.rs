//! # wsv2-smol
//!
//! The smol shell of wsv2: the runtime-neutral driver (`wsv2-shell`) on smol. This crate is
//! what smol contributes — [`SmolRuntime`] (an `async-executor` on its own threads, `async-io`
//! timers, `async-net` sockets) and `async-signal` handlers. Redis runs on smol through the
//! `redis` crate's `smol-comp` (it picks smol because no tokio runtime exists on these threads).
//!
//! [`start`] may be awaited from any executor: every task runs on the smol runtime's threads.

mod runtime;
pub mod signals;

use std::sync::Arc;

pub use runtime::SmolRuntime;
pub use wsv2_shell::{
    GatewayConfig, GatewayHandle, ReloadError, ReloadReport, ShutdownReport, StartError,
};

/// Starts the gateway described by `config` on the process's smol runtime
pub async fn start(config: GatewayConfig) -> Result<GatewayHandle, StartError> {
    wsv2_shell::start(Arc::new(SmolRuntime::global()), config).await
}
