//! The pager: which pages are resident, evicting the coldest when the budget is full, and
//! restoring evicted pages on a fault.
//!
//! Stages, one file each: the page table and its states ([`table`]), CLOCK ([`clock`]),
//! eviction ([`evict`]), the fault path that restores ([`restore`]), the working memory
//! faults use ([`scratch`]), and zeroing the bytes the heap freed ([`scrub`]). The pager is
//! handed its fault backend ([`crate::sys::Backend`]), through which every change of access to
//! a page goes.
//!
//! Locking: one mutex per instance guards the table, CLOCK and the store, and is held only for
//! short decisions; the slow work of a fault (system calls, compression) runs without it, so
//! faults of several threads proceed at once. The fault handler takes the lock with every
//! signal blocked (the handler's `sa_mask`); ordinary code takes it only inside
//! [`SignalsBlocked`], so a thread holding it is never interrupted by a handler on the same
//! thread. All buffers the fault path uses are allocated when the pager is created.

mod clean;
mod clock;
mod evict;
mod evictor;
mod pin;
mod readahead;
mod restore;
mod sample;
mod scratch;
mod scrub;
mod spare;
mod table;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use self::clock::Clock;
use self::scratch::{Scratch, Scratches};
use self::table::{Entry, Table};
use crate::codec::Codec;
use crate::page::{PageId, PageRun, page_size};
use crate::stats::{Counters, add, sub};
use crate::store::{PageStore, StoreError};
use crate::sys::{Backend, BackendKind, Epoch, FaultSignal, SignalsBlocked, Wakeup};

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

/// What the pager lock protects.
struct State {
    table: Table,
    clock: Clock,
    store: Box<dyn PageStore>,
    /// Whether data pages are LZ4-compressed before they are stored (otherwise raw).
    compress: bool,
    /// One past the highest page ever handed out: entries above it are all `Free`.
    high_water: usize,
    /// Faults between their plan and their commit (pages `Restoring` or `Evicting`).
    in_flight: usize,
    /// Pages with a pin count above zero (see [`pin`]).
    pinned: usize,
    /// The sequential streams of faults (see [`readahead`]).
    readahead: readahead::Streams,
    /// Evictions so far (wrapping): the clock of [`Table::evicted_at`].
    ticks: u32,
}

impl State {
    /// Record the eviction of `page` as `entry`, stamped with the time.
    fn set_evicted(&mut self, page: PageId, entry: Entry) {
        self.ticks = self.ticks.wrapping_add(1);
        self.table.set_evicted(page, entry, self.ticks);
    }

    /// The chances in the CLOCK of `page`, about to be brought in by a fault: [`clock::HOT`]
    /// if it was evicted less than a budget's worth of evictions ago (it would have stayed
    /// resident with a little more room: the kernel's refault distance), else one.
    fn chances_for(&self, page: PageId) -> u8 {
        match self.table.evictions_since(page, self.ticks) {
            Some(distance) if distance as usize <= self.clock.frames() => clock::HOT,
            _ => 1,
        }
    }
}

/// Where an arena lies in the address space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    base: usize,
    len: usize,
}

