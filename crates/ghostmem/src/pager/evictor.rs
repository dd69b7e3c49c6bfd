//! Background eviction (opt-in: `ConfigBuilder::background_eviction`): a thread per instance
//! keeps a reserve of free CLOCK frames, so that most faults find a free frame and only restore.
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

use super::evict::Victim;
use super::sample::Samples;
use super::table::Entry;
use super::{Failure, Pager};

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
            loop {
                let want = high.saturating_sub(free());
                if stop.load(SeqCst) || want == 0 {
                    break;
                }
                match self.evict_batch(want) {
                    Ok(0) => break,
                    Ok(_) => {}
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

    /// Evict up to [`BATCH`] CLOCK victims in the background, revoking and discarding
    /// neighbouring victims as one run each. Returns how many were evicted (0: none could be
    /// picked now).
    fn evict_batch(&self, want: usize) -> Result<usize, Failure> {
        let mut scratch = self.scratches.claim();
        let work = &mut scratch.work;
        let mut batch: Vec<Victim> = Vec::with_capacity(BATCH);
        let compress = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let st = &mut *st;
            let mut samples = Samples::new();
            let mut was = [Entry::Free; BATCH];
            while batch.len() < want.min(BATCH) {
                let table = &st.table;
                let Some((frame, victim)) = st.clock.victim(
                    |p| table.is_evictable(p),
                    |p| samples.offer(self.sampling, p),
                ) else {
                    break;
                };
                let entry = st.table.get(victim);
                was[batch.len()] = entry;
                st.table.set(victim, Entry::Evicting);
                batch.push(Victim::new(victim, frame, entry.kept_block()));
            }
            if let Err(f) = self.sample(st, &mut samples, &batch) {
                // Nothing happened to the victims yet.
                for (v, &entry) in batch.iter().zip(&was) {
                    st.table.set(v.page, entry);
                }
                return Err(f);
            }
            st.in_flight += batch.len();
            st.compress
        };
        if batch.is_empty() {
            return Ok(0);
        }
        batch.sort_unstable_by_key(|v| v.page);
        let result = self.evict_runs(work, &mut batch, compress);
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                // Highest page first, so that the frames come back in page order.
                for v in batch.iter().rev() {
                    let entry = v.entry.expect("every victim was stored");
                    st.set_evicted(v.page, entry);
                    st.clock.vacate(v.frame, v.stashed);
                    self.count_eviction(entry);
                }
                self.publish_store_stats(&st);
            }
            Err(_) => {
                // Nothing was discarded: every victim still holds its contents in its frame.
                for v in &batch {
                    if let Some(Entry::Stored { block, len, .. }) = v.entry {
                        st.store.remove(v.page, block, len as usize);
                    }
                    st.table.set(v.page, Entry::Resident { frame: v.frame });
                }
            }
        }
        st.in_flight -= batch.len();
        drop(st);
        self.settled.advance();
        result.map(|()| batch.len())
    }
}

/// Victims per background batch.
const BATCH: usize = 32;

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
