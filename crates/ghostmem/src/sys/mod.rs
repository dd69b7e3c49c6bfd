//! Platform code. Everything above this module is platform-neutral: it sees a [`Backend`]
//! (the reserved ghost address space and the operations that change access to its pages), a
//! way to block signals around critical sections, and a fault handler installed with a
//! decision function ([`install_fault_handler`]), which names nothing above this module.
//!
//! Only Linux is implemented, with three backends: userfaultfd in SIGBUS mode (the default
//! where the kernel allows it), `mprotect` + SIGSEGV (the fallback), and userfaultfd served by
//! a handler thread (kernel access, where the system allows it; see `linux/uffd.rs`).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("ghostmem supports Linux only for now");

use crate::page::{PageId, PageRun};

/// How page faults on ghost memory are delivered and resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultBackend {
    /// `userfaultfd(2)` in SIGBUS mode: the faulting thread resolves its own fault with one
    /// ioctl; no per-page `mprotect`, faults of several threads proceed at once. Linux 5.11+
    /// unprivileged (where the architecture supports write-protecting anonymous memory with it),
    /// unless a seccomp filter forbids it.
    Userfaultfd,
    /// `mprotect(2)` and SIGSEGV: works everywhere; slower, serializes faults on the process's
    /// mmap lock, and the budget is capped by `vm.max_map_count`.
    Mprotect,
    /// `userfaultfd(2)` whose faults, taken in user mode or inside a system call, are served
    /// by a handler thread: system calls may touch ghost pages that are not resident (kernel
    /// access, [`crate::ConfigBuilder::kernel_access`]). Slower per fault (a thread switch) and
    /// serial; needs `CAP_SYS_PTRACE`, `vm.unprivileged_userfaultfd = 1`, or access to
    /// `/dev/userfaultfd`.
    UserfaultfdThread,
}

impl FaultBackend {
    /// The name used in statistics, logs, `GHOSTMEM_BACKEND` and `bench --json`.
    pub fn name(self) -> &'static str {
        match self {
            FaultBackend::Userfaultfd => "userfaultfd",
            FaultBackend::Mprotect => "mprotect",
            FaultBackend::UserfaultfdThread => "userfaultfd-thread",
        }
    }

    /// The number statistics and the C ABI use: 1 userfaultfd, 2 mprotect, 3
    /// userfaultfd-thread (kernel access).
    pub fn code(self) -> u64 {
        match self {
            FaultBackend::Userfaultfd => 1,
            FaultBackend::Mprotect => 2,
            FaultBackend::UserfaultfdThread => 3,
        }
    }

    /// The backend [`FaultBackend::code`] gives `code` (`None` for 0 or an unknown code).
    pub fn from_code(code: u64) -> Option<FaultBackend> {
        match code {
            1 => Some(FaultBackend::Userfaultfd),
            2 => Some(FaultBackend::Mprotect),
            3 => Some(FaultBackend::UserfaultfdThread),
            _ => None,
        }
    }

    /// Parse a name as [`FaultBackend::name`] writes it.
    pub fn from_name(name: &str) -> Option<FaultBackend> {
        match name {
            "userfaultfd" => Some(FaultBackend::Userfaultfd),
            "mprotect" => Some(FaultBackend::Mprotect),
            "userfaultfd-thread" => Some(FaultBackend::UserfaultfdThread),
            _ => None,
        }
    }
}

impl std::fmt::Display for FaultBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) use FaultBackend as BackendKind;

/// What the fault handler should do with a fault.
pub(crate) enum Outcome {
    /// The page is accessible now: return and let the instruction run again.
    Handled,
    /// Not a fault on ghost memory: chain to the previous handler of the same signal.
    NotOurs,
    /// A touch of ghost address space that is not live memory (freed, or never allocated): a
    /// segmentation fault, whichever signal reported it. Chained to the previous SIGSEGV
    /// handler, so the program dies with SIGSEGV as it would without ghostmem.
    Invalid,
    /// Ghost memory that cannot be made accessible: report and abort.
    Fatal { what: &'static str, errno: i32 },
}

/// Which signal reported a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultSignal {
    /// SIGSEGV with `SEGV_ACCERR`: a protection fault (the mprotect backend).
    Protection,
    /// SIGBUS with `BUS_ADRERR`: a userfaultfd fault in SIGBUS mode.
    Userfault,
}

/// The handler's decision function: given the faulting address and how it was reported, say
/// what to do. It runs inside a signal handler with every signal blocked.
pub(crate) type Decide = fn(addr: usize, signal: FaultSignal) -> Outcome;

