//! Clean pages: brought in by a sequential stream (readahead, or the fault that continues the
//! stream) and not stored to since, so the block they came from is still their contents. Evicting one again only frees its memory: nothing is encoded or
//! stored, which is most of what a sequential scan over evicted memory costs.
//!
//! ```text
//!   readahead of a run whose pages are all Stored, on a backend whose revoked pages stay
//!   readable (userfaultfd): the blocks stay in the store, the run is filled revoked
//!   (UFFDIO_COPY_MODE_WP, installed write-protected in one step: never a spare page moved
//!   in, which would be writable until write-protected), each page → Clean; the same for
//!   the Stored page of a fault that continues a stream
//!
//!   load of a Clean page           no fault
//!   store to a Clean page          fault → lock: unrevoke, remove the block → Resident
//!   pin, scrub, store replaced     the same first (a pinned page may be written by the kernel;
//!                                  a sampled page, `sample.rs`, gets write access back too)
//!   Clean chosen as victim         Evicting → discard → Stored with the kept block (never
//!                                  moved to a spare slot)
//!   release                        the block is removed with the page
//!   a system call writing into it  EFAULT (the kernel does not serve its own write faults
//!                                  here): pin first
//! ```
//!
//! A store therefore costs a page that came in clean a second fault. Pages a fault out of any
//! stream brings in are never clean: the store that usually follows such a fault would take
//! that fault every time (`rand` reads, then writes, each page it touches); a stream's own
//! page is one in a window's worth.
//!
//! The evicted-page gauges (`evicted_pages`, `compressed_bytes`, ...) count a clean page as
//! restored; `store_reserved_bytes` includes its kept block.

use super::table::Entry;
use super::{Failure, Pager, State, failed};
use crate::page::{PageId, PageRun};

impl Pager {
    /// Make `page` writable if it is `Clean` (pager lock held): give it write access back and
    /// remove its kept block; it becomes `Resident` in the same frame. A sampled page (see
    /// `sample.rs`) gets its write access back too. Other entries are left alone. On failure
    /// the page is as it was.
    pub(super) fn make_writable(&self, st: &mut State, page: PageId) -> Result<(), Failure> {
        if let Entry::Resident { frame } = st.table.get(page) {
            return self.unsample(st, page, frame);
        }
        let Entry::Clean {
            frame, block, len, ..
        } = st.table.get(page)
        else {
            return Ok(());
        };
        self.backend
            .unrevoke(PageRun::one(page))
            .map_err(failed("giving a clean page write access back"))?;
        st.store.remove(page, block, len as usize);
        st.table.set(page, Entry::Resident { frame });
        self.publish_store_stats(st);
        Ok(())
    }
}
