//! Invalid frees, absurd sizes and invalid configurations are refused with an error, counted,
//! and change nothing.

// Test data deliberately truncates counters into bytes and words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use std::alloc::Layout;

use allocator_api2::alloc::Allocator;
use ghostmem::{Config, ConfigError, Error, FreeError, GhostMem, page_size};

/// Check that `ptr` still holds `seed`'s pattern over `len` bytes, can be rewritten, and then
/// free it for real.
///
/// # Safety
/// `ptr` must be a live allocation of `len` bytes from `ghost`, not used afterwards.
unsafe fn still_usable_then_free(ghost: &GhostMem, ptr: *mut u8, len: usize, seed: u64) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        common::assert_pattern(ptr, len, seed, "allocation after a refused free");
        common::fill(ptr, len, seed + 1);
        common::assert_pattern(
            ptr,
            len,
            seed + 1,
            "allocation rewritten after a refused free",
        );
        common::free(ghost, ptr, len);
    }
}

/// A fresh instance whose allocations are under constant eviction (budget 2).
fn ghost() -> GhostMem {
    common::instance(2)
}

// --- double free ---------------------------------------------------------------------------

#[test]
fn double_free_small_is_refused_and_counted() {
    let ghost = ghost();
    let keep = common::alloc(&ghost, 100);
    let victim = common::alloc(&ghost, 100);
    // SAFETY: both are live allocations of 100 bytes.
    unsafe {
        common::fill(keep, 100, 1);
        common::fill(victim, 100, 2);
    }
    // SAFETY: `victim` is live; it is not read after this.
    unsafe { common::free(&ghost, victim, 100) };
    let before = ghost.stats();
    // SAFETY: deliberately invalid; the engine must detect it.
    let r = unsafe { ghost.free_raw(victim, 100) };
    assert_eq!(r, Err(FreeError::DoubleFree(victim as usize)));
    let after = ghost.stats();
    assert_eq!(after.invalid_frees, before.invalid_frees + 1, "{after:?}");
    assert_eq!(after.live_allocations, 1, "{after:?}");
    // The refused free changed nothing: two new allocations of the class are distinct, and the
    // neighbour on the same slab page is intact.
    let a = common::alloc(&ghost, 100);
    let b = common::alloc(&ghost, 100);
    assert_ne!(a, b, "the double free put the slot on the free list twice");
    assert_ne!(a, keep);
    assert_ne!(b, keep);
    // SAFETY: `a` and `b` are live allocations of 100 bytes.
    unsafe {
        common::fill(a, 100, 3);
        common::fill(b, 100, 4);
        common::assert_pattern(a, 100, 3, "a");
        still_usable_then_free(&ghost, keep, 100, 1);
        still_usable_then_free(&ghost, b, 100, 4);
        still_usable_then_free(&ghost, a, 100, 3);
    }
    assert_eq!(ghost.stats().live_allocations, 0);
}

#[test]
fn double_free_of_a_lone_small_allocation_is_refused() {
    // The only allocation on its slab page: freeing it releases the page. The second free must
    // still be refused (as a double free or as "not allocated").
    let ghost = ghost();
    let p = common::alloc(&ghost, 48);
    // SAFETY: `p` is a live allocation of 48 bytes, not used afterwards.
    unsafe { common::free(&ghost, p, 48) };
    // SAFETY: deliberately invalid.
    let r = unsafe { ghost.free_raw(p, 48) };
    assert!(
        matches!(r, Err(FreeError::DoubleFree(a) | FreeError::NotAllocated(a)) if a == p as usize),
        "second free of a released slab slot: {r:?}"
    );
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, 1, "{s:?}");
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
}

#[test]
fn double_free_large_is_refused_and_counted() {
    let page = page_size();
    let ghost = ghost();
    let size = 3 * page;
    let p = common::alloc(&ghost, size);
    // SAFETY: `p` is a live allocation of `size` bytes, not used after the free.
    unsafe {
        common::fill(p, size, 5);
        common::free(&ghost, p, size);
    }
    // SAFETY: deliberately invalid.
    let r = unsafe { ghost.free_raw(p, size) };
    assert_eq!(r, Err(FreeError::DoubleFree(p as usize)));
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, 1, "{s:?}");
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
    // The run is free exactly once: two new allocations of the same size do not overlap.
    let a = common::alloc(&ghost, size);
    let b = common::alloc(&ghost, size);
    assert!(
        a as usize + size <= b as usize || b as usize + size <= a as usize,
        "overlapping allocations {a:p} and {b:p} of {size} bytes after a refused double free"
    );
    // SAFETY: live allocations of `size` bytes; fresh page runs read as zero.
    unsafe {
        common::assert_zero(a, size, "fresh run a");
        common::assert_zero(b, size, "fresh run b");
        common::fill(a, size, 6);
        common::fill(b, size, 7);
        still_usable_then_free(&ghost, a, size, 6);
        still_usable_then_free(&ghost, b, size, 7);
    }
}

