//! Property test: random alloc / write / read / realloc / free / release sequences against a
//! shadow model.
//!
//! Every live allocation has a shadow `Vec<u8>` in system memory. After every operation all
//! live allocations are compared byte for byte with their shadows, and their usable sizes with
//! the statistics, under budgets of 2 to 6 pages, so most operations evict and restore pages.

// Test data deliberately truncates counters into bytes and words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use std::collections::BTreeSet;

use ghostmem::{GhostMem, Stats, page_size};
use proptest::prelude::*;

/// Largest number of simultaneously live allocations in one case.
const MAX_LIVE: usize = 8;
/// The old small/large boundary; sizes around it stay interesting.
const SMALL_MAX: usize = 2048;
/// Sizes up to this are served by size classes (slabs, or runs for classes of whole pages).
const CLASS_MAX: usize = 64 << 10;

#[derive(Debug, Clone)]
enum SizeSpec {
    /// An exact byte count.
    Bytes(usize),
    /// `pages - 1` whole pages plus `frac / 4096` of a page (at least 2049 bytes in total, so
    /// always a page-run allocation).
    Pages { pages: usize, frac: usize },
}

impl SizeSpec {
    fn resolve(&self) -> usize {
        match *self {
            SizeSpec::Bytes(n) => n,
            SizeSpec::Pages { pages, frac } => {
                let page = page_size();
                ((pages - 1) * page + frac * page / 4096).max(SMALL_MAX + 1)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc(SizeSpec),
    Write {
        which: usize,
        offset: usize,
        len: usize,
        seed: u64,
    },
    Read(usize),
    Free(usize),
    /// Free an allocation and at once allocate the same size again (likely the same memory).
    Reuse(usize),
    /// Resize an allocation with `GhostMem::realloc`.
    Realloc(usize, SizeSpec),
    /// Free an allocation without its size (`GhostMem::release`).
    Release(usize),
}

fn size_strategy() -> impl Strategy<Value = SizeSpec> {
    prop_oneof![
        4 => (1usize..=SMALL_MAX).prop_map(SizeSpec::Bytes),
        1 => prop::sample::select(vec![1usize, 15, 16, 17, 100, 1024, 2047, 2048, 2049, 4095,
            4097, 20_000, CLASS_MAX - 1, CLASS_MAX, CLASS_MAX + 1])
            .prop_map(SizeSpec::Bytes),
        1 => (SMALL_MAX..=CLASS_MAX + 8192).prop_map(SizeSpec::Bytes),
        3 => (1usize..=4, 0usize..=4096).prop_map(|(pages, frac)| SizeSpec::Pages { pages, frac }),
        1 => (1usize..=3).prop_map(|pages| SizeSpec::Pages { pages: pages + 1, frac: 0 }),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => size_strategy().prop_map(Op::Alloc),
        4 => (any::<usize>(), any::<usize>(), 1usize..=3 * 4096, any::<u64>())
            .prop_map(|(which, offset, len, seed)| Op::Write { which, offset, len, seed }),
        1 => any::<usize>().prop_map(Op::Read),
        2 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Reuse),
        2 => (any::<usize>(), size_strategy()).prop_map(|(which, size)| Op::Realloc(which, size)),
        1 => any::<usize>().prop_map(Op::Release),
    ]
}

/// Bytes for a write: constant, a repeated 8-byte word, or a varied pattern, so pages take
/// every encoding (same-filled, LZ4, raw) when they are evicted.
fn write_bytes(seed: u64, len: usize) -> Vec<u8> {
    match seed % 4 {
        0 => vec![(seed >> 8) as u8; len],
        1 => {
            let word = (seed >> 8).to_le_bytes();
            (0..len).map(|i| word[i % 8]).collect()
        }
        2 => (0..len).map(|i| common::pattern_byte(seed, i)).collect(),
        _ => {
            // xorshift: incompressible.
            let mut x = seed | 1;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        }
    }
}

/// Whether `ptr` is a page run (whole pages, zero when fresh): slab classes are never a whole
/// number of pages.
fn is_run(ghost: &GhostMem, ptr: *mut u8) -> bool {
    ghost.usable_size(ptr) % page_size() == 0
}

/// Write a pattern over bytes `from..to` of the block at `ptr` and return it.
fn define(ptr: *mut u8, from: usize, to: usize) -> Vec<u8> {
    let bytes = write_bytes(ptr as u64 ^ to as u64, to - from);
    // SAFETY: the caller's block at `ptr` holds at least `to` bytes; `bytes` is a separate
    // buffer of `to - from` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.add(from), to - from) };
    bytes
}

struct Live {
    ptr: *mut u8,
    size: usize,
    shadow: Vec<u8>,
}

struct Model<'g> {
    ghost: &'g GhostMem,
    budget: u64,
    live: Vec<Live>,
    /// Set once all live allocations together covered more pages than the budget and were all
    /// read back, which cannot happen without evicting.
    must_have_evicted: bool,
    /// `Alloc` operations not carried out because [`MAX_LIVE`] allocations were live.
    skipped_allocs: usize,
}

/// How a case ended: the statistics after its last operation (before the final frees), and
/// how many of its allocations were skipped.
struct CaseEnd {
    stats: Stats,
    skipped_allocs: usize,
}

impl Model<'_> {
    fn check_one(&self, i: usize, when: &str) -> Result<(), TestCaseError> {
        let l = &self.live[i];
        // SAFETY: `l.ptr` is a live allocation of `l.size` bytes from `self.ghost`.
        let actual = unsafe { std::slice::from_raw_parts(l.ptr, l.size) };
        if actual != l.shadow.as_slice() {
            let at = actual
                .iter()
                .zip(&l.shadow)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(TestCaseError::fail(format!(
                "{when}: allocation #{i} ({:p}, {} bytes) differs from its shadow at byte {at}: \
                 got {:#04x}, expected {:#04x}; stats {:?}",
                l.ptr,
                l.size,
                actual[at],
                l.shadow[at],
                self.ghost.stats()
            )));
        }
        Ok(())
    }

