//! CLOCK: which resident page to evict when every frame of the budget is occupied.
//!
//! One frame per budget page. A page that comes in takes a free frame, or the frame of the
//! victim the hand picks: the hand skips frames whose page a fault is still bringing in, and
//! frames with chances left, taking one chance away as it passes. The fault backends only see
//! faults, not accesses to resident pages, so a page gets its chances when it comes in: one
//! for a page brought in by a fault (it survives one sweep of the hand), none for a page read
//! ahead, and [`HOT`] for a page that comes back soon after it was evicted (see
//! `Pager::chances_for`): the kernel's refault distance, which tells the pages in use from
//! the rest without seeing their accesses. Where the backend allows, those pages are also
//! sampled when their chances run out (see `sample.rs`): a store before the hand returns
//! gives them their chances back.

use super::table::Frame;
use crate::page::PageId;

const EMPTY: u32 = u32::MAX;

/// The chances of a page that came back soon after its eviction.
pub(super) const HOT: u8 = 3;

/// The CLOCK ring of resident pages.
pub(super) struct Clock {
    pages: Box<[u32]>,
    /// Sweeps of the hand the page in each frame survives.
    chances: Box<[u8]>,
    /// Free frames whose spare slot holds a page (see `spare.rs`). Never set for an occupied
    /// frame: the page that takes the frame takes its spare page too, or it is dropped.
    spare: Box<[bool]>,
    /// How many are set in `spare`.
    spares: usize,
    /// Per frame: its page is sampled (see `sample.rs`): write-protected to see whether it is
    /// stored to.
    sampled: Box<[bool]>,
    /// Per frame: its page showed it is in use since it came in: it came back soon after its
    /// eviction, or was stored to while sampled. Only those pages are sampled.
    earned: Box<[bool]>,
    free: Vec<Frame>,
    hand: usize,
}

impl Clock {
    pub fn new(frames: usize) -> Clock {
        let n = u32::try_from(frames).expect("budget fits in u32");
        Clock {
            pages: vec![EMPTY; frames].into_boxed_slice(),
            chances: vec![0; frames].into_boxed_slice(),
            spare: vec![false; frames].into_boxed_slice(),
            spares: 0,
            sampled: vec![false; frames].into_boxed_slice(),
            earned: vec![false; frames].into_boxed_slice(),
            free: (0..n).rev().collect(),
            hand: 0,
        }
    }

    /// A free frame, and whether its spare slot holds a page: the caller owns that page now
    /// (it moves it under the page it brings in, or drops it). Frames vacated one after the
    /// other come back in the opposite order.
    pub fn take_free(&mut self) -> Option<(Frame, bool)> {
        let frame = self.free.pop()?;
        let spare = std::mem::take(&mut self.spare[frame as usize]);
        self.spares -= usize::from(spare);
        Some((frame, spare))
    }

    /// Pick the frame to reuse when every frame is occupied: the first frame without chances
    /// left whose page `evictable` accepts. `None` when `HOT + 1` sweeps find none (every page
    /// is being brought in by some fault). A page that has shown it is in use (`earned`) is
    /// offered to `sample` before it is picked: if `sample` takes it (the pager will
    /// write-protect it, see `sample.rs`), it is marked sampled and passed once more.
    pub fn victim(
        &mut self,
        evictable: impl Fn(PageId) -> bool,
        mut sample: impl FnMut(PageId) -> bool,
    ) -> Option<(Frame, PageId)> {
        let n = self.pages.len();
        for _ in 0..(usize::from(HOT) + 1) * n + 1 {
            let frame = self.hand;
            self.hand = (self.hand + 1) % n;
            let page = self.pages[frame];
            if page == EMPTY || !evictable(PageId(page)) {
                continue;
            }
            if self.chances[frame] > 0 {
                self.chances[frame] -= 1;
                continue;
            }
            if self.earned[frame] && !self.sampled[frame] && sample(PageId(page)) {
                // Sampling is a page's last chance: the hand passes it once more.
                self.sampled[frame] = true;
                continue;
            }
            return Some((
                u32::try_from(frame).expect("frames fit in u32"),
                PageId(page),
            ));
        }
        None
    }

    /// Put `page` in `frame` with one chance (a page a fault brought in).
    pub fn occupy(&mut self, frame: Frame, page: PageId) {
        self.occupy_with(frame, page, 1);
    }