// --- foreign and interior pointers -----------------------------------------------------------

#[test]
fn pointer_from_the_system_allocator_is_foreign() {
    let ghost = ghost();
    let mut boxed = Box::new([0x5Au8; 64]);
    let addr = boxed.as_mut_ptr();
    assert!(!ghost.contains(addr));
    // SAFETY: deliberately invalid: the engine must refuse without touching the memory.
    let r = unsafe { ghost.free_raw(addr, 64) };
    assert_eq!(r, Err(FreeError::Foreign(addr as usize)));
    assert_eq!(ghost.stats().invalid_frees, 1);
    assert!(
        boxed.iter().all(|&b| b == 0x5A),
        "the foreign memory was modified"
    );
    boxed[0] = 1; // still ours, still writable
    drop(boxed);
}

#[test]
fn pointer_from_another_instance_is_foreign() {
    let page = page_size();
    let a = ghost();
    let b = ghost();
    for size in [64, 3 * page] {
        let p = common::alloc(&b, size);
        // SAFETY: `p` is a live allocation of `size` bytes from `b`.
        unsafe { common::fill(p, size, 8) };
        assert!(b.contains(p));
        assert!(
            !a.contains(p),
            "instance a claims instance b's pointer {p:p}"
        );
        // SAFETY: deliberately invalid for `a`.
        let r = unsafe { a.free_raw(p, size) };
        assert_eq!(r, Err(FreeError::Foreign(p as usize)), "size {size}");
        // SAFETY: still a live allocation of `b`.
        unsafe { still_usable_then_free(&b, p, size, 8) };
    }
    assert_eq!(a.stats().invalid_frees, 2);
    assert_eq!(b.stats().invalid_frees, 0);
    assert_eq!(b.stats().live_allocations, 0);
}

#[test]
fn interior_pointers_are_refused() {
    let page = page_size();
    let ghost = ghost();
    let large = 2 * page;
    let p = common::alloc(&ghost, large);
    let q = common::alloc(&ghost, 64);
    // SAFETY: live allocations.
    unsafe {
        common::fill(p, large, 9);
        common::fill(q, 64, 10);
    }
    let cases = [
        (p.wrapping_add(16), large),
        (p.wrapping_add(page), large),
        (p.wrapping_add(page), page),
        (q.wrapping_add(8), 64),
        (q.wrapping_add(8), 56),
    ];
    for (n, &(ptr, size)) in cases.iter().enumerate() {
        // SAFETY: deliberately invalid.
        let r = unsafe { ghost.free_raw(ptr, size) };
        assert_eq!(
            r,
            Err(FreeError::NotAllocated(ptr as usize)),
            "case {n}: {ptr:p}, {size}"
        );
    }
    // Inside the arena, never allocated.
    let far = p.wrapping_add(64 * page);
    assert!(ghost.contains(far));
    // SAFETY: deliberately invalid.
    let r = unsafe { ghost.free_raw(far, page) };
    assert_eq!(
        r,
        Err(FreeError::NotAllocated(far as usize)),
        "never-allocated page"
    );
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, cases.len() as u64 + 1, "{s:?}");
    assert_eq!(s.live_allocations, 2, "{s:?}");
    // SAFETY: both still live.
    unsafe {
        still_usable_then_free(&ghost, p, large, 9);
        still_usable_then_free(&ghost, q, 64, 10);
    }
}

// --- wrong sizes -----------------------------------------------------------------------------

