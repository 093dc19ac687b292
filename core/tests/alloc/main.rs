//! Tests that count allocations, one test binary because it installs a counting global
//! allocator (a global allocator is per binary, so the rest of the core's tests, in `tests/suite`,
//! run on the system allocator).
//!
//! The counter is thread-local: tests running in parallel on other threads do not disturb each
//! other's counts.
#![allow(unsafe_code)] // A `GlobalAlloc` implementation is necessarily unsafe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod events;
mod session;

thread_local! {
    /// Allocations made by this thread; const-initialised, so reading it never allocates
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts every allocation and reallocation of the current thread, then defers to `System`
struct CountingAllocator;

fn count_one() {
    // `try_with` fails quietly while the thread-local is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made so far by this thread
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made by `f` on this thread
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = allocations();
    f();
    allocations() - before
}
