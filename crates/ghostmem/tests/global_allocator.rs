//! `GhostGlobal` as the `#[global_allocator]` of this whole test binary (the test harness
//! included): every `Box`, `Vec`, `String` and `HashMap` below lives in ghost memory under a
//! budget of 256 pages.

// Test data deliberately truncates counters into bytes and words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;

use ghostmem::GhostGlobal;

const BUDGET: u64 = 256;

#[global_allocator]
static GLOBAL: GhostGlobal = GhostGlobal::new(BUDGET as usize);

fn stats() -> ghostmem::Stats {
    GLOBAL
        .stats()
        .expect("the global allocator has an instance once anything was allocated")
}

#[test]
fn collections_in_the_global_allocator_keep_their_data() {
    let numbers: Vec<u64> = (0..1u64 << 20)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let strings: Vec<String> = (0..20_000).map(|i| format!("string {i}")).collect();
    let mut map: HashMap<u32, String> = HashMap::new();
    for i in 0..20_000u32 {
        map.insert(i, format!("value {i}").repeat(1 + (i % 3) as usize));
    }
    let s = stats();
    assert!(
        s.live_bytes >= 8 << 20,
        "an 8 MiB vector is live, but the instance has {} live bytes: {s:?}",
        s.live_bytes
    );
    assert!(s.resident_pages <= BUDGET, "{s:?}");
    assert!(
        s.evictions > 0,
        "more than 8 MiB under 1 MiB of budget: {s:?}"
    );
    for (i, &n) in numbers.iter().enumerate() {
        assert_eq!(n, (i as u64).wrapping_mul(0x9E37_79B9), "numbers[{i}]");
    }
    for (i, s) in strings.iter().enumerate() {
        assert_eq!(*s, format!("string {i}"));
    }
    for i in 0..20_000u32 {
        assert_eq!(map[&i], format!("value {i}").repeat(1 + (i % 3) as usize));
    }
    assert!(stats().restores > 0);
}

#[test]
fn zeroed_realloc_and_aligned_allocations() {
    // alloc_zeroed, also for memory that was used and freed before.
    for round in 0..3 {
        let v = vec![0u8; 3 << 20];
        assert!(
            v.iter().all(|&b| b == 0),
            "round {round}: vec![0; n] is not zero"
        );
        let mut w = vec![0xFFu8; 3 << 20];
        w[12345] = 1;
        drop((v, w));
    }
    // realloc keeps contents while growing through small and large sizes.
    let mut s = String::new();
    for i in 0..100_000u32 {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    assert!(
        s.bytes()
            .enumerate()
            .all(|(i, b)| b == b'a' + (i % 26) as u8)
    );
    // Alignments up to 64 KiB.
    for align_log in 0..=16 {
        let align = 1usize << align_log;
        for size in [1, 24, 3000, 70_000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a valid non-zero layout.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null(), "alloc({size}, {align}) failed");
            assert_eq!(p as usize % align, 0, "alloc({size}, {align}) = {p:p}");
            // SAFETY: `p` holds `size` bytes.
            unsafe {
                p.write_bytes(0x5C, size);
                assert_eq!(p.add(size - 1).read(), 0x5C);
                GLOBAL.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn memory_moves_between_threads() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                (0..50_000u64)
                    .map(|i| Box::new([t, i, t ^ i]))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let boxes = h.join().unwrap();
        for (i, b) in boxes.iter().enumerate() {
            let (t, i) = (t as u64, i as u64);
            assert_eq!(**b, [t, i, t ^ i]);
        }
        drop(boxes); // freed on another thread than the one that allocated them
    }
    let s = stats();
    assert_eq!(s.invalid_frees, 0, "{s:?}");
    assert!(s.resident_pages <= BUDGET, "{s:?}");
}

// `std::fs` and `Command::output` through heap buffers: see `global_allocator_kernel.rs`,
// which runs them with kernel access (without it the kernel gets `EFAULT` on heap pages that
// are not resident).

#[test]
fn realloc_does_not_move_when_the_class_allows() {
    let page = 4096.max(ghostmem::page_size());
    // SAFETY: (whole block) valid layouts; each block is used within its current size.
    unsafe {
        let layout = Layout::from_size_align(5000, 8).unwrap();
        let p = GLOBAL.alloc(layout);
        p.write_bytes(7, 5000);
        let q = GLOBAL.realloc(p, layout, 5100);
        assert_eq!(q, p, "5000 and 5100 share the 5120 class");
        let layout = Layout::from_size_align(5100, 8).unwrap();
        let r = GLOBAL.realloc(q, layout, 3 * page);
        assert_eq!(r.add(4999).read(), 7);
        let layout = Layout::from_size_align(3 * page, 8).unwrap();
        let s = GLOBAL.realloc(r, layout, 2 * page);
        assert_eq!(s, r, "a page run shrinks in place");
        GLOBAL.dealloc(s, Layout::from_size_align(2 * page, 8).unwrap());
    }
}
