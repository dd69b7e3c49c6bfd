//! Where evicted pages live.
//!
//! The pager hands a [`PageStore`] the encoded bytes of a page it evicts and gets back a
//! [`BlockRef`]; on restore it asks for the bytes again and then removes them. This version
//! ships the in-memory store ([`MemoryStore`]); a disk-backed store implements the same trait.

#[cfg(test)]
mod alone;
pub mod disk;
pub mod fallback;
mod memory;
mod table;

pub use disk::{Cipher, DiskOpenError, DiskOptions, DiskStore};
pub use fallback::FallbackStore;
pub use memory::{CompactionStats, MemoryStore};

use crate::page::PageId;

/// An opaque reference to a stored block, meaningful only to the store that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef(pub u64);

/// A store failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not get memory or space for a block (errno from the OS).
    #[error("out of memory for the page store (errno {0})")]
    OutOfMemory(i32),
    /// Reading or writing the backing medium failed (errno).
    #[error("store I/O failed (errno {0})")]
    Io(i32),
    /// The stored bytes failed verification (authentication or format).
    #[error("stored block failed verification (corrupt or tampered)")]
    Corrupt,
}

/// What a store reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Size of the backing file in bytes (0 for the in-memory store).
    pub file_bytes: u64,
    /// Bytes of live stored blocks (as handed to `put`).
    pub live_bytes: u64,
    /// `put` calls that reused the space of a removed block.
    pub slots_reused: u64,
    /// Writes to the backing medium that failed (the block was kept elsewhere).
    pub write_errors: u64,
    /// Blocks that failed authentication or verification on `load`.
    pub auth_failures: u64,
}

impl StoreError {
    /// The errno to report, if the failure came from the OS.
    pub fn errno(self) -> i32 {
        match self {
            StoreError::OutOfMemory(e) | StoreError::Io(e) => e,
            StoreError::Corrupt => 0,
        }
    }
}

/// A home for evicted pages.
///
/// # Contract
/// Every method runs with the pager lock held, and `put`, `load` and `remove` run inside the
/// page-fault handler (possibly a signal handler on a small stack, while the global allocator
/// may itself be ghost memory). An implementation must never allocate through the global
/// allocator on those paths (it may obtain memory directly from the OS), never take a lock that
/// other code can hold, and never ignore a system call's result.
pub trait PageStore: Send {
    /// Store the encoded bytes of `page` (1 to page-size bytes).
    fn put(&mut self, page: PageId, data: &[u8]) -> Result<BlockRef, StoreError>;
    /// The bytes stored as `block` (of length `len`), either borrowed from the store or read
    /// into `scratch` (at least a page long).
    fn load<'a>(
        &'a mut self,
        page: PageId,
        block: BlockRef,
        len: usize,
        scratch: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError>;
    /// Forget `block`; its space may be reused.
    fn remove(&mut self, page: PageId, block: BlockRef, len: usize);
    /// Bytes of memory (or file) the store has reserved, including free space.
    fn reserved_bytes(&self) -> u64;
    /// Counters and sizes for [`crate::Stats`].
    fn stats(&self) -> StoreStats;
    /// Remove the name of the store's file now, if it has one, leaving its data reachable
    /// through the open descriptor. Used at process exit for the process-wide instance, which
    /// is never dropped. The default does nothing (no file).
    fn unlink(&mut self) {}
    /// Give back now all the memory that moving blocks can free (see
    /// [`MemoryStore`]'s compaction). This may move every block, so it is for ordinary code
    /// and tests, not the fault path; references stay valid. The default does nothing.
    fn compact_all(&mut self) {}
}
