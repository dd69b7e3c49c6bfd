//! The page table: one entry per page of the arena, saying where the page's contents are.
//!
//! ```text
//!   Free ──allocate──▶ Fresh ─────────────────┐
//!    ▲                  (hole, never touched) │ fault: take a frame ──▶ Restoring ──▶ Resident
//!    │                                        │                       (one thread fills   (in a
//!    │                  Zero | Same | Stored ─┘                        the page; others     CLOCK
//!    │                  (tag, or a block in the store)                 touching it wait)    frame)
//!    │                        ▲                                                               │
//!    │                        └──── Evicting ◀── chosen as victim ──────────────────────────────┘
//!    │                              (revoked: stores wait; encoded, stored, memory freed)
//!    └──────── release (free): from any state but the two transient ones ────────────────────
//!
//!   Stored ──readahead──▶ Clean ──first store (a write fault) or a pin──▶ Resident
//!                          (revoked: loads run, a store faults; its block stays in the store)
//!   Clean ──chosen as victim──▶ Evicting ──▶ Stored (the same block: nothing is encoded)
//! ```
//!
//! `Restoring` and `Evicting` are transient: a fault moves a page into them under the pager
//! lock, does the slow work (system calls, compression) without the lock, and moves it out
//! under the lock again. Code that needs a quiet table (freeing, resizing the budget, changing
//! the store) waits until no fault is between those two points.

use crate::page::PageId;
use crate::store::BlockRef;

/// A CLOCK frame: one of the budget's places for a resident page.
pub(super) type Frame = u32;

/// A page's state. Stored in two words per page. A resident page's second word holds its pin
/// count ([`Table::pins`]), which [`Table::set`] keeps when a resident page moves to another
/// frame and clears on every other change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// Not part of any allocation.
    Free,
    /// Allocated, never touched (or its contents are all zero and it holds no RAM).
    Fresh,
    /// In RAM and accessible, in CLOCK frame `frame`.
    Resident { frame: Frame },
    /// In RAM in CLOCK frame `frame`, unchanged since it was restored: revoked (loads run, a
    /// store faults and makes it `Resident`), its stored block still in the store, so that
    /// evicting it again only frees its memory. Never pinned.
    Clean {
        frame: Frame,
        block: BlockRef,
        len: u32,
        raw: bool,
    },
    /// Being brought in by one thread; other threads that touch it wait.
    Restoring,
    /// Being evicted by one thread; stores to it wait (loads may still see its contents).
    Evicting,
    /// Evicted; it was all zeros.
    Zero,
    /// Evicted; it was one repeated word.
    Same(u64),
    /// Evicted into the store.
    Stored {
        block: BlockRef,
        len: u32,
        raw: bool,
    },
}

const K_FREE: u64 = 0;
const K_FRESH: u64 = 1;
const K_RESIDENT: u64 = 2;
const K_ZERO: u64 = 3;
const K_SAME: u64 = 4;
const K_LZ4: u64 = 5;
const K_RAW: u64 = 6;
const K_RESTORING: u64 = 7;
const K_EVICTING: u64 = 8;
const K_CLEAN: u64 = 9;
/// In an evicted entry's first word (`Zero`, `Same`, `Stored`), bits 8..32: when it was
/// evicted, as the pager's count of evictions modulo 2^24 (see [`Table::set_evicted`]).
const STAMP_SHIFT: u32 = 8;
const STAMP_MASK: u64 = (1 << 24) - 1;
/// In a `Clean` entry's first word: the raw flag, then the length (up to 64 KiB pages).
const CLEAN_RAW: u64 = 1 << 8;
const CLEAN_LEN_SHIFT: u32 = 9;
const CLEAN_LEN_MASK: u64 = (1 << 17) - 1;

impl Entry {
    fn encode(self) -> [u64; 2] {
        match self {
            Entry::Free => [K_FREE, 0],
            Entry::Fresh => [K_FRESH, 0],
            Entry::Resident { frame } => [K_RESIDENT | u64::from(frame) << 32, 0],
            Entry::Clean {
                frame,
                block,
                len,
                raw,
            } => {
                debug_assert!(u64::from(len) <= CLEAN_LEN_MASK);
                [
                    K_CLEAN
                        | if raw { CLEAN_RAW } else { 0 }
                        | u64::from(len) << CLEAN_LEN_SHIFT
                        | u64::from(frame) << 32,
                    block.0,
                ]
            }
            Entry::Restoring => [K_RESTORING, 0],
            Entry::Evicting => [K_EVICTING, 0],
            Entry::Zero => [K_ZERO, 0],
            Entry::Same(w) => [K_SAME, w],
            Entry::Stored { block, len, raw } => [
                if raw { K_RAW } else { K_LZ4 } | u64::from(len) << 32,
                block.0,
            ],
        }
    }

