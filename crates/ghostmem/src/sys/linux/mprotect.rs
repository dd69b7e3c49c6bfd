//! The signal backend: page protection with `mprotect(2)`, faults as SIGSEGV.
//!
//! The fallback where userfaultfd is missing or refused (container seccomp profiles, kernels
//! before 5.11 for unprivileged processes). Every resident page is mapped read-write, every
//! other page `PROT_NONE`; a touch of a `PROT_NONE` page raises SIGSEGV (`SEGV_ACCERR`).
//! Contents go in and out through the memfd (`pread`/`pwrite`), never through the user view.
//!
//! Costs: each protection change takes the process's mmap lock for writing (so faults of
//! several threads serialize, and slow ordinary page faults elsewhere in the process), and
//! per-page protection splits the mapping into up to one VMA per page, so the budget is capped
//! by `vm.max_map_count`.

use super::arena::{Arena, Backing};
use crate::page::PageRun;
use crate::sys::{Backend, BackendKind};

/// The signal backend and the arena it protects.
pub(crate) struct Mprotect {
    arena: Arena,
}

impl Mprotect {
    /// Reserve `len` bytes, all inaccessible.
    pub fn new(len: usize) -> Result<Mprotect, crate::Error> {
        Ok(Mprotect {
            arena: Arena::new(len, Backing::Memfd)?,
        })
    }
}

impl Backend for Mprotect {
    fn kind(&self) -> BackendKind {
        BackendKind::Mprotect
    }

    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn revoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.set_access(run, false)
    }

    fn unrevoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.set_access(run, true)
    }

    fn fill(&self, run: PageRun, contents: Option<&[u8]>) -> rustix::io::Result<()> {
        if let Some(bytes) = contents {
            self.arena.write_run(run, bytes)?;
        }
        self.arena.set_access(run, true)
    }

    fn discard(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.discard(run)
    }

    fn release(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.set_access(run, false)?;
        self.arena.discard(run)
    }

    fn read(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()> {
        self.arena.read_run(run, buf)
    }
}
