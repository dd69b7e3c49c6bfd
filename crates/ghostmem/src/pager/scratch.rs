//! Working memory for faults and evictions, allocated when the pager is created.
//!
//! Each fault in progress needs a page-sized buffer or three, a codec with its state, and a
//! stack larger than a signal stack (decryption and decompression in a debug build do not fit
//! in the ~8 KiB the runtime gives a signal handler). A pager owns a fixed set of these; a
//! fault claims one with `try_lock` (it never waits for one while holding anything), so up to
//! [`SCRATCHES`] faults of one instance proceed at once and further ones retry.

use std::sync::{Mutex, MutexGuard, TryLockError};

use super::readahead::READAHEAD;
use crate::codec::Codec;
use crate::sys::{FaultBuffer, FaultStack};

/// Faults of one instance that can be in progress at once.
pub(super) const SCRATCHES: usize = 16;

/// The buffers and codec one fault works with.
pub(super) struct Work {
    /// A page: the victim's contents on eviction, the decoded page on restore.
    pub page: FaultBuffer,
    /// The encoded victim.
    pub out: FaultBuffer,
    /// The stored block of the page being restored, copied out of the store.
    pub block: FaultBuffer,
    /// Readahead: the stored blocks of the pages brought in ahead, a page apart.
    pub blocks: FaultBuffer,
    /// Readahead: those pages decoded, one after the other.
    pub ahead: FaultBuffer,
    pub codec: Box<dyn Codec>,
}

pub(super) struct Scratch {
    pub stack: FaultStack,
    pub work: Work,
}

pub(super) struct Scratches {
    all: Box<[Mutex<Scratch>]>,
}

impl Scratches {
    pub fn new(page: usize, codec: &dyn Fn() -> Box<dyn Codec>) -> rustix::io::Result<Scratches> {
        let mut all = Vec::with_capacity(SCRATCHES);
        for _ in 0..SCRATCHES {
            all.push(Mutex::new(Scratch {
                stack: FaultStack::new()?,
                work: Work {
                    // Mapped directly: a scratch's buffers take RAM only once a fault uses
                    // them, and one thread's faults use one or two of the scratches.
                    page: FaultBuffer::new(page)?,
                    out: FaultBuffer::new(page)?,
                    block: FaultBuffer::new(page)?,
                    blocks: FaultBuffer::new(READAHEAD * page)?,
                    ahead: FaultBuffer::new(READAHEAD * page)?,
                    codec: codec(),
                },
            }));
        }
        Ok(Scratches {
            all: all.into_boxed_slice(),
        })
    }

    /// A free scratch, or `None` when all are in use. Never blocks.
    pub fn try_claim(&self) -> Option<MutexGuard<'_, Scratch>> {
        // Start at a place that differs between threads, so they do not all probe the same one.
        let start = thread_hint() % self.all.len();
        for i in 0..self.all.len() {
            match self.all[(start + i) % self.all.len()].try_lock() {
                Ok(g) => return Some(g),
                // A panic while a scratch was held leaves nothing inconsistent in it: its
                // contents are overwritten by every use.
                Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        None
    }

    /// A free scratch, yielding the processor until one is free.
    pub fn claim(&self) -> MutexGuard<'_, Scratch> {
        loop {
            if let Some(g) = self.try_claim() {
                return g;
            }
            std::thread::yield_now();
        }
    }
}

/// A cheap per-thread number: the address of a thread-local byte.
fn thread_hint() -> usize {
    thread_local!(static HINT: u8 = const { 0 });
    HINT.with(|h| std::ptr::from_ref(h) as usize >> 12)
}
