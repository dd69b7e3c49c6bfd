//! The malloc-shaped calls (`ghostmem_malloc`, `_calloc`, `_realloc`, `_release`,
//! `_usable_size`), called from Rust as C would call them: contents under eviction, resizing in
//! place, and the "Bad input" cases of issue 7 (refused, counted, warned about, nothing changed).

use std::ffi::{CStr, c_void};
use std::ptr;

use ghostmem_capi::*;

fn last_error() -> String {
    let p = ghostmem_last_error();
    assert!(!p.is_null(), "a failing call sets the last error");
    // SAFETY: non-null pointers from ghostmem_last_error are live C strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The status a refusal message names (the engine's wording, as `ghostmem_status_str` has it).
fn status_of(message: &str) -> &'static str {
    if message.contains("double free") {
        "double free"
    } else if message.contains("not the start of an allocation") {
        "not the start of an allocation"
    } else if message.contains("was not allocated by this instance") {
        "foreign pointer"
    } else {
        "?"
    }
}

fn instance(pages: usize) -> *mut ghostmem_t {
    let mut c = std::mem::MaybeUninit::<ghostmem_config_t>::uninit();
    // SAFETY: `c` is valid for writes; config_init fills every field; the config is valid.
    let gm = unsafe {
        ghostmem_config_init(c.as_mut_ptr());
        let mut c = c.assume_init();
        c.max_memory_pages = pages;
        ghostmem_new(&c)
    };
    assert!(!gm.is_null());
    gm
}

fn stats(gm: *mut ghostmem_t) -> ghostmem_stats_t {
    let mut s = ghostmem_stats_t::default();
    // SAFETY: live handle; `s` is valid for its size.
    let status = unsafe { ghostmem_get_stats(gm, &mut s, size_of::<ghostmem_stats_t>()) };
    assert_eq!(status, GHOSTMEM_OK);
    s
}

fn byte(seed: usize, i: usize) -> u8 {
    u8::try_from(seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) % 251).expect("< 251")
}

/// # Safety
/// `p` is valid for writing `len` bytes.
unsafe fn fill(p: *mut c_void, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: inside the block (caller).
        unsafe { p.cast::<u8>().add(i).write(byte(seed, i)) };
    }
}

/// # Safety
/// `p` is valid for reading `len` bytes.
unsafe fn check(p: *const c_void, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: inside the block (caller).
        let b = unsafe { p.cast::<u8>().add(i).read() };
        assert_eq!(b, byte(seed, i), "byte {i} of {p:p} ({len} bytes)");
    }
}

#[test]
fn malloc_realloc_release_keep_contents_under_eviction() {
    let gm = instance(3);
    let page = ghostmem_page_size();
    let sizes = [
        1,
        15,
        16,
        17,
        100,
        1000,
        2049,
        4097,
        3 * page,
        20_000,
        70_000,
    ];
    let mut blocks: Vec<(*mut c_void, usize)> = Vec::new();
    // SAFETY: (whole block) live handle; every block is used within its size and released
    // once.
    unsafe {
        for (seed, &size) in sizes.iter().enumerate() {
            let p = ghostmem_malloc(gm, size);
            assert!(!p.is_null() && p as usize % 16 == 0, "malloc({size})");
            assert!(ghostmem_usable_size(gm, p) >= size);
            fill(p, size, seed);
            blocks.push((p, size));
        }
        // Grow every block, then shrink it, checking what it held.
        for (seed, (p, size)) in blocks.iter_mut().enumerate() {
            check(*p, *size, seed);
            let grown = *size * 3 + 5;
            let q = ghostmem_realloc(gm, *p, grown);
            assert!(!q.is_null(), "realloc({size} -> {grown})");
            assert!(ghostmem_usable_size(gm, q) >= grown);
            check(q, *size, seed);
            fill(q, grown, seed + 100);
            let shrunk = grown / 4 + 1;
            let r = ghostmem_realloc(gm, q, shrunk);
            assert!(!r.is_null());
            check(r, shrunk, seed + 100);
            (*p, *size) = (r, shrunk);
        }
        let s = stats(gm);
        assert!(s.evictions > 0 && s.restores > 0, "{s:?}");
        assert_eq!(s.live_allocations, sizes.len() as u64);
        let usable: usize = blocks
            .iter()
            .map(|&(p, _)| ghostmem_usable_size(gm, p))
            .sum();
        assert_eq!(
            s.live_bytes, usable as u64,
            "live_bytes counts usable sizes"
        );
        for (seed, &(p, size)) in blocks.iter().enumerate() {
            check(p, size, seed + 100);
            ghostmem_release(gm, p);
            assert_eq!(ghostmem_usable_size(gm, p), 0, "released");
        }
        let s = stats(gm);
        assert_eq!(
            (
                s.live_allocations,
                s.live_bytes,
                s.allocated_pages,
                s.invalid_frees
            ),
            (0, 0, 0, 0),
            "{s:?}"
        );
        ghostmem_delete(gm);
    }
}