    fn decode([w0, w1]: [u64; 2]) -> Entry {
        let aux = (w0 >> 32) as u32;
        match w0 & 0xff {
            K_FRESH => Entry::Fresh,
            K_RESIDENT => Entry::Resident { frame: aux },
            K_CLEAN => Entry::Clean {
                frame: aux,
                block: BlockRef(w1),
                len: ((w0 >> CLEAN_LEN_SHIFT) & CLEAN_LEN_MASK) as u32,
                raw: w0 & CLEAN_RAW != 0,
            },
            K_RESTORING => Entry::Restoring,
            K_EVICTING => Entry::Evicting,
            K_ZERO => Entry::Zero,
            K_SAME => Entry::Same(w1),
            K_LZ4 | K_RAW => Entry::Stored {
                block: BlockRef(w1),
                len: aux,
                raw: w0 & 0xff == K_RAW,
            },
            _ => Entry::Free,
        }
    }

    /// Whether a fault is working on the page right now.
    pub fn is_transient(self) -> bool {
        matches!(self, Entry::Restoring | Entry::Evicting)
    }

    /// The CLOCK frame of a page in RAM (`Resident` or `Clean`).
    pub fn frame(self) -> Option<Frame> {
        match self {
            Entry::Resident { frame } | Entry::Clean { frame, .. } => Some(frame),
            _ => None,
        }
    }

    /// The same entry in another CLOCK frame (entries not in RAM are returned as they are).
    pub fn in_frame(self, to: Frame) -> Entry {
        match self {
            Entry::Resident { .. } => Entry::Resident { frame: to },
            Entry::Clean {
                block, len, raw, ..
            } => Entry::Clean {
                frame: to,
                block,
                len,
                raw,
            },
            other => other,
        }
    }

    /// What a `Clean` page's entry becomes when it is evicted: its block, as stored.
    pub fn kept_block(self) -> Option<Entry> {
        match self {
            Entry::Clean {
                block, len, raw, ..
            } => Some(Entry::Stored { block, len, raw }),
            _ => None,
        }
    }
}

/// The entries of every page of an arena.
pub(super) struct Table {
    entries: Vec<[u64; 2]>,
}

impl Table {
    pub fn new(pages: usize) -> Table {
        // Zeroed allocation: the kernel supplies zero pages lazily, so an entry costs RAM only
        // once its page has been used.
        Table {
            entries: vec![[0u64; 2]; pages],
        }
    }

    pub fn get(&self, page: PageId) -> Entry {
        Entry::decode(self.entries[page.index()])
    }

    pub fn set(&mut self, page: PageId, e: Entry) {
        let pins = match e {
            Entry::Resident { .. } => self.pins(page),
            _ => 0,
        };
        let mut words = e.encode();
        if pins != 0 {
            words[1] = u64::from(pins);
        }
        self.entries[page.index()] = words;
    }

    /// [`Table::set`] for an entry an eviction just made (`Zero`, `Same` or `Stored`),
    /// remembering `when` (the pager's eviction count) for [`Table::evicted_at`].
    pub fn set_evicted(&mut self, page: PageId, e: Entry, when: u32) {
        debug_assert!(matches!(
            e,
            Entry::Zero | Entry::Same(_) | Entry::Stored { .. }
        ));
        self.set(page, e);
        self.entries[page.index()][0] |= (u64::from(when) & STAMP_MASK) << STAMP_SHIFT;
    }

    /// When an evicted page was evicted, modulo 2^24 (0 where nobody said: a page stored again
    /// by a scrub or a store change).
    pub fn evicted_at(&self, page: PageId) -> Option<u32> {
        let w0 = self.entries[page.index()][0];
        matches!(w0 & 0xff, K_ZERO | K_SAME | K_LZ4 | K_RAW)
            .then(|| ((w0 >> STAMP_SHIFT) & STAMP_MASK) as u32)
    }

    /// Evictions since an evicted page was evicted, given the count `now` (modulo 2^24, as
    /// stamped by [`Table::set_evicted`]); `None` for a page that is not evicted.
    pub fn evictions_since(&self, page: PageId, now: u32) -> Option<u32> {
        self.evicted_at(page)
            .map(|at| (u64::from(now.wrapping_sub(at)) & STAMP_MASK) as u32)
    }

