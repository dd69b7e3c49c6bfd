//! The pager: which pages are resident, evicting the coldest when the budget is full, and
//! restoring evicted pages on a fault.
//!
//! Every page of an instance's arena has an entry in the page table:
//!
//! ```text
//!   Free ──allocate──▶ Fresh ──first touch──▶ Resident ──evict──▶ Zero | Same | Stored
//!    ▲                  (hole, no access)      (in the CLOCK ring)   (tag only / block in store)
//!    │                                              ▲                        │
//!    └────────────── release (free) ◀───────────────┴────── restore ◀────────┘
//! ```
//!
//! Resident pages occupy slots of a CLOCK ring with one slot per budget page. A page that
//! comes in takes a free slot, or the slot of the victim the hand picks: the hand skips (and
//! clears) slots whose page was referenced since it last passed. The access backend only sees
//! faults, not accesses to resident pages, so a page is marked referenced when it comes in:
//! every page survives one sweep of the hand after its fault. Each step is O(1); a search
//! never visits more than two sweeps of the ring.
//!
//! Locking: one mutex per instance. The fault handler takes it with every signal blocked (the
//! handler's `sa_mask`); ordinary code takes it only inside [`SignalsBlocked`], so a thread
//! holding it is never interrupted by a handler on the same thread. All buffers the fault path
//! uses are allocated when the pager is created.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::codec::{Codec, PageClass, classify, compressed_limit, fill_same};
use crate::page::{PageId, PageRun, page_size};
use crate::registry::Outcome;
use crate::stats::{Counters, add, sub};
use crate::store::{BlockRef, PageStore, StoreError};
use crate::sys::{Arena, FaultStack, SignalsBlocked};

/// How access to ghost pages is granted and revoked: the seam between the pager and the way
/// faults are delivered (SIGSEGV + `mprotect` now; userfaultfd later).
///
/// # Contract
/// Both methods run inside the fault path: no allocation, no locks, results reported.
pub(crate) trait Access: Send + Sync {
    /// Make `run` inaccessible. When this returns no thread can read or write those pages.
    fn revoke(&self, arena: &Arena, run: PageRun) -> rustix::io::Result<()>;
    /// Make `page` accessible, holding `contents` (`None`: the page is a hole, reads as zeros).
    fn grant(&self, arena: &Arena, page: PageId, contents: Option<&[u8]>)
    -> rustix::io::Result<()>;
}

/// The signal backend: protection changes with `mprotect`, contents through the memfd.
pub(crate) struct Mprotect;

impl Access for Mprotect {
    fn revoke(&self, arena: &Arena, run: PageRun) -> rustix::io::Result<()> {
        arena.set_access(run, false)
    }
    fn grant(
        &self,
        arena: &Arena,
        page: PageId,
        contents: Option<&[u8]>,
    ) -> rustix::io::Result<()> {
        if let Some(bytes) = contents {
            arena.write_page(page, bytes)?;
        }
        arena.set_access(
            PageRun {
                first: page,
                count: 1,
            },
            true,
        )
    }
}

/// A page's state. Stored in two words per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Not part of any allocation.
    Free,
    /// Allocated, never touched (or its contents are all zero and it holds no RAM).
    Fresh,
    /// In RAM and accessible, in CLOCK slot `slot`.
    Resident { slot: u32 },
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

