//! The arena: one memfd, mapped once as the application's view.
//!
//! ```text
//!            memfd (shmem, sparse: only pages with data use RAM)
//!            ┌──────┬──────┬──────┬──────┬──────┬─────────────┐
//!            │ p0   │ p1   │ hole │ p3   │ hole │  ...        │
//!            └──┬───┴──┬───┴──────┴──┬───┴──────┴─────────────┘
//!   user view   │ RW   │ RW    NONE  │ RW    NONE   (mprotect backend: per-page protection;
//!   (mmap SHARED, what the application dereferences)   userfaultfd backend: all RW, holes
//!                                                       fault as MISSING)
//!
//!   manager view: pread/pwrite on the memfd — reads and writes page contents whatever the
//!   user view's protection is, and never maps a second page-table entry (which would count
//!   the page twice in RSS).
//! ```
//!
//! Evicting a page: revoke write access in the user view (after that no thread can store to
//! it), `pread` its final contents, encode and store them, then punch a hole in the memfd,
//! which frees the RAM. Restoring fills the hole (`pwrite` + `mprotect`, or one `UFFDIO_COPY`).
//! A never-touched page is a hole.

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use crate::page::{PageId, PageRun, page_size};

/// An owned reservation of ghost address space, backed by a memfd. `Drop` unmaps it.
pub(crate) struct Arena {
    fd: OwnedFd,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the arena is a handle to a mapping and a file descriptor; every method is a system call
// that the kernel serializes. It owns no thread-bound state.
unsafe impl Send for Arena {}
// SAFETY: as above; shared access only issues system calls on the fd and the mapping.
unsafe impl Sync for Arena {}

fn sys(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> crate::Error {
    move |e| crate::Error::Sys {
        op,
        source: io::Error::from(e),
    }
}

impl Arena {
    /// Reserve `len` bytes (a multiple of the page size) without RAM: inaccessible, or mapped
    /// read-write (`accessible`, for the userfaultfd backend, where holes fault instead).
    pub fn new(len: usize, accessible: bool) -> Result<Arena, crate::Error> {
        let fd = rustix::fs::memfd_create("ghostmem", MemfdFlags::CLOEXEC)
            .map_err(sys("memfd_create"))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(sys("ftruncate(memfd)"))?;
        let prot = if accessible {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::empty()
        };
        // SAFETY: a fresh shared mapping of our own memfd at an address the kernel chooses; it
        // overlaps nothing.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED | MapFlags::NORESERVE,
                &fd,
                0,
            )
        }
        .map_err(sys("mmap(arena)"))?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| crate::Error::Sys {
            op: "mmap(arena)",
            source: io::Error::other("mapped at address zero"),
        })?;
        let arena = Arena { fd, base, len };
        // The mapping is shared: a forked child would otherwise write into the parent's pages.
        // SAFETY: advice on our own mapping; it changes only what fork() copies.
        unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxDontFork) }
            .map_err(sys("madvise(MADV_DONTFORK)"))?;
        Ok(arena)
    }

    /// First address of the user view.
    pub fn base(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.len / page_size()
    }

    fn range(&self, run: PageRun) -> (*mut core::ffi::c_void, usize) {
        let off = run.first.offset();
        let len = run.bytes();
        assert!(off + len <= self.len, "page run outside the arena");
        (self.base.as_ptr().wrapping_add(off).cast(), len)
    }

    /// Grant (`true`) or revoke (`false`) read and write access to `run` in the user view.
    /// When revoking returns, no thread can read or write those pages any more.
    pub fn set_access(&self, run: PageRun, access: bool) -> rustix::io::Result<()> {
        let (addr, len) = self.range(run);
        let flags = if access {
            MprotectFlags::READ | MprotectFlags::WRITE
        } else {
            MprotectFlags::empty()
        };
        // SAFETY: `addr..addr+len` lies inside our own mapping (checked by `range`). Changing its
        // protection cannot invalidate Rust references: the application only reaches ghost
        // memory through raw pointers it was given, and a revoked page faults into our handler.
        unsafe { rustix::mm::mprotect(addr, len, flags) }
    }

    /// Read the contents of `run` through the memfd, whatever the user view's protection.
    pub fn read_run(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()> {
        assert_eq!(buf.len(), run.bytes(), "buffer and run differ in size");
        let page = run.first;
        let mut done = 0;
        while done < buf.len() {
            let n = rustix::io::pread(&self.fd, &mut buf[done..], (page.offset() + done) as u64)?;
            if n == 0 {
                return Err(rustix::io::Errno::IO);
            }
            done += n;
        }
        Ok(())
    }

    /// Write the contents of `run` through the memfd (allocating its RAM).
    pub fn write_run(&self, run: PageRun, buf: &[u8]) -> rustix::io::Result<()> {
        assert_eq!(buf.len(), run.bytes(), "buffer and run differ in size");
        let page = run.first;
        let mut done = 0;
        while done < buf.len() {
            let n = rustix::io::pwrite(&self.fd, &buf[done..], (page.offset() + done) as u64)?;
            if n == 0 {
                return Err(rustix::io::Errno::IO);
            }
            done += n;
        }
        Ok(())
    }

    /// Zero `len` bytes at `offset` inside `page`, through the user view.
    ///
    /// # Safety
    /// - `page` is accessible (not revoked) for the whole call, so the stores cannot fault;
    /// - no thread reads or writes those bytes meanwhile (they belong to no allocation).
    pub unsafe fn zero(&self, page: PageId, offset: usize, len: usize) {
        assert!(offset + len <= page_size(), "range outside the page");
        let (addr, _) = self.range(PageRun::one(page));
        // SAFETY: inside our mapping (checked by `range` and the assert above); accessible and
        // touched by no one else (the caller's contract).
        unsafe { std::ptr::write_bytes(addr.cast::<u8>().add(offset), 0, len) };
    }

    /// Free the RAM behind `run`: its pages become holes that read as zeros.
    pub fn discard(&self, run: PageRun) -> rustix::io::Result<()> {
        rustix::fs::fallocate(
            &self.fd,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            run.first.offset() as u64,
            run.bytes() as u64,
        )
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: we own this mapping; the instance that used it is unregistered from the fault
        // handler and no allocation from it may be used after the instance is dropped.
        if let Err(e) = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) } {
            tracing::error!(error = %e, "munmap of a ghostmem arena failed; address space leaked");
        }
    }
}