#[test]
fn wrong_size_small_is_refused_but_same_class_is_accepted() {
    let ghost = ghost();
    let p = common::alloc(&ghost, 32);
    // SAFETY: live allocation of 32 bytes.
    unsafe { common::fill(p, 32, 11) };
    // SAFETY: deliberately invalid: 100 bytes is class 112, not 32.
    let r = unsafe { ghost.free_raw(p, 100) };
    assert_eq!(
        r,
        Err(FreeError::SizeMismatch {
            ptr: p as usize,
            allocated: 32,
            given: 100
        })
    );
    // SAFETY: deliberately invalid: 0 bytes is no size class.
    let r = unsafe { ghost.free_raw(p, 0) };
    assert!(
        matches!(r, Err(FreeError::SizeMismatch { ptr, .. }) if ptr == p as usize),
        "free with size 0: {r:?}"
    );
    assert_eq!(ghost.stats().invalid_frees, 2);
    assert_eq!(ghost.stats().live_allocations, 1);
    // SAFETY: still live.
    unsafe { common::assert_pattern(p, 32, 11, "after refused frees") };
    // SAFETY: 30 bytes is in the same class (32) as the allocation: accepted.
    let r = unsafe { ghost.free_raw(p, 30) };
    assert_eq!(r, Ok(()), "a size in the same class must be accepted");
    assert_eq!(ghost.stats().live_allocations, 0);

    // 100 bytes (class 112) freed as 112 and as 97 are both fine.
    for given in [112, 97] {
        let p = common::alloc(&ghost, 100);
        // SAFETY: live allocation freed with a size of its class.
        assert_eq!(unsafe { ghost.free_raw(p, given) }, Ok(()), "given {given}");
    }
    assert_eq!(ghost.stats().invalid_frees, 2);
}

#[test]
fn wrong_size_large_is_refused() {
    let page = page_size();
    let ghost = ghost();
    let size = 2 * page; // 8192 with 4 KiB pages
    let p = common::alloc(&ghost, size);
    // SAFETY: live allocation of `size` bytes.
    unsafe { common::fill(p, size, 12) };
    for given in [3 * page, size - 1, size + 1, page, 64] {
        // SAFETY: deliberately invalid sizes.
        let r = unsafe { ghost.free_raw(p, given) };
        assert_eq!(
            r,
            Err(FreeError::SizeMismatch {
                ptr: p as usize,
                allocated: size,
                given
            }),
            "given {given}"
        );
    }
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, 5, "{s:?}");
    assert_eq!(s.live_allocations, 1, "{s:?}");
    // SAFETY: still live.
    unsafe { still_usable_then_free(&ghost, p, size, 12) };
}

// --- null, zero and absurd sizes -------------------------------------------------------------

#[test]
fn null_free_is_a_no_op() {
    let ghost = ghost();
    for size in [0, 1, 64, 1 << 20] {
        // SAFETY: null is explicitly allowed and does nothing.
        let r = unsafe { ghost.free_raw(std::ptr::null_mut(), size) };
        assert_eq!(r, Ok(()), "size {size}");
    }
    assert_eq!(ghost.stats().invalid_frees, 0);
}

#[test]
fn zero_size_allocation_is_an_error() {
    let ghost = ghost();
    assert!(matches!(ghost.alloc_raw(0), Err(Error::ZeroSize)));
    let s = ghost.stats();
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
}

#[test]
fn absurd_sizes_are_errors_not_panics() {
    let space = 1 << 20;
    let ghost = common::instance_with_space(2, space);
    for size in [
        usize::MAX,
        usize::MAX - page_size() + 2,
        usize::MAX / 2,
        usize::MAX / 2 + 1,
        isize::MAX as usize,
        1 << 48,
        space + 1,
        2 * space,
    ] {
        let r = ghost.alloc_raw(size);
        assert!(
            matches!(
                r,
                Err(Error::TooLarge { .. } | Error::OutOfAddressSpace { .. })
            ),
            "alloc_raw({size}) with {space} bytes of address space: {r:?}"
        );
    }
    let s = ghost.stats();
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
    // The instance is still fine.
    let p = common::alloc(&ghost, 3 * page_size());
    // SAFETY: live allocation, freed at the end.
    unsafe {
        common::fill(p, 3 * page_size(), 13);
        still_usable_then_free(&ghost, p, 3 * page_size(), 13);
    }
}

#[test]
fn alignments_above_a_gibibyte_are_too_large() {
    let ghost = common::instance_with_space(2, 1 << 20);
    let r = ghost.alloc_aligned(16, 2 << 30);
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    // 1 GiB is the largest alignment: tried, though 1 MiB of address space almost never
    // holds such an address.
    match ghost.alloc_aligned(16, 1 << 30) {
        Ok(p) => {
            assert_eq!(p.as_ptr() as usize % (1 << 30), 0);
            // SAFETY: the live allocation just made, with this size and alignment.
            unsafe { ghost.free_aligned(p.as_ptr(), 16, 1 << 30) }.unwrap();
        }
        Err(e) => assert!(matches!(e, Error::OutOfAddressSpace { .. }), "{e:?}"),
    }
}

