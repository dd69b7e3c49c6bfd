//! The fault path: bring a page in, evicting a victim first when the budget is full.
//!
//! ```text
//!   fault on page P (signal handler, every signal blocked)
//!     claim a scratch (try_lock; none free: yield, retry)  ── switch to its stack
//!     lock   P: Free → not ours │ Resident → done │ Restoring/Evicting → unlock, yield, retry
//!            take a free frame, or the CLOCK victim V (V → Evicting); P → Restoring
//!            copy P's block out of the store, remove it
//!     unlock
//!       V: revoke, read, encode                      (no lock: other faults proceed)
//!     lock   V's block into the store   unlock
//!       V: free its memory
//!       P: decode, fill (one UFFDIO_COPY, or pwrite + mprotect)
//!     lock   V → Stored/Zero/Same, P → Resident     unlock
//! ```
//!
//! Two threads touching the same page restore it once: the second finds it `Restoring` and
//! waits. A store to a page being evicted faults (it is revoked), finds it `Evicting`, waits,
//! and then restores it. Any failure here is fatal: the faulting instruction cannot continue
//! without its page, and the handler reports the step and aborts.

use std::sync::PoisonError;
use std::time::Duration;

use super::scratch::Work;
use super::table::{Entry, Frame};
use super::{Failure, Pager, failed, store_failure};
use crate::codec::fill_same;
use crate::page::PageId;
use crate::stats::add;
use crate::sys::{FaultSignal, Outcome};

/// The longest a fault sleeps for another fault's page before it looks again (a safety net:
/// every commit wakes it).
const SETTLE_TIMEOUT: Duration = Duration::from_millis(5);

/// What one attempt at a fault came to.
enum Step {
    Done,
    /// The page is not live memory.
    NotOurs,
    /// Another fault is working on the page, or on every frame: try again once the epoch
    /// moves past this one (`None`: at once, after yielding).
    Wait(Option<u32>),
    Failed(Failure),
}

/// Where the contents of the page being restored come from.
#[derive(Clone, Copy)]
enum Source {
    Zeros {
        first_touch: bool,
    },
    Same(u64),
    /// `len` bytes in `Work::block`.
    Block {
        len: usize,
        raw: bool,
    },
}

/// Decisions taken under the lock, carried out without it.
struct Plan {
    frame: Frame,
    victim: Option<PageId>,
    source: Source,
    /// The entry the page had, for the evicted-page gauges.
    was: Entry,
    compress: bool,
}

impl Pager {
    /// Resolve a fault on `page`. Runs in the fault handler.
    pub fn fault(&self, page: PageId, signal: FaultSignal) -> Outcome {
        if signal != self.signal {
            return Outcome::NotOurs;
        }
        loop {
            let step = match self.scratches.try_claim() {
                None => Step::Wait(None),
                Some(mut scratch) => {
                    let scratch = &mut *scratch;
                    let work = &mut scratch.work;
                    scratch.stack.run(|| self.try_fault(page, work))
                }
            };
            match step {
                Step::Done => {
                    add(&self.counters.faults, 1);
                    return Outcome::Handled;
                }
                Step::NotOurs => return Outcome::Invalid,
                Step::Wait(None) => std::thread::yield_now(),
                Step::Wait(Some(seen)) => self.settled.wait(seen, SETTLE_TIMEOUT),
                Step::Failed(f) => {
                    return Outcome::Fatal {
                        what: f.what,
                        errno: f.errno,
                    };
                }
            }
        }
    }

