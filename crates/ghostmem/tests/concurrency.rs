//! Concurrent faults, shared restores, many allocations, several instances, collections.

mod common;

use std::sync::Barrier;

use allocator_api2::boxed::Box as GBox;
use allocator_api2::vec::Vec as GVec;
use ghostmem::{GhostMem, page_size};

/// Threads fault on their own pages, all at once, under a budget smaller than their working
/// sets together: every thread completes and finds its data.
#[test]
fn threads_faulting_on_their_own_pages_all_complete() {
    const THREADS: usize = 4;
    const PAGES_EACH: usize = 12;
    const ROUNDS: u64 = 4;
    let page = page_size();
    let ghost = common::instance(4);
    let size = PAGES_EACH * page;
    let regions: Vec<usize> = (0..THREADS)
        .map(|_| common::alloc(&ghost, size) as usize)
        .collect();
    std::thread::scope(|scope| {
        for (t, &addr) in regions.iter().enumerate() {
            let ghost = &ghost;
            scope.spawn(move || {
                let p = addr as *mut u8;
                for round in 0..ROUNDS {
                    let seed = (t as u64) << 32 | round;
                    for i in 0..PAGES_EACH {
                        // SAFETY: page `i` of this thread's live allocation.
                        unsafe { common::fill(p.add(i * page), page, seed + i as u64) };
                        common::assert_within_budget(&ghost.stats(), "while filling");
                    }
                    for i in 0..PAGES_EACH {
                        // SAFETY: as above.
                        unsafe {
                            common::assert_pattern(
                                p.add(i * page),
                                page,
                                seed + i as u64,
                                &format!("thread {t}, round {round}, page {i}"),
                            )
                        };
                    }
                }
            });
        }
    });
    let s = ghost.stats();
    let total = (THREADS * PAGES_EACH) as u64;
    assert!(
        s.evictions >= total * ROUNDS,
        "{total} pages written {ROUNDS} times under a budget of 4 but only {} evictions: {s:?}",
        s.evictions
    );
    assert_eq!(
        s.first_touches, total,
        "each page is first touched once: {s:?}"
    );
    assert!(s.restores > 0, "{s:?}");
    common::assert_within_budget(&s, "at the end");
    for addr in regions {
        // SAFETY: live allocations of `size` bytes.
        unsafe { common::free(&ghost, addr as *mut u8, size) };
    }
}

/// Several threads touch the same evicted page at the same moment: it is restored exactly once.
#[test]
fn simultaneous_touches_of_an_evicted_page_restore_it_once() {
    const READERS: usize = 4;
    const OTHER_PAGES: usize = 8;
    const ITERATIONS: usize = 20;
    const OTHER_BYTE: u8 = 0x3C;
    let page = page_size();
    let ghost = common::instance(3);
    let target = common::alloc(&ghost, page);
    // SAFETY: a live one-page allocation. The pattern is neither zero nor same-filled, so when
    // this page is evicted it is the only one counted in compressed/incompressible pages.
    unsafe { common::fill(target, page, 42) };
    let others = common::alloc(&ghost, OTHER_PAGES * page);
    for i in 0..OTHER_PAGES {
        // SAFETY: page `i` of the live allocation `others`; one page per call so that no
        // other page is ever evicted half-written.
        unsafe { std::ptr::write_bytes(others.add(i * page), OTHER_BYTE, page) };
    }
    let target_evicted = |ghost: &GhostMem| {
        let s = ghost.stats();
        s.compressed_pages + s.incompressible_pages == 1
    };
    let mut next_other = 0;
    for iteration in 0..ITERATIONS {
        // Evict the target with the main thread alone touching the other pages.
        let mut touches = 0;
        while !target_evicted(&ghost) {
            // SAFETY: a page of `others`.
            unsafe { others.add(next_other * page).write_volatile(OTHER_BYTE) };
            next_other = (next_other + 1) % OTHER_PAGES;
            touches += 1;
            assert!(
                touches <= 4 * OTHER_PAGES,
                "iteration {iteration}: the target page was not evicted after {touches} touches \
                 of other pages under a budget of 3: {:?}",
                ghost.stats()
            );
        }
        let before = ghost.stats();
        let barrier = Barrier::new(READERS);
        let addr = target as usize;
        let results: Vec<Option<usize>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..READERS)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let p = addr as *const u8;
                        barrier.wait();
                        // SAFETY: the live one-page allocation `target`.
                        let first = unsafe { p.read_volatile() };
                        std::hint::black_box(first);
                        // SAFETY: as above.
                        unsafe { common::first_mismatch(p, page, 42) }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let after = ghost.stats();
        for (r, mismatch) in results.iter().enumerate() {
            assert_eq!(
                *mismatch, None,
                "iteration {iteration}: reader {r} saw wrong contents in the restored page"
            );
        }
        assert_eq!(
            after.restores - before.restores,
            1,
            "iteration {iteration}: {READERS} threads touching one evicted page restored it {} \
             times; before {before:?}, after {after:?}",
            after.restores - before.restores
        );
        assert_eq!(
            after.first_touches, before.first_touches,
            "iteration {iteration}"
        );
        // A fault evicts the CLOCK victim, with its unreferenced resident neighbours as one
        // run: never more than the budget (3) holds.
        assert!(
            after.evictions - before.evictions <= 3,
            "iteration {iteration}: restoring one page evicted {} pages",
            after.evictions - before.evictions
        );
        let faults = after.faults - before.faults;
        assert!(
            (1..=READERS as u64).contains(&faults),
            "iteration {iteration}: {faults} faults for {READERS} readers of one page"
        );
        assert!(
            !target_evicted(&ghost),
            "iteration {iteration}: target still evicted"
        );
        common::assert_within_budget(&after, "after the readers");
    }
    // SAFETY: live allocations, not used afterwards.
    unsafe {
        common::free(&ghost, target, page);
        common::free(&ghost, others, OTHER_PAGES * page);
    }
}

