//! Pinning: make a run of pages resident and keep it out of eviction until unpinned.
//!
//! ```text
//!   pin(run)      lock (quiet: no fault in progress, every signal blocked on this thread)
//!                   refuse: a page is Free │ the pins would leave < 2 frames unpinned
//!                   pages already resident: pins + 1
//!                   the others: take a free frame or evict an unpinned CLOCK victim,
//!                   decode and fill the page here (the fault path's steps, lock held),
//!                   then pins = 1
//!   unpin(run)    lock; refuse if any page is not pinned; pins - 1
//!   CLOCK, the background evictor and budget shrinking skip pages whose pins > 0
//!   release (free): the pins of released pages go with them
//! ```
//!
//! A page's pin count lives in the second word of its `Resident` entry ([`super::table`]).
//! Restoring from ordinary code under the quiet lock, rather than by touching the pages, is
//! what makes pinning deterministic: a touched page could be evicted again before the pin is
//! counted, and a budget smaller than the range would never settle. Faults of other threads
//! wait on the lock meanwhile; none is between its plan and its commit (the lock is quiet), so
//! no page is in a transient state.

use std::sync::PoisonError;

use super::evict::Victim;
use super::restore::{Source, copy_block, decode, fill_failed};
use super::sample::Samples;
use super::scratch::Work;
use super::table::Entry;
use super::{Failure, Pager, State};
use crate::error::PinError;
use crate::page::{PageId, PageRun};
use crate::stats::add;
use crate::sys::SignalsBlocked;

/// Frames of the budget that pins must leave to eviction: one instruction can need two pages.
pub(crate) const MIN_UNPINNED: usize = crate::config::MIN_MAX_MEMORY_PAGES;

impl Pager {
    /// The address of `page`, for messages.
    fn address(&self, page: PageId) -> usize {
        self.arena.base() + page.offset()
    }

    /// Pages of `run` that are allocated (not `Free`), or the first that is not.
    fn check_allocated(&self, st: &State, run: PageRun) -> Result<(), PinError> {
        match run.pages().find(|&p| st.table.get(p) == Entry::Free) {
            Some(p) => Err(PinError::NotAllocated(self.address(p))),
            None => Ok(()),
        }
    }

    /// Refuse pins that would leave fewer than [`MIN_UNPINNED`] frames to eviction.
    fn check_room(&self, st: &State, run: PageRun) -> Result<(), PinError> {
        let mut new = 0;
        for p in run.pages() {
            match st.table.pins(p) {
                0 => new += 1,
                u32::MAX => return Err(PinError::TooManyPins(self.address(p))),
                _ => {}
            }
        }
        let budget = self.budget();
        if st.pinned + new + MIN_UNPINNED > budget {
            return Err(PinError::OverBudget {
                pages: new,
                pinned: st.pinned,
                budget,
                min_unpinned: MIN_UNPINNED,
            });
        }
        Ok(())
    }

    fn add_pin(st: &mut State, page: PageId) {
        let pins = st.table.pins(page);
        if pins == 0 {
            st.pinned += 1;
        }
        st.table.set_pins(page, pins + 1);
        if let Entry::Resident { frame } = st.table.get(page) {
            st.clock.touch(frame);
        }
    }

    fn drop_pin(st: &mut State, page: PageId) {
        let pins = st.table.pins(page);
        debug_assert!(pins > 0, "dropping a pin that is not there");
        st.table.set_pins(page, pins - 1);
        if pins == 1 {
            st.pinned -= 1;
        }
    }

