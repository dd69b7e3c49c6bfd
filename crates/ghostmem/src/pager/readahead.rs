//! Readahead: a fault that continues a sequential stream brings in the pages after its own.
//!
//! ```text
//!   fault on P, restored (restore.rs)
//!     P continues a stream (the last fault of one brought in up to P - 1)?  window 4 → 8 → … 64
//!     lock   the pages after P that are not resident (evicted, or never touched), up to the
//!            window and to the frames that are free: each → Restoring, into a free frame;
//!            their blocks copied out of the store   unlock
//!       decode them one after the other into one buffer, fill them with one call
//!       (one UFFDIO_COPY, or pwrite + mprotect)
//!     lock   each → Resident with no CLOCK chance (the hand may take it on its first pass);
//!            Clean instead, filled write-protected with its block kept, when every page came
//!            from a block and loads of revoked pages run (clean.rs)   unlock
//! ```
//!
//! Readahead never evicts: it takes only frames that are free, which a fault that evicted a
//! run of neighbours or a batch of victims leaves behind. So a page brought in ahead can never
//! push out a page that was used more recently than it. Pages brought in ahead enter
//! unreferenced: were the stream to stop, they are the first the hand takes.
//!
//! Several threads scanning at once each make a stream: [`STREAMS`] are followed, the oldest
//! replaced by a fault that continues none.

use std::sync::PoisonError;

use super::restore::{Source, copy_block_into, decode_into, fill_failed};
use super::scratch::Work;
use super::table::{Entry, Frame};
use super::{Failure, Pager};
use crate::page::{PageId, PageRun, page_size};

use crate::stats::add;

/// Most pages one fault brings in after its own. A fault that continues a stream also evicts
/// this many pages (see `restore.rs`), so the window sets how many TLB flushes a sequential
/// pass costs: `bench --workload seq`, 32 → 64 (medians of 5, 2026-12-03): one thread, fill
/// 0.65 → 0.73 GB/s and scan 0.83 → 1.04 GB/s; two threads, 0.87 → 0.96 and 1.13 → 1.40 GB/s,
/// with 30,500 → 16,600 TLB flushes and 1.17 → 0.98 s of CPU. Each scratch's two readahead
/// buffers are this many pages, touched only as far as a window reaches.
pub(super) const READAHEAD: usize = 64;
/// The window of a stream's first continuation.
const FIRST_WINDOW: usize = 4;
/// Sequential streams followed at once.
const STREAMS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    /// The page whose fault continues the stream (0: no stream).
    next: u32,
    window: usize,
}

/// The sequential streams the fault path has seen (kept in the pager's state).
#[derive(Debug, Default)]
pub(super) struct Streams {
    streams: [Stream; STREAMS],
    /// The stream replaced next.
    oldest: usize,
}

impl Streams {
    /// A fault on `page`: which stream it belongs to, and how many pages after it to bring in.
    pub fn on_fault(&mut self, page: PageId) -> (usize, usize) {
        if let Some(i) = self
            .streams
            .iter()
            .position(|s| s.next != 0 && s.next == page.0)
        {
            let s = &mut self.streams[i];
            s.window = if s.window == 0 {
                FIRST_WINDOW
            } else {
                (s.window * 2).min(READAHEAD)
            };
            return (i, s.window);
        }
        let i = self.oldest;
        self.oldest = (self.oldest + 1) % STREAMS;
        self.streams[i] = Stream {
            next: page.0 + 1,
            window: 0,
        };
        (i, 0)
    }

    /// The fault on `page` of stream `i` brought in `count` pages after it.
    pub fn advanced(&mut self, i: usize, page: PageId, count: usize) {
        self.streams[i].next = page.0 + 1 + u32::try_from(count).expect("small");
    }
}

/// One page brought in ahead.
#[derive(Clone, Copy)]
struct Ahead {
    frame: Frame,
    source: Source,
    was: Entry,
    /// The frame's spare slot holds a page: the page is decoded into it and moved in.
    spare: bool,
}

