//! Scrubbing: zeroing the bytes of a page that no allocation holds, so that what the program
//! freed costs nothing once the page is stored.
//!
//! A slab page whose slots were mostly freed still holds the freed slots' old bytes, and an
//! eviction compresses them with the live ones: a page with one live slot of 128 costs the
//! store as much as a full one until the last slot goes and the heap releases the slab. The
//! heap calls [`Pager::scrub`] when a slab's live slots fall to half its capacity, then a
//! quarter, and so on (`heap.rs`), so a slab's pages cost the store at most about twice what
//! their live slots would.
//!
//! ```text
//!   entry of the page   scrub
//!   Resident            zero the free ranges in place (accessible: nothing can revoke it
//!                       while the pager lock is held, since eviction starts under the lock)
//!   Clean               made Resident first (writable, its kept block dropped), then the same
//!   Stored              decode the block, zero the free ranges, encode again; keep the new
//!                       block only if it is smaller (or the page is now zero/same-filled)
//!   anything else       nothing (fresh, zero and same-filled pages hold no old bytes worth
//!                       anything; a page in a fault's hands is left alone)
//! ```
#![allow(unsafe_code)]

use std::sync::PoisonError;

use super::evict::Encoded;
use super::restore::{Source, copy_block, decode};
use super::table::Entry;
use super::{Failure, Pager};
use crate::page::PageId;
use crate::sys::SignalsBlocked;

/// A page's free byte ranges: calls its argument with `(offset, len)` for each.
pub(crate) type FreeRanges<'a> = &'a dyn Fn(&mut dyn FnMut(usize, usize));

impl Pager {
    /// Zero the byte ranges `free` names in `page` (bytes that belong to no allocation), in
    /// RAM if the page is resident, in its stored block if it is evicted. Contents outside
    /// those ranges never change. Ordinary code only; takes the pager lock for the whole step.
    pub fn scrub(&self, page: PageId, free: FreeRanges<'_>) -> Result<(), Failure> {
        // The same order as `lock_quiet`: signals blocked, a scratch, then the lock (a fault
        // holding a scratch may be waiting for the lock; we never wait for a scratch with it).
        let _blocked = SignalsBlocked::new();
        let mut scratch = self.scratches.claim();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = &mut *st;
        // A clean page is written in place like a resident one (its kept block would go stale).
        self.make_writable(st, page)?;
        let entry = st.table.get(page);
        match entry {
            Entry::Resident { .. } => {
                let arena = self.backend.arena();
                free(&mut |offset, len| {
                    // SAFETY: the page is resident, so accessible, and stays so: eviction
                    // moves a page out of `Resident` under the lock we hold before revoking
                    // it, and release takes the lock too. The ranges belong to no allocation
                    // (the caller's contract), so no thread uses those bytes.
                    unsafe { arena.zero(page, offset, len) }
                });
                Ok(())
            }
            Entry::Stored { block, len, raw } => {
                let work = &mut scratch.work;
                copy_block(st, work, page, block, len as usize)?;
                decode(
                    work,
                    Source::Block {
                        len: len as usize,
                        raw,
                    },
                )?;
                free(&mut |offset, n| work.page[offset..offset + n].fill(0));
                let encoded = Self::encode(work, st.compress);
                if let Encoded::Data { len: new, .. } = encoded
                    && new >= len as usize
                {
                    // No smaller (a raw block is a whole page): keep the block we have.
                    return Ok(());
                }
                let scrubbed = Self::store_victim(st, work, page, encoded)?;
                st.store.remove(page, block, len as usize);
                self.count_evicted(entry, false);
                self.count_evicted(scrubbed, true);
                st.table.set(page, scrubbed);
                self.publish_store_stats(st);
                Ok(())
            }
            Entry::Free
            | Entry::Fresh
            | Entry::Clean { .. } // made writable above
            | Entry::Zero
            | Entry::Same(_)
            | Entry::Restoring
            | Entry::Evicting => Ok(()),
        }
    }
}
