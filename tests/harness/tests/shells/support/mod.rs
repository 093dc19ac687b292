//! What the scenarios share: the shell under test, a mock plus gateway setup (`common`), the
//! fixtures of the `harden_*` scenarios (`harden`) and the HTTP-bridge helpers (`http`).

mod capture;
pub mod common;
pub mod harden;
pub mod http;
pub mod raw;
pub mod redis_cluster;
pub mod redis_readonly;
pub mod redis_sentinel;
pub mod store_chain;

use std::fmt;

use wsv2_core::file_config::GatewayConfig;
/// Every shell's `start` answers these types (the runtime-neutral handle they share)
pub use wsv2_tokio::{GatewayHandle, StartError};

/// A shell: one runtime driving the sans-IO core.
///
/// Every shell's `start` is callable from a tokio test; where the gateway's tasks then run is the
/// shell's business. Adding a shell: a variant, its arm in [`Shell::start`], and its line in
/// `shell_tests!` (main.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// `wsv2-tokio` (`shells/tokio`)
    Tokio,
    /// `wsv2-smol` (`shells/smol`): the gateway's tasks run on smol's threads
    Smol,
}

impl Shell {
    /// Starts a gateway with `config` on this shell
    pub async fn start(self, config: GatewayConfig) -> Result<GatewayHandle, StartError> {
        let started = match self {
            Self::Tokio => wsv2_tokio::start(config).await,
            Self::Smol => wsv2_smol::start(config).await,
        };
        // Captured with the test's output, so a failure says which shell it ran on.
        match &started {
            Ok(gateway) => eprintln!("{self} shell: gateway listening on {}", gateway.addr),
            Err(e) => eprintln!("{self} shell: gateway did not start: {e}"),
        }
        started
    }

    /// `tokio`, `smol`, …: the shell's name in messages and paths
    pub fn name(self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

impl fmt::Display for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