    /// Distinct pages covered by live allocations.
    fn live_pages(&self) -> usize {
        let page = page_size();
        let mut pages = BTreeSet::new();
        for l in &self.live {
            let first = l.ptr as usize / page;
            let last = (l.ptr as usize + l.size - 1) / page;
            pages.extend(first..=last);
        }
        pages.len()
    }

    fn check_all(&mut self, when: &str) -> Result<(), TestCaseError> {
        for i in 0..self.live.len() {
            self.check_one(i, when)?;
        }
        if self.live_pages() as u64 > self.budget {
            self.must_have_evicted = true;
        }
        let s = self.ghost.stats();
        prop_assert_eq!(s.budget_pages, self.budget, "{}: budget_pages", when);
        prop_assert!(
            s.resident_pages <= s.budget_pages,
            "{}: resident_pages {} > budget {}",
            when,
            s.resident_pages,
            s.budget_pages
        );
        prop_assert_eq!(
            s.live_allocations,
            self.live.len() as u64,
            "{}: live_allocations",
            when
        );
        let mut usable_total = 0;
        for (i, l) in self.live.iter().enumerate() {
            let usable = self.ghost.usable_size(l.ptr);
            prop_assert!(
                usable >= l.size,
                "{}: usable_size of #{} ({:p}, {} bytes) is {}",
                when,
                i,
                l.ptr,
                l.size,
                usable
            );
            if l.size > 64 {
                prop_assert!(
                    usable * 4 <= l.size * 5 || usable == l.size.next_multiple_of(page_size()),
                    "{}: usable_size {} for {} bytes",
                    when,
                    usable,
                    l.size
                );
            }
            prop_assert_eq!(self.ghost.usable_size(l.ptr.wrapping_add(1)), 0);
            usable_total += usable;
        }
        prop_assert_eq!(s.live_bytes, usable_total as u64, "{}: live_bytes", when);
        prop_assert!(
            s.allocated_pages >= self.live_pages() as u64,
            "{}: allocated_pages {} but live allocations cover {} pages",
            when,
            s.allocated_pages,
            self.live_pages()
        );
        if self.must_have_evicted {
            prop_assert!(
                s.evictions > 0,
                "{}: more pages than the budget were read but nothing was evicted: {:?}",
                when,
                s
            );
        }
        prop_assert_eq!(s.invalid_frees, 0, "{}: invalid_frees", when);
        Ok(())
    }

