//! The arena: the application's view of ghost memory, reserved once.
//!
//! Two kinds ([`Backing`]). The signal backend needs pages whose contents it can read and write
//! while the application's view has no access at all, so its arena is a memfd (drawn below).
//! The userfaultfd backend write-protects instead of revoking all access, so it reads a page's
//! final contents straight through the mapping, and its arena is plain anonymous memory: freeing
//! a page is `MADV_DONTNEED` (cheaper than removing a page from a shmem file), and a restore
//! (`UFFDIO_COPY`) allocates an anonymous page rather than adding one to the page cache.
//!
//! The memfd kind:
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

use crate::page::{PageRun, page_size};

/// What lies behind an arena's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// A memfd mapped shared, with no access: contents are read and written through the file
    /// whatever the view's protection (the signal backend).
    Memfd,
    /// Private anonymous memory mapped read-write, for the userfaultfd backend: holes fault as
    /// MISSING, contents are read through the mapping once the page is write-protected.
    Anonymous,
}

/// An owned reservation of ghost address space. `Drop` unmaps it.
pub(crate) struct Arena {
    /// The memfd behind a [`Backing::Memfd`] arena; `None` for an anonymous one.
    fd: Option<OwnedFd>,
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
    /// Reserve `len` bytes (a multiple of the page size) without RAM. A memfd arena starts
    /// inaccessible; an anonymous one read-write (its holes fault once registered with a
    /// userfaultfd).
    pub fn new(len: usize, backing: Backing) -> Result<Arena, crate::Error> {
        let (fd, prot, flags) = match backing {
            Backing::Memfd => {
                let fd = rustix::fs::memfd_create("ghostmem", MemfdFlags::CLOEXEC)
                    .map_err(sys("memfd_create"))?;
                rustix::fs::ftruncate(&fd, len as u64).map_err(sys("ftruncate(memfd)"))?;
                (Some(fd), ProtFlags::empty(), MapFlags::SHARED)
            }
            Backing::Anonymous => (None, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE),
        };
        let ptr = match &fd {
            // SAFETY: a fresh shared mapping of our own memfd at an address the kernel chooses;
            // it overlaps nothing.
            Some(fd) => unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    flags | MapFlags::NORESERVE,
                    fd,
                    0,
                )
            },
            // SAFETY: a fresh anonymous mapping at an address the kernel chooses; it overlaps
            // nothing.
            None => unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    flags | MapFlags::NORESERVE,
                )
            },
        }
        .map_err(sys("mmap(arena)"))?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| crate::Error::Sys {
            op: "mmap(arena)",
            source: io::Error::other("mapped at address zero"),
        })?;
        let arena = Arena { fd, base, len };
        // A forked child must not see the arena: a shared one would let it write into the
        // parent's pages, a private one would lose its userfaultfd registration in the child.
        // SAFETY: advice on our own mapping; it changes only what fork() copies.
        unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxDontFork) }
            .map_err(sys("madvise(MADV_DONTFORK)"))?;
        if backing == Backing::Anonymous {
            // Pages come and go one by one: a transparent huge page would be split by the first
            // eviction inside it.
            // SAFETY: advice on our own mapping; it changes only the page size the kernel uses.
            unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxNoHugepage) }
                .map_err(sys("madvise(MADV_NOHUGEPAGE)"))?;
        }
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

    /// Read the contents of `run`: through the memfd, whatever the user view's protection; or,
    /// in an anonymous arena, through the mapping, where the caller guarantees every page of
    /// `run` is resident and write-protected (so the read neither faults nor races a store).
    pub fn read_run(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()> {
        assert_eq!(buf.len(), run.bytes(), "buffer and run differ in size");
        let Some(fd) = &self.fd else {
            let (addr, len) = self.range(run);
            // SAFETY: `addr..addr+len` lies inside our own mapping (checked by `range`), its pages
            // are resident and no thread can store to them (the caller's guarantee), and `buf`
            // is a distinct buffer of `len` bytes.
            unsafe { std::ptr::copy_nonoverlapping(addr.cast::<u8>(), buf.as_mut_ptr(), len) };
            return Ok(());
        };
        let page = run.first;
        let mut done = 0;
        while done < buf.len() {
            let n = rustix::io::pread(fd, &mut buf[done..], (page.offset() + done) as u64)?;
            if n == 0 {
                return Err(rustix::io::Errno::IO);
            }
            done += n;
        }
        Ok(())
    }

    /// Write the contents of `run` through the memfd (allocating its RAM). A memfd arena only:
    /// an anonymous one is filled by `UFFDIO_COPY`.
    pub fn write_run(&self, run: PageRun, buf: &[u8]) -> rustix::io::Result<()> {
        assert_eq!(buf.len(), run.bytes(), "buffer and run differ in size");
        let fd = self.fd.as_ref().expect(
            "write_run on an anonymous arena (only the signal backend writes through a file)",
        );
        let page = run.first;
        let mut done = 0;
        while done < buf.len() {
            let n = rustix::io::pwrite(fd, &buf[done..], (page.offset() + done) as u64)?;
            if n == 0 {
                return Err(rustix::io::Errno::IO);
            }
            done += n;
        }
        Ok(())
    }

    /// Free the RAM behind `run`: a memfd's pages become holes that read as zeros; an
    /// anonymous arena's pages become unpopulated (a MISSING fault on their next touch).
    pub fn discard(&self, run: PageRun) -> rustix::io::Result<()> {
        match &self.fd {
            Some(fd) => rustix::fs::fallocate(
                fd,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                run.first.offset() as u64,
                run.bytes() as u64,
            ),
            None => {
                let (addr, len) = self.range(run);
                // SAFETY: `addr..addr+len` lies inside our own private anonymous mapping; dropping
                // its pages cannot invalidate Rust references (the application reaches ghost
                // memory only through raw pointers, and a dropped page faults into our handler).
                unsafe { rustix::mm::madvise(addr, len, rustix::mm::Advice::LinuxDontNeed) }
            }
        }
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
