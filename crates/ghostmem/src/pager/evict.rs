//! Evicting a page: revoke, read its final contents, encode, store, free its memory.
//!
//! The slow part ([`Pager::encode_victim`]) runs without the pager lock; storing the block and
//! publishing the new entry run with it. The same steps serve the fault path (a victim picked
//! to make room) and ordinary code (shrinking the budget).

use std::sync::PoisonError;

use super::scratch::Work;
use super::table::{Entry, Frame};
use super::{Failure, Pager, State, failed, store_failure};
use crate::codec::{Codec, PageClass, classify, compressed_limit};
use crate::page::{PageId, PageRun};
use crate::stats::{add, sub};

/// A victim's contents, encoded, waiting to be stored.
#[derive(Debug, Clone, Copy)]
pub(super) enum Encoded {
    Zero,
    Same(u64),
    /// `len` bytes in `Work::out`, compressed or (`raw`) the page as it is.
    Data {
        len: usize,
        raw: bool,
    },
}

impl Pager {
    /// Revoke `victim` and encode its final contents into `work`. On failure the page is
    /// accessible again and nothing changed.
    pub(super) fn encode_victim(
        &self,
        work: &mut Work,
        victim: PageId,
        compress: bool,
    ) -> Result<Encoded, Failure> {
        // Revoke first: from here on no thread can store to the page, so what we read is final.
        self.backend
            .revoke(PageRun::one(victim))
            .map_err(failed("revoking access"))?;
        if let Err(e) = self.backend.read(PageRun::one(victim), &mut work.page) {
            self.give_back(victim)?;
            return Err(failed("reading the page")(e));
        }
        Ok(Self::encode(work, compress))
    }

    /// Encode the page in `work.page` into `work.out`.
    pub(super) fn encode(work: &mut Work, compress: bool) -> Encoded {
        Self::encode_from(&work.page, &mut *work.codec, &mut work.out, compress)
    }

    /// Encode `page` into `out` (a page long): compressed when it compresses to at most
    /// [`compressed_limit`], else as it is.
    pub(super) fn encode_from(
        page: &[u8],
        codec: &mut dyn Codec,
        out: &mut [u8],
        compress: bool,
    ) -> Encoded {
        match classify(page) {
            PageClass::Zero => Encoded::Zero,
            PageClass::Same(word) => Encoded::Same(word),
            PageClass::Data => {
                let limit = compressed_limit(page.len());
                let compressed = if compress {
                    codec.compress(page, &mut out[..limit])
                } else {
                    None
                };
                match compressed {
                    Some(len) => Encoded::Data { len, raw: false },
                    None => {
                        out[..page.len()].copy_from_slice(page);
                        Encoded::Data {
                            len: page.len(),
                            raw: true,
                        }
                    }
                }
            }
        }
    }

    /// Store an encoded victim (pager lock held) and return its new entry. On failure nothing
    /// is stored.
    pub(super) fn store_victim(
        st: &mut State,
        work: &Work,
        victim: PageId,
        encoded: Encoded,
    ) -> Result<Entry, Failure> {
        Self::store_encoded(st, &work.out, victim, encoded)
    }

    /// [`Pager::store_victim`] for a victim encoded into `out` instead of `Work::out`.
    fn store_encoded(
        st: &mut State,
        out: &[u8],
        victim: PageId,
        encoded: Encoded,
    ) -> Result<Entry, Failure> {
        Ok(match encoded {
            Encoded::Zero => Entry::Zero,
            Encoded::Same(word) => Entry::Same(word),
            Encoded::Data { len, raw } => {
                let block = st
                    .store
                    .put(victim, &out[..len])
                    .map_err(|e| store_failure("storing an evicted page", e))?;
                Entry::Stored {
                    block,
                    len: u32::try_from(len).expect("a page fits in u32"),
                    raw,
                }
            }
        })
    }

    /// Free the memory of a victim whose contents are stored. On failure the block is removed
    /// again (pass the lock for that) and the page stays accessible.
    pub(super) fn discard_victim(&self, victim: PageId) -> rustix::io::Result<()> {
        self.backend.discard(PageRun::one(victim))
    }

