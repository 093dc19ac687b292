//! The shells' integration suite, written once and run against every shell.
//!
//! Each scenario is an `async fn name(shell: Shell)` in one of the modules below; [`shell_tests!`]
//! instantiates it as one `#[tokio::test]` per shell, in a child module named after the shell:
//! `end_to_end::tokio_shell::two_chained_turns_stream_through_the_gateway`. Test bodies, clients
//! and the mock upstream run on the test's tokio runtime whatever the shell; the shell only decides
//! where the gateway's own tasks run ([`support::Shell::start`]).
//!
//! ```text
//! cargo test -p wsv2-tests --test shells                  # every shell
//! cargo test -p wsv2-tests --test shells tokio_shell::    # one shell
//! ```
//!
//! The Redis tests (`http_store`) use `WSV2_REDIS_URL` (default `redis://127.0.0.1:6379`); the SDK
//! tests (`real_clients`, `http_openai_sdk`) need `tests/clients/setup.sh` and skip without it
//! unless `WSV2_REQUIRE_CLIENTS` is set; `codex` runs only with `WITH_CODEX=1`.
//!
//! # Adding a shell
//!
//! 1. Its crate as a dev-dependency of `wsv2-tests`, a variant of [`support::Shell`] and that
//!    variant's arm in `Shell::start`.
//! 2. One line in [`shell_tests!`], next to the others:
//!    `shell_tests!(@shell smol_shell = Smol; $($tests)*);`
//!
//! The scenarios that read the gateway's logs (`pool_facts`, `seed_fixes`, `keepalive`,
//! `limit_logs`, `harden_*`) capture them with a subscriber set as the test thread's default
//! (`support::capture`); the driver carries the subscriber current at a spawn into the task it
//! spawns, so the smol shell's tasks, which run on threads of their own, log there too.
//!
//! The tests of a gateway *binary* (`serve`, `reload`, SIGTERM) are not here: `CARGO_BIN_EXE_*`
//! exists only in the binary's own package, so they live in `wsv2_tests::gateway_process` and
//! each shell's package runs them from a one-line file under its `tests/`.
//!
//! One test binary on purpose: on the 2-core CI, linking one binary per file dominated the build.

// A test binary exports nothing; `pub` marks what the support module shares with the scenarios.
#![allow(unreachable_pub)]

/// Instantiates the calling module's scenarios once per shell.
///
/// Each entry names an `async fn name(shell: Shell)` of the calling module and becomes
/// `#[tokio::test] async fn name()` in the module's `tokio_shell` (one child module per shell).
/// An entry may carry attributes, kept on every instance (`#[ignore = "why"] name`), and the
/// arguments of its `#[tokio::test]` (`name(flavor = "multi_thread", worker_threads = 2)`).
/// One invocation per module, since it defines the per-shell modules.
macro_rules! shell_tests {
    (@shell $module:ident = $shell:ident;
     $($(#[$attr:meta])* $name:ident $(($($args:tt)*))?),* $(,)?) => {
        /// This module's scenarios through one shell
        mod $module {
            $(
                #[tokio::test$(($($args)*))?]
                $(#[$attr])*
                async fn $name() {
                    super::$name($crate::support::Shell::$shell).await;
                }
            )*
        }
    };
    ($($tests:tt)*) => {
        // Every shell, one line each: the only list of shells besides `support::Shell`.
        shell_tests!(@shell tokio_shell = Tokio; $($tests)*);
        shell_tests!(@shell smol_shell = Smol; $($tests)*);
    };
}

mod support;

mod admin_listener;
mod codex;
mod conformance;
mod conn_limit;
mod end_to_end;
mod failover;
mod groups;
mod harden_dial;
mod harden_health;
mod harden_ingress;
mod harden_lifecycle;
mod harden_stall;
mod hostile_inputs;
mod http_bridge;
mod http_client_gone;
mod http_metrics;
mod http_openai_sdk;
mod http_store;
mod keepalive;
mod limit_logs;
mod metric_labels;
mod pool_facts;
mod real_clients;
mod refusals;
mod security;
mod seed_fixes;
mod store_bind;
mod store_cluster;
mod store_remote;
mod store_sentinel;
mod traces;
mod usage_by_key;
mod warm_pool;
mod ws_metrics;
