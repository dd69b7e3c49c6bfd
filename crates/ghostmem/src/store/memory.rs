//! The in-memory store: size-classed blocks in chunks mapped directly from the OS.
//!
//! ```text
//!   chunk (256 KiB, anonymous mmap)          one chunk serves one size class
//!   ┌────────┬────────┬────────┬─────┬──────────────┐
//!   │ header │ slot 0 │ slot 1 │ ... │ (unused yet)  │   slot = class size (64-byte granules)
//!   └────────┴────────┴────────┴─────┴──────────────┘
//!   header: next chunk (a list of all chunks, for Drop)
//!   free slots: intrusive singly linked list per class (first 8 bytes = next free slot)
//! ```
//!
//! Nothing here goes through the global allocator after construction, so it is safe inside the
//! fault handler. Waste per block is under one granule (64 bytes).
#![allow(unsafe_code)]

use std::ptr;

use super::{BlockRef, PageStore, StoreError, StoreStats};
use crate::page::PageId;

const GRANULE: usize = 64;
const CHUNK: usize = 256 << 10;
const HEADER: usize = GRANULE;

/// The slot address a block reference holds (issued by `put` from a `usize`).
fn addr(block: BlockRef) -> usize {
    usize::try_from(block.0).expect("block references are addresses")
}

#[derive(Clone, Copy)]
struct Class {
    free: usize,
    bump: usize,
    end: usize,
}

/// Evicted pages kept in process memory.
pub struct MemoryStore {
    classes: Box<[Class]>,
    chunks: usize,
    chunk_count: u64,
    live_bytes: u64,
    reused: u64,
}

// SAFETY: the store exclusively owns its chunks; the raw addresses it keeps are not tied to a
// thread, and all access goes through `&mut self`.
unsafe impl Send for MemoryStore {}

impl MemoryStore {
    /// An empty store for pages of `page_size` bytes.
    pub fn new(page_size: usize) -> Self {
        let n = page_size.div_ceil(GRANULE);
        MemoryStore {
            classes: vec![
                Class {
                    free: 0,
                    bump: 0,
                    end: 0
                };
                n
            ]
            .into_boxed_slice(),
            chunks: 0,
            chunk_count: 0,
            live_bytes: 0,
            reused: 0,
        }
    }

    fn class_of(len: usize) -> usize {
        len.div_ceil(GRANULE) - 1
    }

    fn slot(&mut self, class: usize) -> Result<usize, StoreError> {
        let size = (class + 1) * GRANULE;
        let c = &mut self.classes[class];
        if c.free != 0 {
            let slot = c.free;
            // SAFETY: `slot` is a free slot of this class inside a live chunk; its first 8 bytes
            // hold the next free slot (written by `remove`).
            c.free = unsafe { ptr::read(slot as *const usize) };
            self.reused += 1;
            return Ok(slot);
        }
        if c.end - c.bump < size {
            // SAFETY: a fresh private anonymous mapping, overlapping nothing.
            let chunk = unsafe {
                rustix::mm::mmap_anonymous(
                    ptr::null_mut(),
                    CHUNK,
                    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                    rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::NORESERVE,
                )
            }
            .map_err(|e| StoreError::OutOfMemory(e.raw_os_error()))?
                as usize;
            // SAFETY: the header lies at the start of the chunk we just mapped read-write.
            unsafe { ptr::write(chunk as *mut usize, self.chunks) };
            self.chunks = chunk;
            self.chunk_count += 1;
            let c = &mut self.classes[class];
            c.bump = chunk + HEADER;
            c.end = chunk + CHUNK;
        }
        let c = &mut self.classes[class];
        let slot = c.bump;
        c.bump += size;
        Ok(slot)
    }
}

impl PageStore for MemoryStore {
    fn put(&mut self, _page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
        debug_assert!(!data.is_empty());
        let slot = self.slot(Self::class_of(data.len()))?;
        // SAFETY: the slot is at least `data.len()` bytes (its class covers that length), lies in
        // a chunk we own, and is not in use by any other block.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), slot as *mut u8, data.len()) };
        self.live_bytes += data.len() as u64;
        Ok(BlockRef(slot as u64))
    }

    fn load<'a>(
        &'a mut self,
        _page: PageId,
        block: BlockRef,
        len: usize,
        _scratch: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError> {
        // SAFETY: `block` was returned by `put` for a block of `len` bytes and has not been
        // removed (the pager owns that invariant); the bytes live as long as `&self` does, since
        // only `remove`/`put` through `&mut self` can reuse them.
        Ok(unsafe { std::slice::from_raw_parts(addr(block) as *const u8, len) })
    }

    fn remove(&mut self, _page: PageId, block: BlockRef, len: usize) {
        let class = Self::class_of(len);
        let slot = addr(block);
        // SAFETY: the block is a live slot of this class (see `load`); once removed its first
        // 8 bytes become the free-list link. Slots are GRANULE-aligned, so the write is aligned.
        unsafe { ptr::write(slot as *mut usize, self.classes[class].free) };
        self.classes[class].free = slot;
        self.live_bytes -= len as u64;
    }

    fn reserved_bytes(&self) -> u64 {
        self.chunk_count * CHUNK as u64
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            live_bytes: self.live_bytes,
            slots_reused: self.reused,
            ..StoreStats::default()
        }
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        let mut chunk = self.chunks;
        while chunk != 0 {
            // SAFETY: every chunk in the list is a live mapping of CHUNK bytes whose header holds
            // the next chunk; we read the link before unmapping.
            let next = unsafe { ptr::read(chunk as *const usize) };
            // SAFETY: we own the chunk and nothing refers to its blocks any more.
            if let Err(e) = unsafe { rustix::mm::munmap(chunk as *mut _, CHUNK) } {
                tracing::error!(error = %e, "munmap of a page-store chunk failed");
            }
            chunk = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_load_remove_reuses_slots() {
        let mut s = MemoryStore::new(4096);
        let mut scratch = vec![0u8; 4096];
        let a = s.put(PageId(1), &[1u8; 100]).unwrap();
        let b = s.put(PageId(2), &[2u8; 4096]).unwrap();
        assert_eq!(
            s.load(PageId(1), a, 100, &mut scratch).unwrap(),
            &[1u8; 100][..]
        );
        assert_eq!(
            s.load(PageId(2), b, 4096, &mut scratch).unwrap(),
            &[2u8; 4096][..]
        );
        let reserved = s.reserved_bytes();
        s.remove(PageId(1), a, 100);
        let c = s.put(PageId(3), &[3u8; 120]).unwrap();
        assert_eq!(c, a, "a freed slot of the same class is reused");
        assert_eq!(s.stats().slots_reused, 1);
        assert_eq!(s.stats().live_bytes, 120 + 4096);
        assert_eq!(s.reserved_bytes(), reserved);
        assert_eq!(
            s.load(PageId(2), b, 4096, &mut scratch).unwrap(),
            &[2u8; 4096][..]
        );
    }
}
