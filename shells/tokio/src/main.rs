//! `wsv2-gateway`: serve, reload, demo, check-config — the shared command line on tokio.

use std::process::ExitCode;
use std::sync::Arc;

use wsv2_shell::cli::{self, Shell};
use wsv2_tokio::{TokioRuntime, demo, signals};

/// Counts heap allocations for `/metrics` in `alloc-count` builds (the benchmark's)
#[cfg(feature = "alloc-count")]
#[global_allocator]
static ALLOCATOR: wsv2_shell::alloc_count::CountingAllocator =
    wsv2_shell::alloc_count::CountingAllocator;

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(Shell {
        name: "wsv2-gateway",
        version: wsv2_shell::version!(),
        rt: Arc::new(TokioRuntime),
        install_signals: signals::install,
        demo: Some(|| Box::pin(demo::run())),
    })
    .await
}
