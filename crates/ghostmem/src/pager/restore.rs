//! The fault path: bring a page in, evicting a victim first when the budget is full.
//!
//! ```text
//!   fault on page P (signal handler, every signal blocked)
//!     claim a scratch (try_lock; none free: yield, retry)  ── switch to its stack
//!     lock   P: Free → not ours │ Resident → done │ Clean → unrevoke, Resident, done
//!            │ Restoring/Evicting → unlock, sleep, retry
//!            take a free frame, or CLOCK victims V…, each with its unpinned resident
//!            neighbours after and before it, until the batch holds 3 pages, or the readahead window
//!            and P (at most 128; out of a stream, neighbours count towards the 3)
//!            (all → Evicting); P → Restoring; copy P's block out of
//!            the store, and remove it unless P continues a stream (then P comes in clean)
//!     unlock
//!       V…: a victim alone in its batch and not clean: move it to its frame's spare slot
//!           (see `spare.rs`); the others: revoke each run (one ioctl a run; clean runs
//!           are revoked already), read; encode (a clean victim: nothing to encode, its
//!           block is stored)  (no lock: other faults proceed)
//!     lock   a group's blocks into the store (up to 64 a lock)   unlock
//!       V… not moved: free the runs' memory (one process_madvise; or MADV_DONTNEED / a
//!           hole punched a run)
//!       P: decode into its frame's spare page and move it in; or decode, fill (one
//!           UFFDIO_COPY, write-protected if clean; or pwrite + mprotect)
//!     lock   V… → Stored/Zero/Same (their frames but V's free: the next faults take them),
//!            P → Resident, or Clean   unlock
//! ```
//!
//! Two threads touching the same page restore it once: the second finds it `Restoring` and
//! waits. A store to a page being evicted faults (it is revoked), finds it `Evicting`, waits,
//! and then restores it. Any failure here is fatal: the faulting instruction cannot continue
//! without its page, and the handler reports the step and aborts.

use std::sync::PoisonError;
use std::time::Duration;