    fn try_fault(&self, page: PageId, work: &mut Work) -> Step {
        let plan = match self.plan(page, work) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Step::Done,
            Err(step) => return step,
        };
        match self.carry_out(page, work, &plan) {
            Ok(()) => Step::Done,
            Err(f) => Step::Failed(f),
        }
    }

    /// Under the lock: look at the page, pick a frame (and a victim), and take the page's block
    /// out of the store. `Ok(None)`: the page is resident already.
    fn plan(&self, page: PageId, work: &mut Work) -> Result<Option<Plan>, Step> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = st.table.get(page);
        let source = match entry {
            Entry::Free => return Err(Step::NotOurs),
            Entry::Resident { frame } => {
                // Another thread brought it in while we waited.
                st.clock.touch(frame);
                return Ok(None);
            }
            e if e.is_transient() => return Err(Step::Wait(Some(self.settled.current()))),
            Entry::Fresh => Source::Zeros { first_touch: true },
            Entry::Zero => Source::Zeros { first_touch: false },
            Entry::Same(word) => Source::Same(word),
            Entry::Stored { len, raw, .. } => Source::Block {
                len: len as usize,
                raw,
            },
            Entry::Restoring | Entry::Evicting => unreachable!("transient entries wait above"),
        };
        let st = &mut *st;
        let (frame, victim) = match st.clock.take_free() {
            Some(frame) => {
                self.maybe_wake_evictor(st.clock.free_frames());
                (frame, None)
            }
            None => {
                self.maybe_wake_evictor(0);
                let table = &st.table;
                match st.clock.victim(|p| table.is_evictable(p)) {
                    Some((frame, victim)) => (frame, Some(victim)),
                    None => return Err(Step::Wait(Some(self.settled.current()))),
                }
            }
        };
        if let Entry::Stored { block, len, .. } = entry {
            let len = len as usize;
            let copied = st
                .store
                .load(page, block, len, &mut work.out)
                .map(|data| work.block[..len].copy_from_slice(data));
            if let Err(e) = copied {
                // Put the frame back as it was: nothing else changed.
                if victim.is_none() {
                    st.clock.vacate(frame);
                }
                return Err(Step::Failed(store_failure("reading the stored page", e)));
            }
            st.store.remove(page, block, len);
        }
        if let Some(v) = victim {
            st.table.set(v, Entry::Evicting);
        }
        st.table.set(page, Entry::Restoring);
        st.clock.occupy(frame, page);
        st.in_flight += 1;
        Ok(Some(Plan {
            frame,
            victim,
            source,
            was: entry,
            compress: st.compress,
        }))
    }

    /// Without the lock but for two short moments: evict the victim, fill the page, publish.
    fn carry_out(&self, page: PageId, work: &mut Work, plan: &Plan) -> Result<(), Failure> {
        let evicted = match plan.victim {
            Some(victim) => {
                let encoded = self.encode_victim(work, victim, plan.compress)?;
                let entry = {
                    let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    Self::store_victim(&mut st, work, victim, encoded)?
                };
                self.discard_victim(victim)
                    .map_err(failed("freeing the page (fallocate PUNCH_HOLE)"))?;
                Some((victim, entry))
            }
            None => None,
        };
        let contents = match plan.source {
            Source::Zeros { .. } => None,
            Source::Same(word) => {
                fill_same(&mut work.page, word);
                Some(&work.page[..])
            }
            Source::Block { len, raw } => {
                if raw {
                    work.page.copy_from_slice(&work.block[..len]);
                } else {
                    work.codec
                        .decompress(&work.block[..len], &mut work.page)
                        .map_err(|_| Failure {
                            what: "decompressing a stored page",
                            errno: 0,
                        })?;
                }
                Some(&work.page[..])
            }
        };
        self.backend.fill(page, contents).map_err(failed(
            "filling the page (UFFDIO_COPY, or pwrite + mprotect)",
        ))?;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((victim, entry)) = evicted {
            st.table.set(victim, entry);
            self.count_eviction(entry);
        }
        st.table.set(page, Entry::Resident { frame: plan.frame });
        st.in_flight -= 1;
        let c = &self.counters;
        match plan.source {
            Source::Zeros { first_touch: true } => add(&c.first_touches, 1),
            _ => {
                self.count_evicted(plan.was, false);
                add(&c.restores, 1);
            }
        }
        add(&c.resident_pages, 1);
        if evicted.is_some() || matches!(plan.source, Source::Block { .. }) {
            self.publish_store_stats(&st);
        }
        drop(st);
        self.settled.advance();
        Ok(())
    }
}
