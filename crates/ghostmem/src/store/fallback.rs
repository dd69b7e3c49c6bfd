//! A store that never loses a page to a failed write: blocks the primary store cannot take
//! are kept in memory instead.
//!
//! ```text
//!   put ──▶ primary.put ── Ok ─────────────────────────────▶ BlockRef (bit 63 = 0)
//!                │
//!                └── Err(Io | OutOfMemory) ──▶ MemoryStore.put ──▶ BlockRef | 1 << 63
//!   load / remove: bit 63 picks the store; the rest of the bits go to it unchanged
//! ```
//!
//! **Why bit 63 cannot collide.** The memory store's references are indexes into its handle
//! table, below 2^32: bit 63 is always 0.
//! The primary must promise the same of its references; [`DiskStore`](super::DiskStore) does
//! (its `BlockRef` layout leaves bit 63 unused). Both are checked on every `put`: a reference
//! with bit 63 set is given back and the put fails rather than be misrouted later.

use super::{BlockRef, MemoryStore, PageStore, StoreError, StoreStats};
use crate::page::PageId;

/// The tag bit of references to blocks kept in memory.
const IN_MEMORY: u64 = 1 << 63;

/// A primary store backed by a [`MemoryStore`] for the blocks it could not write.
///
/// `put` tries the primary; if it fails with [`StoreError::Io`] (disk full, `EFBIG`, `EIO`, ...)
/// or [`StoreError::OutOfMemory`], the block goes to memory and the failure is counted in
/// `write_errors`, so the program keeps running and nothing is lost. The memory copy stays
/// there until the page is restored or freed; later puts try the primary again.
pub struct FallbackStore<P: PageStore> {
    primary: P,
    memory: MemoryStore,
    diverted: u64,
    in_memory: u64,
}

impl<P: PageStore> FallbackStore<P> {
    /// Wrap `primary`, with a memory store for pages of `page_size` bytes.
    pub fn new(primary: P, page_size: usize) -> Self {
        FallbackStore {
            primary,
            memory: MemoryStore::new(page_size),
            diverted: 0,
            in_memory: 0,
        }
    }

    /// The primary store.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// Blocks currently kept in memory because the primary refused them.
    pub fn blocks_in_memory(&self) -> u64 {
        self.in_memory
    }

    fn keep_in_memory(&mut self, page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
        let block = self.memory.put(page, data)?;
        if block.0 & IN_MEMORY != 0 {
            // Impossible on 64-bit Linux (see the module docs); never hand out an ambiguous
            // reference.
            self.memory.remove(page, block, data.len());
            return Err(StoreError::OutOfMemory(
                rustix::io::Errno::NOMEM.raw_os_error(),
            ));
        }
        self.in_memory += 1;
        Ok(BlockRef(block.0 | IN_MEMORY))
    }
}

impl<P: PageStore> PageStore for FallbackStore<P> {
    fn unlink(&mut self) {
        self.primary.unlink();
    }

    fn compact_all(&mut self) {
        self.primary.compact_all();
        self.memory.compact_all();
    }

    fn put(&mut self, page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
        match self.primary.put(page, data) {
            Ok(block) if block.0 & IN_MEMORY == 0 => Ok(block),
            Ok(block) => {
                debug_assert!(false, "the primary store used bit 63 of a BlockRef");
                self.primary.remove(page, block, data.len());
                self.diverted += 1;
                self.keep_in_memory(page, data)
            }
            Err(StoreError::Io(_) | StoreError::OutOfMemory(_)) => {
                self.diverted += 1;
                self.keep_in_memory(page, data)
            }
            Err(e) => Err(e),
        }
    }

    fn load<'a>(
        &'a mut self,
        page: PageId,
        block: BlockRef,
        len: usize,
        scratch: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError> {
        if block.0 & IN_MEMORY != 0 {
            self.memory
                .load(page, BlockRef(block.0 & !IN_MEMORY), len, scratch)
        } else {
            self.primary.load(page, block, len, scratch)
        }
    }