    /// How many pins hold the page resident (0 for a page that is not resident).
    pub fn pins(&self, page: PageId) -> u32 {
        let [w0, w1] = self.entries[page.index()];
        if w0 & 0xff == K_RESIDENT {
            u32::try_from(w1).unwrap_or(u32::MAX)
        } else {
            0
        }
    }

    /// Set the pin count of a resident page.
    pub fn set_pins(&mut self, page: PageId, pins: u32) {
        assert_eq!(
            self.entries[page.index()][0] & 0xff,
            K_RESIDENT,
            "only Resident pages are pinned (a Clean one is made Resident first)"
        );
        self.entries[page.index()][1] = u64::from(pins);
    }

    /// Whether CLOCK may evict the page: resident and not pinned.
    pub fn is_evictable(&self, page: PageId) -> bool {
        self.is_resident(page) && self.pins(page) == 0
    }

    /// In RAM: `Resident` or `Clean`.
    pub fn is_resident(&self, page: PageId) -> bool {
        self.get(page).frame().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_entry_remembers_when_until_it_changes() {
        let mut t = Table::new(4);
        let stored = Entry::Stored {
            block: BlockRef(9),
            len: 4096,
            raw: true,
        };
        for (e, when) in [
            (Entry::Zero, 1),
            (Entry::Same(7), (1 << 24) - 1),
            (stored, 1 << 24),
        ] {
            t.set_evicted(PageId(1), e, when);
            assert_eq!(t.get(PageId(1)), e);
            assert_eq!(t.evicted_at(PageId(1)), Some(when & ((1 << 24) - 1)));
        }
        t.set(PageId(1), Entry::Resident { frame: 2 });
        assert_eq!(t.evicted_at(PageId(1)), None);
        t.set(PageId(1), stored);
        assert_eq!(t.evicted_at(PageId(1)), Some(0), "nobody said when");
    }

    #[test]
    fn entries_round_trip() {
        for e in [
            Entry::Clean {
                frame: u32::MAX,
                block: BlockRef(u64::MAX - 3),
                len: 65536,
                raw: true,
            },
            Entry::Clean {
                frame: 3,
                block: BlockRef(0),
                len: 1,
                raw: false,
            },
            Entry::Free,
            Entry::Fresh,
            Entry::Resident { frame: 7 },
            Entry::Resident {
                frame: u32::MAX - 1,
            },
            Entry::Restoring,
            Entry::Evicting,
            Entry::Zero,
            Entry::Same(u64::MAX),
            Entry::Stored {
                block: BlockRef(0x7fff_1234_5000),
                len: 4096,
                raw: true,
            },
            Entry::Stored {
                block: BlockRef(64),
                len: 1,
                raw: false,
            },
        ] {
            assert_eq!(Entry::decode(e.encode()), e);
        }
    }

    #[test]
    fn only_restoring_and_evicting_are_transient() {
        assert!(Entry::Restoring.is_transient());
        assert!(Entry::Evicting.is_transient());
        for e in [Entry::Free, Entry::Fresh, Entry::Zero, Entry::Same(1)] {
            assert!(!e.is_transient());
        }
        assert!(!Entry::Resident { frame: 0 }.is_transient());
    }

    #[test]
    fn a_new_table_is_all_free() {
        let mut t = Table::new(4);
        assert_eq!(t.get(PageId(3)), Entry::Free);
        t.set(PageId(2), Entry::Resident { frame: 1 });
        assert!(t.is_resident(PageId(2)));
        assert!(!t.is_resident(PageId(1)));
    }

    #[test]
    fn pins_survive_a_move_to_another_frame_and_nothing_else() {
        let mut t = Table::new(2);
        t.set(PageId(0), Entry::Resident { frame: 1 });
        assert!(t.is_evictable(PageId(0)));
        t.set_pins(PageId(0), 3);
        assert!(!t.is_evictable(PageId(0)));
        t.set(PageId(0), Entry::Resident { frame: 0 });
        assert_eq!(t.pins(PageId(0)), 3);
        assert_eq!(t.get(PageId(0)), Entry::Resident { frame: 0 });
        t.set(PageId(0), Entry::Free);
        assert_eq!(t.pins(PageId(0)), 0);
        t.set(PageId(0), Entry::Resident { frame: 0 });
        assert_eq!(t.pins(PageId(0)), 0);
        assert!(!t.is_evictable(PageId(1)));
    }
}
