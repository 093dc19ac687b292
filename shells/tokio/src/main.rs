//! `wsv2-gateway`: serve, reload, demo, check-config — the shared command line on tokio.

use std::process::ExitCode;
use std::sync::Arc;

use wsv2_shell::cli::{self, Shell};
use wsv2_tokio::{TokioRuntime, demo, signals};

/// jemalloc, not glibc's malloc: under a long mixed load glibc's arenas fragment and keep the
/// heap's high-water mark, so the RSS climbs while the live heap is flat (the reliability soak,
/// workload 4: 380–680 KiB/min against 190–200 with jemalloc; docs/operations.md, "Memory")
#[cfg(all(
    feature = "jemalloc",
    not(target_env = "msvc"),
    not(feature = "alloc-count")
))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Counts heap allocations for `/metrics` in `alloc-count` builds (the benchmark's and the
/// soak's), around the allocator the binary uses anyway
#[cfg(all(
    feature = "alloc-count",
    feature = "jemalloc",
    not(target_env = "msvc")
))]
#[global_allocator]
static ALLOCATOR: wsv2_shell::alloc_count::CountingAllocator<tikv_jemallocator::Jemalloc> =
    wsv2_shell::alloc_count::CountingAllocator(tikv_jemallocator::Jemalloc);

/// Counts heap allocations around the system allocator (builds without jemalloc)
#[cfg(all(
    feature = "alloc-count",
    not(all(feature = "jemalloc", not(target_env = "msvc")))
))]
#[global_allocator]
static ALLOCATOR: wsv2_shell::alloc_count::CountingAllocator =
    wsv2_shell::alloc_count::CountingAllocator(std::alloc::System);

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
