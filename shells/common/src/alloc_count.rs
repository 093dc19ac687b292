//! A counting global allocator for measurements (feature `alloc-count`).
//!
//! The benchmark (`tests/bench/run.sh`, phase `allocs`) builds the gateway binaries with this
//! feature and reads the process's heap allocations from `GET /metrics`
//! (`wsv2_process_heap_allocations_total`) before and after a workload: allocations per relayed
//! event over the whole process, every task and thread included. Without the feature nothing
//! here is compiled and the metric is absent.
//!
//! A binary installs it with
//!
//! ```ignore
//! #[cfg(feature = "alloc-count")]
//! #[global_allocator]
//! static ALLOCATOR: wsv2_shell::alloc_count::CountingAllocator =
//!     wsv2_shell::alloc_count::CountingAllocator;
//! ```
//!
//! Each allocation (and reallocation, which may move) costs one relaxed atomic add.
#![allow(unsafe_code)] // A `GlobalAlloc` implementation is necessarily unsafe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations and reallocations since the process started
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Heap allocations (and reallocations) made by the process so far
///
/// Counts only when [`CountingAllocator`] is the global allocator; 0 otherwise.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Counts every allocation and reallocation of the process, then defers to [`System`]
#[derive(Debug)]
pub struct CountingAllocator;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}