    /// Give a victim its access back after a failed eviction.
    pub(super) fn give_back(&self, victim: PageId) -> Result<(), Failure> {
        self.backend
            .unrevoke(PageRun::one(victim))
            .map_err(failed("giving access back after a failed eviction"))
    }

    /// Count an eviction that completed with `entry`.
    pub(super) fn count_eviction(&self, entry: Entry) {
        let c = &self.counters;
        sub(&c.resident_pages, 1);
        add(&c.evictions, 1);
        self.count_evicted(entry, true);
    }

    /// Evict the resident page `victim` now, from ordinary code (pager lock held, no fault in
    /// progress). Its CLOCK frame is left to the caller. On failure the page is still resident
    /// and accessible (its entry never stopped saying so).
    pub(super) fn evict_locked(
        &self,
        st: &mut State,
        work: &mut Work,
        victim: PageId,
    ) -> Result<(), Failure> {
        if let Some(entry) = st.table.get(victim).kept_block() {
            // A clean page: revoked already, its block in the store. On failure it stays clean.
            self.discard_victim(victim)
                .map_err(failed("freeing the page"))?;
            st.set_evicted(victim, entry);
            self.count_eviction(entry);
            self.publish_store_stats(st);
            return Ok(());
        }
        let encoded = self.encode_victim(work, victim, st.compress)?;
        let entry = match Self::store_victim(st, work, victim, encoded) {
            Ok(entry) => entry,
            Err(f) => {
                self.give_back(victim)?;
                return Err(f);
            }
        };
        if let Err(e) = self.discard_victim(victim) {
            if let Entry::Stored { block, len, .. } = entry {
                st.store.remove(victim, block, len as usize);
            }
            self.give_back(victim)?;
            return Err(failed("freeing the page")(e));
        }
        st.set_evicted(victim, entry);
        self.count_eviction(entry);
        self.publish_store_stats(st);
        Ok(())
    }

    /// Evict `batch` (sorted by page; ordinary code or the fault path, pager lock not held):
    /// move what it can to the victims' spare slots (see `spare.rs`), revoke each other run
    /// of neighbouring victims, encode each victim that is not clean and store the encoded
    /// ones a group at a time (one lock a group), then free the memory of the runs not moved
    /// (one call where the kernel allows it). Never allocates. On failure no memory was freed
    /// and every victim is in place and accessible (and writable, clean ones too) again;
    /// blocks already stored, clean pages' kept blocks included, are left in `batch` for the
    /// caller to remove. Where even that fails, the process stops (`sys::fatal`): a victim
    /// that can be neither evicted nor given back would fault forever.
    pub(super) fn evict_runs(
        &self,
        work: &mut Work,
        batch: &mut [Victim],
        compress: bool,
    ) -> Result<(), Failure> {
        self.stash_victims(batch)?;
        // Every run, clean ones and those not revoked yet too: a victim given back is
        // writable again (the caller makes it `Resident`).
        let give_back = |batch: &[Victim], scratch: &mut [u8]| {
            let given = self.unstash_victims(batch, scratch).and_then(|()| {
                runs_where(batch, |v| !v.stashed).try_for_each(|(_, run)| {
                    self.backend
                        .unrevoke(run)
                        .map_err(failed("giving access back after a failed eviction"))
                })
            });
            if given.is_err() {
                crate::sys::fatal(
                    "ghostmem: fatal: giving pages back after a failed eviction failed\n",
                );
            }
        };
        for (at, run) in runs_where(batch, |v| !v.stashed) {
            if batch[at..at + run.count as usize]
                .iter()
                .all(|v| v.entry.is_some())
            {
                // Clean pages are revoked already; revoking them again would cost a TLB flush.
                continue;
            }
            if let Err(e) = self.backend.revoke(run) {
                give_back(batch, &mut work.page);
                return Err(failed("revoking access")(e));
            }
        }
        // Encode a group of victims into `Work::blocks` (readahead uses it only after the
        // eviction), then store the group under one lock: two threads evicting at once meet
        // at the lock once a group, not once a page.
        let size = work.page.len();
        let group = work.blocks.len() / size;
        let mut start = 0;
        while start < batch.len() {
            let end = (start + group).min(batch.len());
            let mut encoded = [None; MOST_RUNS];
            let Work {
                page,
                codec,
                blocks,
                ..
            } = &mut *work;
            for i in start..end {
                if batch[i].entry.is_some() {
                    // A clean page: its block is in the store already.
                    continue;
                }
                let out = &mut blocks[(i - start) * size..(i - start + 1) * size];
                let mut encode = |contents: &[u8]| {
                    encoded[i] = Some(Self::encode_from(contents, &mut **codec, out, compress));
                };
                if batch[i].stashed {
                    self.backend
                        .with_spare(batch[i].frame, &mut |contents| encode(contents));
                } else if let Err(e) = self.backend.lend(batch[i].page, page, &mut encode) {
                    give_back(batch, &mut work.page);
                    return Err(failed("reading the page")(e));
                }
            }
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for i in start..end {
                let Some(code) = encoded[i] else {
                    continue;
                };
                let out = &work.blocks[(i - start) * size..(i - start + 1) * size];
                match Self::store_encoded(&mut st, out, batch[i].page, code) {
                    Ok(entry) => batch[i].entry = Some(entry),
                    Err(f) => {
                        drop(st);
                        give_back(batch, &mut work.page);
                        return Err(f);
                    }
                }
            }
            drop(st);
            start = end;
        }
        let mut all = [PageRun::one(PageId(0)); MOST_RUNS];
        let mut count = 0;
        for (_, run) in runs_where(batch, |v| !v.stashed) {
            all[count] = run;
            count += 1;
        }
        match self.backend.discard_runs(&all[..count]) {
            Ok(()) => Ok(()),
            Err((0, e)) => {
                give_back(batch, &mut work.page);
                Err(failed("freeing the pages")(e))
            }
            // Some runs are freed already: their victims cannot go back. Freeing is what
            // cannot fail short of a kernel bug; stop here like the fault path does.
            Err(_) => crate::sys::fatal("ghostmem: fatal: freeing evicted pages failed midway\n"),
        }
    }
}