    fn alloc(&mut self, size: usize) -> Result<(), TestCaseError> {
        let ptr = self
            .ghost
            .alloc_raw(size)
            .map_err(|e| TestCaseError::fail(format!("alloc_raw({size}): {e}")))?
            .as_ptr();
        let addr = ptr as usize;
        prop_assert_eq!(
            addr % 16,
            0,
            "alloc_raw({}) = {:p} is not 16-aligned",
            size,
            ptr
        );
        let run = is_run(self.ghost, ptr);
        if size > CLASS_MAX {
            prop_assert!(run, "alloc_raw({}) = {:p} is not a page run", size, ptr);
        }
        if run {
            prop_assert_eq!(
                addr % page_size(),
                0,
                "alloc_raw({}) = {:p} is not page-aligned",
                size,
                ptr
            );
        }
        prop_assert!(self.ghost.contains(ptr), "contains({:p})", ptr);
        prop_assert!(
            self.ghost.contains(ptr.wrapping_add(size - 1)),
            "contains(last byte of {:p}+{})",
            ptr,
            size
        );
        for (i, l) in self.live.iter().enumerate() {
            let (a, b) = (l.ptr as usize, l.ptr as usize + l.size);
            prop_assert!(
                addr + size <= a || b <= addr,
                "alloc_raw({}) = {:p} overlaps live allocation #{} {:p}+{}",
                size,
                ptr,
                i,
                l.ptr,
                l.size
            );
        }
        let shadow = if run {
            // Page runs are zero on first touch, including reused (released) pages.
            vec![0u8; size]
        } else {
            // Slab slots may hold a previous allocation's bytes: define them.
            define(ptr, 0, size)
        };
        self.live.push(Live { ptr, size, shadow });
        let i = self.live.len() - 1;
        self.check_one(i, "right after alloc")?;
        Ok(())
    }

    fn realloc(&mut self, which: usize, size: usize) -> Result<(), TestCaseError> {
        let old = &self.live[which];
        let (old_ptr, old_size) = (old.ptr, old.size);
        let old_usable = self.ghost.usable_size(old_ptr);
        // SAFETY: `old_ptr` is live; the model switches to the returned pointer.
        let ptr = unsafe { self.ghost.realloc(old_ptr, size) }
            .map_err(|e| TestCaseError::fail(format!("realloc({old_ptr:p}, {size}): {e}")))?
            .as_ptr();
        prop_assert_eq!(ptr as usize % 16, 0, "realloc to {} gave {:p}", size, ptr);
        if ptr != old_ptr {
            prop_assert_eq!(
                self.ghost.usable_size(old_ptr),
                0,
                "the moved-from block is freed"
            );
        } else if old_usable % page_size() != 0 {
            prop_assert!(
                size <= old_usable,
                "a slot was resized beyond its class in place"
            );
        }
        for (i, l) in self.live.iter().enumerate() {
            if i != which {
                let (a, b) = (l.ptr as usize, l.ptr as usize + l.size);
                prop_assert!(
                    ptr as usize + size <= a || b <= ptr as usize,
                    "realloc overlaps #{}",
                    i
                );
            }
        }
        let l = &mut self.live[which];
        l.shadow.truncate(size);
        if size > old_size {
            // Bytes past the old size are undefined: define them.
            l.shadow.extend(define(ptr, old_size, size));
        }
        (l.ptr, l.size) = (ptr, size);
        self.check_one(which, "right after realloc")
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Alloc(spec) => {
                if self.live.len() >= MAX_LIVE {
                    self.skipped_allocs += 1;
                    return Ok(());
                }
                self.alloc(spec.resolve())?;
            }
            Op::Write {
                which,
                offset,
                len,
                seed,
            } => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let n = self.live.len();
                let l = &mut self.live[*which % n];
                let off = *offset % l.size;
                let len = (*len).min(l.size - off);
                let bytes = write_bytes(*seed, len);
                // SAFETY: `off + len <= l.size`, inside the live allocation.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), l.ptr.add(off), len) };
                l.shadow[off..off + len].copy_from_slice(&bytes);
            }
            Op::Read(which) => {
                if self.live.is_empty() {
                    return Ok(());
                }
                self.check_one(*which % self.live.len(), "read")?;
            }
            Op::Free(which) => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let n = self.live.len();
                let l = self.live.swap_remove(*which % n);
                // SAFETY: `l` is a live allocation of `l.size` bytes, forgotten by the model.
                let r = unsafe { self.ghost.free_raw(l.ptr, l.size) };
                prop_assert_eq!(r, Ok(()), "free_raw({:p}, {})", l.ptr, l.size);
            }
            Op::Realloc(which, spec) => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let n = self.live.len();
                self.realloc(*which % n, spec.resolve())?;
            }
            Op::Release(which) => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let n = self.live.len();
                let l = self.live.swap_remove(*which % n);
                // SAFETY: `l` is a live allocation, forgotten by the model.
                let r = unsafe { self.ghost.release(l.ptr) };
                prop_assert_eq!(r, Ok(()), "release({:p})", l.ptr);
                prop_assert_eq!(self.ghost.usable_size(l.ptr), 0);
            }
            Op::Reuse(which) => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let n = self.live.len();
                let l = self.live.swap_remove(*which % n);
                // SAFETY: `l` is a live allocation of `l.size` bytes, forgotten by the model.
                let r = unsafe { self.ghost.free_raw(l.ptr, l.size) };
                prop_assert_eq!(r, Ok(()), "free_raw({:p}, {})", l.ptr, l.size);
                self.alloc(l.size)?;
            }
        }
        Ok(())
    }
}

