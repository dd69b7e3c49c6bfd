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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use crate::page::{PageId, PageRun, page_size};

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
    /// Anonymous arena: this process's pidfd, for `process_madvise(2)`, which frees several
    /// runs in one call with one TLB flush (`MADV_DONTNEED` on the calling process: Linux
    /// 6.13+). `None` where `pidfd_open` fails.
    pidfd: Option<OwnedFd>,
    /// Set once `process_madvise` refused `MADV_DONTNEED` (an older kernel): free run by run.
    batch_refused: AtomicBool,
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
        let pidfd = if fd.is_none() {
            // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
            i32::try_from(pidfd)
                .ok()
                .filter(|&fd| fd >= 0)
                // SAFETY: the descriptor was just returned by the kernel and is owned by nobody
                // else.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        } else {
            None
        };
        let arena = Arena {
            fd,
            pidfd,
            batch_refused: AtomicBool::new(false),
            base,
            len,
        };
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

    /// Lend the contents of `page` to `f` in place, through the mapping of an anonymous arena,
    /// where the caller guarantees the page is resident and write-protected until `f` returns
    /// (so it neither faults nor races a store).
    pub fn lend(&self, page: PageId, f: &mut dyn FnMut(&[u8])) {
        assert!(
            self.fd.is_none(),
            "lending through the mapping: an anonymous arena only"
        );
        let (addr, len) = self.range(PageRun::one(page));
        // SAFETY: `addr..addr+len` lies inside our own mapping (checked by `range`); the page is
        // resident and no thread can store to it while `f` runs (the caller's guarantee: it is
        // write-protected, and neither given access back nor freed before this returns), so
        // the bytes are initialized and do not change while the slice lives, and the slice
        // does not outlive this call.
        let contents = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len) };
        f(contents);
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

    /// [`Arena::discard`] for several runs: one `process_madvise(MADV_DONTNEED)` in an
    /// anonymous arena where the kernel allows it (one TLB flush for all of them), else run by
    /// run. On failure, how many of the first runs were freed, and the error.
    pub fn discard_runs(&self, runs: &[PageRun]) -> Result<(), (usize, rustix::io::Errno)> {
        const MOST: usize = 64;
        let mut done = 0;
        if let (None, Some(pidfd), 2..) = (&self.fd, &self.pidfd, runs.len())
            && !self.batch_refused.load(Relaxed)
        {
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MOST];
            let n = runs.len().min(MOST);
            for (v, &run) in iov.iter_mut().zip(&runs[..n]) {
                let (addr, len) = self.range(run);
                *v = libc::iovec {
                    iov_base: addr,
                    iov_len: len,
                };
            }
            // SAFETY: process_madvise(2) on our own process reads `n` iovecs, each a range of
            // our own private anonymous mapping (checked by `range`); dropping those pages cannot
            // invalidate Rust references (as in `discard`).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    pidfd.as_raw_fd(),
                    iov.as_ptr(),
                    n,
                    libc::MADV_DONTNEED,
                    0,
                )
            };
            if let Ok(bytes) = usize::try_from(rc) {
                // Whole runs advised; a short count leaves the rest to the loop below.
                let mut left = bytes;
                while done < n && left >= runs[done].bytes() {
                    left -= runs[done].bytes();
                    done += 1;
                }
            } else {
                let e = rustix::io::Errno::from_io_error(&io::Error::last_os_error())
                    .unwrap_or(rustix::io::Errno::IO);
                match e {
                    // Older kernels accept only a few advice values for process_madvise.
                    rustix::io::Errno::INVAL
                    | rustix::io::Errno::PERM
                    | rustix::io::Errno::NOSYS => {
                        self.batch_refused.store(true, Relaxed);
                    }
                    e => return Err((0, e)),
                }
            }
        }
        for (i, &run) in runs.iter().enumerate().skip(done) {
            self.discard(run).map_err(|e| (i, e))?;
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