#[test]
fn realloc_stays_in_place_when_the_class_allows() {
    let gm = instance(8);
    let page = ghostmem_page_size();
    // SAFETY: (whole block) live handle; blocks used within their sizes.
    unsafe {
        let p = ghostmem_malloc(gm, 100);
        let usable = ghostmem_usable_size(gm, p);
        assert_eq!(usable, 112, "100 bytes take the 112-byte class");
        fill(p, 100, 1);
        assert_eq!(ghostmem_realloc(gm, p, usable), p, "same class: in place");
        assert_eq!(ghostmem_realloc(gm, p, 97), p);
        let moved = ghostmem_realloc(gm, p, 200);
        assert_ne!(moved, p, "another class: moved");
        check(moved, 97, 1);
        assert_eq!(ghostmem_usable_size(gm, p), 0, "the old block is freed");
        ghostmem_release(gm, moved);
        ghostmem_delete(gm);

        // In a fresh instance, a page run grows into the free pages after it and shrinks by giving its tail back.
        let gm = instance(8);
        let run = ghostmem_malloc(gm, 3 * page);
        assert_eq!(run as usize % page, 0);
        fill(run, 3 * page, 2);
        let before = stats(gm).allocated_pages;
        assert_eq!(ghostmem_realloc(gm, run, 40 * page), run);
        assert_eq!(stats(gm).allocated_pages, before + 37);
        check(run, 3 * page, 2);
        assert_eq!(ghostmem_realloc(gm, run, 2 * page), run);
        assert_eq!(stats(gm).allocated_pages, before - 1);
        assert_eq!(ghostmem_usable_size(gm, run), 2 * page);
        check(run, 2 * page, 2);
        // A run with a neighbour cannot grow in place: it moves.
        let neighbour = ghostmem_malloc(gm, page);
        assert_eq!(neighbour as usize, run as usize + 2 * page);
        let grown = ghostmem_realloc(gm, run, 5 * page);
        assert_ne!(grown, run);
        check(grown, 2 * page, 2);
        ghostmem_release(gm, grown);
        ghostmem_release(gm, neighbour);
        assert_eq!(stats(gm).live_allocations, 0);
        ghostmem_delete(gm);
    }
}

#[test]
fn calloc_zeroes_and_refuses_overflow() {
    let gm = instance(4);
    // SAFETY: (whole block) live handle; blocks used within their sizes.
    unsafe {
        let dirty = ghostmem_malloc(gm, 64);
        dirty.cast::<u8>().write_bytes(0xa5, 64);
        ghostmem_release(gm, dirty);
        let z = ghostmem_calloc(gm, 4, 16);
        assert_eq!(z, dirty, "the freed slot is reused");
        assert!(
            std::slice::from_raw_parts(z.cast::<u8>(), 64)
                .iter()
                .all(|&b| b == 0)
        );
        let big = ghostmem_calloc(gm, 3, 70_000);
        assert!(
            std::slice::from_raw_parts(big.cast::<u8>(), 210_000)
                .iter()
                .all(|&b| b == 0)
        );

        assert!(ghostmem_calloc(gm, usize::MAX / 2, 3).is_null());
        assert!(last_error().contains("overflows"), "{}", last_error());
        assert!(ghostmem_calloc(gm, 1 << 40, 1 << 30).is_null());
        let empty = ghostmem_calloc(gm, 0, 8);
        assert!(!empty.is_null() && ghostmem_usable_size(gm, empty) == 16);
        let s = stats(gm);
        assert_eq!((s.live_allocations, s.invalid_frees), (3, 0));
        for p in [z, big, empty] {
            ghostmem_release(gm, p);
        }
        ghostmem_delete(gm);
    }
}