    /// Put `page` in `frame` with `chances` (0: a page brought in ahead of its use).
    pub fn occupy_with(&mut self, frame: Frame, page: PageId, chances: u8) {
        self.pages[frame as usize] = page.0;
        self.chances[frame as usize] = chances.min(HOT);
        self.sampled[frame as usize] = false;
        self.earned[frame as usize] = chances > 1;
    }

    /// Free `frame`; `spare`: its spare slot holds a page (the evicted page's memory).
    pub fn vacate(&mut self, frame: Frame, spare: bool) {
        self.pages[frame as usize] = EMPTY;
        self.chances[frame as usize] = 0;
        self.sampled[frame as usize] = false;
        self.earned[frame as usize] = false;
        self.spare[frame as usize] = spare;
        self.spares += usize::from(spare);
        // `free` was allocated with one place per frame, so this never allocates.
        self.free.push(frame);
    }

    /// The page in `frame` was used: at least one chance.
    pub fn touch(&mut self, frame: Frame) {
        let c = &mut self.chances[frame as usize];
        *c = (*c).max(1);
    }

    /// The chances of the page in `frame`.
    #[cfg(test)]
    pub fn chances(&self, frame: Frame) -> u8 {
        self.chances[frame as usize]
    }

    /// Whether the page in `frame` is sampled (see `sample.rs`).
    pub fn sampled(&self, frame: Frame) -> bool {
        self.sampled[frame as usize]
    }

    /// Mark the page in `frame` sampled, or no longer.
    pub fn set_sampled(&mut self, frame: Frame, on: bool) {
        self.sampled[frame as usize] = on;
    }

    /// The page in `frame`, sampled, was stored to: it is in use, as a page that came back
    /// soon after its eviction is.
    pub fn in_use(&mut self, frame: Frame) {
        self.sampled[frame as usize] = false;
        self.earned[frame as usize] = true;
        self.chances[frame as usize] = HOT;
    }

    /// Frames in the ring (the budget).
    pub fn frames(&self) -> usize {
        self.pages.len()
    }

    /// Frames not occupied.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Free frames whose spare slot holds a page.
    pub fn spares(&self) -> usize {
        self.spares
    }

    /// Occupied frames.
    pub fn resident(&self) -> usize {
        self.pages.len() - self.free.len()
    }

