//! A growable array in memory mapped directly from the OS, for the store's metadata.
//!
//! ```text
//!   segments[0]   segments[1]   segments[2]        segments[k]
//!   ┌─────────┐   ┌─────────┐   ┌───────────────┐   ┌───────────────────────────┐
//!   │ B items │   │ B items │   │    2B items   │ … │       B·2^(k-1) items     │
//!   └─────────┘   └─────────┘   └───────────────┘   └───────────────────────────┘
//!   index:  0..B        B..2B          2B..4B          B·2^(k-1)..B·2^k
//! ```
//!
//! `B` is the largest power of two of items that fits one OS page. Each segment is its own anonymous mapping, mapped when the first
//! index in it is handed out, so growing never moves an item (references by index and pointer
//! stay valid) and never goes through the global allocator: the table may grow inside the
//! fault handler. Segments stay mapped until the table is dropped; the pages of a segment that
//! are never touched cost no RAM.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr;

use super::StoreError;

/// Segments a table can have: enough for `B · 2^31` items, more than a `u32` index can name.
const SEGMENTS: usize = 33;

/// Plain data for which every bit pattern of zeros is a valid value.
///
/// # Safety
/// An all-zero `Self` must be a valid value, and `Self` must have no `Drop` glue: fresh table
/// entries are the zero pages of a new mapping, and the table never drops its items.
pub(super) unsafe trait ZeroValid: Sized {}

// SAFETY: zero is a valid u64.
unsafe impl ZeroValid for u64 {}

/// Map `len` bytes of private anonymous read-write memory (zero-filled, reserved lazily).
pub(super) fn map(len: usize) -> Result<usize, StoreError> {
    // SAFETY: a fresh mapping chosen by the kernel, overlapping nothing of ours.
    let addr = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::NORESERVE,
        )
    }
    .map_err(|e| StoreError::OutOfMemory(e.raw_os_error()))?;
    Ok(addr as usize)
}

/// Unmap `len` bytes at `addr`.
///
/// # Safety
/// - `addr..addr + len` is a whole mapping made by [`map`] (or a page-aligned part of one),
/// - nothing refers to that memory any more.
pub(super) unsafe fn unmap(addr: usize, len: usize) -> rustix::io::Result<()> {
    // SAFETY: forwarded from the caller's contract.
    unsafe { rustix::mm::munmap(addr as *mut _, len) }
}

/// A growable array of `T` in directly mapped segments; see the module docs.
pub(super) struct Table<T: ZeroValid> {
    segments: [usize; SEGMENTS],
    /// Items in segment 0 (`B`): a power of two, at least 1.
    first: usize,
    /// `log2(first)`, so that locating an item is a shift, not a division.
    shift: u32,
    /// Items handed out: indexes `0..len` are valid.
    len: usize,
    page: usize,
    mapped_bytes: usize,
    _items: PhantomData<T>,
}

impl<T: ZeroValid> Table<T> {
    /// An empty table whose segments are multiples of `page` bytes. Maps nothing yet.
    pub(super) fn new(page: usize) -> Self {
        let shift = (page / size_of::<T>()).max(1).ilog2();
        Table {
            segments: [0; SEGMENTS],
            first: 1 << shift,
            shift,
            len: 0,
            page,
            mapped_bytes: 0,
            _items: PhantomData,
        }
    }

    /// Items handed out so far.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of address space the table's segments occupy.
    pub(super) fn mapped_bytes(&self) -> usize {
        self.mapped_bytes
    }

    /// Items segment `k` holds.
    fn segment_items(&self, k: usize) -> usize {
        if k == 0 {
            self.first
        } else {
            self.first << (k - 1)
        }
    }

    fn segment_bytes(&self, k: usize) -> usize {
        (self.segment_items(k) * size_of::<T>()).next_multiple_of(self.page)
    }

    /// (segment, index inside it) of item `i`.
    fn locate(&self, i: usize) -> (usize, usize) {
        let q = i >> self.shift;
        if q == 0 {
            (0, i)
        } else {
            let k = (usize::BITS - q.leading_zeros()) as usize;
            (k, i - (self.first << (k - 1)))
        }
    }