#[test]
fn exhausting_the_address_space_is_an_error_and_recoverable() {
    let page = page_size();
    let pages = 64;
    let ghost = common::instance_with_space(2, pages * page);
    let chunk = 4 * page;
    let mut live = Vec::new();
    let err = loop {
        match ghost.alloc_raw(chunk) {
            Ok(p) => live.push(p.as_ptr()),
            Err(e) => break e,
        }
        assert!(
            live.len() <= pages / 4,
            "{} allocations of 4 pages from {pages} pages of address space",
            live.len()
        );
    };
    assert!(
        matches!(err, Error::OutOfAddressSpace { .. }),
        "expected OutOfAddressSpace, got {err:?}"
    );
    assert!(
        live.len() >= pages / 8,
        "only {} runs of 4 pages fit in {pages} pages",
        live.len()
    );
    // Free one run: the same request succeeds again.
    let freed = live.pop().unwrap();
    // SAFETY: a live allocation of `chunk` bytes, not used afterwards.
    unsafe { common::free(&ghost, freed, chunk) };
    let again = common::alloc(&ghost, chunk);
    // SAFETY: fresh allocation.
    unsafe { common::assert_zero(again, chunk, "reused run") };
    live.push(again);
    for p in live {
        // SAFETY: live allocations of `chunk` bytes.
        unsafe { common::free(&ghost, p, chunk) };
    }
    assert_eq!(ghost.stats().allocated_pages, 0);
    assert_eq!(ghost.stats().invalid_frees, 0);
}

// --- Allocator API ---------------------------------------------------------------------------

#[test]
fn allocator_api_zero_size_layouts_work() {
    let ghost = ghost();
    for align in [1, 8, 16, 4096] {
        let layout = Layout::from_size_align(0, align).unwrap();
        let block = ghost.allocate(layout).expect("zero-size allocate");
        let ptr = block.cast::<u8>();
        assert_eq!(ptr.as_ptr() as usize % align, 0, "align {align}");
        // SAFETY: `block` came from this allocator with `layout`.
        unsafe { ghost.deallocate(ptr, layout) };
    }
    let mut v: allocator_api2::vec::Vec<u64, &GhostMem> = allocator_api2::vec::Vec::new_in(&ghost);
    assert!(v.is_empty());
    v.shrink_to_fit();
    drop(v);
    let unit = allocator_api2::boxed::Box::new_in((), &ghost);
    drop(unit);
    let s = ghost.stats();
    assert_eq!(
        s.invalid_frees, 0,
        "zero-size deallocations were counted as invalid: {s:?}"
    );
    assert_eq!(s.live_allocations, 0, "{s:?}");
}

#[test]
fn allocator_api_honours_alignment() {
    // Arenas of odd sizes start at addresses that are only page-aligned (large ones tend to be
    // placed at highly aligned addresses), so an alignment computed relative to the arena
    // instead of the address space shows up.
    let page = page_size();
    for space in [
        1 << 30,
        (16 << 20) + page,
        (16 << 20) + 5 * page,
        (16 << 20) + 9 * page,
    ] {
        allocator_api_honours_alignment_in(&common::instance_with_space(2, space));
    }
}

fn allocator_api_honours_alignment_in(ghost: &GhostMem) {
    let mut blocks = Vec::new();
    for align_log in 0..=16 {
        let align = 1usize << align_log;
        for size in [1, 8, 24, 48, 100, 1000, 2048, 2049, 5000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = ghost
                .allocate(layout)
                .unwrap_or_else(|e| panic!("allocate(size {size}, align {align}): {e:?}"));
            let p = block.cast::<u8>().as_ptr();
            assert!(
                block.len() >= size,
                "size {size}, align {align}: block of {}",
                block.len()
            );
            assert_eq!(p as usize % align, 0, "size {size}, align {align}: {p:p}");
            let seed = (size * 31 + align) as u64;
            // SAFETY: `p` points to at least `size` bytes of fresh memory.
            unsafe { common::fill(p, size, seed) };
            blocks.push((p, layout, seed));
        }
    }
    for &(p, layout, seed) in &blocks {
        // SAFETY: `p` holds `layout.size()` bytes written above.
        unsafe { common::assert_pattern(p, layout.size(), seed, "aligned block") };
    }
    for (p, layout, _) in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { ghost.deallocate(std::ptr::NonNull::new(p).unwrap(), layout) };
    }
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, 0, "{s:?}");
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
}

