//! The disk store: evicted pages in a swap file that stays bounded by the live data, optionally
//! sealed with authenticated encryption.
//!
//! ```text
//!   pager: 16 bytes per page ──▶ BlockRef ─┐ (offset, class, generation: all a live block needs)
//!                                          ▼
//!   swap file   ┌──────┬────────┬──────┬────────────┬──────┬─────
//!               │ slot │ slot   │ free │ slot       │ slot │ ...      grows only when no free
//!               └──────┴────────┴──────┴────────────┴──────┴─────     slot of the class fits
//!   free stacks: one per size class (16), 8 bytes per free slot, anonymous mappings
//!   sealing   : [counter 8][tag 16][ciphertext]   (encryption on; raw bytes when off)
//! ```
//!
//! **RAM per evicted page** (the figure for the README): a live block costs this store
//! **0 bytes** — its slot, size class and write generation all live in the 64-bit `BlockRef`
//! the pager already keeps in its 16-byte entry. The store's own memory is fixed: 16 free-stack
//! mappings of 4 KiB, plus with encryption one page for the key and a page-plus-24-byte sealing
//! buffer — 66,136 bytes without encryption, 74,352 with it, for 4 KiB pages (of which only
//! touched pages cost RAM) — and 8 bytes per *free* slot, given back as the free stacks drain.
//! Measured by `tests/disk_store_ram.rs` with a counting global allocator and the process's
//! anonymous RSS: 100,000 evicted pages (5,000 encrypted) add 0 bytes of heap, no mapping of
//! the store's own ([`DiskStore::index_bytes`] unchanged) and under 32 KiB of anonymous RSS
//! (one or two pages of it).
//!
//! **Space**: slots come in 16 size classes of `page_size / 16` bytes (256 bytes for 4 KiB
//! pages) plus the 24 bytes of sealing overhead, rounded to 32. A freed slot is reused before
//! the file grows, and a free slot up to twice the size needed may serve a smaller block (with
//! strict classes, changing block sizes left the file at 2.3–3.0× the live data; with this,
//! 1.6–1.8×). Measured by `bounded_file_*` (`tests/disk_store.rs`): re-evicting the same 64
//! pages 10,000 times, the file ends at 1.06× (1.07× encrypted) their stored size when each
//! page keeps its size, and when every eviction changes it at 1.60× (1.62× encrypted) with
//! sizes as the pager makes them (LZ4 blocks up to 3/4 page, a quarter raw pages) and 1.73×
//! with uniform sizes.
//!
//! **Stack**: one put + load + remove in a signal handler takes 0.5 KiB of stack without
//! encryption, 1.8 KiB with AES-256-GCM and 4.7 KiB with ChaCha20-Poly1305, beyond the
//! kernel's signal frame (release build; debug builds need several times more, see
//! `docs/aead.md`).
//!
//! **Failures**: a write error (`ENOSPC`, `EFBIG`, `EIO`, ...) fails the `put` with
//! [`StoreError::Io`] and gives the slot back, so nothing is half-stored; wrap the store in
//! [`FallbackStore`](super::FallbackStore) to keep such pages in memory instead. A read error
//! is [`StoreError::Io`]; a block that fails authentication (or a `BlockRef` that names no slot
//! of this file) is [`StoreError::Corrupt`] and counted in `auth_failures`. Without encryption
//! the bytes are returned as stored: the file is then trusted (mode 0600, removed on drop).

mod file;
mod seal;
mod slots;

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use self::file::SwapFile;
pub use self::seal::Cipher;
use self::seal::{OVERHEAD, Sealer, SealerError};
use self::slots::{Geometry, Mapping, Slots, Taken};
use super::{BlockRef, PageStore, StoreError, StoreStats};
use crate::page::PageId;

/// How to open a [`DiskStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskOptions {
    /// Seal every block with authenticated encryption under a random key held only in memory
    /// (default `false`). The cipher is [`Cipher::preferred`] for this CPU.
    pub encrypt: bool,
}

