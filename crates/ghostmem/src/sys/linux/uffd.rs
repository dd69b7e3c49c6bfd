//! The userfaultfd backend (SIGBUS mode): the default wherever the kernel allows it.
//!
//! The arena is registered with a userfaultfd created with `UFFD_USER_MODE_ONLY` (allowed
//! without privileges since Linux 5.11) and `UFFD_FEATURE_SIGBUS`, in MISSING and
//! write-protect (WP) modes. No thread reads the descriptor: the kernel raises SIGBUS in the
//! faulting thread instead, and the handler resolves the fault itself with one ioctl.
//!
//! ```text
//!   touch of a hole ──▶ SIGBUS ──▶ UFFDIO_COPY (decoded page) or UFFDIO_ZEROPAGE ──▶ retry
//!   evict:  UFFDIO_WRITEPROTECT ──▶ pread final contents ──▶ store ──▶ fallocate(PUNCH_HOLE)
//!             (stores now raise SIGBUS and wait;      (the page is a hole again:
//!              loads still see the final contents)     the next touch is a MISSING fault)
//! ```
//!
//! Compared with the signal backend: no `mprotect`, so the mapping is never split into one VMA
//! per page (no `vm.max_map_count` limit) and the process's mmap lock is only taken for reading,
//! so faults of several threads proceed at once.
//!
//! Limits: a system call that touches a hole fails with `EFAULT` (user-mode-only and SIGBUS
//! mode never serve faults taken inside the kernel), as with the signal backend.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::arena::Arena;
use crate::page::PageRun;
use crate::sys::{Backend, BackendKind};

// <linux/userfaultfd.h>; the `libc` crate does not define the userfaultfd ioctls.
const UFFD_API: u64 = 0xaa;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
const UFFD_FEATURE_MISSING_SHMEM: u64 = 1 << 5;
const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;

const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xc018_aa06;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

/// Why the userfaultfd backend is not available here.
#[derive(Debug)]
pub(crate) struct Unavailable {
    pub step: &'static str,
    pub source: io::Error,
}

/// The userfaultfd backend: the arena and the descriptor it is registered with.
pub(crate) struct Userfaultfd {
    arena: Arena,
    uffd: OwnedFd,
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

impl Userfaultfd {
    /// Reserve `len` bytes and register them. Fails (with the step that failed) where the
    /// kernel lacks the features or refuses `userfaultfd(2)` (seccomp, old kernels).
    pub fn new(len: usize) -> Result<Userfaultfd, crate::Error> {
        Self::try_new(len).map_err(|u| crate::Error::Sys {
            op: u.step,
            source: u.source,
        })
    }

    pub fn try_new(len: usize) -> Result<Userfaultfd, Unavailable> {
        let fail = |step| move |source| Unavailable { step, source };
        // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_userfaultfd,
                libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
            )
        };
        if fd < 0 {
            return Err(fail("userfaultfd(UFFD_USER_MODE_ONLY)")(last_error()));
        }
        let fd = i32::try_from(fd).map_err(|_| fail("userfaultfd")(io::Error::other("bad fd")))?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_SIGBUS
                | UFFD_FEATURE_MISSING_SHMEM
                | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api`, which `api` is.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &raw mut api) } != 0 {
            return Err(fail("ioctl(UFFDIO_API: SIGBUS, shmem write-protect)")(
                last_error(),
            ));
        }
        let arena = Arena::new(len, true).map_err(|e| Unavailable {
            step: "creating the arena",
            source: io::Error::other(e.to_string()),
        })?;
        let mut reg = UffdioRegister {
            range: UffdioRange {
                start: arena.base() as u64,
                len: arena.len() as u64,
            },
            mode: UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes a `struct uffdio_register`; the range is our
        // own mapping.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &raw mut reg) } != 0 {
            return Err(fail("ioctl(UFFDIO_REGISTER: missing + write-protect)")(
                last_error(),
            ));
        }
        Ok(Userfaultfd { arena, uffd })
    }

    fn range(&self, run: PageRun) -> UffdioRange {
        assert!(
            run.first.offset() + run.bytes() <= self.arena.len(),
            "page run outside the arena"
        );
        UffdioRange {
            start: (self.arena.base() + run.first.offset()) as u64,
            len: run.bytes() as u64,
        }
    }

    fn write_protect(&self, run: PageRun, on: bool) -> rustix::io::Result<()> {
        let mut wp = UffdioWriteprotect {
            range: self.range(run),
            mode: if on { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 },
        };
        loop {
            // SAFETY: UFFDIO_WRITEPROTECT reads a `struct uffdio_writeprotect` over our range.
            let rc =
                unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &raw mut wp) };
            if rc == 0 {
                return Ok(());
            }
            let e =
                rustix::io::Errno::from_io_error(&last_error()).unwrap_or(rustix::io::Errno::IO);
            // EAGAIN: the mapping changed under us (another thread's fault); try again.
            if e != rustix::io::Errno::AGAIN {
                return Err(e);
            }
        }
    }
}

impl Backend for Userfaultfd {
    fn kind(&self) -> BackendKind {
        BackendKind::Userfaultfd
    }

    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn revoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.write_protect(run, true)
    }

    fn unrevoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.write_protect(run, false)
    }

    fn fill(&self, run: PageRun, contents: Option<&[u8]>) -> rustix::io::Result<()> {
        let range = self.range(run);
        let rc = match contents {
            Some(bytes) => {
                assert_eq!(bytes.len(), run.bytes(), "contents and run differ in size");
                let mut copy = UffdioCopy {
                    dst: range.start,
                    src: bytes.as_ptr() as u64,
                    len: range.len,
                    mode: 0,
                    copy: 0,
                };
                // SAFETY: UFFDIO_COPY reads a page from `bytes` (a live buffer of that length)
                // into our registered range, and writes back the `copy` result field.
                unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_COPY, &raw mut copy) }
            }
            None => {
                let mut zero = UffdioZeropage {
                    range,
                    mode: 0,
                    zeropage: 0,
                };
                // SAFETY: UFFDIO_ZEROPAGE reads a `struct uffdio_zeropage` over our range.
                unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_ZEROPAGE, &raw mut zero) }
            }
        };
        if rc == 0 {
            return Ok(());
        }
        match rustix::io::Errno::from_io_error(&last_error()).unwrap_or(rustix::io::Errno::IO) {
            // The page is already there: another path filled it first. Only one thread
            // restores a page, so its contents are the ones the pager wrote: success.
            rustix::io::Errno::EXIST => Ok(()),
            e => Err(e),
        }
    }

    fn discard(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.discard(run)
    }

    fn release(&self, run: PageRun) -> rustix::io::Result<()> {
        // A hole with no write-protection left: its next touch is a MISSING fault, which the
        // pager sees is on a free page and passes on.
        self.arena.discard(run)
    }

    fn read(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()> {
        self.arena.read_run(run, buf)
    }
}
