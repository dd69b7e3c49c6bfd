//! The malloc-shaped Rust API (`realloc`, `release`, `usable_size`, `alloc_zeroed`) and the
//! `Allocator` impl's `grow`/`shrink`: in place whenever the size class allows, contents kept,
//! bad pointers refused and counted without changing anything.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use allocator_api2::alloc::Allocator;
use ghostmem::{Error, FreeError, page_size};

#[test]
fn realloc_in_place_within_a_class_and_for_page_runs() {
    let g = common::instance(8);
    let page = page_size();
    let p = common::alloc(&g, 700);
    assert_eq!(g.usable_size(p), 768);
    // SAFETY: (whole block) live blocks, used within their sizes; the model follows the
    // returned pointers.
    unsafe {
        common::fill(p, 700, 1);
        assert_eq!(g.realloc(p, 768).unwrap().as_ptr(), p);
        assert_eq!(g.realloc(p, 641).unwrap().as_ptr(), p);
        let moved = g.realloc(p, 769).unwrap().as_ptr();
        assert_ne!(moved, p);
        assert_eq!(g.usable_size(p), 0);
        common::assert_pattern(moved, 641, 1, "moved slot");
        g.release(moved).unwrap();

        let run = common::alloc(&g, 2 * page);
        common::fill(run, 2 * page, 2);
        assert_eq!(g.realloc(run, 9 * page + 1).unwrap().as_ptr(), run);
        assert_eq!(g.usable_size(run), 10 * page);
        assert_eq!(g.stats().allocated_pages, 10);
        common::assert_zero(run.add(2 * page), 8 * page, "pages a run grew into");
        // 4 pages + 5 bytes: a class of whole pages (or above 64 KiB), still a run.
        assert_eq!(g.realloc(run, 4 * page + 5).unwrap().as_ptr(), run);
        assert_eq!(g.stats().allocated_pages, 5);
        common::assert_pattern(run, 2 * page, 2, "shrunk run");
        // Shrinking into a slab class moves (and gives the pages back).
        let small = g.realloc(run, 100).unwrap().as_ptr();
        assert_ne!(small, run);
        common::assert_pattern(small, 100, 2, "run moved to a slot");
        g.release(small).unwrap();
        assert!(matches!(
            g.realloc(std::ptr::null_mut(), 0),
            Err(Error::ZeroSize)
        ));
        let fresh = g.realloc(std::ptr::null_mut(), 10).unwrap().as_ptr();
        assert!(matches!(g.realloc(fresh, 0), Err(Error::ZeroSize)));
        assert_eq!(
            g.usable_size(fresh),
            16,
            "a refused realloc keeps the block"
        );
        g.release(fresh).unwrap();
    }
    let s = g.stats();
    assert_eq!(
        (
            s.live_allocations,
            s.live_bytes,
            s.allocated_pages,
            s.invalid_frees
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn bad_pointers_are_refused_by_release_realloc_and_usable_size() {
    let g = common::instance(2);
    let mut local = [0u8; 16];
    let foreign = local.as_mut_ptr();
    let keep = common::alloc(&g, 300);
    let gone = common::alloc(&g, 300);
    // SAFETY: (whole block) `keep` is live and used within its size; the bad pointers are
    // what is being tested and must be refused without being touched.
    unsafe {
        common::fill(keep, 300, 9);
        g.release(gone).unwrap();
        let interior = keep.add(32);
        let cases = [
            (foreign, FreeError::Foreign(foreign as usize)),
            (interior, FreeError::NotAllocated(interior as usize)),
            (gone, FreeError::DoubleFree(gone as usize)),
        ];
        for (n, (p, expected)) in cases.into_iter().enumerate() {
            assert_eq!(g.release(p), Err(expected));
            match g.realloc(p, 40) {
                Err(Error::InvalidPointer(e)) => assert_eq!(e, expected),
                other => panic!("realloc({p:p}) = {other:?}"),
            }
            assert_eq!(g.usable_size(p), 0);
            assert_eq!(g.stats().invalid_frees, 2 * (n as u64 + 1));
        }
        assert_eq!(g.release(std::ptr::null_mut()), Ok(()));
        assert!(local.iter().all(|&b| b == 0));
        common::assert_pattern(keep, 300, 9, "neighbour of refused frees");
        let a = common::alloc(&g, 300);
        let b = common::alloc(&g, 300);
        assert!(
            a != b && a != keep && b != keep,
            "the double free was not taken"
        );
        for p in [keep, a, b] {
            g.release(p).unwrap();
        }
    }
    assert_eq!(g.stats().live_allocations, 0);
}

#[test]
fn alloc_zeroed_clears_reused_slots() {
    let g = common::instance(4);
    let p = common::alloc(&g, 200);
    // SAFETY: (whole block) live blocks used within their sizes.
    unsafe {
        p.write_bytes(0xee, 200);
        g.release(p).unwrap();
        let z = g.alloc_zeroed(200).unwrap().as_ptr();
        assert_eq!(z, p);
        common::assert_zero(z, 200, "alloc_zeroed");
        g.release(z).unwrap();
    }
    assert!(matches!(g.alloc_zeroed(0), Err(Error::ZeroSize)));
}

#[test]
fn allocator_grow_and_shrink_do_not_move_when_the_class_allows() {
    let g = common::instance(8);
    let page = page_size();
    let l = |size| Layout::from_size_align(size, 8).unwrap();
    let a = g.allocate(l(1100)).unwrap().cast::<u8>();
    // SAFETY: (whole block) blocks of `g` with the layouts they were made with.
    unsafe {
        common::fill(a.as_ptr(), 1100, 3);
        let b = g.grow(a, l(1100), l(1280)).unwrap().cast::<u8>();
        assert_eq!(b, a, "1100 and 1280 share the 1280 class");
        let c = g.shrink(b, l(1280), l(1025)).unwrap().cast::<u8>();
        assert_eq!(c, a);
        common::assert_pattern(c.as_ptr(), 1025, 3, "shrunk in place");
        // grow_zeroed in place clears what an earlier, larger use left in the slot.
        let d = g.grow_zeroed(c, l(1025), l(1200)).unwrap().cast::<u8>();
        assert_eq!(d, a);
        common::assert_pattern(d.as_ptr(), 1025, 3, "grown in place");
        common::assert_zero(d.as_ptr().add(1025), 175, "grow_zeroed tail");
        g.deallocate(d, l(1200));

        let r = g.allocate(l(6 * page)).unwrap().cast::<u8>();
        common::fill(r.as_ptr(), 6 * page, 4);
        let r2 = g
            .shrink(r, l(6 * page), l(4 * page + 8))
            .unwrap()
            .cast::<u8>();
        assert_eq!(r2, r);
        let r3 = g
            .grow_zeroed(r2, l(4 * page + 8), l(9 * page))
            .unwrap()
            .cast::<u8>();
        assert_eq!(r3, r, "the pages after the run are free");
        common::assert_pattern(r3.as_ptr(), 4 * page + 8, 4, "run grown in place");
        common::assert_zero(r3.as_ptr().add(4 * page + 8), 5 * page - 8, "zeroed growth");
        let gone = g.shrink(r3, l(9 * page), l(0)).unwrap();
        assert_eq!(gone.len(), 0);
        // Over-aligned growth keeps the alignment.
        let big = Layout::from_size_align(256, 256).unwrap();
        let o = g.allocate(big).unwrap().cast::<u8>();
        let grown = Layout::from_size_align(2000, 256).unwrap();
        let o2 = g.grow(o, big, grown).unwrap().cast::<u8>();
        assert_eq!(o2.as_ptr() as usize % 256, 0);
        g.deallocate(o2, grown);
        // A pointer that is not a block is refused.
        let mut local = [0u8; 64];
        let bad = NonNull::new(local.as_mut_ptr()).unwrap();
        assert!(g.grow(bad, l(8), l(64)).is_err());
    }
    let s = g.stats();
    assert_eq!(
        (s.live_allocations, s.allocated_pages, s.invalid_frees),
        (0, 0, 1),
        "{s:?}"
    );
}

#[test]
fn vec_growth_through_the_allocator_keeps_contents() {
    let g = common::instance(4);
    let mut v: allocator_api2::vec::Vec<u64, &ghostmem::GhostMem> =
        allocator_api2::vec::Vec::new_in(&g);
    for i in 0..200_000u64 {
        v.push(i * 3);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v.iter().sum::<u64>(), 3 * 45);
    drop(v);
    assert_eq!(g.stats().live_allocations, 0);
}

#[test]
fn a_run_resized_within_its_pages_stays_put_even_when_boxed_in() {
    let g = common::instance(8);
    let page = page_size();
    let run = common::alloc(&g, 2 * page);
    // The pages after the run are taken: it cannot grow, but it need not.
    let next = common::alloc(&g, page);
    // SAFETY: (whole block) live blocks, used within their sizes; `run` stays live at the
    // same address, as asserted.
    unsafe {
        common::fill(run, 2 * page, 3);
        // Nothing to give back or take: the pager is not asked (it would log an error for an
        // empty run).
        let errors = Arc::new(ErrorCount::default());
        tracing::subscriber::with_default(errors.clone(), || {
            assert_eq!(g.realloc(run, 2 * page - 100).unwrap().as_ptr(), run);
            assert_eq!(g.realloc(run, 2 * page).unwrap().as_ptr(), run);
        });
        assert_eq!(errors.0.load(Relaxed), 0, "errors logged");
        assert_eq!(g.usable_size(run), 2 * page);
        common::assert_pattern(run, 2 * page, 3, "a run resized in place");
        g.release(run).unwrap();
        g.release(next).unwrap();
    }
}

/// A `tracing` subscriber that counts the error events logged under it.
#[derive(Default)]
struct ErrorCount(AtomicUsize);

impl tracing::Subscriber for ErrorCount {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_run_may_take_the_whole_arena_and_no_more() {
    let page = page_size();
    let g = common::instance_with_space(4, 32 * page);
    let all = common::alloc(&g, 32 * page);
    assert!(g.alloc_raw(16).is_err(), "nothing is left");
    // SAFETY: `all` is a live allocation of 32 pages, not used afterwards.
    unsafe { common::free(&g, all, 32 * page) };
    assert!(matches!(
        g.alloc_raw(32 * page + 1),
        Err(Error::TooLarge { .. })
    ));
    let again = common::alloc(&g, 32 * page);
    assert_eq!(again, all, "the freed arena is whole again");
    // SAFETY: as above.
    unsafe { common::free(&g, again, 32 * page) };
}

#[test]
fn absurd_sizes_leave_a_run_where_it_was() {
    let page = page_size();
    let g = common::instance_with_space(4, 32 * page);
    let run = common::alloc(&g, 2 * page);
    // SAFETY: (whole block) `run` is a live allocation of 2 pages; a refused `realloc`
    // changes nothing, so it stays live until the `free` at the end.
    unsafe {
        common::fill(run, 2 * page, 3);
        for size in [32 * page + 1, usize::MAX / 2, usize::MAX - page] {
            let r = g.realloc(run, size);
            assert!(
                matches!(
                    r,
                    Err(Error::TooLarge { .. } | Error::OutOfAddressSpace { .. })
                ),
                "realloc to {size}: {r:?}"
            );
        }
        common::assert_pattern(run, 2 * page, 3, "the run after refused reallocs");
        assert_eq!(g.usable_size(run), 2 * page);
        common::free(&g, run, 2 * page);
    }
}
