//! A stack and buffers for the fault path.
//!
//! The SIGSEGV handler runs on the interrupted thread's alternate signal stack, which the Rust
//! runtime sizes for a short handler (about 8 KiB, part of it taken by the kernel's signal
//! frame). Restoring a page can need more: decryption, decompression, a debug build's frames.
//! So each pager owns one larger stack, mapped once, and the fault path switches to it after
//! taking the pager lock — which is what makes one stack per pager enough.
//!
//! ```text
//!   [ guard page (PROT_NONE) ][ FAULT_STACK bytes, read-write, touched lazily ]
//!   ^ mapping start            ^ base passed to psm::on_stack (stack grows down to it)
//! ```

use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use super::signals::fatal;
use crate::page::page_size;

/// Usable size of a fault stack. Only the pages actually used cost RAM.
const FAULT_STACK: usize = 256 << 10;

/// An owned stack with a guard page below it. `Drop` unmaps it.
pub(crate) struct FaultStack {
    map: NonNull<u8>,
    len: usize,
}

// SAFETY: the stack is plain memory owned by this value; using it is serialized by the caller
// (see `run`).
unsafe impl Send for FaultStack {}
// SAFETY: as above.
unsafe impl Sync for FaultStack {}

impl FaultStack {
    pub fn new() -> rustix::io::Result<FaultStack> {
        let guard = page_size();
        let len = guard + FAULT_STACK;
        // SAFETY: a fresh private anonymous mapping at an address the kernel chooses.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::STACK,
            )
        }?;
        let map = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)?;
        let stack = FaultStack { map, len };
        // SAFETY: the first page of our own mapping becomes the guard page.
        unsafe { rustix::mm::mprotect(ptr, guard, MprotectFlags::empty()) }?;
        Ok(stack)
    }

    /// Run `f` on this stack and return its result. `&mut self` guarantees that nothing else
    /// runs on the stack meanwhile.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let guard = page_size();
        let body = move || match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            // Unwinding must not cross the stack switch; a panic here is a bug in the engine.
            Err(_) => fatal("ghostmem: fatal: panic on the page-fault path\n"),
        };
        // SAFETY: `map + guard` is page-aligned (so aligned for any target), the region above it
        // is FAULT_STACK bytes of our read-write mapping with a guard page below, `body` never
        // unwinds, and `&mut self` gives us exclusive use of the stack.
        unsafe { psm::on_stack(self.map.as_ptr().add(guard), FAULT_STACK, body) }
    }
}

impl Drop for FaultStack {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing runs on it any more (the pager is gone).
        if let Err(e) = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.len) } {
            tracing::error!(error = %e, "munmap of a fault stack failed");
        }
    }
}

/// Zeroed memory mapped directly from the OS, for the fault path's working buffers. It takes
/// RAM only where it is written: a zeroed heap allocation may be cleared with `memset` (glibc
/// does so for memory it already holds) or share a page with the allocator's bookkeeping, and
/// a pager keeps sixteen sets of these buffers of which one thread's faults use one or two.
pub(crate) struct FaultBuffer {
    map: NonNull<u8>,
    len: usize,
}

// SAFETY: plain memory owned by this value; access follows Rust's borrow rules through
// `Deref`/`DerefMut`.
unsafe impl Send for FaultBuffer {}
// SAFETY: as above.
unsafe impl Sync for FaultBuffer {}

impl FaultBuffer {
    /// `len` zero bytes (rounded up to whole pages in the mapping).
    pub fn new(len: usize) -> rustix::io::Result<FaultBuffer> {
        assert!(len > 0, "an empty fault buffer");
        // SAFETY: a fresh private anonymous mapping at an address the kernel chooses.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        let map = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)?;
        Ok(FaultBuffer { map, len })
    }
}

impl Deref for FaultBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of our own read-write mapping, initialized (zero-filled by the
        // kernel); shared access follows from `&self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }
}

impl DerefMut for FaultBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr(), self.len) }
    }
}

impl Drop for FaultBuffer {
    fn drop(&mut self) {
        // SAFETY: we own the mapping, and no borrow of it outlives `self`.
        if let Err(e) = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.len) } {
            tracing::error!(error = %e, "munmap of a fault buffer failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_buffer_is_zeroed_writable_and_its_own() {
        let page = page_size();
        let mut a = FaultBuffer::new(3 * page + 1).unwrap();
        let mut b = FaultBuffer::new(page).unwrap();
        assert_eq!((a.len(), b.len()), (3 * page + 1, page));
        assert!(a.iter().chain(b.iter()).all(|&x| x == 0));
        a.fill(0xa5);
        b[page - 1] = 7;
        assert!(a.iter().all(|&x| x == 0xa5));
        assert_eq!(b.iter().filter(|&&x| x != 0).count(), 1);
        assert_eq!(b.as_ptr() as usize % page, 0, "page-aligned");
    }
}
