//! CLOCK: which resident page to evict when every frame of the budget is occupied.
//!
//! One frame per budget page. A page that comes in takes a free frame, or the frame of the
//! victim the hand picks: the hand skips (and clears) frames whose page was referenced since
//! it last passed, and frames whose page a fault is still bringing in. The fault backends only
//! see faults, not accesses to resident pages, so a page is marked referenced when it comes
//! in: every page survives one sweep of the hand after its fault.

use super::table::Frame;
use crate::page::PageId;

const EMPTY: u32 = u32::MAX;

/// The CLOCK ring of resident pages.
pub(super) struct Clock {
    pages: Box<[u32]>,
    referenced: Box<[bool]>,
    free: Vec<Frame>,
    hand: usize,
}

impl Clock {
    pub fn new(frames: usize) -> Clock {
        let n = u32::try_from(frames).expect("budget fits in u32");
        Clock {
            pages: vec![EMPTY; frames].into_boxed_slice(),
            referenced: vec![false; frames].into_boxed_slice(),
            free: (0..n).rev().collect(),
            hand: 0,
        }
    }

    pub fn take_free(&mut self) -> Option<Frame> {
        self.free.pop()
    }

    /// Pick the frame to reuse when every frame is occupied: the first unreferenced frame
    /// whose page `evictable` accepts. `None` when two sweeps find none (every page is being
    /// brought in by some fault).
    pub fn victim(&mut self, evictable: impl Fn(PageId) -> bool) -> Option<(Frame, PageId)> {
        let n = self.pages.len();
        for _ in 0..2 * n + 1 {
            let frame = self.hand;
            self.hand = (self.hand + 1) % n;
            let page = self.pages[frame];
            if page == EMPTY || !evictable(PageId(page)) {
                continue;
            }
            if std::mem::take(&mut self.referenced[frame]) {
                continue;
            }
            return Some((
                u32::try_from(frame).expect("frames fit in u32"),
                PageId(page),
            ));
        }
        None
    }

    /// Put `page` in `frame`, referenced.
    pub fn occupy(&mut self, frame: Frame, page: PageId) {
        self.pages[frame as usize] = page.0;
        self.referenced[frame as usize] = true;
    }

    /// Put `page` in `frame`, not referenced (a page brought in ahead of its use).
    pub fn occupy_cold(&mut self, frame: Frame, page: PageId) {
        self.pages[frame as usize] = page.0;
        self.referenced[frame as usize] = false;
    }

    pub fn vacate(&mut self, frame: Frame) {
        self.pages[frame as usize] = EMPTY;
        self.referenced[frame as usize] = false;
        // `free` was allocated with one place per frame, so this never allocates.
        self.free.push(frame);
    }

    pub fn touch(&mut self, frame: Frame) {
        self.referenced[frame as usize] = true;
    }

    /// Frames not occupied.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Occupied frames.
    pub fn resident(&self) -> usize {
        self.pages.len() - self.free.len()
    }

    /// The occupied frames in hand order, starting at the hand: `(page, referenced)`.
    pub fn in_hand_order(&self) -> impl Iterator<Item = (PageId, bool)> + '_ {
        let n = self.pages.len();
        (0..n)
            .map(move |i| (self.hand + i) % n)
            .filter(|&f| self.pages[f] != EMPTY)
            .map(|f| (PageId(self.pages[f]), self.referenced[f]))
    }

    /// Mark `frame` referenced or not (used when the ring is rebuilt).
    pub fn set_referenced(&mut self, frame: Frame, referenced: bool) {
        self.referenced[frame as usize] = referenced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_gives_a_second_chance() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap();
            c.occupy(s, PageId(p));
        }
        assert_eq!(c.take_free(), None);
        // All referenced: the first sweep clears, the second picks frame 0.
        let (frame, page) = c.victim(|_| true).unwrap();
        assert_eq!((frame, page), (0, PageId(0)));
        c.occupy(frame, PageId(10));
        // Frame 0 is referenced again; frames 1 and 2 were cleared: frame 1 goes next.
        assert_eq!(c.victim(|_| true), Some((1, PageId(1))));
        c.vacate(2);
        assert_eq!(c.take_free(), Some(2));
        assert_eq!(c.resident(), 3);
    }

    #[test]
    fn pages_that_are_not_evictable_are_skipped_and_none_is_an_answer() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap();
            c.occupy(s, PageId(p));
        }
        assert_eq!(c.victim(|p| p == PageId(2)), Some((2, PageId(2))));
        assert_eq!(c.victim(|_| false), None);
    }

    #[test]
    fn hand_order_starts_at_the_hand_and_skips_empty_frames() {
        let mut c = Clock::new(4);
        for p in 0..3 {
            let s = c.take_free().unwrap();
            c.occupy(s, PageId(p));
        }
        // Frames 0..2 hold pages 0..2; the hand moves past frame 0 (referenced: cleared).
        assert_eq!(c.victim(|p| p != PageId(0)), Some((1, PageId(1))));
        let order: Vec<_> = c.in_hand_order().map(|(p, _)| p.0).collect();
        assert_eq!(order, vec![2, 0, 1]);
    }

    #[test]
    fn counts_follow_occupy_and_vacate() {
        let mut c = Clock::new(4);
        assert_eq!((c.free_frames(), c.resident()), (4, 0));
        let s = c.take_free().unwrap();
        c.occupy(s, PageId(9));
        assert_eq!((c.free_frames(), c.resident()), (3, 1));
        c.vacate(s);
        assert_eq!((c.free_frames(), c.resident()), (4, 0));
        assert_eq!(c.in_hand_order().count(), 0);
    }

    #[test]
    fn touch_and_set_referenced_decide_the_second_chance() {
        let mut c = Clock::new(2);
        for p in 0..2 {
            let s = c.take_free().unwrap();
            c.occupy(s, PageId(p));
        }
        c.set_referenced(0, false);
        c.set_referenced(1, false);
        let flags: Vec<_> = c.in_hand_order().map(|(_, r)| r).collect();
        assert_eq!(flags, vec![false, false]);
        // Frame 0 touched, frame 1 not: frame 1 goes first, frame 0's reference is spent.
        c.touch(0);
        assert_eq!(c.in_hand_order().next(), Some((PageId(0), true)));
        assert_eq!(c.victim(|_| true), Some((1, PageId(1))));
        assert_eq!(c.in_hand_order().next(), Some((PageId(0), false)));
        c.set_referenced(0, true);
        assert_eq!(c.in_hand_order().next(), Some((PageId(0), true)));
    }

    #[test]
    fn two_sweeps_find_a_referenced_page_just_behind_the_hand() {
        for n in 1..=8u32 {
            let mut c = Clock::new(n as usize);
            for p in 0..n {
                let s = c.take_free().unwrap();
                c.occupy(s, PageId(p));
            }
            // Only the last frame may go, and it is referenced: the hand passes it once to
            // clear it and once more to pick it, 2n steps.
            let last = PageId(n - 1);
            assert_eq!(c.victim(|p| p == last), Some((n - 1, last)), "{n} frames");
        }
    }
}