/// One million 32-byte allocations pack into slabs: about 32 MB of address space, all of it
/// given back when they are freed.
#[test]
fn a_million_small_allocations_pack_densely() {
    const COUNT: usize = 1_000_000;
    const SIZE: usize = 32;
    const MAGIC: u64 = 0x6768_6f73_746d_656d;
    let ghost = common::instance(64);
    let mut ptrs: Vec<usize> = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let p = common::alloc(&ghost, SIZE);
        assert_eq!(
            p as usize % 16,
            0,
            "allocation {i} at {p:p} is not 16-aligned"
        );
        let words = [
            i as u64,
            !(i as u64),
            (i as u64).wrapping_mul(0x9E37_79B9),
            MAGIC,
        ];
        // SAFETY: `p` is a fresh 16-aligned allocation of 32 bytes = 4 u64.
        unsafe { p.cast::<[u64; 4]>().write(words) };
        ptrs.push(p as usize);
    }
    let s = ghost.stats();
    let bytes = s.allocated_pages * page_size() as u64;
    eprintln!(
        "{COUNT} x {SIZE} bytes: {} pages = {bytes} bytes; {s:?}",
        s.allocated_pages
    );
    assert_eq!(s.live_allocations, COUNT as u64, "{s:?}");
    assert_eq!(s.live_bytes, (COUNT * SIZE) as u64, "{s:?}");
    assert!(
        (30_000_000..=34_000_000).contains(&bytes),
        "{COUNT} allocations of {SIZE} bytes use {bytes} bytes of address space: {s:?}"
    );
    common::assert_within_budget(&s, "after allocating");
    for (i, &p) in ptrs.iter().enumerate() {
        // SAFETY: live allocation written above.
        let words = unsafe { (p as *const [u64; 4]).read() };
        let expected = [
            i as u64,
            !(i as u64),
            (i as u64).wrapping_mul(0x9E37_79B9),
            MAGIC,
        ];
        assert_eq!(words, expected, "allocation {i} at {p:#x}");
    }
    for p in ptrs {
        // SAFETY: live allocations of 32 bytes, not used afterwards.
        unsafe { common::free(&ghost, p as *mut u8, SIZE) };
    }
    let s = ghost.stats();
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.live_bytes, 0, "{s:?}");
    assert_eq!(
        s.allocated_pages, 0,
        "freeing everything must release every slab page: {s:?}"
    );
    assert_eq!(s.resident_pages, 0, "{s:?}");
    assert_eq!(s.evicted_pages, 0, "{s:?}");
    assert_eq!(s.invalid_frees, 0, "{s:?}");
}

