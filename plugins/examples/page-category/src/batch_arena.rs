//! The component's global allocator: a bump arena that starts over whenever nothing in it is
//! live, in front of the standard allocator.
//!
//! Why: everything a batch call allocates is freed by the time the call ends. The events the
//! host passes in are dropped when `enrich` returns, and the answer is freed by the bindings'
//! post-return function. So between two calls nothing is live, and the arena can reuse its
//! memory from the start. Within a call, allocating is a pointer bump and freeing is a counter
//! decrement. The standard allocator (dlmalloc) spent about a fifth of the plugin's time on
//! the dozen allocations per event, each of which also burns fuel.
//!
//! Correctness does not depend on that pattern: the arena is reused only once every
//! allocation in it has been freed, and what does not fit (a batch larger than the arena, or
//! memory kept between calls) is served by the standard allocator. A plugin that keeps memory
//! between calls only loses the speed-up until what it keeps is freed.
//!
//! A WebAssembly component runs on one thread (wasm32-wasip2 has no threads), so the arena's
//! state needs no lock.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::UnsafeCell,
};

/// The arena's size: a batch of 5,000 events with two URLs allocates more than 16 MiB (with
/// a 16 MiB arena the rest went to the standard allocator and the gain was gone). It is
/// taken from the plugin's memory limit (`etl.plugin_memory_mib`, default 256 MiB) on the first
/// allocation and kept; the host traps a growth past the limit rather than failing it, so with
/// a limit below the arena's size this plugin cannot start.
const ARENA_BYTES: usize = 32 << 20;
const ARENA_ALIGN: usize = 16;

pub struct BatchArena {
    state: UnsafeCell<ArenaState>,
}

struct ArenaState {
    /// Start and end of the arena's memory (both 0 until the first allocation asks for it).
    start: usize,
    end: usize,
    /// Where the next allocation goes.
    next: usize,
    /// How many allocations in the arena are not freed yet; at 0, `next` goes back to `start`.
    live: usize,
}

// SAFETY: a wasm32-wasip2 component has a single thread; nothing shares the state across
// threads.
unsafe impl Sync for BatchArena {}

impl BatchArena {
    pub const fn new() -> BatchArena {
        BatchArena { state: UnsafeCell::new(ArenaState { start: 0, end: 0, next: 0, live: 0 }) }
    }
}

impl ArenaState {
    fn contains(&self, pointer: *mut u8) -> bool {
        let address = pointer as usize;
        address >= self.start && address < self.end
    }

    /// Reserves the arena's memory from the standard allocator on first use.
    unsafe fn reserve(&mut self) -> bool {
        if self.start != 0 {
            return true;
        }
        let memory = unsafe { System.alloc(Layout::from_size_align_unchecked(ARENA_BYTES, ARENA_ALIGN)) };
        if memory.is_null() {
            return false;
        }
        self.start = memory as usize;
        self.end = self.start + ARENA_BYTES;
        self.next = self.start;
        true
    }

    /// A bump allocation, or `None` when the arena has no room left.
    fn bump(&mut self, layout: Layout) -> Option<*mut u8> {
        let aligned = self.next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let after = aligned.checked_add(layout.size())?;
        if after > self.end {
            return None;
        }
        self.next = after;
        self.live += 1;
        Some(aligned as *mut u8)
    }
}

unsafe impl GlobalAlloc for BatchArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let state = unsafe { &mut *self.state.get() };
        if unsafe { state.reserve() } {
            if let Some(pointer) = state.bump(layout) {
                return pointer;
            }
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let state = unsafe { &mut *self.state.get() };
        if !state.contains(pointer) {
            return unsafe { System.dealloc(pointer, layout) };
        }
        state.live -= 1;
        if state.live == 0 {
            state.next = state.start;
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let state = unsafe { &mut *self.state.get() };
        // The newest allocation grows or shrinks in place (a `Vec` or `String` being built).
        if state.contains(pointer) && pointer as usize + layout.size() == state.next && new_size <= state.end - pointer as usize {
            state.next = pointer as usize + new_size;
            return pointer;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(pointer, moved, layout.size().min(new_size));
                self.dealloc(pointer, layout);
            }
        }
        moved
    }
}
