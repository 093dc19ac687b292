//! `wsv2-gateway-smol`: the shared command line (serve, reload, check-config) on smol.

use std::process::ExitCode;
use std::sync::Arc;

use wsv2_shell::cli::{self, Shell};
use wsv2_smol::{SmolRuntime, signals};

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

fn main() -> ExitCode {
    let rt = SmolRuntime::global();
    smol::block_on(cli::run(Shell {
        name: "wsv2-gateway-smol",
        version: wsv2_shell::version!(),
        rt: Arc::new(rt),
        install_signals: signals::install,
        // The demo's embedded mock upstream runs on tokio: `wsv2-gateway demo` has it.
        demo: None,
    }))
}
