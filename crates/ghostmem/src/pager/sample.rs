//! Access sampling: the CLOCK learns which resident pages are still in use.
//!
//! The fault backends see faults, not accesses, so a page gets its chances when it comes in
//! (see `clock.rs`) and loses one each time the hand passes, however often it is used. Where
//! revoking a page only write-protects it (the userfaultfd backend), the hand samples the
//! pages that have shown they are in use (they came back soon after an eviction, or were
//! stored to while sampled: `earned`) when it finds them without chances: instead of
//! evicting such a page it marks it sampled and passes it, and the pager write-protects it
//! ([`Pager::sample`], under the pager lock, so that a pin or an eviction finds it as it is).
//! A store to a sampled page faults; the fault gives it write access back and `HOT` chances
//! ([`Pager::on_resident_fault`]). A sampled page not stored to before the hand comes back
//! is evicted (its write-protect then costs no TLB flush: the revoke finds it done). Ordinary
//! code that writes into a sampled page, or lets the kernel do so (a pin, a scrub), gives it
//! write access back first (`make_writable`).
//!
//! ```text
//!   earned page, no chances left, hand arrives   marked sampled, write-protected, passed
//!   store to it                                  fault → lock: unrevoke, HOT chances
//!   hand arrives again, not stored to            evicted
//! ```
//!
//! Pages the hand has no reason to think are in use (a page that came in once, a page read
//! ahead) are never sampled: on `bench --workload rand` (uniform touches) sampling faults are
//! 0.2 % of all faults, on `seq` none. Loads are not seen: a page only read is not kept for
//! them, but it usually came in clean (see `clean.rs`) and leaves without being encoded
//! again.
//!
//! The mprotect backend does not sample: revoking there takes reads away too, and every
//! sampled page would split a mapping. `GHOSTMEM_SAMPLING=off` ([`crate::SAMPLING_ENV`])
//! turns sampling off, for measuring it.

use super::table::{Entry, Frame};
use super::{Failure, Pager, State, evict::Victim, failed};
use crate::page::{PageId, PageRun};
use crate::stats::add;

/// Most pages one fault, background batch or pin samples.
const MOST: usize = 16;

/// The pages the hand marked sampled while picking victims, for [`Pager::sample`]. Fixed
/// size: the fault path never allocates.
pub(super) struct Samples {
    pages: [PageId; MOST],
    count: usize,
}

impl Samples {
    pub fn new() -> Samples {
        Samples {
            pages: [PageId(0); MOST],
            count: 0,
        }
    }

    /// Answer the hand's offer of `page` ([`Clock::victim`]'s `sample`): taken while there is
    /// room and the pager samples at all (`on`).
    ///
    /// [`Clock::victim`]: super::clock::Clock::victim
    pub fn offer(&mut self, on: bool, page: PageId) -> bool {
        let take = on && self.count < MOST;
        if take {
            self.pages[self.count] = page;
            self.count += 1;
        }
        take
    }
}

impl Pager {
    /// Write-protect `pages`, the pages the hand just marked sampled (see [`Clock::victim`]),
    /// a run of neighbours at a time. A page that is not `Resident` any more (clean pages are
    /// write-protected already) or is among `victims` loses the mark instead.
    ///
    /// [`Clock::victim`]: super::clock::Clock::victim
    pub(super) fn sample(
        &self,
        st: &mut State,
        samples: &mut Samples,
        victims: &[Victim],
    ) -> Result<(), Failure> {
        let pages = &mut samples.pages[..samples.count];
        pages.sort_unstable_by_key(|p| p.0);
        let samplable = |st: &State, p: PageId| {
            matches!(st.table.get(p), Entry::Resident { .. }) && victims.iter().all(|v| v.page != p)
        };
        let mut i = 0;
        while i < pages.len() {
            let first = pages[i];
            i += 1;
            if !samplable(st, first) {
                if let Some(frame) = st.table.get(first).frame() {
                    st.clock.set_sampled(frame, false);
                }
                continue;
            }
            let mut count = 1u32;
            while i < pages.len() && pages[i].0 == first.0 + count && samplable(st, pages[i]) {
                count += 1;
                i += 1;
            }
            let run = PageRun { first, count };
            if let Err(e) = self.backend.revoke(run) {
                for p in pages.iter() {
                    if let Some(frame) = st.table.get(*p).frame() {
                        st.clock.set_sampled(frame, false);
                    }
                }
                return Err(failed("write-protecting sampled pages")(e));
            }
            add(&self.counters.sampled_pages, u64::from(count));
        }
        Ok(())
    }

    /// A fault on the resident page `page` in `frame`: a sampled page stored to, or a page
    /// another thread brought in first. Either way it is in use. On the backends that sample,
    /// the page gets write access back whether or not it is marked sampled, so that no fault
    /// can repeat forever on a page left write-protected.
    pub(super) fn on_resident_fault(
        &self,
        st: &mut State,
        page: PageId,
        frame: Frame,
    ) -> Result<(), Failure> {
        if !self.sampling {
            st.clock.touch(frame);
            return Ok(());
        }
        self.backend
            .unrevoke(PageRun::one(page))
            .map_err(failed("giving a sampled page write access back"))?;
        if st.clock.sampled(frame) {
            st.clock.in_use(frame);
            add(&self.counters.sample_faults, 1);
        } else {
            st.clock.touch(frame);
        }
        Ok(())
    }

    /// Give the sampled page `page` in `frame` write access back before ordinary code (a pin,
    /// a scrub) writes to it or lets the kernel write to it (pager lock held). It keeps its
    /// chances; no-op for a page that is not sampled.
    pub(super) fn unsample(
        &self,
        st: &mut State,
        page: PageId,
        frame: Frame,
    ) -> Result<(), Failure> {
        if !st.clock.sampled(frame) {
            return Ok(());
        }
        self.backend
            .unrevoke(PageRun::one(page))
            .map_err(failed("giving a sampled page write access back"))?;
        st.clock.set_sampled(frame, false);
        Ok(())
    }
}