#[test]
fn null_zero_and_mixed_calls() {
    let gm = instance(4);
    // SAFETY: (whole block) live handle, or null handles on purpose.
    unsafe {
        ghostmem_release(gm, ptr::null_mut());
        let a = ghostmem_malloc(gm, 0);
        let b = ghostmem_malloc(gm, 0);
        assert!(
            !a.is_null() && !b.is_null() && a != b,
            "malloc(0) gives unique blocks"
        );
        let c = ghostmem_realloc(gm, ptr::null_mut(), 24);
        assert!(
            !c.is_null() && ghostmem_usable_size(gm, c) == 32,
            "realloc(NULL) = malloc"
        );
        assert!(ghostmem_realloc(gm, c, 0).is_null(), "realloc(p, 0) frees");
        assert_eq!(ghostmem_usable_size(gm, c), 0);
        // Blocks from the sized calls can be released without their size, and vice versa.
        let sized = ghostmem_alloc(gm, 300);
        ghostmem_release(gm, sized);
        let m = ghostmem_malloc(gm, 300);
        assert_eq!(ghostmem_free(gm, m, 300), GHOSTMEM_OK);
        let aligned = ghostmem_alloc_aligned(gm, 40, 256);
        assert_eq!(ghostmem_usable_size(gm, aligned), 256);
        ghostmem_release(gm, aligned);
        ghostmem_release(gm, a);
        ghostmem_release(gm, b);
        let s = stats(gm);
        assert_eq!((s.live_allocations, s.invalid_frees), (0, 0), "{s:?}");

        assert!(ghostmem_malloc(ptr::null_mut(), 8).is_null());
        assert_eq!(last_error(), "ghostmem_malloc: gm is NULL");
        assert!(ghostmem_calloc(ptr::null_mut(), 1, 8).is_null());
        assert!(ghostmem_realloc(ptr::null_mut(), ptr::null_mut(), 8).is_null());
        ghostmem_release(ptr::null_mut(), a);
        assert_eq!(last_error(), "ghostmem_release: gm is NULL");
        assert_eq!(ghostmem_usable_size(ptr::null(), a), 0);
        assert!(ghostmem_malloc(gm, usize::MAX).is_null());
        ghostmem_delete(gm);
    }
}