#[test]
fn allocator_api_grow_and_shrink_keep_contents() {
    let ghost = ghost();
    let mut v: allocator_api2::vec::Vec<u32, &GhostMem> = allocator_api2::vec::Vec::new_in(&ghost);
    for i in 0..20_000u32 {
        v.push(i.wrapping_mul(2_654_435_761));
    }
    v.truncate(100);
    v.shrink_to_fit();
    for (i, &x) in v.iter().enumerate() {
        assert_eq!(x, (i as u32).wrapping_mul(2_654_435_761), "element {i}");
    }
    drop(v);
    let s = ghost.stats();
    assert_eq!(s.invalid_frees, 0, "{s:?}");
    assert_eq!(s.live_allocations, 0, "{s:?}");
}

#[test]
fn allocator_api_impossible_layout_is_an_error() {
    let ghost = common::instance_with_space(2, 1 << 20);
    let layout = Layout::from_size_align(2 << 20, 8).unwrap();
    assert!(ghost.allocate(layout).is_err());
    let layout = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
    assert!(ghost.allocate(layout).is_err());
    assert_eq!(ghost.stats().live_allocations, 0);
}

// --- invalid configurations ------------------------------------------------------------------

#[test]
fn invalid_configurations_are_refused() {
    let page = page_size();
    assert_eq!(
        Config::builder().max_memory_pages(1).build().unwrap_err(),
        ConfigError::BudgetTooSmall { pages: 1, min: 2 }
    );
    assert_eq!(
        Config::builder()
            .max_memory_pages(0)
            .build()
            .unwrap()
            .max_memory_pages(),
        ghostmem::DEFAULT_MAX_MEMORY_PAGES
    );
    assert_eq!(
        Config::builder()
            .max_memory_pages(2)
            .build()
            .unwrap()
            .max_memory_pages(),
        ghostmem::MIN_MAX_MEMORY_PAGES
    );
    assert!(
        Config::builder().use_disk_backing(true).build().is_ok(),
        "disk backing with the default path is a valid configuration"
    );
    assert_eq!(
        Config::builder()
            .use_disk_backing(true)
            .disk_file_path("")
            .build()
            .unwrap_err(),
        ConfigError::EmptyDiskPath
    );
    assert_eq!(
        Config::builder()
            .encrypt_disk_pages(true)
            .build()
            .unwrap_err(),
        ConfigError::EncryptionWithoutDisk
    );
    for bytes in [0, 1, page - 1, usize::MAX] {
        let err = Config::builder().address_space(bytes).build().unwrap_err();
        assert!(
            matches!(err, ConfigError::AddressSpace { bytes: b, .. } if b == bytes),
            "address_space({bytes}): {err:?}"
        );
    }
    // The boundaries that are valid.
    let c = Config::builder().address_space(page).build().unwrap();
    assert_eq!(c.address_space(), page);
    let c = Config::builder().address_space(page + 1).build().unwrap();
    assert_eq!(c.address_space(), 2 * page, "rounded up to whole pages");
    // An instance with the smallest address space works.
    let ghost = GhostMem::new(Config::builder().address_space(page).build().unwrap()).unwrap();
    let p = common::alloc(&ghost, 16);
    // SAFETY: live allocation of 16 bytes, freed by the helper.
    unsafe {
        common::fill(p, 16, 14);
        still_usable_then_free(&ghost, p, 16, 14);
    }
    assert!(
        ghost.alloc_raw(2 * page).is_err(),
        "two pages from a one-page reservation"
    );
}

#[test]
fn aligned_allocations_share_pages_and_check_their_alignment() {
    let ghost = GhostMem::new(Config::builder().max_memory_pages(4).build().unwrap()).unwrap();
    let mut blocks = Vec::new();
    for align in [32usize, 64, 128, 256] {
        for _ in 0..8 {
            let p = ghost.alloc_aligned(40, align).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0, "aligned to {align}");
            blocks.push((p, align));
        }
    }
    assert!(
        ghost.stats().allocated_pages <= 4,
        "32 small over-aligned blocks share pages: {:?}",
        ghost.stats()
    );
    let big = ghost.alloc_aligned(10_000, 1 << 16).unwrap();
    assert_eq!(big.as_ptr() as usize % (1 << 16), 0);
    assert!(matches!(
        ghost.alloc_aligned(8, 48),
        Err(ghostmem::Error::BadAlignment(48))
    ));
    assert!(matches!(
        ghost.alloc_aligned(0, 64),
        Err(ghostmem::Error::ZeroSize)
    ));
    // SAFETY: freed with the size and alignment used above, and never used again.
    unsafe {
        for (p, align) in blocks {
            ghost.free_aligned(p.as_ptr(), 40, align).unwrap();
        }
        ghost.free_aligned(big.as_ptr(), 10_000, 1 << 16).unwrap();
    }
    assert_eq!(ghost.stats().allocated_pages, 0);
}
