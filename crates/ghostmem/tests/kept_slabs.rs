//! The heap keeps one empty slab per size class for the class's next allocation: a program
//! that allocates and frees one block at a time does not release a slab and fault a fresh page
//! in for every block. Only one per class is kept, and none once the heap holds no allocation.

mod common;

use ghostmem::{FreeError, page_size};

/// A class of half a page: one-page slabs of two slots.
const HALF_PAGE: usize = 2048;

#[test]
fn allocating_and_freeing_one_block_at_a_time_faults_once() {
    let g = common::instance(8);
    // Another class's block keeps the heap from being empty.
    let anchor = g.alloc_raw(1000).unwrap();
    let first = g.alloc_raw(100).unwrap().as_ptr();
    // SAFETY: (whole test) every pointer is a live block of the size written, freed once.
    unsafe {
        first.write_bytes(1, 100);
        let before = g.stats();
        g.free_raw(first, 100).unwrap();
        assert_eq!(
            g.stats().allocated_pages,
            before.allocated_pages,
            "the emptied slab is kept"
        );
        for round in 0..1000u32 {
            let p = g.alloc_raw(100).unwrap().as_ptr();
            assert_eq!(p, first, "round {round}: the kept slab's first slot");
            p.write_bytes(u8::try_from(round % 251).unwrap(), 100);
            g.free_raw(p, 100).unwrap();
        }
        let after = g.stats();
        assert_eq!(
            (after.faults, after.first_touches, after.allocated_pages),
            (before.faults, before.first_touches, before.allocated_pages),
            "1000 blocks, one at a time, in the page the first one faulted in"
        );
        assert!(
            matches!(g.free_raw(first, 100), Err(FreeError::DoubleFree(_))),
            "a slot of the kept slab is free"
        );
        g.free_raw(anchor.as_ptr(), 1000).unwrap();
    }
    let s = g.stats();
    assert_eq!(
        (s.allocated_pages, s.live_allocations, s.invalid_frees),
        (0, 0, 1),
        "the last free gives the kept slabs back: {s:?}"
    );
}

#[test]
fn a_class_keeps_one_empty_slab_at_most() {
    let g = common::instance(8);
    let anchor = g.alloc_raw(1000).unwrap();
    let with_anchor = g.stats().allocated_pages;
    let blocks: Vec<*mut u8> = (0..6)
        .map(|_| g.alloc_raw(HALF_PAGE).unwrap().as_ptr())
        .collect();
    assert_eq!(
        g.stats().allocated_pages,
        with_anchor + 3,
        "three one-page slabs of two slots"
    );
    // SAFETY: (whole block) each pointer is a live block of HALF_PAGE bytes, freed once.
    unsafe {
        for &p in &blocks {
            p.write_bytes(7, HALF_PAGE);
        }
        for &p in &blocks {
            g.free_raw(p, HALF_PAGE).unwrap();
        }
        assert_eq!(
            g.stats().allocated_pages,
            with_anchor + 1,
            "two slabs released, one kept"
        );
        // The kept slab serves the next two blocks; a third takes a new slab.
        let again: Vec<*mut u8> = (0..3)
            .map(|_| g.alloc_raw(HALF_PAGE).unwrap().as_ptr())
            .collect();
        assert_eq!(again[1] as usize - again[0] as usize, HALF_PAGE, "one slab");
        assert_eq!(again[0] as usize % page_size(), 0);
        assert_eq!(g.stats().allocated_pages, with_anchor + 2);
        for p in again {
            g.free_raw(p, HALF_PAGE).unwrap();
        }
        assert_eq!(g.stats().allocated_pages, with_anchor + 1);
        g.free_raw(anchor.as_ptr(), 1000).unwrap();
    }
    let s = g.stats();
    assert_eq!((s.allocated_pages, s.live_allocations), (0, 0), "{s:?}");
}
