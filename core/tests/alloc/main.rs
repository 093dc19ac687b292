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
    /// Bytes this thread allocated minus those it freed (a block freed by another thread
    /// than its allocator's skews it: the tests here stay on one thread)
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

/// Counts every allocation and reallocation of the current thread, then defers to `System`
struct CountingAllocator;

fn count_one() {
    // `try_with` fails quietly while the thread-local is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn count_bytes(delta: isize) {
    let _ = LIVE_BYTES.try_with(|n| n.set(n.get() + delta));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        count_bytes(layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        count_bytes(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_bytes(-(layout.size() as isize));
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

/// Heap bytes this thread holds (allocated and not freed)
fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

/// Allocations made by `f` on this thread
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = allocations();
    f();
    allocations() - before
}