/// Why a [`DiskStore`] could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskOpenError {
    /// The path is a symbolic link: it is never followed (it could make the store truncate
    /// someone else's file).
    #[error("refusing a symbolic link at {}", path.display())]
    Symlink {
        /// The path as given.
        path: PathBuf,
    },
    /// The path names something other than a regular file or a directory (a FIFO, a device,
    /// a socket).
    #[error("refusing {}: not a regular file or a directory", path.display())]
    NotRegularFile {
        /// The path as given.
        path: PathBuf,
    },
    /// The path names a regular file the store must not take over.
    #[error("refusing {}: {reason}", path.display())]
    Foreign {
        /// The path as given.
        path: PathBuf,
        /// Why (another owner, other hard links).
        reason: &'static str,
    },
    /// Opening or creating the file failed.
    #[error("cannot open the swap file {}: {source}", path.display())]
    Open {
        /// The path as given.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The path is a directory, and an anonymous file (`O_TMPFILE`) could not be made in it.
    #[error("cannot create an anonymous swap file in directory {}: {source}", path.display())]
    TempFile {
        /// The directory as given.
        path: PathBuf,
        /// The kernel's answer (`EOPNOTSUPP`: the file system has no `O_TMPFILE`).
        #[source]
        source: io::Error,
    },
    /// Preparing the opened file failed.
    #[error("cannot prepare the swap file {}: {what} failed: {source}", path.display())]
    Setup {
        /// The path as given.
        path: PathBuf,
        /// The call that failed.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Mapping the store's index or key memory failed.
    #[error("cannot map memory for the disk store: {0}")]
    Memory(#[source] io::Error),
    /// The OS random source could not supply a key.
    #[error("cannot get an encryption key from the OS random source: {0}")]
    Random(#[source] getrandom::Error),
    /// The page size is not a power of two between 512 bytes and 1 MiB.
    #[error("unsupported page size {0} (a power of two from 512 bytes to 1 MiB)")]
    PageSize(usize),
}

/// Evicted pages in a file. See the [module docs](self) for the layout and guarantees.
pub struct DiskStore {
    file: SwapFile,
    slots: Slots,
    sealer: Option<Sealer>,
    /// Where blocks are sealed before writing and read before opening (encryption on).
    buf: Option<Mapping>,
    page_size: usize,
    /// The file's size: the end of the furthest write (the last slot may extend past it).
    file_len: u64,
    live_bytes: u64,
    live_blocks: u64,
    write_errors: u64,
    auth_failures: u64,
}

impl DiskStore {
    /// Open a store for pages of `page_size` bytes in the file at `path`.
    ///
    /// - The file is created if missing and emptied if present; a relative path is relative to
    ///   the working directory at this call. It is removed when the store is dropped (only if
    ///   the path still names it).
    /// - It is opened `O_NOFOLLOW | O_CLOEXEC` with mode 0600: a symbolic link at the path is
    ///   refused ([`DiskOpenError::Symlink`]) and its target left untouched; so is anything that
    ///   is not a regular file ([`DiskOpenError::NotRegularFile`]), and a regular file of
    ///   another user or with other hard links ([`DiskOpenError::Foreign`]). Only then is the
    ///   file truncated (rather than with `O_TRUNC` at open, which would empty a hard-linked file
    ///   before it could be checked) and set to mode 0600.
    /// - If `path` is an existing directory, the store uses an anonymous file in it
    ///   (`O_TMPFILE`), which has no name and disappears with the store.
    pub fn open(
        path: &Path,
        page_size: usize,
        options: DiskOptions,
    ) -> Result<DiskStore, DiskOpenError> {
        Self::open_with_cipher(path, page_size, options.encrypt.then(Cipher::preferred))
    }

    /// [`open`](Self::open) with an explicit cipher (`None`: no encryption).
    pub fn open_with_cipher(
        path: &Path,
        page_size: usize,
        cipher: Option<Cipher>,
    ) -> Result<DiskStore, DiskOpenError> {
        if !page_size.is_power_of_two() || !(512..=1 << 20).contains(&page_size) {
            return Err(DiskOpenError::PageSize(page_size));
        }
        let memory = |e: Errno| DiskOpenError::Memory(e.into());
        let sealer = cipher.map(Sealer::new).transpose().map_err(|e| match e {
            SealerError::Memory(e) => memory(e),
            SealerError::Random(e) => DiskOpenError::Random(e),
        })?;
        let overhead = if sealer.is_some() { OVERHEAD } else { 0 };
        let slots = Slots::new(Geometry::new(page_size, overhead)).map_err(memory)?;
        let buf = match sealer {
            Some(_) => Some(Mapping::new(page_size + OVERHEAD).map_err(memory)?),
            None => None,
        };
        let file = SwapFile::open(path)?;
        Ok(DiskStore {
            file,
            slots,
            sealer,
            buf,
            page_size,
            file_len: 0,
            live_bytes: 0,
            live_blocks: 0,
            write_errors: 0,
            auth_failures: 0,
        })
    }

    /// The path the store was opened with.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Whether the store uses an anonymous file (the path was a directory).
    pub fn is_anonymous(&self) -> bool {
        self.file.is_anonymous()
    }

    /// The cipher sealing the blocks, if encryption is on.
    pub fn cipher(&self) -> Option<Cipher> {
        self.sealer.as_ref().map(Sealer::cipher)
    }

    /// Whether the key's memory is locked in RAM (encryption on and `mlock` allowed by
    /// `RLIMIT_MEMLOCK`); it is excluded from core dumps either way.
    pub fn key_locked(&self) -> bool {
        self.sealer.as_ref().is_some_and(Sealer::key_locked)
    }

    /// Blocks currently stored.
    pub fn live_blocks(&self) -> u64 {
        self.live_blocks
    }

    /// Free slots waiting for reuse.
    pub fn free_slots(&self) -> u64 {
        self.slots.free_slots()
    }

    /// Slots that will not be used again (generation exhausted after 2^25 writes, or a free
    /// stack that could not grow).
    pub fn retired_slots(&self) -> u64 {
        self.slots.retired()
    }

    /// Bytes of memory the store has mapped for itself: free stacks, sealing buffer, key page,
    /// and the store's own struct. Independent of the number of live blocks (see the module
    /// docs); an upper bound on the RAM, since untouched pages cost none.
    pub fn index_bytes(&self) -> u64 {
        let key = if self.sealer.is_some() {
            rustix::param::page_size() as u64
        } else {
            0
        };
        self.slots.index_bytes()
            + self.buf.as_ref().map_or(0, |b| b.len() as u64)
            + key
            + std::mem::size_of::<Self>() as u64
    }

    /// Give back the slot of a put whose write failed.
    fn abandon(&mut self, taken: Taken) {
        // A short write may have extended the file into a fresh slot: cut it back. If that
        // fails, the slot waits on its free stack.
        let offset = taken.slot.offset;
        let shrink = taken.fresh
            && self.slots.is_last(taken.slot)
            && match self.file.size() {
                Ok(size) if size <= offset => true,
                Ok(_) => self.file.truncate(offset).is_ok(),
                Err(_) => false,
            };
        self.slots.undo(taken, shrink);
        // Whatever happened, the kernel knows the file's size (if it cannot say, the figure
        // stays as it was: it is only a statistic).
        if let Ok(size) = self.file.size() {
            self.file_len = size;
        }
    }
}

impl PageStore for DiskStore {
    fn unlink(&mut self) {
        self.file.unlink();
    }

    fn put(&mut self, page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
        let len = data.len();
        if len == 0 || len > self.page_size {
            return Err(StoreError::Io(Errno::INVAL.raw_os_error()));
        }
        let taken = match self.slots.take(len) {
            Ok(t) => t,
            Err(e) => {
                self.write_errors += 1;
                return Err(e);
            }
        };
        let block = taken.slot.pack();
        let offset = taken.slot.offset;
        let written =
            match (&mut self.sealer, &mut self.buf) {
                (Some(sealer), Some(buf)) => sealer
                    .seal(page, block, data, buf.bytes_mut())
                    .and_then(|n| {
                        let sealed = &buf.bytes_mut()[..n];
                        self.file
                            .write_all(sealed, offset)
                            .map_err(StoreError::Io)?;
                        Ok(n)
                    }),
                _ => self
                    .file
                    .write_all(data, offset)
                    .map(|()| len)
                    .map_err(StoreError::Io),
            };
        match written {
            Ok(n) => {
                self.file_len = self.file_len.max(offset + n as u64);
                self.live_bytes += len as u64;
                self.live_blocks += 1;
                Ok(block)
            }
            Err(e) => {
                self.write_errors += 1;
                self.abandon(taken);
                Err(e)
            }
        }
    }

    fn load<'a>(
        &'a mut self,
        page: PageId,
        block: BlockRef,
        len: usize,
        scratch: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError> {
        let Some(slot) = self.slots.locate(block, len) else {
            self.auth_failures += 1;
            return Err(StoreError::Corrupt);
        };
        let out = scratch
            .get_mut(..len)
            .ok_or(StoreError::Io(Errno::INVAL.raw_os_error()))?;
        match (&self.sealer, &mut self.buf) {
            (Some(sealer), Some(buf)) => {
                let sealed = &mut buf.bytes_mut()[..len + OVERHEAD];
                self.file
                    .read_exact(sealed, slot.offset)
                    .map_err(StoreError::Io)?;
                match sealer.open(page, block, sealed, out) {
                    Ok(plain) => Ok(plain),
                    Err(seal::Refused) => {
                        self.auth_failures += 1;
                        Err(StoreError::Corrupt)
                    }
                }
            }
            _ => {
                self.file
                    .read_exact(out, slot.offset)
                    .map_err(StoreError::Io)?;
                Ok(out)
            }
        }
    }

    fn remove(&mut self, _page: PageId, block: BlockRef, len: usize) {
        match self.slots.locate(block, len) {
            Some(slot) => {
                self.slots.release(slot);
                self.live_bytes = self.live_bytes.saturating_sub(len as u64);
                self.live_blocks = self.live_blocks.saturating_sub(1);
            }
            None => debug_assert!(false, "remove of a block this store did not issue"),
        }
    }

    /// The end of the last slot: all the space the store holds in the file, free slots
    /// included (`stats().file_bytes` is the file's size, which the last slot may not reach).
    fn reserved_bytes(&self) -> u64 {
        self.slots.end()
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            file_bytes: self.file_len,
            live_bytes: self.live_bytes,
            slots_reused: self.slots.reused(),
            write_errors: self.write_errors,
            auth_failures: self.auth_failures,
        }
    }
}

#[cfg(test)]
mod tests;