impl Pager {
    /// After the fault on `page` (stream `stream`, window `window`) restored it: bring in the
    /// pages after it that are not resident, into free frames. Returns how many it brought in.
    /// Runs in the fault path; never evicts, never allocates.
    pub(super) fn read_ahead(
        &self,
        page: PageId,
        stream: usize,
        window: usize,
        work: &mut Work,
    ) -> Result<usize, Failure> {
        let size = page_size();
        let none = Ahead {
            frame: 0,
            source: Source::Zeros { first_touch: true },
            was: Entry::Fresh,
            spare: false,
        };
        let mut ahead = [none; READAHEAD];
        let mut count = 0;
        // Whether the pages come in clean (see `clean.rs`): every one of them from a block.
        let mut clean = self.backend.revoked_pages_are_readable();
        {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let st = &mut *st;
            let want = window.min(READAHEAD);
            while count < want {
                let next = PageId(page.0 + 1 + u32::try_from(count).expect("small"));
                if next.index() >= st.high_water {
                    break;
                }
                let entry = st.table.get(next);
                let Some(source) = Source::of(entry) else {
                    break;
                };
                let Some((frame, spare)) = st.clock.take_free() else {
                    break;
                };
                if let Entry::Stored { block, len, .. } = entry {
                    let len = len as usize;
                    let at = count * size;
                    let (scratch, dst) = (&mut work.out, &mut work.blocks[at..at + size]);
                    if copy_block_into(st, scratch, dst, next, block, len).is_err() {
                        // Readahead is a guess: leave this page to its own fault, which
                        // reports what is wrong with its block.
                        st.clock.vacate(frame, spare);
                        break;
                    }
                } else {
                    clean = false;
                }
                st.table.set(next, Entry::Restoring);
                st.clock.occupy_with(frame, next, 0);
                ahead[count] = Ahead {
                    frame,
                    source,
                    was: entry,
                    spare,
                };
                count += 1;
            }
            st.readahead.advanced(stream, page, count);
            if count == 0 {
                return Ok(0);
            }
            if !clean {
                for (i, a) in ahead[..count].iter().enumerate() {
                    if let Entry::Stored { block, len, .. } = a.was {
                        let p = PageId(page.0 + 1 + u32::try_from(i).expect("small"));
                        st.store.remove(p, block, len as usize);
                    }
                }
            }
            st.in_flight += 1;
        }
        let run = PageRun {
            first: PageId(page.0 + 1),
            count: u32::try_from(count).expect("small"),
        };
        for (i, a) in ahead[..count].iter().enumerate() {
            let at = i * size;
            let block = &work.blocks[at..at + size];
            let codec = &mut *work.codec;
            let mut decode = |page: &mut [u8]| {
                decode_into(codec, a.source, block, page).map(|written| {
                    if !written {
                        page.fill(0);
                    }
                })
            };
            if a.spare && !clean {
                let mut decoded = Ok(());
                self.backend
                    .with_spare(a.frame, &mut |slot| decoded = decode(slot));
                decoded?;
            } else {
                decode(&mut work.ahead[at..at + size])?;
            }
        }
        if clean {
            // Clean pages are filled write-protected in the same call: a page moved in is
            // writable until write-protected, and a store in between would be lost.
            for a in &mut ahead[..count] {
                if std::mem::take(&mut a.spare) {
                    self.drop_spare(a.frame)?;
                }
            }
        }
        self.fill_ahead(run, &ahead[..count], &mut work.ahead, clean)?;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let c = &self.counters;
        for (p, a) in run.pages().zip(&ahead[..count]) {
            let entry = match a.was {
                Entry::Stored { block, len, raw } if clean => Entry::Clean {
                    frame: a.frame,
                    block,
                    len,
                    raw,
                },
                _ => Entry::Resident { frame: a.frame },
            };
            st.table.set(p, entry);
            self.count_brought_in(a.source, a.was);
        }
        add(&c.resident_pages, count as u64);
        add(&c.readahead_pages, count as u64);
        st.in_flight -= 1;
        self.publish_store_stats(&st);
        drop(st);
        self.settled.advance();
        Ok(count)
    }
}

