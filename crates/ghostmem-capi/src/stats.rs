//! `ghostmem_stats_t`: the C form of [`ghostmem::Stats`].

use ghostmem::Stats;

/// A snapshot of one instance's statistics. Gauges describe the moment of the snapshot;
/// counters count since the instance was created. New fields are only ever appended, and
/// `ghostmem_get_stats` fills as many bytes as the caller says its struct has.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ghostmem_stats_t {
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
    /// Bytes of evicted pages before encoding.
    pub original_bytes: u64,
    /// Bytes of memory the store has reserved from the OS.
    pub store_reserved_bytes: u64,
    /// Evicted pages that were all zero (kept as a tag, no data).
    pub zero_pages: u64,
    /// Evicted pages of one repeated 8-byte word (kept as a tag, no data).
    pub same_filled_pages: u64,
    /// Evicted pages stored LZ4-compressed.
    pub compressed_pages: u64,
    /// Evicted pages stored raw (they did not compress to 3/4 of a page).
    pub incompressible_pages: u64,
    /// Page faults handled (first touches and restores).
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
    /// Size of the swap file in bytes (disk backing; 0 otherwise).
    pub store_file_bytes: u64,
    /// Stores that reused the space of a freed block instead of growing the store.
    pub store_slots_reused: u64,
    /// Writes to the swap file that failed (those pages were kept in memory instead).
    pub store_write_errors: u64,
    /// Stored pages that failed authentication when read back.
    pub store_auth_failures: u64,
}

impl From<&Stats> for ghostmem_stats_t {
    fn from(s: &Stats) -> Self {
        ghostmem_stats_t {
            page_size: s.page_size,
            budget_pages: s.budget_pages,
            resident_pages: s.resident_pages,
            evicted_pages: s.evicted_pages,
            compressed_bytes: s.compressed_bytes,
            original_bytes: s.original_bytes,
            store_reserved_bytes: s.store_reserved_bytes,
            zero_pages: s.zero_pages,
            same_filled_pages: s.same_filled_pages,
            compressed_pages: s.compressed_pages,
            incompressible_pages: s.incompressible_pages,
            faults: s.faults,
            first_touches: s.first_touches,
            evictions: s.evictions,
            restores: s.restores,
            allocated_pages: s.allocated_pages,
            live_allocations: s.live_allocations,
            live_bytes: s.live_bytes,
            invalid_frees: s.invalid_frees,
            store_file_bytes: s.store_file_bytes,
            store_slots_reused: s.store_slots_reused,
            store_write_errors: s.store_write_errors,
            store_auth_failures: s.store_auth_failures,
        }
    }
}
