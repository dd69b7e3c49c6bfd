//! Statistics: counters the engine keeps as it works, read without stopping it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of one instance's statistics. Gauges (`resident_pages`, `evicted_pages`, the
/// per-encoding counts, `compressed_bytes`, `live_*`) describe the moment of the snapshot;
/// counters (`faults`, `evictions`, `restores`, ...) count since the instance was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The page size in bytes.
    pub page_size: u64,
    /// The resident page budget.
    pub budget_pages: u64,
    /// Pages currently resident (uncompressed, accessible).
    pub resident_pages: u64,
    /// Pages currently evicted (held by the store, or as a tag).
    pub evicted_pages: u64,
    /// Bytes the store holds for evicted pages (after encoding).
    pub compressed_bytes: u64,
    /// Bytes of evicted pages before encoding (`evicted_pages * page_size`).
    pub original_bytes: u64,
    /// Bytes of memory the store has reserved from the OS (its footprint, including free space).
    pub store_reserved_bytes: u64,
    /// Evicted pages that were all zero (stored as a tag, no data).
    pub zero_pages: u64,
    /// Evicted pages filled with one repeated 8-byte word (stored as a tag, no data).
    pub same_filled_pages: u64,
    /// Evicted pages stored LZ4-compressed.
    pub compressed_pages: u64,
    /// Evicted pages stored raw because they did not compress to 3/4 of a page.
    pub incompressible_pages: u64,
    /// Page faults handled on ghost memory (first touches and restores).
    pub faults: u64,
    /// Faults that gave a never-touched page its first, zero-filled contents.
    pub first_touches: u64,
    /// Pages evicted.
    pub evictions: u64,
    /// Evicted pages brought back.
    pub restores: u64,
    /// Pages of address space handed out to live allocations.
    pub allocated_pages: u64,
    /// Live allocations.
    pub live_allocations: u64,
    /// Bytes requested by live allocations.
    pub live_bytes: u64,
    /// Deallocations refused (double free, foreign pointer, wrong size).
    pub invalid_frees: u64,
    /// Size of the swap file in bytes (disk-backed mode; 0 otherwise).
    pub store_file_bytes: u64,
    /// Stores that reused the space of a freed block instead of growing the store.
    pub store_slots_reused: u64,
    /// Writes to the swap file that failed; those pages were kept in memory instead.
    pub store_write_errors: u64,
    /// Stored pages that failed authentication when read back.
    pub store_auth_failures: u64,
}

impl Stats {
    /// `original_bytes / compressed_bytes` for evicted pages, or `None` when nothing is stored.
    pub fn compression_ratio(&self) -> Option<f64> {
        (self.compressed_bytes > 0)
            .then(|| self.original_bytes as f64 / self.compressed_bytes as f64)
    }
}

/// Live counters behind [`Stats`]. Written under the owning lock, read lock-free.
#[derive(Default)]
pub(crate) struct Counters {
    pub resident_pages: AtomicU64,
    pub evicted_pages: AtomicU64,
    pub compressed_bytes: AtomicU64,
    pub store_reserved_bytes: AtomicU64,
    pub zero_pages: AtomicU64,
    pub same_filled_pages: AtomicU64,
    pub compressed_pages: AtomicU64,
    pub incompressible_pages: AtomicU64,
    pub faults: AtomicU64,
    pub first_touches: AtomicU64,
    pub evictions: AtomicU64,
    pub restores: AtomicU64,
    pub allocated_pages: AtomicU64,
    pub live_allocations: AtomicU64,
    pub live_bytes: AtomicU64,
    pub invalid_frees: AtomicU64,
    pub store_file_bytes: AtomicU64,
    pub store_slots_reused: AtomicU64,
    pub store_write_errors: AtomicU64,
    pub store_auth_failures: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

pub(crate) fn sub(c: &AtomicU64, n: u64) {
    c.fetch_sub(n, Relaxed);
}

impl Counters {
    pub fn snapshot(&self, page_size: usize, budget: usize) -> Stats {
        let evicted = self.evicted_pages.load(Relaxed);
        Stats {
            page_size: page_size as u64,
            budget_pages: budget as u64,
            resident_pages: self.resident_pages.load(Relaxed),
            evicted_pages: evicted,
            compressed_bytes: self.compressed_bytes.load(Relaxed),
            original_bytes: evicted * page_size as u64,
            store_reserved_bytes: self.store_reserved_bytes.load(Relaxed),
            zero_pages: self.zero_pages.load(Relaxed),
            same_filled_pages: self.same_filled_pages.load(Relaxed),
            compressed_pages: self.compressed_pages.load(Relaxed),
            incompressible_pages: self.incompressible_pages.load(Relaxed),
            faults: self.faults.load(Relaxed),
            first_touches: self.first_touches.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            restores: self.restores.load(Relaxed),
            allocated_pages: self.allocated_pages.load(Relaxed),
            live_allocations: self.live_allocations.load(Relaxed),
            live_bytes: self.live_bytes.load(Relaxed),
            invalid_frees: self.invalid_frees.load(Relaxed),
            store_file_bytes: self.store_file_bytes.load(Relaxed),
            store_slots_reused: self.store_slots_reused.load(Relaxed),
            store_write_errors: self.store_write_errors.load(Relaxed),
            store_auth_failures: self.store_auth_failures.load(Relaxed),
        }
    }
}
