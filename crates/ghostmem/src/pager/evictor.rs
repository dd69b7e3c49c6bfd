//! Background eviction: a thread per instance keeps a reserve of free CLOCK frames, so that
//! most faults find a free frame and only restore.
//!
//! ```text
//!   free frames   0 ────── low ────────── high ─────────────── budget
//!                  faults evict inline │ evictor woken │ evictor sleeps
//! ```
//!
//! When a fault leaves fewer than `low` frames free it wakes the evictor (one atomic swap; a
//! `futex` wake only if the evictor sleeps), which evicts CLOCK victims until `high` frames are
//! free. A fault that finds no free frame still evicts inline, so the budget holds whether or
//! not the evictor keeps up. Small budgets (under [`MIN_BUDGET`] pages) have no reserve: every
//! frame is worth more holding a page.
//!
//! The evictor is ordinary code: it blocks every signal for its whole life and takes the pager
//! lock like any other thread; each victim goes through the same steps as an inline eviction
//! (revoke, read, encode without the lock; store under it; free its memory; publish).

use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use super::table::Entry;
use super::{Failure, Pager, failed};

/// Budgets below this have no background eviction.
pub(super) const MIN_BUDGET: usize = 64;

/// How long the evictor sleeps when nobody wakes it.
const IDLE: Duration = Duration::from_millis(100);

/// The free-frame reserve for `budget`: wake the evictor below `low`, stop at `high`.
pub(super) fn marks(budget: usize) -> (usize, usize) {
    if budget < MIN_BUDGET {
        return (0, 0);
    }
    let high = (budget / 16).clamp(4, 1024);
    (high / 2, high)
}

impl Pager {
    /// Wake the evictor if fewer than `low` frames are free. Called by faults, lock held.
    pub(super) fn maybe_wake_evictor(&self, free_frames: usize) {
        let (low, _) = marks(self.budget());
        if free_frames < low {
            self.wakeup.wake();
        }
    }

    /// The evictor thread's body: until `stop`, keep `high` frames free. The caller blocks
    /// every signal on this thread first.
    pub fn run_evictor(&self, stop: &AtomicBool) {
        while !stop.load(SeqCst) {
            let (low, high) = marks(self.budget());
            let free = || {
                let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                st.clock.free_frames()
            };
            if low == 0 || free() >= low {
                self.wakeup
                    .sleep(IDLE, || stop.load(SeqCst) || (low > 0 && free() < low));
                continue;
            }
            while !stop.load(SeqCst) && free() < high {
                match self.evict_one() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(f) => {
                        // The page stays resident and accessible; faults evict inline.
                        tracing::error!(
                            what = f.what,
                            errno = f.errno,
                            "background eviction failed"
                        );
                        break;
                    }
                }
            }
        }
    }

    /// Evict one CLOCK victim in the background. `Ok(false)`: nothing could be evicted now.
    fn evict_one(&self) -> Result<bool, Failure> {
        let mut scratch = self.scratches.claim();
        let work = &mut scratch.work;
        let (frame, victim, compress) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let st = &mut *st;
            let table = &st.table;
            let Some((frame, victim)) = st.clock.victim(|p| table.is_evictable(p)) else {
                return Ok(false);
            };
            st.table.set(victim, Entry::Evicting);
            st.in_flight += 1;
            (frame, victim, st.compress)
        };
        // Undo the plan if a step fails: the page is still resident in its frame.
        let undo = |this: &Pager| {
            let mut st = this.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.table.set(victim, Entry::Resident { frame });
            st.in_flight -= 1;
            drop(st);
            this.settled.advance();
        };
        let encoded = match self.encode_victim(work, victim, compress) {
            Ok(e) => e,
            Err(f) => {
                undo(self);
                return Err(f);
            }
        };
        let stored = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            Self::store_victim(&mut st, work, victim, encoded)
        };
        let entry = match stored {
            Ok(entry) => entry,
            Err(f) => {
                self.give_back(victim)?;
                undo(self);
                return Err(f);
            }
        };
        if let Err(e) = self.discard_victim(victim) {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Entry::Stored { block, len, .. } = entry {
                st.store.remove(victim, block, len as usize);
            }
            drop(st);
            self.give_back(victim)?;
            undo(self);
            return Err(failed("freeing the page (fallocate PUNCH_HOLE)")(e));
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.table.set(victim, entry);
        st.clock.vacate(frame);
        st.in_flight -= 1;
        self.count_eviction(entry);
        self.publish_store_stats(&st);
        drop(st);
        self.settled.advance();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_have_no_reserve_and_large_ones_a_bounded_one() {
        assert_eq!(marks(8), (0, 0));
        assert_eq!(marks(MIN_BUDGET - 1), (0, 0));
        assert_eq!(marks(64), (2, 4));
        assert_eq!(marks(4096), (128, 256));
        assert_eq!(marks(1 << 20), (512, 1024));
    }
}