    /// Hand out the next index, whose item reads as all zeros. Maps a segment when needed.
    pub(super) fn push(&mut self) -> Result<usize, StoreError> {
        let i = self.len;
        let (k, _) = self.locate(i);
        if k >= SEGMENTS {
            return Err(StoreError::OutOfMemory(
                rustix::io::Errno::NOMEM.raw_os_error(),
            ));
        }
        if self.segments[k] == 0 {
            let bytes = self.segment_bytes(k);
            self.segments[k] = map(bytes)?;
            self.mapped_bytes += bytes;
        }
        self.len += 1;
        Ok(i)
    }

    fn slot(&self, i: usize) -> *mut T {
        assert!(i < self.len, "table index {i} out of bounds ({})", self.len);
        let (k, j) = self.locate(i);
        // The segment is mapped (`push` mapped it before handing out `i`) and holds at least
        // `j + 1` items.
        (self.segments[k] + j * size_of::<T>()) as *mut T
    }

    /// Item `i` (which `push` handed out).
    pub(super) fn get(&self, i: usize) -> &T {
        // SAFETY: `slot` checked `i < len`, so the item lies in a live read-write mapping owned
        // by this table, is aligned (segments are page-aligned and items laid out as an
        // array), and holds a valid `T` (zeros, `ZeroValid`, or a value written through
        // `get_mut`). The borrow of `self` keeps the mapping alive.
        unsafe { &*self.slot(i) }
    }

    /// Item `i` (which `push` handed out), mutably.
    pub(super) fn get_mut(&mut self, i: usize) -> &mut T {
        // SAFETY: as in `get`; `&mut self` makes the reference unique.
        unsafe { &mut *self.slot(i) }
    }
}

impl<T: ZeroValid> Drop for Table<T> {
    fn drop(&mut self) {
        for k in 0..SEGMENTS {
            if self.segments[k] != 0 {
                let bytes = self.segment_bytes(k);
                // SAFETY: segment `k` is a whole mapping of `bytes` bytes made by `push`; the
                // table is going away, so nothing refers to its items.
                if let Err(e) = unsafe { unmap(self.segments[k], bytes) } {
                    tracing::error!(error = %e, "munmap of a page-store table segment failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_span_segments_and_items_stay_put() {
        let mut t: Table<u64> = Table::new(4096);
        let mut first_item = std::ptr::null();
        for i in 0..5000 {
            assert_eq!(t.push().unwrap(), i);
            assert_eq!(*t.get(i), 0, "fresh items read as zero");
            *t.get_mut(i) = i as u64 * 3;
            if i == 0 {
                first_item = t.get(0) as *const u64;
            }
        }
        assert_eq!(t.get(0) as *const u64, first_item, "growing moved nothing");
        for i in 0..5000 {
            assert_eq!(*t.get(i), i as u64 * 3);
        }
        // 512 + 512 + 1024 + 2048 + 4096 items of 8 bytes.
        assert_eq!(t.mapped_bytes(), (512 + 512 + 1024 + 2048 + 4096) * 8);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn an_index_not_handed_out_is_refused() {
        let mut t: Table<u64> = Table::new(4096);
        t.push().unwrap();
        let _ = t.get(1);
    }

    #[test]
    fn dropping_a_table_unmaps_its_segments() {
        crate::store::alone::run("store::table::tests::dropped_tables_leave_no_mapping");
    }

    /// Tables of 8 MiB, made and dropped eight times, leave the process no larger than one
    /// would. Alone in its process (see [`crate::store::alone`]).
    #[test]
    #[ignore = "the child side of dropping_a_table_unmaps_its_segments"]
    fn dropped_tables_leave_no_mapping() {
        crate::store::alone::check_child();
        let fill = || {
            let mut t: Table<u64> = Table::new(4096);
            for _ in 0..1 << 20 {
                t.push().unwrap();
            }
            t.mapped_bytes() as u64
        };
        // A first round, so that whatever the harness or the allocator maps once is mapped.
        let one = fill();
        let before = crate::store::alone::vm_bytes();
        for _ in 0..8 {
            fill();
        }
        let grown = crate::store::alone::vm_bytes().saturating_sub(before);
        assert!(
            grown < one,
            "8 tables of {one} bytes made and dropped; the process grew by {grown} bytes"
        );
    }
}