/// Access to the pages of one arena: the seam between the pager and the way faults are
/// delivered.
///
/// # Contract
/// Every method may run inside the fault path (a signal handler, with every signal blocked, on
/// a pager-owned stack): it must not allocate through the global allocator, must not take a
/// lock that ordinary code can hold while interruptible, and must report every failed system
/// call. Methods take page runs; the pager guarantees that no two threads operate on the same
/// page at once.
pub(crate) trait Backend: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// The reserved address space.
    fn arena(&self) -> &Arena;
    /// After this returns no thread can store to `run` (loads may still see the contents until
    /// [`Backend::discard`]); a store raises a fault the pager sees.
    fn revoke(&self, run: PageRun) -> rustix::io::Result<()>;
    /// Undo [`Backend::revoke`] on pages that still hold their contents (a failed eviction).
    fn unrevoke(&self, run: PageRun) -> rustix::io::Result<()>;
    /// Read the contents of revoked pages into `buf` (`run.bytes()` long). Revoked, so no
    /// store changes them during the read (the userfaultfd backend reads through the mapping).
    fn read(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()>;
    /// Lend the contents of the revoked page `page` to `f`: in place where this backend can
    /// (no copy), else read into `buf` (a page long) first. `f` runs before this returns, while
    /// the page stays revoked.
    fn lend(
        &self,
        page: PageId,
        buf: &mut [u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> rustix::io::Result<()> {
        self.read(PageRun::one(page), buf)?;
        f(buf);
        Ok(())
    }
    /// Free the memory of revoked pages. Their next touch raises a fault the pager sees.
    fn discard(&self, run: PageRun) -> rustix::io::Result<()>;
    /// [`Backend::discard`] for several runs at once (one system call where the kernel allows
    /// it). On failure, returns how many of the first runs were freed, and the error.
    fn discard_runs(&self, runs: &[PageRun]) -> Result<(), (usize, rustix::io::Errno)> {
        for (i, &run) in runs.iter().enumerate() {
            self.discard(run).map_err(|e| (i, e))?;
        }
        Ok(())
    }
    /// Give the pages of `run` (discarded, or never touched) `contents` (`run.bytes()` long;
    /// `None`: zeros) and make them accessible.
    fn fill(&self, run: PageRun, contents: Option<&[u8]>) -> rustix::io::Result<()>;
    /// Whether loads of a revoked page run without a fault (the userfaultfd backend's
    /// write-protection; the mprotect backend revokes all access). Sequential streams bring
    /// pages in clean (see `pager/clean.rs`) only where they do: elsewhere every load would
    /// fault.
    fn revoked_pages_are_readable(&self) -> bool {
        false
    }
    /// [`Backend::fill`], leaving the pages revoked (loads run, a store faults), as
    /// [`Backend::revoke`] would; [`Backend::unrevoke`] makes them writable.
    fn fill_revoked(&self, run: PageRun, contents: &[u8]) -> rustix::io::Result<()> {
        self.fill(run, Some(contents))?;
        self.revoke(run)
    }
    /// Spare slots (see `pager/spare.rs`): how many slots, from 0, can hold a page moved out
    /// of the arena; 0 where this backend cannot move pages (then the pager never calls
    /// [`Backend::stash`] and the methods after it).
    fn spare_slots(&self) -> usize {
        0
    }
    /// Move the resident pages of `run` into the empty spare slots `slot..slot + run.count`:
    /// afterwards the run is a hole (a touch faults) and the slots hold its pages, contents and
    /// all. On failure, how many leading pages moved, and the error.
    fn stash(&self, run: PageRun, slot: u32) -> Result<(), (u32, rustix::io::Errno)> {
        let _ = (run, slot);
        Err((0, rustix::io::Errno::NOSYS))
    }
    /// Move the pages in spare slots `slot..slot + run.count` into the hole `run`, accessible.
    /// On failure, how many leading pages moved, and the error.
    fn unstash(&self, run: PageRun, slot: u32) -> Result<(), (u32, rustix::io::Errno)> {
        let _ = (run, slot);
        Err((0, rustix::io::Errno::NOSYS))
    }
    /// Lend the page in spare slot `slot` to `f`, to read and write. The caller owns the slot
    /// (no other thread uses it meanwhile) and it holds a page.
    fn with_spare(&self, slot: u32, f: &mut dyn FnMut(&mut [u8])) {
        let _ = (slot, f);
        unreachable!("a backend without spare slots lends none");
    }
    /// Free the memory of spare slots `slot..slot + count` (those that exist).
    fn drop_spares(&self, slot: u32, count: u32) -> rustix::io::Result<()> {
        let _ = (slot, count);
        Ok(())
    }
    /// Pages the heap freed: free their memory; any later touch raises a fault, which the
    /// pager passes on as not ours.
    fn release(&self, run: PageRun) -> rustix::io::Result<()>;
    /// Backends whose faults a thread reads (kernel access): serve them, calling `fault` for
    /// each faulting page, until `stop` is set and [`Backend::stop_serving`] called. This runs
    /// on the instance's handler thread with every signal blocked; `fault` is the pager's fault
    /// path. Other backends return at once.
    fn serve_faults(
        &self,
        stop: &std::sync::atomic::AtomicBool,
        fault: &dyn Fn(PageId) -> Outcome,
    ) {
        let _ = (stop, fault);
    }
    /// Make [`Backend::serve_faults`] look at its `stop` flag now.
    fn stop_serving(&self) {}
}