#[test]
fn bad_pointers_are_refused_counted_and_change_nothing() {
    let gm = instance(2);
    let page = ghostmem_page_size();
    let mut local = [0u8; 32];
    let foreign = local.as_mut_ptr().cast::<c_void>();
    // SAFETY: (whole block) live handle; the bad pointers are what is being tested, and the
    // library must not touch the memory behind them.
    unsafe {
        let keep = ghostmem_malloc(gm, 100);
        let victim = ghostmem_malloc(gm, 100);
        let run = ghostmem_malloc(gm, 2 * page);
        fill(keep, 100, 1);
        fill(run, 2 * page, 2);
        ghostmem_release(gm, victim);
        let live = stats(gm).live_allocations;

        let interior = keep.cast::<u8>().add(16).cast::<c_void>();
        let run_interior = run.cast::<u8>().add(page).cast::<c_void>();
        let cases: [(*mut c_void, i32); 4] = [
            (foreign, GHOSTMEM_ERR_FOREIGN_POINTER),
            (interior, GHOSTMEM_ERR_NOT_ALLOCATED),
            (run_interior, GHOSTMEM_ERR_NOT_ALLOCATED),
            (victim, GHOSTMEM_ERR_DOUBLE_FREE),
        ];
        let mut refused = 0;
        for (p, status) in cases {
            let name = CStr::from_ptr(ghostmem_status_str(status))
                .to_str()
                .unwrap();
            ghostmem_clear_last_error();
            ghostmem_release(gm, p);
            refused += 1;
            assert!(last_error().contains("ghostmem_release"), "{p:p}");
            assert_eq!(status_of(&last_error()), name, "{p:p}");
            assert_eq!(stats(gm).invalid_frees, refused);
            ghostmem_clear_last_error();
            assert!(ghostmem_realloc(gm, p, 50).is_null(), "{p:p}");
            refused += 1;
            assert!(last_error().contains("ghostmem_realloc"), "{p:p}");
            assert_eq!(stats(gm).invalid_frees, refused);
            assert!(ghostmem_realloc(gm, p, 0).is_null());
            refused += 1;
            assert_eq!(ghostmem_usable_size(gm, p), 0, "{p:p}");
        }
        assert_eq!(stats(gm).invalid_frees, 12);
        assert_eq!(stats(gm).live_allocations, live, "nothing was freed");
        assert!(
            local.iter().all(|&b| b == 0),
            "the foreign memory is untouched"
        );
        check(keep, 100, 1);
        check(run, 2 * page, 2);
        // The refused double free did not put the slot back twice.
        let x = ghostmem_malloc(gm, 100);
        let y = ghostmem_malloc(gm, 100);
        assert!(x != y && x != keep && y != keep);
        for p in [keep, run, x, y] {
            ghostmem_release(gm, p);
        }
        let s = stats(gm);
        assert_eq!((s.live_allocations, s.allocated_pages), (0, 0), "{s:?}");
        ghostmem_delete(gm);
    }
}

#[test]
fn releasing_an_evicted_block_does_not_bring_it_back() {
    let gm = instance(2);
    let page = ghostmem_page_size();
    // SAFETY: (whole block) live handle; blocks used within their sizes.
    unsafe {
        let small = ghostmem_malloc(gm, 48);
        let big = ghostmem_malloc(gm, 6 * page);
        fill(small, 48, 3);
        fill(big, 6 * page, 4);
        let s = stats(gm);
        assert!(s.evicted_pages >= 4, "{s:?}");
        // `small`'s slab page was touched first: it is among the evicted ones.
        let faults = s.faults;
        assert_eq!(ghostmem_usable_size(gm, small), 48);
        ghostmem_release(gm, small);
        ghostmem_release(gm, big);
        let s = stats(gm);
        assert_eq!(
            s.faults, faults,
            "freeing evicted memory took no fault: {s:?}"
        );
        assert_eq!((s.evicted_pages, s.allocated_pages), (0, 0), "{s:?}");
        ghostmem_delete(gm);
    }
}

/// A refused `ghostmem_release` or `ghostmem_realloc` prints one warning line on stderr (they
/// return no status). Checked in a child process, whose stderr the test can read.
#[test]
fn refusals_print_a_warning() {
    if std::env::var_os("GHOSTMEM_WARNING_CHILD").is_some() {
        let gm = instance(2);
        let mut local = 0u64;
        // SAFETY: live handle; the foreign pointer is refused without being touched.
        unsafe {
            ghostmem_release(gm, ptr::from_mut(&mut local).cast());
            assert!(ghostmem_realloc(gm, ptr::from_mut(&mut local).cast(), 8).is_null());
            ghostmem_delete(gm);
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "refusals_print_a_warning",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GHOSTMEM_WARNING_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[GhostMem] warning:"))
        .collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].contains("ghostmem_release")
            && warnings[0].contains("not allocated by this instance")
    );
    assert!(warnings[1].contains("ghostmem_realloc"));
}
