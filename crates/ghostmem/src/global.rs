//! `GhostGlobal`: ghost memory as the program's `#[global_allocator]`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::config::Config;
use crate::instance::{EngineGuard, GhostMem};
use crate::stats::Stats;

/// A global allocator backed by its own ghost-memory instance, created on first use.
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: ghostmem::GhostGlobal = ghostmem::GhostGlobal::new(4096); // 16 MiB resident
/// ```
///
/// While the engine itself runs (bookkeeping, logging) allocations are served by the system
/// allocator, so the allocator's metadata never lives in ghost memory; deallocation tells the
/// two apart by address. If the instance cannot be created, everything is served by the
/// system allocator and a message is printed once.
pub struct GhostGlobal {
    max_memory_pages: usize,
    kernel_access: bool,
    instance: OnceLock<Option<GhostMem>>,
    early: AtomicUsize,
}

/// Allocations served by the system allocator while waiting for the Rust runtime's own SIGSEGV
/// handler (see [`GhostGlobal::instance`]).
const EARLY_LIMIT: usize = 256;

impl GhostGlobal {
    /// A global allocator whose instance keeps at most `max_memory_pages` pages resident
    /// (0 means the default of [`crate::DEFAULT_MAX_MEMORY_PAGES`]).
    pub const fn new(max_memory_pages: usize) -> Self {
        GhostGlobal {
            max_memory_pages,
            kernel_access: false,
            instance: OnceLock::new(),
            early: AtomicUsize::new(0),
        }
    }

    /// As [`GhostGlobal::new`], with kernel access
    /// ([`crate::ConfigBuilder::kernel_access`]): system calls (`std::fs`, spawning a process)
    /// may touch heap pages that are not resident. Where the system does not allow it, the
    /// instance cannot be created and the allocator falls back to the system allocator with a
    /// message on stderr saying what to change.
    pub const fn with_kernel_access(max_memory_pages: usize) -> Self {
        GhostGlobal {
            max_memory_pages,
            kernel_access: true,
            instance: OnceLock::new(),
            early: AtomicUsize::new(0),
        }
    }

    /// The instance, created on first use — but not during the Rust runtime's start-up. The
    /// runtime installs its SIGSEGV handler (the stack-overflow report) only if none is
    /// installed, and it allocates between checking and installing: an instance created in that
    /// window would have its fault handler replaced. So until some SIGSEGV handler is present
    /// (or for at most `EARLY_LIMIT` allocations, for programs without one) allocations go to the
    /// system allocator; the ghost fault handler then chains to the runtime's.
    fn instance(&self) -> Option<&GhostMem> {
        if let Some(made) = self.instance.get() {
            return made.as_ref();
        }
        if crate::sys::segv_is_default() && self.early.fetch_add(1, Relaxed) < EARLY_LIMIT {
            return None;
        }
        self.instance
            .get_or_init(|| {
                let _engine = EngineGuard::enter();
                let made = Config::builder()
                    .max_memory_pages(self.max_memory_pages)
                    .kernel_access(self.kernel_access)
                    .build()
                    .map_err(crate::Error::from)
                    .and_then(GhostMem::new);
                match made {
                    Ok(g) => Some(g),
                    Err(e) => {
                        eprintln!(
                            "ghostmem: global allocator falls back to the system allocator: {e}"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Statistics of the instance, once it exists.
    pub fn stats(&self) -> Option<Stats> {
        self.instance
            .get()
            .and_then(Option::as_ref)
            .map(GhostMem::stats)
    }

    /// The instance, once it exists: for pinning heap buffers before a system call
    /// ([`GhostMem::pin_slice`]) or reading its configuration.
    pub fn ghost(&self) -> Option<&GhostMem> {
        self.instance.get().and_then(Option::as_ref)
    }

    fn owner(&self, ptr: *mut u8) -> Option<&GhostMem> {
        self.instance
            .get()
            .and_then(Option::as_ref)
            .filter(|g| g.contains(ptr))
    }
}

// SAFETY: every block comes either from the ghost instance (never overlapping, valid until
// freed, aligned as requested) or from `System`; `dealloc`/`realloc` route a pointer back to
// the allocator that owns its address.
unsafe impl GlobalAlloc for GhostGlobal {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !EngineGuard::active()
            && let Some(g) = self.instance()
        {
            return g
                .alloc_layout(layout.size().max(1), layout.align())
                .map_or(std::ptr::null_mut(), |p| p.as_ptr());
        }
        // SAFETY: forwarding the caller's valid layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !EngineGuard::active()
            && let Some(g) = self.instance()
        {
            let layout = Layout::from_size_align(layout.size().max(1), layout.align())
                .expect("a valid layout stays valid with size >= 1");
            return g
                .alloc_zeroed_layout(layout)
                .map_or(std::ptr::null_mut(), |p| p.as_ptr());
        }
        // SAFETY: forwarding the caller's valid layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(g) = self.owner(ptr) {
            if let Err(e) = g.free_layout(ptr, layout.size().max(1), layout.align()) {
                crate::sys::fatal(&format!("ghostmem: invalid deallocation: {e}\n"));
            }
        } else {
            // SAFETY: not a ghost address, so `System` allocated it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(g) = self.owner(ptr) else {
            // SAFETY: a System block, passed on with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        if !EngineGuard::active() {
            // In place when the size class allows; otherwise moved, as below.
            // SAFETY: `ptr` is a ghost block allocated with `layout` (size at least 1).
            let r = unsafe { g.realloc_layout(ptr, layout.size(), new_size, layout.align()) };
            return match r {
                Ok(p) => p.as_ptr(),
                Err(crate::Error::InvalidPointer(e)) => {
                    crate::sys::fatal(&format!("ghostmem: invalid reallocation: {e}\n"))
                }
                Err(_) => std::ptr::null_mut(),
            };
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: valid layout (see above).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated by us with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}
