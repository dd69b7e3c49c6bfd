//! Spare pages: on a backend that can move pages (userfaultfd with `UFFDIO_MOVE`, Linux 6.8+),
//! an evicted page's memory waits in its frame's spare slot for the next page the frame takes.
//!
//! ```text
//!   evict V (frame f):   V ──move──▶ slot f          V is a hole at once (a touch faults and
//!                        encode from slot f           waits for the eviction); no
//!                                                     write-protect, no free
//!   restore P (frame f): decode into slot f ──move──▶ P    no allocation, no copy
//! ```
//!
//! Without spares an eviction write-protects the page, reads it, and frees it; a restore
//! allocates a page, charges it to the memory cgroup, and copies the decoded contents into it
//! (`UFFDIO_COPY`). Moving a page back and forth does none of that
//! (`scripts/probes/uffd-costs.c` on this machine, one thread: write-protect, free and copy
//! 4.3–4.6 µs a page, the two moves 2.1–2.4 µs). Only a victim alone in its batch moves: a
//! run's frames are seldom neighbours, and a move a page would cost more than one
//! write-protect and one free for the whole run.
//!
//! A frame's slot holds a page only while the frame is free ([`super::clock::Clock::vacate`]
//! records it), or while the fault that took the frame works on it: resident pages and spare
//! pages together never exceed the budget. A path that takes a free frame and does not use
//! its spare page drops it. Where a move fails (a page pinned by the kernel for I/O, say) the
//! victim is evicted the other way; where the kernel refuses moves altogether (a seccomp
//! filter) the backend stops offering slots.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use super::evict::{Victim, runs_where};
use super::restore::{Source, decode_into};
use super::scratch::Work;
use super::table::Frame;
use super::{Failure, Pager, failed};
use crate::page::{PageId, PageRun};
use crate::sys::SpareMode;

impl Pager {
    /// Move the victims of `batch` (sorted by page) that have no neighbour in it and are not
    /// clean to their frames' spare slots, while the gate is open. A run of neighbours is write-protected
    /// and freed in one call each instead: its frames are seldom neighbours too, and a move a
    /// page would cost more system calls. A victim that could not move keeps
    /// `stashed == false`, for the write-protect path.
    pub(super) fn stash_victims(&self, batch: &mut [Victim]) -> Result<(), Failure> {
        if !self.spare_gate.open(batch.len()) {
            return Ok(());
        }
        let mut at = 0;
        while at < batch.len() {
            let (_, run) = runs_where(&batch[at..], |_| true)
                .next()
                .expect("a victim starts a run");
            let v = batch[at];
            // A clean victim stays: it is freed without encoding anyway, and a clean page
            // the kernel swapped out keeps its write-protect bit in the swap entry, which
            // would travel with it into the slot.
            if run.count == 1
                && v.entry.is_none()
                && (v.frame as usize) < self.backend.spare_slots()
            {
                // A single page: it moved entirely or not at all. Timed like the moves back:
                // both cost a TLB flush.
                let started = std::time::Instant::now();
                let stashed = self.backend.stash(run, v.frame);
                self.spare_gate.moved(started.elapsed());
                match stashed {
                    Ok(()) => batch[at].stashed = true,
                    Err((_, e)) => debug_assert_ne!(
                        e,
                        rustix::io::Errno::EXIST,
                        "the spare slot of frame {} held a page already",
                        v.frame
                    ),
                }
            }
            at += run.count as usize;
        }
        Ok(())
    }

    /// Move every stashed victim of `batch` back into place (a failed eviction); where a move
    /// fails, copy the page back (through `scratch`, a page) and drop its spare page.
    pub(super) fn unstash_victims(
        &self,
        batch: &[Victim],
        scratch: &mut [u8],
    ) -> Result<(), Failure> {
        for v in batch.iter().filter(|v| v.stashed) {
            if self.backend.unstash(PageRun::one(v.page), v.frame).is_err() {
                self.copy_in_spare(
                    v.page,
                    v.frame,
                    scratch,
                    failed("copying a page back into place"),
                )?;
            }
        }
        Ok(())
    }

