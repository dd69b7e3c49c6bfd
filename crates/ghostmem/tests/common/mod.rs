//! Helpers shared by the integration tests. Each test binary uses only some of them.
// Not every test binary uses every helper; patterns deliberately truncate into bytes.
#![allow(dead_code, clippy::cast_possible_truncation)]

use std::ptr::NonNull;

use ghostmem::{Config, GhostMem, Stats};

/// Address space reserved by test instances: far smaller than the 64 GiB default, so that
/// many instances can coexist without stressing the kernel's address-space accounting.
pub const TEST_ADDRESS_SPACE: usize = 1 << 30;

/// A fresh instance with `budget` resident pages and [`TEST_ADDRESS_SPACE`] of address space.
pub fn instance(budget: usize) -> GhostMem {
    instance_with_space(budget, TEST_ADDRESS_SPACE)
}

/// A fresh instance with `budget` resident pages and `space` bytes of address space.
pub fn instance_with_space(budget: usize, space: usize) -> GhostMem {
    let config = Config::builder()
        .max_memory_pages(budget)
        .address_space(space)
        .build()
        .expect("valid test configuration");
    GhostMem::new(config).expect("creating a GhostMem instance")
}

/// A fresh instance like [`instance`], with the background evictor running.
pub fn instance_with_evictor(budget: usize) -> GhostMem {
    let config = Config::builder()
        .max_memory_pages(budget)
        .address_space(TEST_ADDRESS_SPACE)
        .background_eviction(true)
        .build()
        .expect("valid test configuration");
    GhostMem::new(config).expect("creating a GhostMem instance")
}

/// Allocate `size` bytes or panic with the engine's error.
pub fn alloc(ghost: &GhostMem, size: usize) -> *mut u8 {
    let ptr: NonNull<u8> = ghost
        .alloc_raw(size)
        .unwrap_or_else(|e| panic!("alloc_raw({size}) failed: {e}"));
    ptr.as_ptr()
}

/// Free an allocation made by [`alloc`], panicking if the engine refuses.
///
/// # Safety
/// `ptr` must be a live allocation of `size` bytes from `ghost`, not used afterwards.
pub unsafe fn free(ghost: &GhostMem, ptr: *mut u8, size: usize) {
    // SAFETY: forwarded from the caller's contract.
    let result = unsafe { ghost.free_raw(ptr, size) };
    result.unwrap_or_else(|e| panic!("free_raw({ptr:p}, {size}) refused: {e}"));
}

/// A cheap deterministic byte pattern: mostly compressible (runs of a value that changes every
/// 64 bytes) mixed with a position-dependent byte, and different for every seed.
pub fn pattern_byte(seed: u64, i: usize) -> u8 {
    let block = (i / 64) as u64;
    let mix = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(block.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let hi = (mix >> 32) as u8;
    if i % 8 == 7 { hi ^ (i as u8) } else { hi }
}

/// Fill `len` bytes at `ptr` with [`pattern_byte`]`(seed, _)`.
///
/// # Safety
/// `ptr..ptr + len` must be writable memory (ghost memory counts: faults are transparent).
pub unsafe fn fill(ptr: *mut u8, len: usize, seed: u64) {
    let buf: Vec<u8> = (0..len).map(|i| pattern_byte(seed, i)).collect();
    // SAFETY: the caller guarantees `len` writable bytes at `ptr`; `buf` is a separate
    // system-heap buffer so the ranges do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), ptr, len) };
}

/// Index of the first byte at `ptr` that differs from [`pattern_byte`]`(seed, _)`.
///
/// # Safety
/// `ptr..ptr + len` must be readable memory.
pub unsafe fn first_mismatch(ptr: *const u8, len: usize, seed: u64) -> Option<usize> {
    let expected: Vec<u8> = (0..len).map(|i| pattern_byte(seed, i)).collect();
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
    let actual = unsafe { std::slice::from_raw_parts(ptr, len) };
    if actual == expected.as_slice() {
        None
    } else {
        actual.iter().zip(&expected).position(|(a, e)| a != e)
    }
}

/// Panic unless the `len` bytes at `ptr` hold the pattern for `seed`.
///
/// # Safety
/// `ptr..ptr + len` must be readable memory.
#[track_caller]
pub unsafe fn assert_pattern(ptr: *const u8, len: usize, seed: u64, what: &str) {
    // SAFETY: forwarded from the caller's contract.
    if let Some(i) = unsafe { first_mismatch(ptr, len, seed) } {
        // SAFETY: `i < len`, inside the readable range.
        let got = unsafe { ptr.add(i).read() };
        panic!(
            "{what}: byte {i} of {len} is {got:#04x}, expected {:#04x} (seed {seed})",
            pattern_byte(seed, i)
        );
    }
}

/// Panic unless the `len` bytes at `ptr` are all zero.
///
/// # Safety
/// `ptr..ptr + len` must be readable memory.
#[track_caller]
pub unsafe fn assert_zero(ptr: *const u8, len: usize, what: &str) {
    // SAFETY: forwarded from the caller's contract.
    let actual = unsafe { std::slice::from_raw_parts(ptr, len) };
    if let Some(i) = actual.iter().position(|&b| b != 0) {
        panic!(
            "{what}: byte {i} of {len} is {:#04x}, expected 0",
            actual[i]
        );
    }
}

/// Panic unless the resident-page gauge respects the budget.
#[track_caller]
pub fn assert_within_budget(stats: &Stats, what: &str) {
    assert!(
        stats.resident_pages <= stats.budget_pages,
        "{what}: {} pages resident with a budget of {}: {stats:?}",
        stats.resident_pages,
        stats.budget_pages
    );
}

/// A memory figure of this process from `/proc/self/status` (`field` such as `"VmRSS"` or
/// `"RssAnon"`), in bytes.
pub fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"));
    kib * 1024
}