    /// Pin every page of `run`: make it resident and exempt from eviction. All or nothing.
    pub fn pin(&self, run: PageRun) -> Result<(), crate::Error> {
        {
            // Fast path: every page is resident already, so no fault can be working on one.
            let _blocked = SignalsBlocked::new();
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if run.pages().all(|p| st.table.is_resident(p)) {
                self.check_room(&st, run)?;
                // A pinned page may be written by the kernel at any time: no clean pages.
                for p in run.pages() {
                    self.make_writable(&mut st, p)?;
                }
                for p in run.pages() {
                    Self::add_pin(&mut st, p);
                }
                return Ok(());
            }
        }
        let mut q = self.lock_quiet();
        let super::Quiet { st, scratch, .. } = &mut q;
        let st = &mut **st;
        self.check_allocated(st, run)?;
        self.check_room(st, run)?;
        // Resident pages first, so that making room for the others never evicts one of them.
        for p in run.pages() {
            self.make_writable(st, p)?;
        }
        for p in run.pages() {
            if st.table.is_resident(p) {
                Self::add_pin(st, p);
            }
        }
        for p in run.pages() {
            if st.table.is_resident(p) {
                continue;
            }
            if let Err(f) = self.restore_locked(st, &mut scratch.work, p) {
                // Every resident page of the run but `p` holds one of our pins now.
                for q in run.pages() {
                    if q != p && st.table.is_resident(q) {
                        Self::drop_pin(st, q);
                    }
                }
                return Err(f.into());
            }
            Self::add_pin(st, p);
        }
        Ok(())
    }

    /// Drop one pin from every page of `run`. All or nothing: refused if any page is not
    /// pinned.
    pub fn unpin(&self, run: PageRun) -> Result<(), PinError> {
        let _blocked = SignalsBlocked::new();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = run.pages().find(|&p| st.table.pins(p) == 0) {
            return Err(PinError::NotPinned(self.address(p)));
        }
        for p in run.pages() {
            Self::drop_pin(&mut st, p);
        }
        Ok(())
    }

    /// Pages pinned now (each counted once, however many pins hold it).
    pub fn pinned_pages(&self) -> usize {
        let _blocked = SignalsBlocked::new();
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pinned
    }

    /// Bring `page` (allocated, not resident) in from ordinary code, quiet lock held: the
    /// fault path's steps without a fault. On failure the page is as it was (a victim evicted
    /// to make room stays evicted).
    fn restore_locked(&self, st: &mut State, work: &mut Work, page: PageId) -> Result<(), Failure> {
        let entry = st.table.get(page);
        let frame = match st.clock.take_free() {
            Some((frame, spare)) => {
                if spare {
                    // A rare path: the page comes in by copy, the spare page goes.
                    if let Err(f) = self.drop_spare(frame) {
                        st.clock.vacate(frame, true);
                        return Err(f);
                    }
                }
                frame
            }
            None => {
                let table = &st.table;
                let mut samples = Samples::new();
                let (frame, victim) = st
                    .clock
                    .victim(
                        |p| table.is_evictable(p),
                        |p| samples.offer(self.sampling, p),
                    )
                    .expect("pins leave at least two frames to eviction, and the lock is quiet");
                let chosen = [Victim::new(victim, frame, None)];
                self.sample(st, &mut samples, &chosen)?;
                self.evict_locked(st, work, victim)?;
                frame
            }
        };
        let source = Source::of(entry).expect("only allocated pages that are not resident");
        let filled = match entry {
            Entry::Stored { block, len, .. } => copy_block(st, work, page, block, len as usize),
            _ => Ok(()),
        }
        .and_then(|()| decode(work, source))
        .and_then(|contents| {
            self.backend
                .fill(PageRun::one(page), contents)
                .map_err(fill_failed)
        });
        if let Err(f) = filled {
            st.clock.vacate(frame, false);
            return Err(f);
        }
        if let Entry::Stored { block, len, .. } = entry {
            st.store.remove(page, block, len as usize);
        }
        st.table.set(page, Entry::Resident { frame });
        st.clock.occupy(frame, page);
        self.count_brought_in(source, entry);
        add(&self.counters.resident_pages, 1);
        self.publish_store_stats(st);
        Ok(())
    }
}