    /// The occupied frames in hand order, starting at the hand.
    pub fn in_hand_order(&self) -> impl Iterator<Item = Frame> + '_ {
        let n = self.pages.len();
        (0..n)
            .map(move |i| (self.hand + i) % n)
            .filter(|&f| self.pages[f] != EMPTY)
            .map(|f| u32::try_from(f).expect("frames fit in u32"))
    }

    /// Put the page of `old`'s frame `from` in the free frame `to`, with its chances and
    /// marks (for a ring rebuilt at another size).
    pub fn occupy_from(&mut self, to: Frame, old: &Clock, from: Frame) {
        let (t, f) = (to as usize, from as usize);
        self.pages[t] = old.pages[f];
        self.chances[t] = old.chances[f];
        self.sampled[t] = old.sampled[f];
        self.earned[t] = old.earned[f];
    }

    /// The page in `frame` (an occupied one).
    pub fn page(&self, frame: Frame) -> PageId {
        PageId(self.pages[frame as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_gives_a_second_chance() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap().0;
            c.occupy(s, PageId(p));
        }
        assert_eq!(c.take_free(), None);
        // One chance each: the first sweep spends them, the second picks frame 0.
        let (frame, page) = c.victim(|_| true, |_| false).unwrap();
        assert_eq!((frame, page), (0, PageId(0)));
        c.occupy(frame, PageId(10));
        // Frame 0 has its chance again; frames 1 and 2 spent theirs: frame 1 goes next.
        assert_eq!(c.victim(|_| true, |_| false), Some((1, PageId(1))));
        c.vacate(2, false);
        assert_eq!(c.take_free(), Some((2, false)));
        assert_eq!(c.resident(), 3);
    }

    #[test]
    fn pages_that_are_not_evictable_are_skipped_and_none_is_an_answer() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap().0;
            c.occupy(s, PageId(p));
        }
        assert_eq!(
            c.victim(|p| p == PageId(2), |_| false),
            Some((2, PageId(2)))
        );
        assert_eq!(c.victim(|_| false, |_| false), None);
    }

    #[test]
    fn hand_order_starts_at_the_hand_and_skips_empty_frames() {
        let mut c = Clock::new(4);
        for p in 0..3 {
            let s = c.take_free().unwrap().0;
            c.occupy(s, PageId(p));
        }
        // Frames 0..2 hold pages 0..2; the hand moves past frame 0 (spending its chance).
        assert_eq!(
            c.victim(|p| p != PageId(0), |_| false),
            Some((1, PageId(1)))
        );
        let order: Vec<_> = c.in_hand_order().map(|f| c.page(f).0).collect();
        assert_eq!(order, vec![2, 0, 1]);
    }

    #[test]
    fn counts_follow_occupy_and_vacate() {
        let mut c = Clock::new(4);
        assert_eq!((c.free_frames(), c.resident()), (4, 0));
        let s = c.take_free().unwrap().0;
        c.occupy(s, PageId(9));
        assert_eq!((c.free_frames(), c.resident()), (3, 1));
        c.vacate(s, false);
        assert_eq!((c.free_frames(), c.resident()), (4, 0));
        assert_eq!(c.in_hand_order().count(), 0);
    }

    #[test]
    fn touch_gives_a_chance_and_never_takes_one() {
        let mut c = Clock::new(2);
        for p in 0..2 {
            let s = c.take_free().unwrap().0;
            c.occupy(s, PageId(p));
        }
        c.occupy_with(0, PageId(0), 0);
        c.occupy_with(1, PageId(1), 0);
        let flags: Vec<_> = c.in_hand_order().map(|f| c.chances(f)).collect();
        assert_eq!(flags, vec![0, 0]);
        // Frame 0 touched, frame 1 not: frame 1 goes first, frame 0's chance is spent.
        c.touch(0);
        let first = |c: &Clock| c.in_hand_order().next().map(|f| (c.page(f), c.chances(f)));
        assert_eq!(first(&c), Some((PageId(0), 1)));
        assert_eq!(c.victim(|_| true, |_| false), Some((1, PageId(1))));
        assert_eq!(first(&c), Some((PageId(0), 0)));
        // A touch never takes chances away.
        c.occupy_with(0, PageId(0), HOT);
        c.touch(0);
        assert_eq!(first(&c), Some((PageId(0), HOT)));
    }

    #[test]
    fn enough_sweeps_find_a_hot_page_just_behind_the_hand() {
        for n in 1..=8u32 {
            let mut c = Clock::new(n as usize);
            for p in 0..n {
                let s = c.take_free().unwrap().0;
                c.occupy_with(s, PageId(p), HOT);
            }
            // Only the last frame may go, and it has every chance: the hand passes it HOT
            // times to spend them and once more to pick it, (HOT + 1) n steps.
            let last = PageId(n - 1);
            assert_eq!(
                c.victim(|p| p == last, |_| false),
                Some((n - 1, last)),
                "{n} frames"
            );
        }
    }

    #[test]
    fn a_hot_page_outlives_pages_that_came_in_with_it() {
        // The order four pages that came in together leave in, page 0 with `chances`.
        let order = |chances: u8| {
            let mut c = Clock::new(4);
            c.occupy_with(0, PageId(0), chances);
            for f in 1..4 {
                c.occupy(f, PageId(f));
            }
            c.free.clear();
            let mut order = Vec::new();
            for round in 0..4u32 {
                let (frame, page) = c.victim(|_| true, |_| false).unwrap();
                order.push(page.0);
                c.occupy(frame, PageId(100 + round));
            }
            order
        };
        assert_eq!(order(1), vec![0, 1, 2, 3]);
        assert_eq!(order(HOT), vec![1, 2, 3, 0]);
    }

    #[test]
    fn a_spare_page_goes_with_its_frame_and_frames_come_back_in_reverse() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap().0;
            c.occupy(s, PageId(p));
        }
        c.vacate(0, true);
        c.vacate(1, false);
        c.vacate(2, true);
        assert_eq!(c.spares(), 2);
        assert_eq!(c.take_free(), Some((2, true)));
        assert_eq!(c.take_free(), Some((1, false)));
        assert_eq!(c.spares(), 1);
        assert_eq!(c.take_free(), Some((0, true)));
        assert_eq!((c.spares(), c.take_free()), (0, None));
    }
}
