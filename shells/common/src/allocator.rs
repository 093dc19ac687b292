//! The gateways' global allocator, declared once for both binaries by [`crate::global_allocator!`].

/// Declares a gateway binary's global allocator from the binary's own features (a macro, so
/// that `feature = "jemalloc"` and `feature = "alloc-count"` are the calling crate's, and
/// `tikv_jemallocator` its optional dependency):
///
/// - `jemalloc` (the default): jemalloc, not glibc's malloc. Under a long mixed load glibc's
///   arenas fragment and keep the heap's high-water mark, so the RSS climbs while the live heap
///   is flat (the reliability soak, workload 4: 380–680 KiB/min against 190–200 with jemalloc;
///   docs/operations.md, "Memory").
/// - `alloc-count`: heap allocations counted for `/metrics` (the benchmark's and the soak's
///   builds), around the allocator the binary uses anyway: jemalloc, or the system allocator
///   in builds without it.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[cfg(all(
            feature = "jemalloc",
            not(target_env = "msvc"),
            not(feature = "alloc-count")
        ))]
        #[global_allocator]
        static ALLOCATOR: ::tikv_jemallocator::Jemalloc = ::tikv_jemallocator::Jemalloc;

        #[cfg(all(
            feature = "alloc-count",
            feature = "jemalloc",
            not(target_env = "msvc")
        ))]
        #[global_allocator]
        static ALLOCATOR: $crate::alloc_count::CountingAllocator<::tikv_jemallocator::Jemalloc> =
            $crate::alloc_count::CountingAllocator(::tikv_jemallocator::Jemalloc);

        #[cfg(all(
            feature = "alloc-count",
            not(all(feature = "jemalloc", not(target_env = "msvc")))
        ))]
        #[global_allocator]
        static ALLOCATOR: $crate::alloc_count::CountingAllocator =
            $crate::alloc_count::CountingAllocator(::std::alloc::System);
    };
}