/// Independent instances in one process, used at the same time, each keep to their own budget
/// and their own data.
#[test]
fn independent_instances_keep_their_own_budgets_and_data() {
    const PAGES: usize = 16;
    const ROUNDS: u64 = 3;
    let page = page_size();
    let budgets = [2usize, 3, 7];
    let instances: Vec<GhostMem> = budgets.iter().map(|&b| common::instance(b)).collect();
    let regions: Vec<usize> = instances
        .iter()
        .map(|g| common::alloc(g, PAGES * page) as usize)
        .collect();
    for (a, g) in instances.iter().enumerate() {
        for (b, &r) in regions.iter().enumerate() {
            assert_eq!(
                g.contains(r as *const u8),
                a == b,
                "instance {a} contains({r:#x}) (region of instance {b})"
            );
        }
    }
    std::thread::scope(|scope| {
        for (n, (g, &addr)) in instances.iter().zip(&regions).enumerate() {
            scope.spawn(move || {
                let p = addr as *mut u8;
                for round in 0..ROUNDS {
                    let seed = (n as u64) << 40 | round << 20;
                    for i in 0..PAGES {
                        // SAFETY: page `i` of this instance's live region.
                        unsafe { common::fill(p.add(i * page), page, seed + i as u64) };
                        let s = g.stats();
                        assert_eq!(s.budget_pages, budgets[n] as u64);
                        common::assert_within_budget(&s, &format!("instance {n}"));
                    }
                    for i in 0..PAGES {
                        // SAFETY: as above.
                        unsafe {
                            common::assert_pattern(
                                p.add(i * page),
                                page,
                                seed + i as u64,
                                &format!("instance {n}, round {round}, page {i}"),
                            )
                        };
                    }
                }
            });
        }
    });
    for (n, g) in instances.iter().enumerate() {
        let s = g.stats();
        assert!(
            s.evictions >= (PAGES - budgets[n]) as u64 * ROUNDS,
            "instance {n}: {s:?}"
        );
        assert_eq!(s.first_touches, PAGES as u64, "instance {n}: {s:?}");
        assert_eq!(s.live_allocations, 1, "instance {n}: {s:?}");
        // SAFETY: the instance's live region.
        unsafe { common::free(g, regions[n] as *mut u8, PAGES * page) };
    }
}

/// `allocator_api2` collections in an instance with a budget of 4 pages hold ~4 MB correctly.
#[test]
fn allocator_api2_collections_hold_megabytes_under_a_tiny_budget() {
    let ghost = common::instance(4);
    const N: usize = 512 * 1024; // 4 MiB of u64
    let mut big: GVec<u64, &GhostMem> = GVec::new_in(&ghost);
    for i in 0..N as u64 {
        big.push(i ^ (i << 21));
    }
    let boxed = GBox::new_in([0xA5A5_5A5A_u64; 256], &ghost);
    let mut small: GVec<GBox<[u64; 4], &GhostMem>, &GhostMem> = GVec::new_in(&ghost);
    for i in 0..2000u64 {
        small.push(GBox::new_in([i, i + 1, i + 2, !i], &ghost));
    }
    let s = ghost.stats();
    assert_eq!(
        s.live_allocations,
        2000 + 3,
        "2000 boxes, 2 vectors and a box: {s:?}"
    );
    common::assert_within_budget(&s, "collections");
    assert!(s.evictions > 1000, "4 MiB under 4 pages: {s:?}");
    for (i, &x) in big.iter().enumerate() {
        let i = i as u64;
        assert_eq!(x, i ^ (i << 21), "big[{i}]");
    }
    assert!(boxed.iter().all(|&x| x == 0xA5A5_5A5A), "boxed array");
    for (i, b) in small.iter().enumerate() {
        let i = i as u64;
        assert_eq!(**b, [i, i + 1, i + 2, !i], "small[{i}]");
    }
    drop(small);
    drop(boxed);
    drop(big);
    let s = ghost.stats();
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
    assert_eq!(s.invalid_frees, 0, "{s:?}");
}
