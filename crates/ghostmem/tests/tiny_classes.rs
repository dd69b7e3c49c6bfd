//! The size classes below 16 bytes: a request that carries its alignment (Rust's `Layout`,
//! the `Allocator` impl) takes the class that fits it, aligned as asked; malloc-shaped calls
//! keep their 16 bytes. Contents survive eviction like any other slot's.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::Allocator;
use ghostmem::page_size;

#[test]
fn small_types_take_small_slots_aligned_as_asked() {
    let g = common::instance(8);
    // (size, align, slot the request must take)
    for (size, align, slot) in [
        (1, 1, 1),
        (3, 1, 3),
        (5, 1, 6),
        (5, 4, 8),
        (12, 4, 12),
        (17, 4, 20),
        (33, 8, 40),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        let a = g.allocate(layout).unwrap().cast::<u8>();
        let b = g.allocate(layout).unwrap().cast::<u8>();
        assert_eq!(g.usable_size(a.as_ptr()), slot, "{size} bytes at {align}");
        assert_eq!(a.as_ptr() as usize % align, 0);
        assert_eq!(b.as_ptr() as usize % align, 0);
        assert_eq!(
            (b.as_ptr() as usize).abs_diff(a.as_ptr() as usize),
            slot,
            "neighbouring slots of one slab"
        );
        // SAFETY: both were allocated just above with `layout`.
        unsafe {
            g.deallocate(a, layout);
            g.deallocate(b, layout);
        }
    }
    let p = g.alloc_raw(3).unwrap();
    assert_eq!(
        g.usable_size(p.as_ptr()),
        16,
        "malloc-shaped: 16-byte aligned"
    );
    // SAFETY: allocated just above with size 3.
    unsafe { g.free_raw(p.as_ptr(), 3).unwrap() };
    assert_eq!(g.stats().allocated_pages, 0);
}

#[test]
fn three_byte_slots_keep_their_contents_through_eviction() {
    // Budget of 4 pages; 20,000 three-byte blocks span 15 pages of 3-page slabs.
    let g = common::instance(4);
    let layout = Layout::from_size_align(3, 1).unwrap();
    let n: usize = 20_000;
    let blocks: Vec<NonNull<u8>> = (0..n)
        .map(|_| g.allocate(layout).unwrap().cast::<u8>())
        .collect();
    let byte = |i: usize, k: usize| u8::try_from((i * 7 + k * 131 + 1) % 256).unwrap();
    // SAFETY: (whole block) each block is a live 3-byte allocation, written and read within
    // its size, then freed once.
    unsafe {
        for (i, b) in blocks.iter().enumerate() {
            for k in 0..3 {
                b.as_ptr().add(k).write(byte(i, k));
            }
        }
        let pages = g.stats().allocated_pages;
        assert_eq!(
            pages,
            ((n * 3).div_ceil(3 * page_size()) * 3) as u64,
            "3-page slabs, no gaps"
        );
        assert!(g.stats().evictions > 0, "the slabs did not fit the budget");
        for (i, b) in blocks.iter().enumerate() {
            for k in 0..3 {
                assert_eq!(b.as_ptr().add(k).read(), byte(i, k), "block {i} byte {k}");
            }
        }
        for b in blocks {
            g.deallocate(b, layout);
        }
    }
    assert_eq!(g.stats().allocated_pages, 0);
    assert_eq!(g.stats().live_bytes, 0);
}
