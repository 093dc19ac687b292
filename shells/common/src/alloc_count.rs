//! A counting global allocator for measurements (feature `alloc-count`).
//!
//! The benchmark (`tests/bench/run.sh`, phase `allocs`) builds the gateway binaries with this
//! feature and reads the process's heap allocations from `GET /metrics`
//! (`wsv2_process_heap_allocations_total`) before and after a workload: allocations per relayed
//! event over the whole process, every task and thread included. The reliability soak
//! (`tests/reliability/run.sh`, workload 4) samples `wsv2_process_heap_live_bytes` beside the
//! RSS: bytes the program holds, against what the allocator keeps from the kernel. Without the
//! feature nothing here is compiled and the metrics are absent.
//!
//! A binary installs it around the allocator it would use anyway (the gateways: jemalloc) with
//! [`crate::global_allocator!`].
//!
//! Each allocation (and reallocation, which may move) costs two relaxed atomic adds, each
//! deallocation one.
#![allow(unsafe_code)] // A `GlobalAlloc` implementation is necessarily unsafe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations and reallocations since the process started
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Bytes allocated and not yet freed (as requested by the program, not the allocator's overhead)
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Heap allocations (and reallocations) made by the process so far
///
/// Counts only when [`CountingAllocator`] is the global allocator; 0 otherwise.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Heap bytes the process holds now: requested and not yet freed
///
/// What the program's state weighs; the RSS minus this is the allocator's retention
/// (freed memory it keeps, fragmentation, per-thread arenas) plus code and stacks. 0 unless
/// [`CountingAllocator`] is the global allocator.
pub fn live_bytes() -> u64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// What the system allocator holds beyond the live heap, in bytes
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorHeld {
    /// Obtained from the kernel: the arenas' heaps plus blocks mapped on their own
    pub mapped: u64,
    /// Freed by the program and kept by the allocator for reuse, inside `mapped` (the part of
    /// it the kernel has not been given back is what a rising RSS beside a flat live heap is)
    pub free: u64,
}

/// glibc's own figures (`mallinfo2`, every arena summed); `None` on other C libraries. With
/// another global allocator (the gateways' jemalloc) they cover only what C code allocates.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn allocator_held() -> Option<AllocatorHeld> {
    /// `struct mallinfo2` of glibc ≥ 2.33
    #[repr(C)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    unsafe extern "C" {
        fn mallinfo2() -> MallInfo2;
    }
    // SAFETY: `mallinfo2` takes no arguments, locks each arena while it sums it and returns
    // the struct by value; the layout above is glibc's.
    let info = unsafe { mallinfo2() };
    Some(AllocatorHeld {
        mapped: (info.arena + info.hblkhd) as u64,
        free: info.fordblks as u64,
    })
}

/// glibc's own figures; `None` on other C libraries
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn allocator_held() -> Option<AllocatorHeld> {
    None
}

/// Counts one allocation of `layout` that returned `ptr` (null: it failed, nothing is held)
fn counted(ptr: *mut u8, layout: Layout) -> *mut u8 {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    if !ptr.is_null() {
        LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
    }
    ptr
}

/// Counts every allocation and reallocation of the process, then defers to the allocator it
/// wraps (`System` unless named)
#[derive(Debug)]
pub struct CountingAllocator<A = System>(pub A);

// SAFETY: every method forwards to the wrapped allocator with the caller's arguments unchanged.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        counted(unsafe { self.0.alloc(layout) }, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        counted(unsafe { self.0.alloc_zeroed(layout) }, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        let moved = unsafe { self.0.realloc(ptr, layout, new_size) };
        // On failure the old block stays allocated at its old size.
        if !moved.is_null() {
            // Wrapping: a shrink adds the two's complement, which subtracts.
            let grown = (new_size as u64).wrapping_sub(layout.size() as u64);
            LIVE_BYTES.fetch_add(grown, Ordering::Relaxed);
        }
        moved
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}