/// Most runs one batch of victims forms (a batch is at most this many pages).
pub(super) const MOST_RUNS: usize = 128;

/// A page chosen for eviction: its CLOCK frame, whether its memory moved to the frame's spare
/// slot, and once stored (or from the start, for a clean page: its kept block), its new entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Victim {
    pub page: PageId,
    pub frame: Frame,
    pub entry: Option<Entry>,
    pub stashed: bool,
}

impl Victim {
    /// A victim not yet evicted: `entry` is its kept block if it is clean.
    pub fn new(page: PageId, frame: Frame, entry: Option<Entry>) -> Victim {
        Victim {
            page,
            frame,
            entry,
            stashed: false,
        }
    }
}

/// The runs of consecutive pages in `batch` (sorted by page), without allocating.
#[cfg(test)]
pub(super) fn runs(batch: &[Victim]) -> impl Iterator<Item = PageRun> + '_ {
    runs_where(batch, |_| true).map(|(_, run)| run)
}

/// The runs of consecutive pages among neighbouring victims of `batch` (sorted by page) that
/// `keep` accepts, each with the index of its first victim; without allocating.
pub(super) fn runs_where<'a>(
    batch: &'a [Victim],
    keep: impl Fn(&Victim) -> bool + 'a,
) -> impl Iterator<Item = (usize, PageRun)> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        while !keep(batch.get(i)?) {
            i += 1;
        }
        let first = batch[i].page;
        let mut count = 1;
        while batch
            .get(i + count as usize)
            .is_some_and(|v| keep(v) && v.page.0 == first.0 + count)
        {
            count += 1;
        }
        let at = i;
        i += count as usize;
        Some((at, PageRun { first, count }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_victims_form_runs() {
        let batch: Vec<_> = [3u32, 4, 5, 9, 11, 12]
            .iter()
            .map(|&p| Victim::new(PageId(p), 0, None))
            .collect();
        let found: Vec<_> = runs(&batch).map(|r| (r.first.0, r.count)).collect();
        assert_eq!(found, vec![(3, 3), (9, 1), (11, 2)]);
        assert_eq!(runs(&[]).count(), 0);
    }
}