impl Entry {
    fn encode(self) -> [u64; 2] {
        match self {
            Entry::Free => [K_FREE, 0],
            Entry::Fresh => [K_FRESH, 0],
            Entry::Resident { slot } => [K_RESIDENT | u64::from(slot) << 32, 0],
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
            K_RESIDENT => Entry::Resident { slot: aux },
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
}

const EMPTY: u32 = u32::MAX;

/// The CLOCK ring of resident pages: one slot per budget page.
struct Clock {
    pages: Box<[u32]>,
    referenced: Box<[bool]>,
    free: Vec<u32>,
    hand: usize,
}

impl Clock {
    fn new(slots: usize) -> Clock {
        let n = u32::try_from(slots).expect("budget fits in u32");
        Clock {
            pages: vec![EMPTY; slots].into_boxed_slice(),
            referenced: vec![false; slots].into_boxed_slice(),
            free: (0..n).rev().collect(),
            hand: 0,
        }
    }

    fn take_free(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Pick the slot to reuse when every slot is occupied.
    fn victim(&mut self) -> (u32, PageId) {
        loop {
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.pages.len();
            let page = self.pages[slot];
            if page == EMPTY {
                continue;
            }
            if std::mem::take(&mut self.referenced[slot]) {
                continue;
            }
            return (u32::try_from(slot).expect("slots fit in u32"), PageId(page));
        }
    }

    fn occupy(&mut self, slot: u32, page: PageId) {
        self.pages[slot as usize] = page.0;
        self.referenced[slot as usize] = true;
    }

    fn vacate(&mut self, slot: u32) {
        self.pages[slot as usize] = EMPTY;
        self.referenced[slot as usize] = false;
        // `free` was allocated with one place per slot, so this never allocates.
        self.free.push(slot);
    }

    fn touch(&mut self, slot: u32) {
        self.referenced[slot as usize] = true;
    }

    fn resident(&self) -> usize {
        self.pages.len() - self.free.len()
    }
}

/// A failed step on the fault path: which system call or component, and the errno.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    pub what: &'static str,
    pub errno: i32,
}

impl From<Failure> for crate::Error {
    fn from(f: Failure) -> Self {
        crate::Error::Sys {
            op: f.what,
            source: std::io::Error::from_raw_os_error(f.errno),
        }
    }
}

/// A store failure on the fault path, with the cause spelled out for the fatal message.
fn store_failure(what: &'static str, e: StoreError) -> Failure {
    match e {
        StoreError::Corrupt => Failure {
            what: "authenticating the stored page (the swap file was modified or is corrupt)",
            errno: 0,
        },
        StoreError::OutOfMemory(errno) => Failure {
            what: "getting memory for the page store",
            errno,
        },
        _ => Failure {
            what,
            errno: e.errno(),
        },
    }
}

fn failed(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> Failure {
    move |e| Failure {
        what,
        errno: e.raw_os_error(),
    }
}

struct State {
    table: Vec<[u64; 2]>,
    clock: Clock,
    store: Box<dyn PageStore>,
    codec: Box<dyn Codec>,
    page_buf: Box<[u8]>,
    out_buf: Box<[u8]>,
    /// Whether data pages are LZ4-compressed before they are stored (otherwise raw).
    compress: bool,
    /// One past the highest page ever handed out: entries above it are all `Free`.
    high_water: usize,
}

impl State {
    fn get(&self, page: PageId) -> Entry {
        Entry::decode(self.table[page.index()])
    }
    fn set(&mut self, page: PageId, e: Entry) {
        self.table[page.index()] = e.encode();
    }
}

/// One instance's pager. Lives at a stable address (boxed) for the fault handler.
pub(crate) struct Pager {
    pub arena: Arena,
    pub counters: Counters,
    access: Box<dyn Access>,
    budget: AtomicUsize,
    state: Mutex<Locked>,
}

/// What the pager lock protects: the state, and the stack the fault path runs on.
struct Locked {
    st: State,
    stack: FaultStack,
}

/// The pager lock taken from ordinary code: signals blocked first, released last.
struct OrdinaryLock<'a> {
    guard: MutexGuard<'a, Locked>,
    _blocked: SignalsBlocked,
}

impl Pager {
    pub fn new(
        arena: Arena,
        budget: usize,
        store: Box<dyn PageStore>,
        codec: Box<dyn Codec>,
        compress: bool,
    ) -> rustix::io::Result<Pager> {
        let page = page_size();
        let stack = FaultStack::new()?;
        let pages = arena.pages();
        Ok(Pager {
            // Zeroed allocation: the kernel supplies zero pages lazily, so an entry costs RAM
            // only once its page has been used.
            state: Mutex::new(Locked {
                stack,
                st: State {
                    table: vec![[0u64; 2]; pages],
                    clock: Clock::new(budget),
                    store,
                    codec,
                    page_buf: vec![0u8; page].into_boxed_slice(),
                    out_buf: vec![0u8; page].into_boxed_slice(),
                    compress,
                    high_water: 0,
                },
            }),
            arena,
            counters: Counters::default(),
            access: Box::new(Mprotect),
            budget: AtomicUsize::new(budget),
        })
    }

    pub fn budget(&self) -> usize {
        self.budget.load(Relaxed)
    }

    /// Change the budget of a live pager. Shrinking evicts the coldest pages first; resident
    /// pages keep their CLOCK order and reference bits.
    pub fn set_budget(&self, budget: usize) -> Result<(), Failure> {
        let mut lock = self.lock_ordinary();
        let st = &mut lock.guard.st;
        while st.clock.resident() > budget {
            let (slot, victim) = st.clock.victim();
            self.evict(st, victim)?;
            st.clock.vacate(slot);
        }
        let old = std::mem::replace(&mut st.clock, Clock::new(budget));
        let n = old.pages.len();
        for i in 0..n {
            let slot = (old.hand + i) % n;
            let page = old.pages[slot];
            if page != EMPTY {
                let new = st
                    .clock
                    .take_free()
                    .expect("resident pages fit the new ring");
                st.clock.occupy(new, PageId(page));
                st.clock.referenced[new as usize] = old.referenced[slot];
                st.set(PageId(page), Entry::Resident { slot: new });
            }
        }
        self.budget.store(budget, Relaxed);
        Ok(())
    }

    fn lock_ordinary(&self) -> OrdinaryLock<'_> {
        let blocked = SignalsBlocked::new();
        OrdinaryLock {
            guard: self.state.lock().unwrap_or_else(PoisonError::into_inner),
            _blocked: blocked,
        }
    }

    /// Resolve a fault on `page`. Runs in the fault handler.
    pub fn fault(&self, page: PageId) -> Outcome {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Locked { st, stack } = &mut *guard;
        match st.get(page) {
            Entry::Free => Outcome::NotOurs,
            Entry::Resident { slot } => {
                // Another thread brought it in while we waited for the lock.
                st.clock.touch(slot);
                add(&self.counters.faults, 1);
                Outcome::Handled
            }
            entry => match stack.run(|| self.bring_in(st, page, entry)) {
                Ok(()) => {
                    add(&self.counters.faults, 1);
                    Outcome::Handled
                }
                Err(f) => Outcome::Fatal {
                    what: f.what,
                    errno: f.errno,
                },
            },
        }
    }

    fn bring_in(&self, st: &mut State, page: PageId, entry: Entry) -> Result<(), Failure> {
        let slot = match st.clock.take_free() {
            Some(slot) => slot,
            None => {
                let (slot, victim) = st.clock.victim();
                self.evict(st, victim)?;
                slot
            }
        };
        let c = &self.counters;
        let contents = match entry {
            Entry::Fresh => {
                add(&c.first_touches, 1);
                None
            }
            Entry::Zero => None,
            Entry::Same(word) => {
                fill_same(&mut st.page_buf, word);
                Some(&st.page_buf[..])
            }
            Entry::Stored { block, len, raw } => {
                let State {
                    store,
                    codec,
                    page_buf,
                    out_buf,
                    ..
                } = st;
                let len = len as usize;
                let data = store
                    .load(page, block, len, out_buf)
                    .map_err(|e| store_failure("reading the stored page", e))?;
                if raw {
                    page_buf.copy_from_slice(data);
                } else {
                    codec.decompress(data, page_buf).map_err(|_| Failure {
                        what: "decompressing a stored page",
                        errno: 0,
                    })?;
                }
                store.remove(page, block, len);
                Some(&page_buf[..])
            }
            Entry::Free | Entry::Resident { .. } => unreachable!("handled by the caller"),
        };
        self.access
            .grant(&self.arena, page, contents)
            .map_err(failed("granting access (pwrite + mprotect)"))?;
        if entry != Entry::Fresh {
            self.count_evicted(entry, false);
            add(&c.restores, 1);
        }
        st.set(page, Entry::Resident { slot });
        st.clock.occupy(slot, page);
        add(&c.resident_pages, 1);
        if matches!(entry, Entry::Stored { .. }) {
            self.publish_store_stats(st);
        }
        Ok(())
    }

    /// Evict the resident page `victim`. Its CLOCK slot is left to the caller. On failure the
    /// page is still resident and accessible (its entry never stopped saying so).
    fn evict(&self, st: &mut State, victim: PageId) -> Result<(), Failure> {
        let run = PageRun {
            first: victim,
            count: 1,
        };
        // Revoke first: from here on no thread can store to the page, so what we read is final.
        self.access
            .revoke(&self.arena, run)
            .map_err(failed("revoking access (mprotect)"))?;
        let entry = match self.store_and_discard(st, victim) {
            Ok(entry) => entry,
            Err(f) => {
                // Nothing was discarded: the contents are still in the memfd.
                self.access
                    .grant(&self.arena, victim, None)
                    .map_err(failed("giving access back after a failed eviction"))?;
                return Err(f);
            }
        };
        st.set(victim, entry);
        let c = &self.counters;
        sub(&c.resident_pages, 1);
        add(&c.evictions, 1);
        self.count_evicted(entry, true);
        self.publish_store_stats(st);
        Ok(())
    }

    /// Read the revoked page `victim`, store its encoding, and free its memory. On failure
    /// nothing is stored and the memory is not freed.
    fn store_and_discard(&self, st: &mut State, victim: PageId) -> Result<Entry, Failure> {
        self.arena
            .read_page(victim, &mut st.page_buf)
            .map_err(failed("reading the page (pread)"))?;
        let entry = match classify(&st.page_buf) {
            PageClass::Zero => Entry::Zero,
            PageClass::Same(word) => Entry::Same(word),
            PageClass::Data => {
                let limit = compressed_limit(st.page_buf.len());
                let compressed = if st.compress {
                    st.codec.compress(&st.page_buf, &mut st.out_buf[..limit])
                } else {
                    None
                };
                let (data, raw) = match compressed {
                    Some(n) => (&st.out_buf[..n], false),
                    None => (&st.page_buf[..], true),
                };
                let block = st
                    .store
                    .put(victim, data)
                    .map_err(|e| store_failure("storing an evicted page", e))?;
                Entry::Stored {
                    block,
                    len: u32::try_from(data.len()).expect("a page fits in u32"),
                    raw,
                }
            }
        };
        let run = PageRun {
            first: victim,
            count: 1,
        };
        if let Err(e) = self.arena.discard(run) {
            if let Entry::Stored { block, len, .. } = entry {
                st.store.remove(victim, block, len as usize);
            }
            return Err(failed("freeing the page (fallocate PUNCH_HOLE)")(e));
        }
        Ok(entry)
    }

    /// Adjust the gauges of evicted pages when `entry` enters (`true`) or leaves the store.
    fn count_evicted(&self, entry: Entry, enters: bool) {
        let c = &self.counters;
        let change = |counter: &std::sync::atomic::AtomicU64, n: u64| {
            if enters {
                add(counter, n)
            } else {
                sub(counter, n)
            }
        };
        change(&c.evicted_pages, 1);
        match entry {
            Entry::Zero => change(&c.zero_pages, 1),
            Entry::Same(_) => change(&c.same_filled_pages, 1),
            Entry::Stored { len, raw, .. } => {
                change(&c.compressed_bytes, u64::from(len));
                change(
                    if raw {
                        &c.incompressible_pages
                    } else {
                        &c.compressed_pages
                    },
                    1,
                );
            }
            Entry::Free | Entry::Fresh | Entry::Resident { .. } => {}
        }
    }

    /// Mark the pages of a new allocation: the next touch gives a zero page.
    pub fn activate(&self, run: PageRun) {
        let mut lock = self.lock_ordinary();
        for page in run.pages() {
            debug_assert_eq!(lock.guard.st.get(page), Entry::Free);
            lock.guard.st.set(page, Entry::Fresh);
        }
        let end = run.first.index() + run.count as usize;
        lock.guard.st.high_water = lock.guard.st.high_water.max(end);
    }

    /// Move every stored page into `store` and make it the pager's store; choose whether data
    /// pages are compressed from now on. All or nothing: if any block cannot be moved, the new
    /// store is emptied and the old one stays in use.
    pub fn replace_store(
        &self,
        mut store: Box<dyn PageStore>,
        compress: bool,
    ) -> Result<(), Failure> {
        let mut lock = self.lock_ordinary();
        let st = &mut lock.guard.st;
        let mut moved = Vec::new();
        for index in 0..st.high_water {
            let page = PageId(u32::try_from(index).expect("arena pages fit in u32"));
            let Entry::Stored { block, len, raw } = st.get(page) else {
                continue;
            };
            let copied = st
                .store
                .load(page, block, len as usize, &mut st.out_buf)
                .map_err(|e| store_failure("reading the page store", e))
                .and_then(|data| {
                    store
                        .put(page, data)
                        .map_err(|e| store_failure("writing the new page store", e))
                });
            match copied {
                Ok(new_block) => moved.push((page, block, new_block, len, raw)),
                Err(f) => {
                    for &(page, _, new_block, len, _) in &moved {
                        store.remove(page, new_block, len as usize);
                    }
                    return Err(f);
                }
            }
        }
        for (page, old_block, block, len, raw) in moved {
            st.store.remove(page, old_block, len as usize);
            st.set(page, Entry::Stored { block, len, raw });
        }
        st.store = store;
        st.compress = compress;
        self.publish_store_stats(st);
        Ok(())
    }

    /// Remove the store's file name (see [`PageStore::unlink`]). Skipped if the pager is busy:
    /// this runs at process exit, which must not wait for other threads.
    pub fn unlink_store_file(&self) {
        let _blocked = SignalsBlocked::new();
        if let Ok(mut guard) = self.state.try_lock() {
            guard.st.store.unlink();
        }
    }

    /// Copy the store's own statistics into the lock-free counters.
    fn publish_store_stats(&self, st: &State) {
        let s = st.store.stats();
        let c = &self.counters;
        c.store_reserved_bytes
            .store(st.store.reserved_bytes(), Relaxed);
        c.store_file_bytes.store(s.file_bytes, Relaxed);
        c.store_slots_reused.store(s.slots_reused, Relaxed);
        c.store_write_errors.store(s.write_errors, Relaxed);
        c.store_auth_failures.store(s.auth_failures, Relaxed);
    }

    /// Release the pages of a freed allocation, resident or evicted: their RAM and stored data
    /// are freed and any later access is an ordinary segmentation fault.
    pub fn release(&self, run: PageRun) -> Result<(), Failure> {
        let mut lock = self.lock_ordinary();
        let st = &mut lock.guard.st;
        for page in run.pages() {
            let entry = st.get(page);
            match entry {
                Entry::Resident { slot } => {
                    st.clock.vacate(slot);
                    sub(&self.counters.resident_pages, 1);
                }
                Entry::Stored { block, len, .. } => {
                    st.store.remove(page, block, len as usize);
                    self.count_evicted(entry, false);
                }
                Entry::Zero | Entry::Same(_) => self.count_evicted(entry, false),
                Entry::Free | Entry::Fresh => {}
            }
            st.set(page, Entry::Free);
        }
        self.publish_store_stats(st);
        self.access
            .revoke(&self.arena, run)
            .map_err(failed("revoking access (mprotect)"))?;
        self.arena
            .discard(run)
            .map_err(failed("freeing pages (fallocate PUNCH_HOLE)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for e in [
            Entry::Free,
            Entry::Fresh,
            Entry::Resident { slot: 7 },
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
    fn clock_gives_a_second_chance() {
        let mut c = Clock::new(3);
        for p in 0..3 {
            let s = c.take_free().unwrap();
            c.occupy(s, PageId(p));
        }
        assert_eq!(c.take_free(), None);
        // All referenced: the first sweep clears, the second picks slot 0.
        let (slot, page) = c.victim();
        assert_eq!((slot, page), (0, PageId(0)));
        c.occupy(slot, PageId(10));
        // Slot 0 is referenced again; slots 1 and 2 were cleared: slot 1 goes next.
        assert_eq!(c.victim(), (1, PageId(1)));
        c.vacate(2);
        assert_eq!(c.take_free(), Some(2));
    }

    /// A store that refuses every block, as an exhausted one would.
    struct Full;

    impl PageStore for Full {
        fn put(&mut self, _: PageId, _: &[u8]) -> Result<BlockRef, StoreError> {
            Err(StoreError::OutOfMemory(libc::ENOMEM))
        }
        fn load<'a>(
            &'a mut self,
            _: PageId,
            _: BlockRef,
            _: usize,
            _: &'a mut [u8],
        ) -> Result<&'a [u8], StoreError> {
            Err(StoreError::Corrupt)
        }
        fn remove(&mut self, _: PageId, _: BlockRef, _: usize) {}
        fn reserved_bytes(&self) -> u64 {
            0
        }
        fn stats(&self) -> crate::store::StoreStats {
            crate::store::StoreStats::default()
        }
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_failed_eviction_leaves_the_page_resident_and_accessible() {
        crate::sys::install_fault_handler().unwrap();
        let page = page_size();
        let pager = Pager::new(
            Arena::new(16 * page).unwrap(),
            4,
            Box::new(Full),
            Box::new(crate::codec::Lz4::new()),
            true,
        )
        .unwrap();
        let slot = crate::registry::register(&pager).unwrap();
        pager.activate(PageRun {
            first: PageId(0),
            count: 2,
        });
        let base = pager.arena.base() as *mut u64;
        for i in 0..2 * page / 8 {
            // SAFETY: inside the two activated pages; the first touch of each faults them in.
            unsafe { base.add(i).write(i as u64 * 7 + 1) };
        }
        // Shrinking to one page must evict a data page, which the store refuses.
        assert!(pager.set_budget(1).is_err());
        for i in 0..2 * page / 8 {
            // SAFETY: as above. Were the victim left revoked, this would fault forever.
            assert_eq!(unsafe { base.add(i).read() }, i as u64 * 7 + 1);
        }
        assert_eq!(pager.counters.evictions.load(Relaxed), 0);
        crate::registry::unregister(slot);
    }
}