impl Span {
    /// First address.
    pub fn base(&self) -> usize {
        self.base
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// One instance's pager. Lives at a stable address (boxed) for the fault handler.
pub(crate) struct Pager {
    /// The arena's address range.
    pub arena: Span,
    pub counters: Counters,
    backend: Box<dyn Backend>,
    /// The signal this pager's backend raises.
    signal: FaultSignal,
    budget: AtomicUsize,
    state: Mutex<State>,
    scratches: Scratches,
    /// Wakes the background evictor.
    wakeup: Wakeup,
    /// Advances whenever a page leaves a transient state; faults waiting for one sleep on it.
    settled: Epoch,
    /// Whether evictions move pages to spare slots now (see `spare.rs`).
    spare_gate: spare::SpareGate,
    /// Whether the CLOCK samples resident pages (see `sample.rs`).
    sampling: bool,
}

/// The pager lock taken from ordinary code with no fault in progress: signals blocked first,
/// released last; with a scratch for evictions.
struct Quiet<'a> {
    st: MutexGuard<'a, State>,
    scratch: MutexGuard<'a, Scratch>,
    _blocked: SignalsBlocked,
}

impl Pager {
    pub fn new(
        backend: Box<dyn Backend>,
        budget: usize,
        store: Box<dyn PageStore>,
        codec: &dyn Fn() -> Box<dyn Codec>,
        compress: bool,
    ) -> rustix::io::Result<Pager> {
        let arena = backend.arena();
        let pages = arena.pages();
        let arena = Span {
            base: arena.base(),
            len: arena.len(),
        };
        let signal = match backend.kind() {
            // The thread mode's handler thread reports its faults as userfaultfd's.
            BackendKind::Userfaultfd | BackendKind::UserfaultfdThread => FaultSignal::Userfault,
            BackendKind::Mprotect => FaultSignal::Protection,
        };
        let sampling = backend.revoked_pages_are_readable()
            && std::env::var_os(crate::SAMPLING_ENV).is_none_or(|v| v != "off");
        Ok(Pager {
            state: Mutex::new(State {
                table: Table::new(pages),
                clock: Clock::new(budget),
                store,
                compress,
                high_water: 0,
                in_flight: 0,
                readahead: readahead::Streams::default(),
                ticks: 0,
                pinned: 0,
            }),
            scratches: Scratches::new(page_size(), codec)?,
            arena,
            backend,
            signal,
            counters: Counters::default(),
            budget: AtomicUsize::new(budget),
            wakeup: Wakeup::default(),
            settled: Epoch::default(),
            spare_gate: spare::SpareGate::new(crate::sys::SpareMode::from_env()),
            sampling,
        })
    }

    /// Wake the background evictor now (to stop it, or after the budget changed).
    pub fn wake_evictor(&self) {
        self.wakeup.wake_now();
    }

    /// Kernel access: serve the backend's faults on this thread until `stop` is set and
    /// [`Pager::stop_fault_server`] called. Every signal must be blocked on this thread.
    pub fn serve_faults(&self, stop: &std::sync::atomic::AtomicBool) {
        self.backend
            .serve_faults(stop, &|page| self.fault(page, self.signal));
    }

    /// Make [`Pager::serve_faults`] return (after its `stop` flag was set).
    pub fn stop_fault_server(&self) {
        self.backend.stop_serving();
    }

    /// Which fault backend this pager uses.
    pub fn backend_kind(&self) -> BackendKind {
        self.backend.kind()
    }

    pub fn budget(&self) -> usize {
        self.budget.load(Relaxed)
    }

    /// Take the lock from ordinary code once no fault is in progress.
    fn lock_quiet(&self) -> Quiet<'_> {
        loop {
            let blocked = SignalsBlocked::new();
            let scratch = self.scratches.claim();
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.in_flight == 0 {
                return Quiet {
                    st,
                    scratch,
                    _blocked: blocked,
                };
            }
            drop(st);
            drop(scratch);
            drop(blocked);
            std::thread::yield_now();
        }
    }