    fn remove(&mut self, page: PageId, block: BlockRef, len: usize) {
        if block.0 & IN_MEMORY != 0 {
            self.memory
                .remove(page, BlockRef(block.0 & !IN_MEMORY), len);
            self.in_memory = self.in_memory.saturating_sub(1);
        } else {
            self.primary.remove(page, block, len);
        }
    }

    fn reserved_bytes(&self) -> u64 {
        self.primary.reserved_bytes() + self.memory.reserved_bytes()
    }

    /// The primary's figures plus the memory store's live bytes and reuse. `write_errors` is the
    /// number of puts the primary refused (each kept in memory); a primary that counts its own
    /// failed writes counts the same events, so the two are not added (the larger is reported).
    fn stats(&self) -> StoreStats {
        let p = self.primary.stats();
        let m = self.memory.stats();
        StoreStats {
            file_bytes: p.file_bytes,
            live_bytes: p.live_bytes + m.live_bytes,
            slots_reused: p.slots_reused + m.slots_reused,
            write_errors: self.diverted.max(p.write_errors),
            auth_failures: p.auth_failures + m.auth_failures,
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test patterns")]
mod tests {
    use super::*;

    /// A primary that fails every `put` whose page id is odd, with the given error.
    struct Flaky {
        inner: MemoryStore,
        error: StoreError,
    }

    impl PageStore for Flaky {
        fn put(&mut self, page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
            if page.0 % 2 == 1 {
                Err(self.error)
            } else {
                self.inner.put(page, data)
            }
        }
        fn load<'a>(
            &'a mut self,
            page: PageId,
            block: BlockRef,
            len: usize,
            scratch: &'a mut [u8],
        ) -> Result<&'a [u8], StoreError> {
            self.inner.load(page, block, len, scratch)
        }
        fn remove(&mut self, page: PageId, block: BlockRef, len: usize) {
            self.inner.remove(page, block, len);
        }
        fn reserved_bytes(&self) -> u64 {
            self.inner.reserved_bytes()
        }
        fn stats(&self) -> StoreStats {
            self.inner.stats()
        }
    }

    fn flaky(error: StoreError) -> FallbackStore<Flaky> {
        FallbackStore::new(
            Flaky {
                inner: MemoryStore::new(4096),
                error,
            },
            4096,
        )
    }

    #[test]
    fn refused_puts_go_to_memory_and_come_back() {
        for error in [StoreError::Io(28), StoreError::OutOfMemory(12)] {
            let mut s = flaky(error);
            let mut scratch = vec![0u8; 4096];
            let blocks: Vec<_> = (0..10u32)
                .map(|p| s.put(PageId(p), &[p as u8 + 1; 300]).unwrap())
                .collect();
            for (p, b) in blocks.iter().enumerate() {
                assert_eq!(b.0 & IN_MEMORY != 0, p % 2 == 1, "page {p}");
                let got = s.load(PageId(p as u32), *b, 300, &mut scratch).unwrap();
                assert_eq!(got, &[p as u8 + 1; 300][..]);
            }
            assert_eq!(s.stats().write_errors, 5);
            assert_eq!(s.blocks_in_memory(), 5);
            assert_eq!(s.stats().live_bytes, 3000);
            for (p, b) in blocks.iter().enumerate() {
                s.remove(PageId(p as u32), *b, 300);
            }
            assert_eq!(s.blocks_in_memory(), 0);
            assert_eq!(s.stats().live_bytes, 0);
        }
    }

    #[test]
    fn corrupt_is_not_diverted() {
        let mut s = flaky(StoreError::Corrupt);
        assert_eq!(s.put(PageId(1), b"x"), Err(StoreError::Corrupt));
        assert_eq!(s.stats().write_errors, 0);
    }
}
