//! Freed slab slots stop costing the store: when a slab's live slots fall to half, a quarter,
//! ... of its capacity, the heap zeroes its free slots (in RAM if the page is resident, in
//! the stored block if it is evicted), and live slots keep their bytes.
#![allow(
    unsafe_code,
    reason = "the test reads and writes ghost memory through raw pointers"
)]

mod common;

use common::{alloc, free, instance};

/// Incompressible bytes (xorshift64*), different for every `seed`.
fn noise(seed: u64, out: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in out {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *b = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
    }
}

/// Fill 64 pages' worth of `size`-byte blocks with noise under a 16-page budget, free all but
/// one block in `keep`, push every page out again, and compare the store before and after.
fn freed_slots_leave_the_store(size: usize, keep: usize) {
    let ghost = instance(16);
    let page = usize::try_from(ghost.stats().page_size).unwrap();
    let count = 64 * page / size;
    let blocks: Vec<*mut u8> = (0..count).map(|_| alloc(&ghost, size)).collect();
    let mut contents = vec![vec![0u8; size]; count];
    for (i, (&p, c)) in blocks.iter().zip(&mut contents).enumerate() {
        noise(i as u64, c);
        // SAFETY: `p` is a live allocation of `size` bytes.
        unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), p, size) };
    }
    // Push the last resident pages out: touch 32 pages of a page run.
    let push_out = |ghost: &ghostmem::GhostMem| {
        let run = alloc(ghost, 32 * page);
        for k in 0..32 {
            // SAFETY: inside the run's 32 pages.
            unsafe { run.add(k * page).write(1) };
        }
        // SAFETY: allocated just above with this size, not used afterwards.
        unsafe { free(ghost, run, 32 * page) };
    };
    push_out(&ghost);
    let full = ghost.stats();
    assert!(
        full.compressed_bytes > 48 * page as u64,
        "noise should not compress: {full:?}"
    );

    for (i, &p) in blocks.iter().enumerate() {
        if i % keep != 0 {
            // SAFETY: a live allocation of `size` bytes, not used afterwards.
            unsafe { free(&ghost, p, size) };
        }
    }
    push_out(&ghost);
    let thinned = ghost.stats();
    assert!(
        thinned.compressed_bytes * (keep as u64) < 4 * full.compressed_bytes,
        "{size}-byte blocks, 1 in {keep} kept: the store still holds {} bytes of {} \
         (freed slots were not zeroed)",
        thinned.compressed_bytes,
        full.compressed_bytes
    );
    assert_eq!(thinned.live_allocations, count.div_ceil(keep) as u64);

    for (i, &p) in blocks.iter().enumerate().step_by(keep) {
        let mut now = vec![0u8; size];
        // SAFETY: a live allocation of `size` bytes (restored on touch).
        unsafe { std::ptr::copy_nonoverlapping(p, now.as_mut_ptr(), size) };
        assert!(now == contents[i], "block {i} of {size} bytes changed");
        // SAFETY: as above, not used afterwards.
        unsafe { free(&ghost, p, size) };
    }
    assert_eq!(ghost.stats().compressed_bytes, 0);
}

#[test]
fn freed_slots_of_one_page_slabs_leave_the_store() {
    freed_slots_leave_the_store(32, 100);
}

/// Class 160 on 4 KiB pages: five-page slabs whose slots straddle page boundaries.
#[test]
fn freed_slots_that_straddle_pages_leave_the_store() {
    freed_slots_leave_the_store(160, 13);
}

/// After the scrubs, every byte of every freed slot reads as zero (through the pages the
/// slab still has, resident or restored) and every live slot keeps its bytes, for classes
/// whose slots straddle page boundaries. Each slab is full and keeps one slot in 16, so its
/// last free is a scrub (at a sixteenth of its capacity).
fn freed_bytes_read_as_zero(size: usize) {
    let ghost = instance(16);
    let page = usize::try_from(ghost.stats().page_size).unwrap();
    // Eight whole slabs (a slab spans the least common multiple of the page and the size).
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let count = 8 * (page / gcd(page, size));
    let blocks: Vec<*mut u8> = (0..count).map(|_| alloc(&ghost, size)).collect();
    // Noise: a page of one repeated byte is stored as a tag, which zeroing would only enlarge
    // (the heap keeps a scrubbed copy only when it is smaller).
    let mut contents = vec![vec![0u8; size]; count];
    for (i, (&p, c)) in blocks.iter().zip(&mut contents).enumerate() {
        noise(i as u64 + 7, c);
        // SAFETY: `p` is a live allocation of `size` bytes.
        unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), p, size) };
    }
    // One block in 16 stays: every slab keeps live slots, so its pages stay allocated.
    for (i, &p) in blocks.iter().enumerate() {
        if i % 16 != 0 {
            // SAFETY: a live allocation of `size` bytes, not used afterwards as one.
            unsafe { free(&ghost, p, size) };
        }
    }
    for (i, &p) in blocks.iter().enumerate() {
        let mut now = vec![0u8; size];
        // SAFETY: the slot lies in a page of a slab that still has live slots, so the page is
        // allocated (a freed slot's bytes are read, not used).
        unsafe { std::ptr::copy_nonoverlapping(p, now.as_mut_ptr(), size) };
        let zeros = vec![0u8; size];
        let want = if i % 16 == 0 { &contents[i] } else { &zeros };
        assert!(now == *want, "{size}-byte slot {i} at {p:?}: {now:?}");
    }
    for &p in blocks.iter().step_by(16) {
        // SAFETY: a live allocation of `size` bytes, not used afterwards.
        unsafe { free(&ghost, p, size) };
    }
}

#[test]
fn freed_slots_read_as_zero_and_live_ones_keep_their_bytes() {
    // 48: three-page slabs; 160: five-page slabs; both with slots across page boundaries.
    freed_bytes_read_as_zero(48);
    freed_bytes_read_as_zero(160);
}