    /// Change the budget of a live pager. Shrinking evicts the coldest unpinned pages first;
    /// resident pages keep their CLOCK order, reference bits and pins. A budget that would
    /// leave fewer than two unpinned frames is refused.
    pub fn set_budget(&self, budget: usize) -> Result<(), crate::Error> {
        let mut q = self.lock_quiet();
        let Quiet { st, scratch, .. } = &mut q;
        let st = &mut **st;
        if st.pinned > 0 && st.pinned + pin::MIN_UNPINNED > budget {
            return Err(crate::error::PinError::BudgetBelowPins {
                budget,
                pinned: st.pinned,
                min_unpinned: pin::MIN_UNPINNED,
            }
            .into());
        }
        while st.clock.resident() > budget {
            let table = &st.table;
            let (frame, victim) = st
                .clock
                .victim(|p| table.is_evictable(p), |_| false)
                .expect("with no fault in progress every unpinned page is evictable");
            self.evict_locked(st, &mut scratch.work, victim)?;
            st.clock.vacate(frame, false);
        }
        // The frames are numbered anew: their spare pages go.
        let frames = u32::try_from(st.clock.frames()).expect("budget fits in u32");
        self.backend
            .drop_spares(0, frames)
            .map_err(|e| crate::Error::Sys {
                op: "madvise(MADV_DONTNEED) of spare pages",
                source: std::io::Error::from(e),
            })?;
        let mut clock = Clock::new(budget);
        for from in st.clock.in_hand_order() {
            let page = st.clock.page(from);
            let (frame, _) = clock.take_free().expect("resident pages fit the new ring");
            clock.occupy_from(frame, &st.clock, from);
            let moved = st.table.get(page).in_frame(frame);
            st.table.set(page, moved);
        }
        st.clock = clock;
        self.publish_spares(st);
        self.budget.store(budget, Relaxed);
        Ok(())
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
            Entry::Free
            | Entry::Fresh
            | Entry::Resident { .. }
            | Entry::Clean { .. }
            | Entry::Restoring
            | Entry::Evicting => {}
        }
    }

    /// Mark the pages of a new allocation: the next touch gives a zero page.
    pub fn activate(&self, run: PageRun) {
        let _blocked = SignalsBlocked::new();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for page in run.pages() {
            debug_assert_eq!(st.table.get(page), Entry::Free);
            st.table.set(page, Entry::Fresh);
        }
        let end = run.first.index() + run.count as usize;
        st.high_water = st.high_water.max(end);
    }

    /// Move every stored page into `store` and make it the pager's store; choose whether data
    /// pages are compressed from now on. All or nothing: if any block cannot be moved, the new
    /// store is emptied and the old one stays in use.
    pub fn replace_store(
        &self,
        mut store: Box<dyn PageStore>,
        compress: bool,
    ) -> Result<(), Failure> {
        let mut q = self.lock_quiet();
        let Quiet { st, scratch, .. } = &mut q;
        let st = &mut **st;
        let buf = &mut scratch.work.out;
        let mut moved = Vec::new();
        for index in 0..st.high_water {
            let page = PageId(u32::try_from(index).expect("arena pages fit in u32"));
            // A clean page's kept block would stay behind in the old store.
            self.make_writable(st, page)?;
            let Entry::Stored { block, len, raw } = st.table.get(page) else {
                continue;
            };
            let copied = st
                .store
                .load(page, block, len as usize, buf)
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
            st.table.set(page, Entry::Stored { block, len, raw });
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
        if let Ok(mut st) = self.state.try_lock() {
            st.store.unlink();
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
        self.publish_spares(st);
    }

    /// Copy the count of spare pages to its statistic.
    fn publish_spares(&self, st: &State) {
        self.counters
            .spare_pages
            .store(st.clock.spares() as u64, Relaxed);
    }

    /// Release the pages of a freed allocation, resident or evicted: their RAM and stored data
    /// are freed and any later access is an ordinary fault that is not ours.
    pub fn release(&self, run: PageRun) -> Result<(), Failure> {
        // Only this run's pages must be out of faults' hands: faults elsewhere go on.
        let (_blocked, mut st) = loop {
            let blocked = SignalsBlocked::new();
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !run.pages().any(|p| st.table.get(p).is_transient()) {
                break (blocked, st);
            }
            let seen = self.settled.current();
            drop(st);
            drop(blocked);
            self.settled.wait(seen, std::time::Duration::from_millis(5));
        };
        let st = &mut *st;
        for page in run.pages() {
            if st.table.pins(page) > 0 {
                // The pins go with the memory (see `pin`).
                st.pinned -= 1;
            }
            let entry = st.table.get(page);
            match entry {
                Entry::Resident { frame } => {
                    st.clock.vacate(frame, false);
                    sub(&self.counters.resident_pages, 1);
                }
                Entry::Clean {
                    frame, block, len, ..
                } => {
                    st.clock.vacate(frame, false);
                    sub(&self.counters.resident_pages, 1);
                    st.store.remove(page, block, len as usize);
                }
                Entry::Stored { block, len, .. } => {
                    st.store.remove(page, block, len as usize);
                    self.count_evicted(entry, false);
                }
                Entry::Zero | Entry::Same(_) => self.count_evicted(entry, false),
                Entry::Free | Entry::Fresh => {}
                Entry::Restoring | Entry::Evicting => {
                    unreachable!("waited above until no page of the run is in a fault's hands")
                }
            }
            st.table.set(page, Entry::Free);
        }
        self.publish_store_stats(st);
        self.backend.release(run).map_err(failed("freeing pages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BlockRef;
    use crate::sys::FaultBackend;

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
    fn a_fault_without_a_free_frame_evicts_a_batch_whose_frames_the_next_faults_take() {
        let victims = super::restore::VICTIMS;
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            let (page, budget) = (page_size(), 16);
            let pager = test_pager(kind, 128, budget);
            let slot = crate::registry::register(&pager).unwrap();
            let base = pager.arena.base() as *mut u64;
            // Every other page, so that no victim has resident neighbours to take along.
            let touch = |p: usize| {
                // SAFETY: inside the activated pages; a touch of a page that is not resident
                // faults it in.
                unsafe { base.add(p * page / 8).write(p as u64 + 1) };
            };
            let evictions = || pager.counters.evictions.load(Relaxed);
            for p in 0..budget {
                touch(2 * p);
            }
            assert_eq!(evictions(), 0, "{kind:?}");
            touch(2 * budget);
            assert_eq!(
                evictions(),
                victims as u64,
                "{kind:?}: one fault evicts a batch"
            );
            for p in 1..victims {
                touch(2 * (budget + p));
            }
            assert_eq!(
                evictions(),
                victims as u64,
                "{kind:?}: the next faults took free frames"
            );
            touch(2 * (budget + victims));
            assert_eq!(evictions(), 2 * victims as u64, "{kind:?}");
            assert_eq!(
                pager.counters.resident_pages.load(Relaxed),
                (budget - victims + 1) as u64
            );
            for p in 0..=budget + victims {
                // SAFETY: as above; evicted pages come back with their contents.
                let value = unsafe { base.add(2 * p * page / 8).read() };
                assert_eq!(value, 2 * p as u64 + 1);
            }
            crate::registry::unregister(slot);
        }
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn only_victims_alone_in_their_batch_leave_spare_pages() {
        // Resident pages `layout`, then a fault on page 40 evicts a batch of 3: how many
        // spare pages are left.
        let spares_after = |layout: &[usize]| {
            let page = page_size();
            let mut pager = test_pager(FaultBackend::Userfaultfd, 64, layout.len());
            pager.spare_gate = spare::SpareGate::new(crate::sys::SpareMode::Always);
            if pager.backend.spare_slots() == 0 {
                return None;
            }
            let slot = crate::registry::register(&pager).unwrap();
            let base = pager.arena.base() as *mut u64;
            let touch = |p: usize| {
                // SAFETY: inside the activated pages; a touch of a page that is not resident
                // faults it in.
                unsafe { base.add(p * page / 8).write(p as u64 + 1) };
            };
            for &p in layout {
                touch(p);
            }
            touch(40);
            let spares = pager.counters.spare_pages.load(Relaxed);
            let resident = pager.counters.resident_pages.load(Relaxed);
            assert!(
                resident + spares <= layout.len() as u64,
                "{resident} + {spares}"
            );
            for p in layout.iter().copied().chain([40]) {
                // SAFETY: as above; evicted pages come back with their contents.
                assert_eq!(unsafe { base.add(p * page / 8).read() }, p as u64 + 1);
            }
            crate::registry::unregister(slot);
            Some(spares)
        };
        // Every other page: the three victims are alone; two frames are left free, each with
        // its victim's memory (the third frame's went to page 40).
        let Some(alone) = spares_after(&[0, 2, 4, 6, 8, 10, 12, 14]) else {
            println!("skipped: this kernel does not move pages (Linux 6.8+)");
            return;
        };
        assert_eq!(alone, 2);
        // Pairs, touched high page first (no stream): the batch is one run of three pages,
        // write-protected and freed, and leaves no spare page.
        assert_eq!(spares_after(&[1, 0, 3, 2, 5, 4, 7, 6]), Some(0));
    }

    /// A clean victim is never moved to a spare slot, even alone: it is freed without encoding
    /// anyway, and a clean page the kernel swapped out carries its write-protect bit along.
    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_clean_victim_alone_stays_for_the_write_protect_path() {
        let mut pager = test_pager(FaultBackend::Userfaultfd, 16, 8);
        pager.spare_gate = spare::SpareGate::new(crate::sys::SpareMode::Always);
        if pager.backend.spare_slots() == 0 {
            println!("skipped: this kernel does not move pages (Linux 6.8+)");
            return;
        }
        let slot = crate::registry::register(&pager).unwrap();
        let at = pager.arena.base() as *mut u64;
        // SAFETY: page 0 of the activated pages; the touch faults it in.
        unsafe { at.write(7) };
        let frame = pager
            .state
            .lock()
            .unwrap()
            .table
            .get(PageId(0))
            .frame()
            .unwrap();
        let kept = Entry::Stored {
            block: BlockRef(0),
            len: 1,
            raw: false,
        };
        let mut batch = [evict::Victim::new(PageId(0), frame, Some(kept))];
        pager.stash_victims(&mut batch).unwrap();
        assert!(!batch[0].stashed);
        let mut batch = [evict::Victim::new(PageId(0), frame, None)];
        pager.stash_victims(&mut batch).unwrap();
        assert!(batch[0].stashed, "the same victim, not clean, moves");
        let mut scratch = vec![0; page_size()];
        pager.unstash_victims(&batch, &mut scratch).unwrap();
        // SAFETY: as above; the page is back in place.
        assert_eq!(unsafe { at.read() }, 7);
        crate::registry::unregister(slot);
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_victim_takes_its_resident_neighbours_before_it_too() {
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            let page = page_size();
            let pager = test_pager(kind, 64, 8);
            let slot = crate::registry::register(&pager).unwrap();
            let base = pager.arena.base() as *mut u64;
            let touch = |p: usize| {
                // SAFETY: inside the activated pages; a touch of a page that is not resident
                // faults it in.
                unsafe { base.add(p * page / 8).write(p as u64 + 1) };
            };
            // Page 5 takes frame 0, pages 20 and 22 frames 1 and 2, pages 4 to 0 the rest: the
            // hand meets page 5 first, then pages 20 and 22, and page 6 is not resident, so
            // every neighbour of the first victim lies before it.
            for p in [5, 20, 22, 4, 3, 2, 1, 0] {
                touch(p);
            }
            assert_eq!(pager.counters.evictions.load(Relaxed), 0, "{kind:?}");
            touch(30);
            let resident = |p: u32| pager.state.lock().unwrap().table.is_resident(PageId(p));
            assert_eq!(
                pager.counters.evictions.load(Relaxed),
                super::restore::VICTIMS as u64,
                "{kind:?}: a fault out of any stream evicts a batch and no more"
            );
            assert!(
                (3..=5).all(|p| !resident(p)) && resident(20) && resident(22),
                "{kind:?}: page 5 went with pages 4 and 3, one run, not with the next victims"
            );
            for p in [0, 1, 2, 3, 4, 5, 20, 22, 30] {
                // SAFETY: as above; evicted pages come back with their contents.
                let value = unsafe { base.add(p * page / 8).read() };
                assert_eq!(value, p as u64 + 1, "{kind:?}: page {p}");
            }
            crate::registry::unregister(slot);
        }
    }

    /// A pager of `pages` pages on `kind` with `budget` frames, registered with the handler.
    fn test_pager(kind: FaultBackend, pages: usize, budget: usize) -> Pager {
        crate::registry::install_fault_handler().unwrap();
        let page = page_size();
        let pager = Pager::new(
            crate::sys::open_backend(Some(kind), pages * page).unwrap(),
            budget,
            Box::new(crate::store::MemoryStore::new(page)),
            &|| Box::new(crate::codec::Lz4::new()),
            true,
        )
        .unwrap();
        pager.activate(PageRun {
            first: PageId(0),
            count: u32::try_from(pages).unwrap(),
        });
        pager
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn readahead_takes_only_free_frames_and_never_evicts() {
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            let pager = test_pager(kind, 64, 16);
            let slot = crate::registry::register(&pager).unwrap();
            let words = page_size() / 8;
            let base = pager.arena.base() as *mut u64;
            let write = |p: usize| {
                // SAFETY: inside the activated pages; a touch of a page that is not resident
                // faults it in.
                unsafe { base.add(p * words).write(p as u64 + 7) }
            };
            let read = |p: usize| {
                // SAFETY: as above.
                unsafe { base.add(p * words).read() }
            };
            let counter = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
            let c = &pager.counters;
            // Backwards, so that no fault continues a stream: pages 16..32 are evicted now.
            for p in (0..32).rev() {
                write(p);
            }
            assert_eq!(counter(&c.readahead_pages), 0, "{kind:?}");
            let resident =
                |c: &crate::stats::Counters| usize::try_from(counter(&c.resident_pages)).unwrap();
            // Two free frames: page 16's fault starts a stream, page 17's continues it and
            // takes the other frame; nothing is left to read ahead.
            pager.set_budget(resident(c) + 2).unwrap();
            let evictions = counter(&c.evictions);
            assert_eq!(read(16), 23, "{kind:?}");
            assert_eq!(read(17), 24, "{kind:?}");
            assert_eq!(counter(&c.readahead_pages), 0, "{kind:?}");
            // Three more free frames: page 18 continues the stream (window 8) and brings in
            // pages 19 and 20, into the two frames its own fault left; nothing is evicted.
            let budget = resident(c) + 3;
            pager.set_budget(budget).unwrap();
            assert_eq!(read(18), 25, "{kind:?}");
            assert_eq!(counter(&c.readahead_pages), 2, "{kind:?}");
            assert_eq!(
                counter(&c.evictions),
                evictions,
                "{kind:?}: readahead evicted"
            );
            assert_eq!(resident(c), budget, "{kind:?}");
            let faults = counter(&c.faults);
            assert_eq!((read(19), read(20)), (26, 27), "{kind:?}");
            assert_eq!(
                counter(&c.faults),
                faults,
                "{kind:?}: pages read ahead fault again"
            );
            crate::registry::unregister(slot);
        }
    }

    /// A page that faults again soon after its eviction (its refault distance is within the
    /// budget) gets more chances in the CLOCK, and outlives pages that came in after it; a
    /// page whose refault distance is longer gets one.
    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_page_that_comes_back_soon_after_its_eviction_stays_longer() {
        let budget = 32;
        let pager = test_pager(FaultBackend::Userfaultfd, 1024, budget);
        let slot = crate::registry::register(&pager).unwrap();
        let words = page_size() / 8;
        let base = pager.arena.base() as *mut u64;
        // Every other page, so that no fault continues a stream or finds neighbours to evict.
        let touch = |p: usize| {
            // SAFETY: inside the activated pages; a touch of a page that is not resident
            // faults it in.
            unsafe { base.add(2 * p * words).write(p as u64) };
        };
        let resident = |p: usize| {
            let page = PageId(u32::try_from(2 * p).unwrap());
            pager.state.lock().unwrap().table.is_resident(page)
        };
        let chances = |p: usize| {
            let page = PageId(u32::try_from(2 * p).unwrap());
            let st = pager.state.lock().unwrap();
            st.clock
                .in_hand_order()
                .find(|&f| st.clock.page(f) == page)
                .map(|f| st.clock.chances(f))
        };
        // Page 0 comes in, then enough others to evict it.
        let mut next = 1;
        touch(0);
        while resident(0) {
            touch(next);
            next += 1;
        }
        // Back within a budget's worth of evictions: hot.
        touch(0);
        assert_eq!(chances(0), Some(clock::HOT));
        let (hot_from, evictions) = (next, pager.counters.evictions.load(Relaxed));
        for _ in 0..budget + budget / 2 {
            touch(next);
            next += 1;
        }
        assert!(pager.counters.evictions.load(Relaxed) - evictions >= budget as u64);
        assert!(resident(0), "the hot page went with the pages after it");
        assert!(
            !resident(hot_from),
            "a page that came in after it left first"
        );
        // A page evicted long ago comes back with one chance.
        let cold = 1;
        assert!(!resident(cold));
        for _ in 0..4 * budget {
            touch(next);
            next += 1;
        }
        touch(cold);
        assert_eq!(chances(cold), Some(1));
        crate::registry::unregister(slot);
    }

    /// The pages whose entries are `Clean`, with their kept blocks.
    fn clean_pages(pager: &Pager, pages: usize) -> Vec<(PageId, BlockRef)> {
        let st = pager.state.lock().unwrap();
        (0..pages)
            .map(|p| PageId(u32::try_from(p).unwrap()))
            .filter_map(|p| match st.table.get(p) {
                Entry::Clean { block, .. } => Some((p, block)),
                _ => None,
            })
            .collect()
    }

    /// The evicted-page gauges agree with the table: pages evicted, and their compressed bytes.
    fn check_gauges(pager: &Pager, pages: usize) {
        let st = pager.state.lock().unwrap();
        let (mut evicted, mut bytes, mut resident) = (0u64, 0u64, 0u64);
        for p in 0..pages {
            match st.table.get(PageId(u32::try_from(p).unwrap())) {
                Entry::Stored { len, .. } => {
                    evicted += 1;
                    bytes += u64::from(len);
                }
                Entry::Zero | Entry::Same(_) => evicted += 1,
                Entry::Resident { .. } | Entry::Clean { .. } => resident += 1,
                _ => {}
            }
        }
        let c = &pager.counters;
        assert_eq!(c.evicted_pages.load(Relaxed), evicted, "evicted_pages");
        assert_eq!(c.compressed_bytes.load(Relaxed), bytes, "compressed_bytes");
        assert_eq!(c.resident_pages.load(Relaxed), resident, "resident_pages");
    }

    /// Readahead brings pages in clean; evicting one again frees its memory and keeps the same
    /// block (nothing encoded), and its data survives. On the mprotect backend, where a
    /// revoked page cannot be read, no page is clean.
    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_clean_page_evicted_again_keeps_its_block_and_its_data() {
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            let pages = 256;
            let pager = test_pager(kind, pages, 32);
            let slot = crate::registry::register(&pager).unwrap();
            let words = page_size() / 8;
            let base = pager.arena.base() as *mut u64;
            // Compressible: runs of 16 equal words, different on every page.
            let value = |i: usize| (i / 16) as u64 * 0x9e37_79b9 + 11;
            for i in 0..pages * words {
                // SAFETY: inside the activated pages.
                unsafe { base.add(i).write(value(i)) };
            }
            let read = |p: usize| {
                for i in p * words..(p + 1) * words {
                    // SAFETY: as above.
                    let got = unsafe { base.add(i).read() };
                    assert_eq!(got, value(i), "{kind:?}: word {i}");
                }
            };
            for p in 0..64 {
                read(p);
            }
            let clean = clean_pages(&pager, pages);
            check_gauges(&pager, pages);
            if kind == FaultBackend::Mprotect {
                assert!(clean.is_empty(), "revoked pages are not readable there");
                crate::registry::unregister(slot);
                continue;
            }
            assert!(clean.len() >= 16, "{} clean pages", clean.len());
            let evictions = pager.counters.evictions.load(Relaxed);
            // Evict them again by reading elsewhere.
            for p in 128..224 {
                read(p);
            }
            assert!(pager.counters.evictions.load(Relaxed) > evictions);
            let st = pager.state.lock().unwrap();
            let mut reevicted = 0;
            for &(p, block) in &clean {
                if let Entry::Stored { block: now, .. } = st.table.get(p) {
                    assert_eq!(now, block, "page {p:?} was stored again");
                    reevicted += 1;
                }
            }
            drop(st);
            assert!(reevicted >= 16, "{reevicted} clean pages evicted again");
            check_gauges(&pager, pages);
            for p in 0..pages {
                read(p);
            }
            check_gauges(&pager, pages);
            crate::registry::unregister(slot);
        }
    }

    /// A store to a clean page faults once, makes the page `Resident` (its kept block goes),
    /// and is kept through the next eviction; a pin makes a clean page `Resident` too.
    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_store_to_a_clean_page_makes_it_writable_and_is_not_lost() {
        let pages = 256;
        let pager = test_pager(FaultBackend::Userfaultfd, pages, 32);
        let slot = crate::registry::register(&pager).unwrap();
        let words = page_size() / 8;
        let base = pager.arena.base() as *mut u64;
        for p in 0..pages {
            // SAFETY: inside the activated pages.
            unsafe { base.add(p * words).write(p as u64) };
        }
        for p in 0..64 {
            // SAFETY: as above.
            assert_eq!(unsafe { base.add(p * words).read() }, p as u64);
        }
        let clean = clean_pages(&pager, pages);
        assert!(clean.len() >= 16, "{} clean pages", clean.len());
        let (pinned, written) = (clean[0].0, &clean[1..]);
        pager.pin(PageRun::one(pinned)).unwrap();
        {
            let st = pager.state.lock().unwrap();
            assert!(matches!(st.table.get(pinned), Entry::Resident { .. }));
            assert_eq!(st.table.pins(pinned), 1);
        }
        pager.unpin(PageRun::one(pinned)).unwrap();
        let faults = pager.counters.faults.load(Relaxed);
        let reserved = pager.counters.store_reserved_bytes.load(Relaxed);
        for &(p, _) in written {
            // SAFETY: as above; the store faults (the page is revoked) and then goes through.
            unsafe { base.add(p.index() * words + 1).write(1000 + u64::from(p.0)) };
        }
        assert_eq!(
            pager.counters.faults.load(Relaxed) - faults,
            written.len() as u64,
            "one fault per clean page stored to"
        );
        {
            let st = pager.state.lock().unwrap();
            for &(p, _) in written {
                assert!(matches!(st.table.get(p), Entry::Resident { .. }), "{p:?}");
            }
        }
        assert!(
            pager.counters.store_reserved_bytes.load(Relaxed) <= reserved,
            "the kept blocks went"
        );
        check_gauges(&pager, pages);
        // Evict everything, then read it all back.
        for p in 128..pages {
            // SAFETY: as above.
            assert_eq!(unsafe { base.add(p * words).read() }, p as u64);
        }
        for &(p, _) in written {
            // SAFETY: as above.
            let got = unsafe { base.add(p.index() * words + 1).read() };
            assert_eq!(got, 1000 + u64::from(p.0), "{p:?}");
        }
        for p in 0..pages {
            // SAFETY: as above.
            assert_eq!(unsafe { base.add(p * words).read() }, p as u64);
        }
        check_gauges(&pager, pages);
        crate::registry::unregister(slot);
    }

    /// One thread scans (its loads leave clean pages) while another stores to the same pages:
    /// every store is kept, whether it meets a clean page, one being evicted, or one evicted.
    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn stores_racing_a_scan_over_clean_pages_are_not_lost() {
        let pages = 512;
        let pager = test_pager(FaultBackend::Userfaultfd, pages, 48);
        let slot = crate::registry::register(&pager).unwrap();
        let words = page_size() / 8;
        let base = pager.arena.base();
        let word = move |p: usize, w: usize| (base as *mut u64).wrapping_add(p * words + w);
        for p in 0..pages {
            // SAFETY: inside the activated pages.
            unsafe { word(p, 0).write(p as u64) };
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut last = vec![0u64; pages];
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    for p in 0..pages {
                        // SAFETY: as above; word 0 is never written by the other thread.
                        assert_eq!(unsafe { word(p, 0).read_volatile() }, p as u64);
                    }
                }
            });
            let mut x = 0x2545_f491_4f6c_dd1du64;
            for round in 1..=20_000u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let p = usize::try_from(x % pages as u64).unwrap();
                // SAFETY: as above; word 1 is this thread's alone.
                unsafe { word(p, 1).write_volatile(round) };
                last[p] = round;
            }
            stop.store(true, Relaxed);
        });
        for (p, &expected) in last.iter().enumerate() {
            // SAFETY: as above.
            assert_eq!(unsafe { word(p, 1).read() }, expected, "page {p}");
        }
        assert!(pager.counters.readahead_pages.load(Relaxed) > 0);
        check_gauges(&pager, pages);
        crate::registry::unregister(slot);
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_sequential_scan_is_read_ahead_and_loses_nothing() {
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            let pages = 512;
            let pager = test_pager(kind, pages, 32);
            let slot = crate::registry::register(&pager).unwrap();
            let words = page_size() / 8;
            let base = pager.arena.base() as *mut u64;
            for i in 0..pages * words {
                // SAFETY: inside the activated pages.
                unsafe { base.add(i).write(i as u64 * 31 + 5) };
            }
            let c = &pager.counters;
            let (faults, restores, ahead) = (
                c.faults.load(Relaxed),
                c.restores.load(Relaxed),
                c.readahead_pages.load(Relaxed),
            );
            for i in 0..pages * words {
                // SAFETY: as above.
                let v = unsafe { base.add(i).read() };
                assert_eq!(v, i as u64 * 31 + 5, "{kind:?}: word {i}");
                assert!(
                    c.resident_pages.load(Relaxed) <= 32,
                    "{kind:?}: over budget"
                );
            }
            let scan_faults = c.faults.load(Relaxed) - faults;
            let ahead = c.readahead_pages.load(Relaxed) - ahead;
            assert!(
                ahead > pages as u64 / 2,
                "{kind:?}: {ahead} pages read ahead"
            );
            assert_eq!(
                c.restores.load(Relaxed) - restores,
                scan_faults + ahead,
                "{kind:?}"
            );
            // A fault that continues the stream evicts room for its window too: without that,
            // readahead found only the few frames the last batch left free (about 5 pages a
            // fault here).
            assert!(
                scan_faults < pages as u64 / 12,
                "{kind:?}: {scan_faults} faults"
            );
            crate::registry::unregister(slot);
        }
    }

    #[test]
    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_failed_eviction_leaves_the_page_resident_and_accessible() {
        for kind in [FaultBackend::Mprotect, FaultBackend::Userfaultfd] {
            a_failed_eviction_leaves_the_page_resident_on(kind);
        }
    }

    #[allow(
        unsafe_code,
        reason = "the test touches ghost pages through raw pointers"
    )]
    fn a_failed_eviction_leaves_the_page_resident_on(kind: FaultBackend) {
        crate::registry::install_fault_handler().unwrap();
        let page = page_size();
        let pager = Pager::new(
            crate::sys::open_backend(Some(kind), 16 * page).unwrap(),
            4,
            Box::new(Full),
            &|| Box::new(crate::codec::Lz4::new()),
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
