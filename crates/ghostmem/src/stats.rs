//! Statistics: counters the engine keeps as it works, read without stopping it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sys::FaultBackend;

/// The statistics fields, in order: the one list that [`Stats`], `Counters`, the snapshot and
/// the C ABI's `ghostmem_stats_t` (crate `ghostmem-capi`) are generated from, and that
/// `scripts/check-c-header.py` holds the C and C++ headers to. The order is the C struct's
/// layout: append new fields at the end.
///
/// Each field is a `counter` (an `AtomicU64` in `Counters`, kept up to date by the engine) or
/// `derived` (computed by the snapshot). The macro passes the list, doc comments included, to
/// `$callback!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __stats_fields {
    ($callback:ident) => {
        $callback! {
            /// The page size in bytes.
            page_size: derived,
            /// The resident page budget.
            budget_pages: derived,
            /// Pages currently resident (uncompressed, accessible).
            resident_pages: counter,
            /// Pages currently evicted (held by the store, or as a tag).
            evicted_pages: counter,
            /// Bytes the store holds for evicted pages (after encoding).
            compressed_bytes: counter,
            /// Bytes of evicted pages before encoding (`evicted_pages * page_size`).
            original_bytes: derived,
            /// Bytes of memory the store has reserved from the OS (its footprint, including
            /// free space).
            store_reserved_bytes: counter,
            /// Evicted pages that were all zero (stored as a tag, no data).
            zero_pages: counter,
            /// Evicted pages filled with one repeated 8-byte word (stored as a tag, no data).
            same_filled_pages: counter,
            /// Evicted pages stored LZ4-compressed.
            compressed_pages: counter,
            /// Evicted pages stored raw because they did not compress to 3/4 of a page.
            incompressible_pages: counter,
            /// Page faults handled on ghost memory (first touches and restores).
            faults: counter,
            /// Never-touched pages given their first, zero-filled contents (by their own
            /// fault, or ahead of it: see `readahead_pages`).
            first_touches: counter,
            /// Pages evicted.
            evictions: counter,
            /// Evicted pages brought back (by their own fault, or ahead of it: see
            /// `readahead_pages`).
            restores: counter,
            /// Pages of address space handed out to live allocations, and to the empty slabs
            /// the heap keeps for reuse (at most one per size class; none once no allocation is
            /// live).
            allocated_pages: counter,
            /// Live allocations.
            live_allocations: counter,
            /// Bytes requested by live allocations.
            live_bytes: counter,
            /// Deallocations refused (double free, foreign pointer, wrong size).
            invalid_frees: counter,
            /// Size of the swap file in bytes (disk-backed mode; 0 otherwise).
            store_file_bytes: counter,
            /// Stores that reused the space of a freed block instead of growing the store.
            store_slots_reused: counter,
            /// Writes to the swap file that failed; those pages were kept in memory instead.
            store_write_errors: counter,
            /// Stored pages that failed authentication when read back.
            store_auth_failures: counter,
            /// The fault backend in use: 1 userfaultfd, 2 mprotect (see
            /// [`Stats::backend`](crate::Stats::backend)).
            fault_backend: derived,
            /// Pages brought in ahead of their use by a fault on the page before them in a
            /// sequential stream: evicted pages (also counted in `restores`) and never-touched
            /// ones (also counted in `first_touches`).
            readahead_pages: counter,
            /// Pages of memory kept for reuse: the memory of pages evicted last, waiting in
            /// free frames of the budget for the next pages to come in (the userfaultfd
            /// backend, where the kernel moves pages: Linux 6.8+; 0 otherwise). Resident and
            /// spare pages together never exceed the budget (a snapshot taken while a fault
            /// commits may see one updated before the other).
            spare_pages: counter,
            /// Resident pages the CLOCK sampled: write-protected when the hand took their last
            /// chance, to see whether they are stored to before it comes back (the userfaultfd
            /// backend; 0 on the mprotect backend).
            sampled_pages: counter,
            /// Faults on sampled pages that were stored to (counted in `faults` too): each gave
            /// its page write access and a chance back.
            sample_faults: counter,
        }
    };
}

/// Generates [`Stats`] (every field), `Counters` (the `counter` fields), `Derived` (the
/// `derived` fields) and `Counters::load`, from the list in [`__stats_fields`].
macro_rules! generate_stats {
    // Sort the fields into counters and derived ones, then emit.
    (@sort [$($c:ident)*] [$($d:ident)*]) => {
        /// Live counters behind [`Stats`]. Written under the owning lock, read lock-free.
        #[derive(Default)]
        pub(crate) struct Counters {
            $(pub $c: AtomicU64,)*
        }

        /// The fields of [`Stats`] no counter holds: the snapshot computes them.
        struct Derived {
            $($d: u64,)*
        }

        impl Counters {
            /// Every counter, and the derived fields `derive` computes from them.
            fn load(&self, derive: impl FnOnce(&Stats) -> Derived) -> Stats {
                let mut s = Stats {
                    $($c: self.$c.load(Relaxed),)*
                    ..Stats::default()
                };
                let d = derive(&s);
                $(s.$d = d.$d;)*
                s
            }
        }
    };
    (@sort [$($c:ident)*] [$($d:ident)*] $name:ident: counter, $($rest:tt)*) => {
        generate_stats!(@sort [$($c)* $name] [$($d)*] $($rest)*);
    };
    (@sort [$($c:ident)*] [$($d:ident)*] $name:ident: derived, $($rest:tt)*) => {
        generate_stats!(@sort [$($c)*] [$($d)* $name] $($rest)*);
    };
    ($($(#[doc = $doc:expr])* $name:ident: $kind:ident,)*) => {
        /// A snapshot of one instance's statistics. Gauges (`resident_pages`, `evicted_pages`,
        /// the per-encoding counts, `compressed_bytes`, `live_*`) describe the moment of the
        /// snapshot; counters (`faults`, `evictions`, `restores`, ...) count since the instance
        /// was created.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        generate_stats!(@sort [] [] $($name: $kind,)*);
    };
}

__stats_fields!(generate_stats);

impl Stats {
    /// The fault backend in use (`fault_backend` decoded; `None` in a default snapshot).
    pub fn backend(&self) -> Option<FaultBackend> {
        FaultBackend::from_code(self.fault_backend)
    }

    /// `original_bytes / compressed_bytes` for evicted pages, or `None` when nothing is stored.
    pub fn compression_ratio(&self) -> Option<f64> {
        (self.compressed_bytes > 0)
            .then(|| self.original_bytes as f64 / self.compressed_bytes as f64)
    }
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

pub(crate) fn sub(c: &AtomicU64, n: u64) {
    c.fetch_sub(n, Relaxed);
}

impl Counters {
    pub fn snapshot(&self, page_size: usize, budget: usize, backend: FaultBackend) -> Stats {
        self.load(|s| Derived {
            page_size: page_size as u64,
            budget_pages: budget as u64,
            original_bytes: s.evicted_pages * page_size as u64,
            fault_backend: backend.code(),
        })
    }
}