    /// Bring `page` in through the spare page of `frame`: decode `source` (its block in
    /// `work.block`) into the slot and move the slot's page under `page`. If the move fails,
    /// the page is filled with a copy instead (through `work.page`) and the spare page
    /// dropped. Never for a clean page: between the move and a write-protect, a store would
    /// go unnoticed.
    pub(super) fn fill_from_spare(
        &self,
        page: PageId,
        frame: Frame,
        work: &mut Work,
        source: Source,
    ) -> Result<(), Failure> {
        let Work {
            codec,
            block,
            page: scratch,
            ..
        } = work;
        let codec = &mut **codec;
        let mut decoded = Ok(());
        self.backend.with_spare(frame, &mut |slot| {
            decoded = decode_into(codec, source, block, slot).map(|written| {
                if !written {
                    slot.fill(0);
                }
            });
        });
        decoded?;
        let run = PageRun::one(page);
        let started = std::time::Instant::now();
        let moved = self.backend.unstash(run, frame);
        self.spare_gate.moved(started.elapsed());
        match moved {
            Ok(()) => Ok(()),
            Err(_) => self.copy_in_spare(page, frame, scratch, super::restore::fill_failed),
        }
    }

    /// Where moving the spare page of `frame` under `page` failed: fill `page` with a copy of
    /// it (through `scratch`, a page), reporting a failed fill with `fail`, and drop it.
    fn copy_in_spare(
        &self,
        page: PageId,
        frame: Frame,
        scratch: &mut [u8],
        fail: impl FnOnce(rustix::io::Errno) -> Failure,
    ) -> Result<(), Failure> {
        self.backend
            .with_spare(frame, &mut |slot| scratch.copy_from_slice(slot));
        self.backend
            .fill(PageRun::one(page), Some(scratch))
            .map_err(fail)?;
        self.drop_spare(frame)
    }

    /// Free the spare page of `frame`, which the caller took with the frame and does not use.
    pub(super) fn drop_spare(&self, frame: Frame) -> Result<(), Failure> {
        self.backend
            .drop_spares(frame, 1)
            .map_err(failed("freeing a spare page"))
    }
}

/// A move slower than this most likely waited for other processors to flush their TLBs (an
/// interrupt to each processor running another thread of the process: about 12 µs on this VM,
/// against 1 µs for the whole move without): a copy, which needs no flush, is cheaper then.
const SLOW_MOVE: Duration = Duration::from_micros(4);
/// Slow moves in a row that close the gate.
const SLOW_STREAK: u32 = 3;
/// Victims evicted the other way before the gate opens again, to look whether moves are fast
/// again (the other threads stopped).
const PAUSE: u32 = 4096;

/// Whether evictions move pages to spare slots now. Moving a page (either way) costs a TLB flush,
/// which is local and cheap while the process runs on one processor but interrupts every
/// other processor that runs one of its threads: `bench --workload rand --threads 2` on this
/// VM went from 10.0 to 27.3 µs p50 and 29.6 to 46.3 µs mean with spares always used. So the
/// gate closes after a few slow moves in a row, and opens again after a pause.
pub(super) struct SpareGate {
    slow: AtomicU32,
    pause: AtomicU32,
    /// `SpareMode::Always`: never closes.
    always: bool,
}

impl SpareGate {
    pub fn new(mode: SpareMode) -> SpareGate {
        SpareGate {
            slow: AtomicU32::new(0),
            pause: AtomicU32::new(0),
            always: mode == SpareMode::Always,
        }
    }

    /// May a batch of `victims` move to spare slots? Counts down a pause.
    fn open(&self, victims: usize) -> bool {
        if self.always {
            return true;
        }
        let victims = u32::try_from(victims).unwrap_or(u32::MAX);
        self.pause
            .fetch_update(Relaxed, Relaxed, |left| {
                (left > 0).then(|| left.saturating_sub(victims))
            })
            .is_err()
    }

    /// A page moved (out or back) in `took`.
    fn moved(&self, took: Duration) {
        if took < SLOW_MOVE {
            self.slow.store(0, Relaxed);
        } else if self.slow.fetch_add(1, Relaxed) + 1 >= SLOW_STREAK {
            self.slow.store(0, Relaxed);
            self.pause.store(PAUSE, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_after_slow_moves_in_a_row_and_opens_after_a_pause() {
        let gate = SpareGate::new(SpareMode::Auto);
        assert!(gate.open(1));
        let (fast, slow) = (Duration::from_micros(1), SLOW_MOVE * 2);
        for _ in 0..10 {
            // Slow moves that do not come in a row leave it open.
            gate.moved(slow);
            gate.moved(fast);
        }
        assert!(gate.open(1));
        for _ in 0..SLOW_STREAK {
            gate.moved(slow);
        }
        assert!(!gate.open(PAUSE as usize - 1));
        assert!(!gate.open(1), "the last victim of the pause");
        assert!(gate.open(1), "open again");
        let always = SpareGate::new(SpareMode::Always);
        for _ in 0..SLOW_STREAK {
            always.moved(slow);
        }
        assert!(
            always.open(1),
            "{SPARES_ENV}=always keeps it open",
            SPARES_ENV = crate::SPARES_ENV
        );
    }
}