fn run_case(budget: usize, ops: &[Op]) -> Result<CaseEnd, TestCaseError> {
    let ghost = common::instance_with_space(budget, 64 << 20);
    let mut model = Model {
        ghost: &ghost,
        budget: budget as u64,
        live: Vec::new(),
        must_have_evicted: false,
        skipped_allocs: 0,
    };
    let result = (|| {
        for (n, op) in ops.iter().enumerate() {
            model.apply(op)?;
            model.check_all(&format!("after op {n} ({op:?})"))?;
        }
        model.check_all("at the end")
    })();
    let end = CaseEnd {
        stats: ghost.stats(),
        skipped_allocs: model.skipped_allocs,
    };
    // Free everything (also after a failure, so the instance is dropped cleanly).
    let live = std::mem::take(&mut model.live);
    let mut refused = Vec::new();
    for l in &live {
        // SAFETY: every model entry is a live allocation of `l.size` bytes.
        if let Err(e) = unsafe { ghost.free_raw(l.ptr, l.size) } {
            refused.push(e);
        }
    }
    result?;
    prop_assert!(refused.is_empty(), "final frees refused: {:?}", refused);
    let s = ghost.stats();
    prop_assert_eq!(
        s.live_allocations,
        0,
        "live_allocations after freeing everything"
    );
    prop_assert_eq!(s.live_bytes, 0, "live_bytes after freeing everything");
    prop_assert_eq!(
        s.allocated_pages,
        0,
        "allocated_pages after freeing everything: {:?}",
        s
    );
    prop_assert_eq!(
        s.resident_pages,
        0,
        "resident_pages after freeing everything: {:?}",
        s
    );
    prop_assert_eq!(
        s.evicted_pages,
        0,
        "evicted_pages after freeing everything: {:?}",
        s
    );
    prop_assert_eq!(
        s.compressed_bytes,
        0,
        "compressed_bytes after freeing everything: {:?}",
        s
    );
    Ok(end)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_shadow_model(
        budget in 2usize..=6,
        ops in prop::collection::vec(op_strategy(), 1..64),
    ) {
        run_case(budget, &ops)?;
    }
}

/// A fixed sequence that is sure to exceed the budget, so the eviction assertion is exercised
/// even if the random cases happened to stay small: [`MAX_LIVE`] allocations (four of two
/// pages, four small), written over and read under a budget of 2 pages.
#[test]
fn fixed_sequence_exceeding_budget() {
    let page = page_size();
    let mut ops = Vec::new();
    for n in 0..MAX_LIVE / 2 {
        ops.push(Op::Alloc(SizeSpec::Pages {
            pages: 2,
            frac: 2048,
        }));
        ops.push(Op::Alloc(SizeSpec::Bytes(100 + n * 300)));
    }
    for n in 0..24u64 {
        ops.push(Op::Write {
            which: n as usize % MAX_LIVE,
            offset: 0,
            len: page + 17,
            seed: n,
        });
    }
    ops.push(Op::Free(3));
    ops.push(Op::Read(0));
    let end = run_case(2, &ops).unwrap();
    // This sequence, not another: every allocation was made, and it evicted and restored.
    assert_eq!(end.skipped_allocs, 0, "allocations beyond MAX_LIVE");
    let s = end.stats;
    assert!(s.evictions >= 8, "8 pages under a budget of 2: {s:?}");
    assert!(s.restores >= 2, "pages written again were restored: {s:?}");
}