impl Pager {
    /// Fill `run` with the pages of `ahead`: those with a spare page moved in (each stretch
    /// of neighbouring frames in one call), the others copied from `pages` (one call a
    /// stretch), write-protected when `clean` (which has no spare pages). A move that fails
    /// is made up for with a copy.
    fn fill_ahead(
        &self,
        run: PageRun,
        ahead: &[Ahead],
        pages: &mut [u8],
        clean: bool,
    ) -> Result<(), Failure> {
        let size = page_size();
        let mut at = 0;
        while at < ahead.len() {
            let head = ahead[at];
            let mut count = 1;
            while let Some(next) = ahead.get(at + count) {
                let step = u32::try_from(count).expect("small");
                if next.spare != head.spare
                    || (head.spare && next.frame != head.frame.wrapping_add(step))
                {
                    break;
                }
                count += 1;
            }
            let part = PageRun {
                first: PageId(run.first.0 + u32::try_from(at).expect("small")),
                count: u32::try_from(count).expect("small"),
            };
            let mut copied = at;
            if head.spare {
                match self.backend.unstash(part, head.frame) {
                    Ok(()) => copied = at + count,
                    Err((moved, _)) => {
                        // Copy what did not move, and drop its spare pages.
                        copied = at + moved as usize;
                        for (i, a) in ahead.iter().enumerate().take(at + count).skip(copied) {
                            let page = &mut pages[i * size..(i + 1) * size];
                            self.backend
                                .with_spare(a.frame, &mut |slot| page.copy_from_slice(slot));
                            self.drop_spare(a.frame)?;
                        }
                    }
                }
            }
            if copied < at + count {
                let rest = PageRun {
                    first: PageId(run.first.0 + u32::try_from(copied).expect("small")),
                    count: u32::try_from(at + count - copied).expect("small"),
                };
                let contents = &pages[copied * size..(at + count) * size];
                if clean {
                    self.backend.fill_revoked(rest, contents)
                } else {
                    self.backend.fill(rest, Some(contents))
                }
                .map_err(fill_failed)?;
            }
            at += count;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_grows_its_window_and_a_stranger_starts_a_new_one() {
        let mut s = Streams::default();
        assert_eq!(s.on_fault(PageId(10)), (0, 0));
        s.advanced(0, PageId(10), 0);
        assert_eq!(s.on_fault(PageId(11)), (0, FIRST_WINDOW));
        s.advanced(0, PageId(11), FIRST_WINDOW);
        let next = PageId(12 + u32::try_from(FIRST_WINDOW).unwrap());
        assert_eq!(s.on_fault(next), (0, 2 * FIRST_WINDOW));
        // Another thread's stream elsewhere does not disturb this one.
        assert_eq!(s.on_fault(PageId(500)), (1, 0));
        s.advanced(0, next, 2 * FIRST_WINDOW);
        let mut at = next.0 + 1 + 2 * u32::try_from(FIRST_WINDOW).unwrap();
        for _ in 0..4 {
            let (i, w) = s.on_fault(PageId(at));
            assert_eq!(i, 0);
            assert!(w <= READAHEAD);
            s.advanced(0, PageId(at), w);
            at += 1 + u32::try_from(w).unwrap();
        }
        assert_eq!(s.on_fault(PageId(at)).1, READAHEAD);
        // A fault that continues no stream replaces the oldest.
        for p in [900, 901 + 7, 2000] {
            s.on_fault(PageId(p));
        }
        assert_eq!(s.on_fault(PageId(at + 1)).1, 0);
    }
}