use super::evict::Victim;
use super::sample::Samples;
use super::scratch::Work;
use super::table::{Entry, Frame};
use super::{Failure, Pager, State, failed, store_failure};
use crate::codec::fill_same;
use crate::page::{PageId, PageRun};
use crate::stats::add;
use crate::store::BlockRef;
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
pub(super) enum Source {
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

impl Source {
    /// Where the contents of an allocated page that is not resident come from (`None` for
    /// `Free`, `Resident` and the transient states).
    pub(super) fn of(entry: Entry) -> Option<Source> {
        Some(match entry {
            Entry::Fresh => Source::Zeros { first_touch: true },
            Entry::Zero => Source::Zeros { first_touch: false },
            Entry::Same(word) => Source::Same(word),
            Entry::Stored { len, raw, .. } => Source::Block {
                len: len as usize,
                raw,
            },
            Entry::Free
            | Entry::Resident { .. }
            | Entry::Clean { .. }
            | Entry::Restoring
            | Entry::Evicting => {
                return None;
            }
        })
    }
}

/// Copy stored `block` (`len` bytes) of `page` into `work.block`, leaving it in the store.
pub(super) fn copy_block(
    st: &mut State,
    work: &mut Work,
    page: PageId,
    block: BlockRef,
    len: usize,
) -> Result<(), Failure> {
    copy_block_into(st, &mut work.out, &mut work.block, page, block, len)
}

/// Copy stored `block` (`len` bytes) of `page` into `dst`, leaving it in the store. `scratch`
/// (a page) is where a store that does not hold its blocks in memory reads them to.
pub(super) fn copy_block_into(
    st: &mut State,
    scratch: &mut [u8],
    dst: &mut [u8],
    page: PageId,
    block: BlockRef,
    len: usize,
) -> Result<(), Failure> {
    st.store
        .load(page, block, len, scratch)
        .map(|data| dst[..len].copy_from_slice(data))
        .map_err(|e| store_failure("reading the stored page", e))
}

/// The page `source` describes, decoded into `work.page` (`None`: zeros, nothing to copy).
pub(super) fn decode(work: &mut Work, source: Source) -> Result<Option<&[u8]>, Failure> {
    let Work {
        codec, block, page, ..
    } = work;
    Ok(decode_into(&mut **codec, source, block, page)?.then_some(&page[..]))
}

/// Decode the page `source` describes from `block` into `dst` (a page). `false`: zeros,
/// nothing written.
pub(super) fn decode_into(
    codec: &mut dyn crate::codec::Codec,
    source: Source,
    block: &[u8],
    dst: &mut [u8],
) -> Result<bool, Failure> {
    match source {
        Source::Zeros { .. } => return Ok(false),
        Source::Same(word) => fill_same(dst, word),
        Source::Block { len, raw: true } => dst.copy_from_slice(&block[..len]),
        Source::Block { len, raw: false } => {
            codec.decompress(&block[..len], dst).map_err(|_| Failure {
                what: "decompressing a stored page",
                errno: 0,
            })?;
        }
    }
    Ok(true)
}

/// Most victims one fault evicts. Each CLOCK victim takes its resident, unpinned neighbours
/// after and before it along, evicted as one run (one write-protect; one free for the whole
/// batch). Each such change makes the kernel interrupt the other CPUs running the process to
/// flush their TLBs (about 12 µs a flush on this VM once a second thread runs, against 1 µs
/// without), which dominated sequential access with two threads; runs of 64 took two-thread
/// sequential fill from 0.6× to 1.3× the one-thread figure here (16: 1.0×) with no change to
/// random touches. Neighbours before the victim count as much as those after it: the hand
/// meets a window's pages in the order their frames were taken, not in address order, so
/// runs taken forwards only were cut wherever an earlier page of the window had been taken
/// already (`bench --workload seq --threads 2`: 4.3 runs a batch and 14,700 TLB flushes in a
/// run of it; both ways: 1.1 runs and 8,500). Neighbours are
/// taken whether referenced or not: with readahead, every window's first page is referenced
/// (its fault brought the window in) and cut the runs at the window; without that cut, `bench
/// --workload seq` went from 0.41 to 0.60 GB/s fill and 0.37 to 0.52 GB/s scan on one thread,
/// with random and hot touches unchanged (side by side with zram, 2026-12-03).
const CLUSTER: usize = 128;
const _: () = assert!(super::evict::MOST_RUNS >= CLUSTER, "a batch's runs fit");

/// How many pages a fault that finds no free frame evicts at least (CLOCK victims and their
/// neighbours): the frames of all but one are left free, so the next faults only restore. A
/// fault that continues a sequential stream evicts enough for its readahead window as well
/// (before that, readahead found only the frames the last batch left free, about 4, and the
/// runs stayed that short: `bench --workload seq`, 5 pages and 1.1 runs a batch; with room
/// for the window, 28 pages and 1.6 runs, fill 1.30× and scan 1.42× faster, interleaved runs
/// 2026-12-03, random touches unchanged).
/// Freeing them takes one `process_madvise` where the kernel allows it. Random touches of
/// 256 MiB at a 16 MiB budget, side by side with zram (medians of 3, 2026-12-03): 2 victims
/// p50 1.86× zram's, mean 1.00×, p99 0.08×; 3: 1.48×, 0.97×, 0.09×; 4: 1.46×, 0.99×, 0.11×;
/// 6: 1.45×, 0.96×, 0.14×. The median falls to a restore's cost from 3 on; the p99 (a fault
/// that evicts the batch) grows with it; the mean hardly moves.
pub(super) const VICTIMS: usize = 3;

/// Decisions taken under the lock, carried out without it.
struct Plan {
    frame: Frame,
    /// The victims, in address order; one of them had `frame`.
    victims: [Victim; CLUSTER],
    evicting: usize,
    source: Source,
    /// The entry the page had, for the evicted-page gauges.
    was: Entry,
    /// The page comes in clean, with this entry (its block stays in the store).
    clean: Option<Entry>,
    /// `frame` was free and its spare slot holds a page (see `spare.rs`).
    spare: bool,
    compress: bool,
    /// The sequential stream the fault continues, and how many pages to bring in after it.
    stream: usize,
    window: usize,
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
        let mut plan = match self.plan(page, work) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Step::Done,
            Err(step) => return step,
        };
        if let Err(f) = self.carry_out(page, work, &mut plan) {
            return Step::Failed(f);
        }
        if plan.window > 0
            && let Err(f) = self.read_ahead(page, plan.stream, plan.window, work)
        {
            return Step::Failed(f);
        }
        Step::Done
    }

    /// Under the lock: look at the page, pick a frame (and a victim), and take the page's block
    /// out of the store. `Ok(None)`: the page is resident already.
    fn plan(&self, page: PageId, work: &mut Work) -> Result<Option<Plan>, Step> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = st.table.get(page);
        let source = match entry {
            Entry::Free => return Err(Step::NotOurs),
            Entry::Resident { frame } => {
                // Another thread brought it in while we waited, or it is a sampled page (see
                // `sample.rs`), stored to: it is in use.
                self.on_resident_fault(&mut st, page, frame)
                    .map_err(Step::Failed)?;
                return Ok(None);
            }
            Entry::Clean { frame, .. } => {
                // A store to a page readahead brought in (loads do not fault).
                self.make_writable(&mut st, page).map_err(Step::Failed)?;
                st.clock.touch(frame);
                return Ok(None);
            }
            Entry::Restoring | Entry::Evicting => {
                return Err(Step::Wait(Some(self.settled.current())));
            }
            _ => Source::of(entry).expect("an allocated page that is not resident"),
        };
        let st = &mut *st;
        let (stream, window) = st.readahead.on_fault(page);
        let none = Victim::new(PageId(0), 0, None);
        let mut victims = [none; CLUSTER];
        let mut samples = Samples::new();
        let mut evicting = 0;
        let mut spare = false;
        let frame = match st.clock.take_free() {
            Some((frame, with_spare)) => {
                self.maybe_wake_evictor(st.clock.free_frames());
                spare = with_spare;
                frame
            }
            None => {
                self.maybe_wake_evictor(0);
                // CLOCK victims, each with its resident, unpinned neighbours (a run),
                // until the batch holds VICTIMS pages, or the readahead window and this page:
                // the frames of all but the first are left free for the next faults and the
                // readahead, which would otherwise be cut short at the frames left free.
                let want = VICTIMS.max(1 + window).min(CLUSTER);
                // Runs matter to a stream (one write-protect and one free a run); a fault
                // out of any stream takes no more than it needs, so that the faults that
                // evict cost the same.
                let most = if window > 0 { CLUSTER } else { want };
                while evicting < want {
                    let (table, chosen) = (&st.table, &victims[..evicting]);
                    let Some((frame, first)) = st.clock.victim(
                        |p| table.is_evictable(p) && chosen.iter().all(|v| v.page != p),
                        |p| samples.offer(self.sampling, p),
                    ) else {
                        break;
                    };
                    victims[evicting] = Victim::new(first, frame, st.table.get(first).kept_block());
                    evicting += 1;
                    // Its neighbours after it, then before it: the hand meets a run's pages
                    // in the order their frames were taken, not in address order.
                    for step in [1i64, -1] {
                        let mut next = i64::from(first.0);
                        while evicting < most {
                            next += step;
                            let Ok(index) = u32::try_from(next) else {
                                break;
                            };
                            let next = PageId(index);
                            if next.index() >= st.high_water
                                || !st.table.is_evictable(next)
                                || victims[..evicting].iter().any(|v| v.page == next)
                            {
                                break;
                            }
                            let entry = st.table.get(next);
                            let Some(frame) = entry.frame() else {
                                break;
                            };
                            victims[evicting] = Victim::new(next, frame, entry.kept_block());
                            evicting += 1;
                        }
                    }
                }
                // The resident pages whose last chance the hand took are sampled now, under
                // the lock (a pin or an eviction must find them as they are).
                self.sample(st, &mut samples, &victims[..evicting])
                    .map_err(Step::Failed)?;
                if evicting == 0 {
                    // Every resident page is being worked on.
                    return Err(Step::Wait(Some(self.settled.current())));
                }
                let frame = victims[0].frame;
                victims[..evicting].sort_unstable_by_key(|v| v.page.0);
                frame
            }
        };
        // A fault that continues a stream brings its page in clean, as readahead does its
        // window (see `clean.rs`): the window then leaves as one clean run, with no
        // write-protect and no block stored again.
        let mut clean = None;
        if let Entry::Stored { block, len, raw } = entry {
            if let Err(f) = copy_block(st, work, page, block, len as usize) {
                // Put the frame back as it was: nothing else changed.
                if evicting == 0 {
                    st.clock.vacate(frame, spare);
                }
                return Err(Step::Failed(f));
            }
            if window > 0 && self.backend.revoked_pages_are_readable() {
                clean = Some(Entry::Clean {
                    frame,
                    block,
                    len,
                    raw,
                });
            } else {
                st.store.remove(page, block, len as usize);
            }
        }
        for v in &victims[..evicting] {
            st.table.set(v.page, Entry::Evicting);
        }
        let chances = st.chances_for(page);
        st.table.set(page, Entry::Restoring);
        st.clock.occupy_with(frame, page, chances);
        st.in_flight += 1;
        Ok(Some(Plan {
            stream,
            window,
            frame,
            victims,
            evicting,
            source,
            was: entry,
            clean,
            spare,
            compress: st.compress,
        }))
    }

    /// Count a page that came in from `source` (its entry was `was`): a first touch, or a
    /// restore that takes it off the evicted-page gauges.
    pub(super) fn count_brought_in(&self, source: Source, was: Entry) {
        if let Source::Zeros { first_touch: true } = source {
            add(&self.counters.first_touches, 1);
        } else {
            self.count_evicted(was, false);
            add(&self.counters.restores, 1);
        }
    }

    /// Without the lock but for two short moments: evict the victim, fill the page, publish.
    fn carry_out(&self, page: PageId, work: &mut Work, plan: &mut Plan) -> Result<(), Failure> {
        let victims = &mut plan.victims[..plan.evicting];
        self.evict_runs(work, victims, plan.compress)?;
        // The frame's spare page: the free frame's, or the one its victim left. A clean page
        // is filled write-protected in the same call instead (a page moved in is writable
        // until write-protected: a store in between would be lost), and the spare page goes.
        let spare = plan.spare || victims.iter().any(|v| v.frame == plan.frame && v.stashed);
        if spare && plan.clean.is_none() {
            self.fill_from_spare(page, plan.frame, work, plan.source)?;
        } else {
            if spare {
                self.drop_spare(plan.frame)?;
            }
            let contents = decode(work, plan.source)?;
            match (plan.clean, contents) {
                (Some(_), Some(contents)) => {
                    self.backend.fill_revoked(PageRun::one(page), contents)
                }
                _ => self.backend.fill(PageRun::one(page), contents),
            }
            .map_err(fill_failed)?;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Highest page first, so that the frames come back in page order.
        for v in plan.victims[..plan.evicting].iter().rev() {
            let entry = v.entry.expect("every victim was stored");
            st.set_evicted(v.page, entry);
            self.count_eviction(entry);
            // One victim's frame is the restored page's; the others' are free now.
            if v.frame != plan.frame {
                st.clock.vacate(v.frame, v.stashed);
            }
        }
        st.table.set(
            page,
            plan.clean.unwrap_or(Entry::Resident { frame: plan.frame }),
        );
        st.in_flight -= 1;
        self.count_brought_in(plan.source, plan.was);
        add(&self.counters.resident_pages, 1);
        if plan.evicting > 0 || matches!(plan.source, Source::Block { .. }) {
            self.publish_store_stats(&st);
        } else if plan.spare {
            self.publish_spares(&st);
        }
        drop(st);
        self.settled.advance();
        Ok(())
    }
}

/// A failed `Backend::fill`, for the fatal message.
pub(super) fn fill_failed(e: rustix::io::Errno) -> Failure {
    failed("filling the page (UFFDIO_COPY, or pwrite + mprotect)")(e)
}
