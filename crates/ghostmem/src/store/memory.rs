//! The in-memory store: size-classed blocks in chunks of memory mapped directly from the OS,
//! reached through handles so that blocks can move and memory can go back to the OS.
//!
//! ```text
//!   BlockRef = handle h                       (what the pager keeps; never changes)
//!        │
//!        ▼
//!   handle table (8 B per handle)           chunk descriptors (out of band, one per chunk)
//!   ┌──────────────────────────┐            ┌─────────────────────────────────────────────┐
//!   │ h: chunk c << 6 | slot s │──────────▶ │ c: base, class, used (u64 bitmap), touched, │
//!   │                          │            │    prev/next (fullness list), owner[64]     │
//!   │ free: 1 << 63 | next     │            │                                             │
//!   └──────────────────────────┘            └───────────────┬─────────────────────────────┘
//!                                                           │ base
//!                                                           ▼
//!   region of class k (one anonymous mapping; 16 chunks, then each region twice the last)
//!   ┌─────────────────────────────────────┬─────────────────────┬──────────────────────┐
//!   │ chunk: slot 0 │ slot 1 │ … │ slot n │ chunk (discarded:   │ not carved yet ...   │
//!   │ (n ≤ 64 slots of (k+1) granules)    │ MADV_DONTNEED, 0 B) │                      │
//!   └─────────────────────────────────────┴─────────────────────┴──────────────────────┘
//!   granule = page / 64 (64 bytes on 4 KiB pages); nothing but slots inside a chunk
//!   owner[s] = the handle whose block is in slot s (used to update it when the block moves)
//! ```
//!
//! **Size classes.** A block of `len` bytes goes to class `ceil(len / granule) - 1`, so it wastes
//! less than one granule (1/64 of a page). A class's chunk is 64 slots when that is at most 16
//! pages (classes up to a quarter page: a whole number of pages, nothing left over); larger
//! classes take the chunk of 1 to 16 pages that leaves the least at its end (0.5 % on average
//! on 4 KiB pages, at most 5 % for the classes just under a page). Occupancy is one `u64`.
//!
//! **Fullness groups** (as zsmalloc's): each class keeps its partially used chunks in eight
//! lists by the fraction of slots used, and its empty chunks in one more. `put` takes a slot in
//! the fullest partial chunk, so chunks fill up and sparse ones drain.
//!
//! **Giving memory back.** A chunk that becomes empty is discarded with `MADV_DONTNEED`: its
//! pages go back to the OS at once, and its address range is kept for the class's next chunk
//! (unmapping each chunk would split the mapping and could run into the process's limit on
//! mappings). One empty chunk per class is kept while the class has no partial chunk, so a
//! block going in and out of a class does not discard and refault a chunk each time.
//! Compaction moves blocks out of a class's emptiest partial chunk into its fullest, updating
//! each moved block's handle, until the source is empty and can be discarded. Afterwards a
//! class holds `ceil(blocks / slots)` chunks: the store's chunks exceed its blocks' slots by
//! less than one chunk per size class in use.
//!
//! **When compaction runs.** The store tracks the bytes compaction could free (per class: its
//! chunks minus the `ceil(blocks / slots)` it needs). When that passes 1/256 of the chunk bytes
//! (and 32 pages), every `remove` does a bounded step — at most 8 block moves, a discard
//! costing as much as 4 — until it falls under 1/512 (hysteresis). So no fault waits for more
//! than a few small copies, and the store's memory follows its contents down.
//! [`PageStore::compact_all`] runs compaction to completion.
//!
//! **The fault path.** `put`, `load` and `remove` never use the global allocator: regions, the
//! handle table, the descriptors and the region list are all mapped directly (the tables grow
//! by mapping new segments, see [`super::table`]). Only the class array is allocated, by
//! [`MemoryStore::new`]. The tables keep their high-water mark — 8 bytes per handle, 296 per
//! chunk range ever carved — and count in [`PageStore::reserved_bytes`] with the chunks that
//! hold memory; discarded ranges are address space only
//! ([`CompactionStats::address_space_bytes`]).
#![allow(unsafe_code)]

use std::mem::size_of;
use std::ptr;

use super::table::{Table, ZeroValid, map, unmap};
use super::{BlockRef, PageStore, StoreError, StoreStats};
use crate::page::PageId;

/// Most slots per chunk: the occupancy bitmap is one `u64`.
const SLOTS: usize = 64;
/// Largest chunk, in pages.
const MAX_CHUNK_PAGES: usize = 16;
/// Chunks in a class's first region of address space (later regions double, up to
/// `MAX_REGION_BYTES`).
const FIRST_REGION_CHUNKS: usize = 16;
const MAX_REGION_BYTES: usize = 1 << 30;
/// Fullness groups for partial chunks (used slots 1..=63).
const GROUPS: usize = 8;
/// The list of a class's empty chunks (the list numbers after the groups).
const LIST_EMPTY: u8 = 8;
/// Full chunks are in no list.
const LIST_FULL: u8 = 9;
/// Chunks whose memory went back to the OS, kept for their address range.
const LIST_DISCARDED: u8 = 10;
/// End of a list.
const NIL: u32 = u32::MAX;
/// Tag of a free handle-table entry (the rest is the next free handle).
const FREE: u64 = 1 << 63;
/// Work a compaction step may do inside `remove`: a block move costs 1, an unmap 4.
const STEP_BUDGET: usize = 8;
const MOVE_COST: usize = 1;
const RELEASE_COST: usize = 4;
/// Reclaimable memory never triggers compaction below this many pages.
const MIN_RECLAIM_PAGES: u64 = 32;

/// One chunk's metadata, kept out of band in the descriptor table.
#[repr(C)]
struct Chunk {
    /// Address of the chunk's slots (set when the chunk is carved, kept while discarded).
    base: usize,
    /// Bit `s`: slot `s` holds a block.
    used: u64,
    /// Bit `s`: slot `s` has held a block since the chunk was mapped (for `slots_reused`).
    touched: u64,
    prev: u32,
    /// Next chunk in the same list (fullness, empty or discarded).
    next: u32,
    class: u16,
    /// The list the chunk is in: a fullness group, `LIST_EMPTY`, `LIST_FULL` (none) or
    /// `LIST_DISCARDED`.
    list: u8,
    /// The handle of the block in each used slot.
    owner: [u32; SLOTS],
}

// SAFETY: `Chunk` is integers and an integer array; all zeros is a valid (free) descriptor.
unsafe impl ZeroValid for Chunk {}

/// One size class.
struct Class {
    /// Bytes per slot.
    size: usize,
    /// Slots per chunk (at most 64).
    slots: u32,
    /// Bytes per chunk (whole pages).
    chunk_bytes: usize,
    /// Heads of the partial-chunk lists, by fullness (group 0: emptiest).
    groups: [u32; GROUPS],
    /// Head of the list of empty chunks.
    empty: u32,
    /// Head of the list of discarded chunks (address ranges to carve chunks from again).
    discarded: u32,
    /// Unused address space of the class's newest region, and the next region's size.
    bump: usize,
    end: usize,
    next_region: usize,
    chunks: u64,
    partial: u64,
    empties: u64,
    /// Used slots over all the class's chunks.
    blocks: u64,
}

impl Class {
    /// Class of `size`-byte slots on pages of `page` bytes: 64 slots when that is at most
    /// 16 pages (a whole number of pages, since `size` is a multiple of page / 64), else the
    /// chunk of 1 to 16 pages that wastes the smallest fraction at its end (the largest such).
    fn new(size: usize, page: usize) -> Class {
        let (slots, chunk_bytes) = if SLOTS * size <= MAX_CHUNK_PAGES * page {
            (SLOTS, SLOTS * size)
        } else {
            (1..=MAX_CHUNK_PAGES)
                .map(|p| (p * page / size, p * page))
                .min_by(|&(n1, b1), &(n2, b2)| {
                    // Waste fraction (b - n·size) / b, compared without division; ties: larger.
                    let w1 = (b1 - n1 * size) * b2;
                    let w2 = (b2 - n2 * size) * b1;
                    w1.cmp(&w2).then(b2.cmp(&b1))
                })
                .expect("at least one chunk size")
        };
        Class {
            size,
            slots: u32::try_from(slots).expect("at most 64 slots"),
            chunk_bytes,
            groups: [NIL; GROUPS],
            empty: NIL,
            discarded: NIL,
            bump: 0,
            end: 0,
            next_region: FIRST_REGION_CHUNKS * chunk_bytes,
            chunks: 0,
            partial: 0,
            empties: 0,
            blocks: 0,
        }
    }

    /// Bitmap of a full chunk.
    fn full(&self) -> u64 {
        u64::MAX >> (64 - self.slots)
    }

    /// Chunk bytes compaction could free: chunks beyond the `ceil(blocks / slots)` needed.
    fn reclaimable(&self) -> u64 {
        (self.chunks - self.blocks.div_ceil(u64::from(self.slots))) * self.chunk_bytes as u64
    }

    /// The fullness list for a chunk with `used` of its slots in use.
    fn list_for(&self, used: u32) -> u8 {
        match used {
            0 => LIST_EMPTY,
            n if n == self.slots => LIST_FULL,
            n => u8::try_from((n - 1) as usize * GROUPS / (self.slots as usize - 1))
                .expect("a group index"),
        }
    }
}

/// A range of address space reserved for chunks.
#[repr(C)]
struct Region {
    addr: usize,
    len: usize,
}

// SAFETY: two integers; zeros are an empty region.
unsafe impl ZeroValid for Region {}

fn index(i: u32) -> usize {
    i as usize
}

fn id(i: usize) -> u32 {
    u32::try_from(i).expect("table indexes fit u32 (checked when handed out)")
}

/// Evicted pages kept in process memory; see the module docs.
pub struct MemoryStore {
    page: usize,
    granule: usize,
    classes: Box<[Class]>,
    /// Per handle: `chunk << 6 | slot`, or `FREE | next free handle`.
    handles: Table<u64>,
    chunks: Table<Chunk>,
    regions: Table<Region>,
    free_handle: u32,
    /// Bytes of all chunks holding memory (not discarded).
    chunk_bytes: u64,
    /// Bytes of all regions.
    address_space: u64,
    /// Sum of every class's `reclaimable()`.
    reclaimable: u64,
    /// Compaction steps run on `remove` until `reclaimable` falls under the low mark.
    compacting: bool,
    live_bytes: u64,
    reused: u64,
    blocks_moved: u64,
    chunks_released: u64,
    release_errors: u64,
}

// SAFETY: the store exclusively owns its mappings; the raw addresses it keeps are not tied to a
// thread, and all access goes through `&mut self`.
unsafe impl Send for MemoryStore {}

/// What a store reports about its compaction (see [`MemoryStore::compaction_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionStats {
    /// Chunks mapped now.
    pub chunks: u64,
    /// Blocks moved by compaction since the store was made.
    pub blocks_moved: u64,
    /// Chunks given back to the OS since the store was made.
    pub chunks_released: u64,
    /// Chunks whose memory the kernel refused to take back (`MADV_DONTNEED` failed): they
    /// stay in their class, empty, to be tried again.
    pub release_errors: u64,
    /// Bytes that compaction could give back now.
    pub reclaimable_bytes: u64,
    /// Bytes of the handle table, the chunk descriptors and the region list (part of
    /// `reserved_bytes`; they keep their high-water mark).
    pub table_bytes: u64,
    /// Address space reserved for chunks, including the ranges of discarded chunks (which
    /// hold no memory).
    pub address_space_bytes: u64,
}

impl MemoryStore {
    /// An empty store for pages of `page_size` bytes (a power of two, at least 4 KiB). Maps
    /// nothing until the first `put`.
    pub fn new(page_size: usize) -> Self {
        assert!(
            page_size.is_power_of_two() && page_size >= 4096,
            "page size {page_size} is not a power of two of at least 4 KiB"
        );
        let granule = page_size / SLOTS;
        let classes = (1..=SLOTS)
            .map(|k| Class::new(k * granule, page_size))
            .collect();
        MemoryStore {
            page: page_size,
            granule,
            classes,
            handles: Table::new(page_size),
            chunks: Table::new(page_size),
            regions: Table::new(page_size),
            free_handle: NIL,
            chunk_bytes: 0,
            address_space: 0,
            reclaimable: 0,
            compacting: false,
            live_bytes: 0,
            reused: 0,
            blocks_moved: 0,
            chunks_released: 0,
            release_errors: 0,
        }
    }

    /// Bytes of the chunk that holds a block of `len` bytes (1 to a page): the most that a
    /// size class in use can hold beyond its blocks once compaction has run.
    pub fn chunk_bytes_for(&self, len: usize) -> usize {
        self.classes[self.class_of(len)].chunk_bytes
    }

    /// Bytes of the slot that holds a block of `len` bytes (1 to a page): `len` rounded up to
    /// a granule (1/64 of a page).
    pub fn slot_bytes_for(&self, len: usize) -> usize {
        self.classes[self.class_of(len)].size
    }

    /// Figures about chunks and compaction.
    pub fn compaction_stats(&self) -> CompactionStats {
        CompactionStats {
            chunks: self.classes.iter().map(|c| c.chunks).sum(),
            blocks_moved: self.blocks_moved,
            chunks_released: self.chunks_released,
            release_errors: self.release_errors,
            reclaimable_bytes: self.reclaimable,
            table_bytes: self.table_bytes(),
            address_space_bytes: self.address_space,
        }
    }

    fn table_bytes(&self) -> u64 {
        (self.handles.mapped_bytes() + self.chunks.mapped_bytes() + self.regions.mapped_bytes())
            as u64
    }

    fn class_of(&self, len: usize) -> usize {
        len.div_ceil(self.granule) - 1
    }

    /// Run `f`, which changes class `class`, keeping `self.reclaimable` up to date.
    fn tracking<R>(&mut self, class: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let before = self.classes[class].reclaimable();
        let r = f(self);
        let after = self.classes[class].reclaimable();
        self.reclaimable = self.reclaimable - before + after;
        r
    }

    // ----- handles -----

    fn take_handle(&mut self) -> Result<u32, StoreError> {
        if self.free_handle != NIL {
            let h = self.free_handle;
            let entry = *self.handles.get(index(h));
            debug_assert!(entry & FREE != 0, "free handle list holds a live handle");
            self.free_handle = u32::try_from(entry & !FREE).unwrap_or(NIL);
            return Ok(h);
        }
        if self.handles.len() >= index(NIL) {
            return Err(StoreError::OutOfMemory(
                rustix::io::Errno::NOMEM.raw_os_error(),
            ));
        }
        self.handles.push().map(id)
    }

    fn give_back_handle(&mut self, h: u32) {
        *self.handles.get_mut(index(h)) = FREE | u64::from(self.free_handle);
        self.free_handle = h;
    }

    /// The (chunk, slot) of a live block, or `None` if `block` is not one.
    fn resolve(&self, block: BlockRef) -> Option<(u32, usize)> {
        self.locate(block).map(|(chunk, slot, _)| (chunk, slot))
    }

    /// The (chunk, slot, slot address) of a live block, or `None` if `block` is not one.
    fn locate(&self, block: BlockRef) -> Option<(u32, usize, usize)> {
        let h = u32::try_from(block.0).ok()?;
        if index(h) >= self.handles.len() {
            return None;
        }
        let entry = *self.handles.get(index(h));
        if entry & FREE != 0 {
            return None;
        }
        let chunk = u32::try_from(entry >> 6).ok()?;
        let slot = (entry & 63) as usize;
        if index(chunk) >= self.chunks.len() {
            return None;
        }
        let c = self.chunks.get(index(chunk));
        let addr = c.base + slot * self.classes[usize::from(c.class)].size;
        (c.used & (1 << slot) != 0 && c.owner[slot] == h).then_some((chunk, slot, addr))
    }

    // ----- chunk lists -----

    fn head(&mut self, class: usize, list: u8) -> &mut u32 {
        let c = &mut self.classes[class];
        if list == LIST_EMPTY {
            &mut c.empty
        } else {
            &mut c.groups[usize::from(list)]
        }
    }

    fn link(&mut self, chunk: u32, list: u8) {
        let class = usize::from(self.chunks.get(index(chunk)).class);
        if list != LIST_FULL {
            let head = *self.head(class, list);
            if head != NIL {
                self.chunks.get_mut(index(head)).prev = chunk;
            }
            let c = self.chunks.get_mut(index(chunk));
            c.prev = NIL;
            c.next = head;
            *self.head(class, list) = chunk;
        }
        self.chunks.get_mut(index(chunk)).list = list;
        let k = &mut self.classes[class];
        match list {
            LIST_EMPTY => k.empties += 1,
            LIST_FULL => {}
            _ => k.partial += 1,
        }
    }

    fn unlink(&mut self, chunk: u32) {
        let c = self.chunks.get(index(chunk));
        let (class, list, prev, next) = (usize::from(c.class), c.list, c.prev, c.next);
        if list != LIST_FULL {
            if prev == NIL {
                *self.head(class, list) = next;
            } else {
                self.chunks.get_mut(index(prev)).next = next;
            }
            if next != NIL {
                self.chunks.get_mut(index(next)).prev = prev;
            }
        }
        let k = &mut self.classes[class];
        match list {
            LIST_EMPTY => k.empties -= 1,
            LIST_FULL => {}
            _ => k.partial -= 1,
        }
    }

    /// Move `chunk` to the list its occupancy calls for.
    fn relist(&mut self, chunk: u32) {
        let c = self.chunks.get(index(chunk));
        let want = self.classes[usize::from(c.class)].list_for(c.used.count_ones());
        if want != c.list {
            self.unlink(chunk);
            self.link(chunk, want);
        }
    }

    // ----- chunks -----

    /// Address space for a new chunk of `class`: a discarded chunk's range, else carved from
    /// the class's region (reserving a new, larger region when it is used up). Returns a chunk
    /// in no list.
    fn new_chunk(&mut self, class: usize) -> Result<u32, StoreError> {
        let k = &self.classes[class];
        let bytes = k.chunk_bytes;
        let chunk = if k.discarded != NIL {
            let chunk = k.discarded;
            self.classes[class].discarded = self.chunks.get(index(chunk)).next;
            chunk
        } else {
            if k.end - k.bump < bytes {
                let len = k.next_region;
                let slot = self.regions.push()?;
                let addr = map(len)?;
                *self.regions.get_mut(slot) = Region { addr, len };
                self.address_space += len as u64;
                let k = &mut self.classes[class];
                k.bump = addr;
                k.end = addr + len;
                k.next_region = (len * 2).min(MAX_REGION_BYTES.max(bytes));
            }
            if self.chunks.len() >= index(NIL) {
                return Err(StoreError::OutOfMemory(
                    rustix::io::Errno::NOMEM.raw_os_error(),
                ));
            }
            let chunk = id(self.chunks.push()?);
            let k = &mut self.classes[class];
            self.chunks.get_mut(index(chunk)).base = k.bump;
            k.bump += bytes;
            chunk
        };
        let c = self.chunks.get_mut(index(chunk));
        c.used = 0;
        c.touched = 0;
        c.class = u16::try_from(class).expect("64 classes");
        c.list = LIST_FULL;
        c.prev = NIL;
        c.next = NIL;
        self.classes[class].chunks += 1;
        self.chunk_bytes += bytes as u64;
        Ok(chunk)
    }

    /// Give an empty chunk's memory back to the OS (`MADV_DONTNEED`: its pages are freed now
    /// and read as zeros if touched again); its address range is kept for a later chunk of
    /// the same class. Returns false, leaving the chunk empty in its class, if the kernel
    /// refuses.
    fn release(&mut self, chunk: u32) -> bool {
        let c = self.chunks.get(index(chunk));
        debug_assert_eq!(c.used, 0, "releasing a chunk that holds blocks");
        let (base, class) = (c.base, usize::from(c.class));
        let bytes = self.classes[class].chunk_bytes;
        // SAFETY: `base..base + bytes` is this chunk's range inside a region the store mapped
        // read-write; the chunk holds no block, so no handle or borrowed slice refers to it.
        let advised = unsafe {
            rustix::mm::madvise(base as *mut _, bytes, rustix::mm::Advice::LinuxDontNeed)
        };
        if advised.is_err() {
            self.release_errors += 1;
            return false;
        }
        self.unlink(chunk);
        let k = &mut self.classes[class];
        let c = self.chunks.get_mut(index(chunk));
        c.list = LIST_DISCARDED;
        c.next = k.discarded;
        k.discarded = chunk;
        k.chunks -= 1;
        self.chunk_bytes -= bytes as u64;
        self.chunks_released += 1;
        true
    }

    /// Mark a free slot of `chunk` used by handle `h`; returns the slot.
    fn occupy(&mut self, chunk: u32, h: u32) -> usize {
        let c = self.chunks.get_mut(index(chunk));
        let slot = (!c.used).trailing_zeros() as usize;
        debug_assert!(
            slot < self.classes[usize::from(c.class)].slots as usize,
            "occupying a full chunk"
        );
        c.used |= 1 << slot;
        if c.touched & (1 << slot) != 0 {
            self.reused += 1;
        }
        c.touched |= 1 << slot;
        c.owner[slot] = h;
        let class = usize::from(c.class);
        self.classes[class].blocks += 1;
        self.relist(chunk);
        slot
    }

    fn vacate(&mut self, chunk: u32, slot: usize) {
        let c = self.chunks.get_mut(index(chunk));
        c.used &= !(1 << slot);
        c.owner[slot] = NIL;
        let class = usize::from(c.class);
        self.classes[class].blocks -= 1;
        self.relist(chunk);
    }

    fn slot_addr(&self, chunk: u32, slot: usize) -> usize {
        let c = self.chunks.get(index(chunk));
        c.base + slot * self.classes[usize::from(c.class)].size
    }

    /// A chunk of `class` with a free slot: the fullest partial one, else an empty one.
    fn pick(&self, class: usize) -> Option<u32> {
        let k = &self.classes[class];
        k.groups
            .iter()
            .rev()
            .copied()
            .find(|&head| head != NIL)
            .or((k.empty != NIL).then_some(k.empty))
    }

    // ----- compaction -----

    /// Move one block from `src` into a free slot of `dst` and update its handle.
    fn move_block(&mut self, src: u32, dst: u32) {
        let s = self.chunks.get(index(src));
        let slot = (u64::BITS - 1 - s.used.leading_zeros()) as usize;
        let h = s.owner[slot];
        let size = self.classes[usize::from(s.class)].size;
        let from = self.slot_addr(src, slot);
        let to_slot = self.occupy(dst, h);
        let to = self.slot_addr(dst, to_slot);
        // SAFETY: both are slots of `size` bytes in live chunks of this store (different
        // chunks, so they do not overlap): `from` holds the block, `to` was free. No slice
        // borrowed from `load` is alive (we hold `&mut self`).
        unsafe { ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, size) };
        *self.handles.get_mut(index(h)) = (u64::from(dst) << 6) | to_slot as u64;
        self.vacate(src, slot);
        self.blocks_moved += 1;
    }

    /// Compact `class` spending at most `budget` work units; returns the units spent.
    fn compact_class(&mut self, class: usize, budget: usize) -> usize {
        self.tracking(class, |s| {
            let mut spent = 0;
            while spent + RELEASE_COST <= budget.max(RELEASE_COST) && s.classes[class].empty != NIL
            {
                spent += RELEASE_COST;
                if !s.release(s.classes[class].empty) {
                    return spent;
                }
            }
            while spent < budget && s.classes[class].partial >= 2 {
                let k = &s.classes[class];
                let Some(src) = k.groups.iter().copied().find(|&h| h != NIL) else {
                    break;
                };
                let dst = k.groups.iter().rev().find_map(|&head| {
                    let next = if head == src {
                        s.chunks.get(index(src)).next
                    } else {
                        head
                    };
                    (next != NIL).then_some(next)
                });
                let Some(dst) = dst else { break };
                while spent < budget
                    && s.chunks.get(index(src)).used != 0
                    && s.chunks.get(index(dst)).used != s.classes[class].full()
                {
                    s.move_block(src, dst);
                    spent += MOVE_COST;
                }
                if s.chunks.get(index(src)).used == 0 {
                    spent += RELEASE_COST;
                    if !s.release(src) {
                        break;
                    }
                }
            }
            spent
        })
    }

    /// Whether compaction should run: a bounded step on each `remove` while it does.
    fn should_compact(&mut self) -> bool {
        let floor = MIN_RECLAIM_PAGES * self.page as u64;
        if self.compacting {
            if self.reclaimable <= (self.chunk_bytes / 512).max(floor / 2) {
                self.compacting = false;
            }
        } else if self.reclaimable > (self.chunk_bytes / 256).max(floor) {
            self.compacting = true;
        }
        self.compacting
    }

    /// One bounded compaction step, on the class with the most to give back.
    fn compact_step(&mut self) {
        let best = (0..self.classes.len()).max_by_key(|&k| self.classes[k].reclaimable());
        if let Some(class) = best.filter(|&k| self.classes[k].reclaimable() > 0) {
            self.compact_class(class, STEP_BUDGET);
        }
    }
}

impl PageStore for MemoryStore {
    fn put(&mut self, _page: PageId, data: &[u8]) -> Result<BlockRef, StoreError> {
        if data.is_empty() || data.len() > self.page {
            debug_assert!(false, "a block of {} bytes", data.len());
            return Err(StoreError::Io(rustix::io::Errno::INVAL.raw_os_error()));
        }
        let class = self.class_of(data.len());
        let h = self.take_handle()?;
        let chunk = match self.pick(class) {
            Some(chunk) => chunk,
            None => match self.tracking(class, |s| s.new_chunk(class)) {
                Ok(chunk) => {
                    self.link(chunk, LIST_EMPTY);
                    chunk
                }
                Err(e) => {
                    self.give_back_handle(h);
                    return Err(e);
                }
            },
        };
        let slot = self.tracking(class, |s| s.occupy(chunk, h));
        let to = self.slot_addr(chunk, slot);
        // SAFETY: the slot is `classes[class].size >= data.len()` bytes inside a live chunk of
        // this store, and was free until `occupy` gave it to this block.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), to as *mut u8, data.len()) };
        *self.handles.get_mut(index(h)) = (u64::from(chunk) << 6) | slot as u64;
        self.live_bytes += data.len() as u64;
        Ok(BlockRef(u64::from(h)))
    }

    fn load<'a>(
        &'a mut self,
        _page: PageId,
        block: BlockRef,
        len: usize,
        _scratch: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError> {
        // The handle gives the chunk and slot, the chunk's descriptor its address and class;
        // the full check (the slot's owner and size) runs in debug builds.
        let h = usize::try_from(block.0).map_err(|_| StoreError::Corrupt)?;
        if h >= self.handles.len() || len > self.page {
            return Err(StoreError::Corrupt);
        }
        let entry = *self.handles.get(h);
        if entry & FREE != 0 {
            debug_assert!(false, "load of {block:?}, a removed block");
            return Err(StoreError::Corrupt);
        }
        let chunk = usize::try_from(entry >> 6).map_err(|_| StoreError::Corrupt)?;
        if chunk >= self.chunks.len() {
            return Err(StoreError::Corrupt);
        }
        let c = self.chunks.get(chunk);
        let at = c.base + (entry & 63) as usize * self.classes[usize::from(c.class)].size;
        debug_assert!(
            self.locate(block).is_some_and(|(chunk, _, addr)| addr == at
                && len <= self.classes[usize::from(self.chunks.get(index(chunk)).class)].size),
            "load of {len} bytes from {block:?}, which does not hold them"
        );
        // SAFETY: a live handle names its block's chunk and slot (`put` and `move_block` keep
        // it current), and a live chunk's base is its slots' address in a region the store
        // has mapped. `len` is the length the block was stored with (the caller's contract on
        // `load`, checked in debug builds), so at most the slot's size and in bounds. Regions
        // are unmapped only on drop, and blocks move only through `&mut self`, which the
        // returned borrow holds.
        Ok(unsafe { std::slice::from_raw_parts(at as *const u8, len) })
    }

    fn remove(&mut self, _page: PageId, block: BlockRef, len: usize) {
        let Some((chunk, slot)) = self.resolve(block) else {
            debug_assert!(false, "remove of {block:?}, which is not a live block");
            return;
        };
        let class = usize::from(self.chunks.get(index(chunk)).class);
        debug_assert_eq!(class, self.class_of(len), "remove with another length");
        let compacting = self.compacting;
        self.tracking(class, |s| {
            s.vacate(chunk, slot);
            let k = &s.classes[class];
            // Keep one empty chunk while the class has nowhere else to put a block.
            if s.chunks.get(index(chunk)).used == 0
                && (compacting || k.partial > 0 || k.empties > 1)
            {
                s.release(chunk);
            }
        });
        self.give_back_handle(u32::try_from(block.0).expect("resolved above"));
        self.live_bytes -= len as u64;
        if self.should_compact() {
            self.compact_step();
        }
    }

    fn reserved_bytes(&self) -> u64 {
        self.chunk_bytes + self.table_bytes()
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            live_bytes: self.live_bytes,
            slots_reused: self.reused,
            ..StoreStats::default()
        }
    }

    fn compact_all(&mut self) {
        for class in 0..self.classes.len() {
            self.compact_class(class, usize::MAX);
        }
        self.compacting = false;
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        for i in 0..self.regions.len() {
            let r = self.regions.get(i);
            if r.addr == 0 {
                continue;
            }
            // SAFETY: a whole region mapped by `new_chunk`; the store is going away, so nothing
            // refers to its chunks.
            if let Err(e) = unsafe { unmap(r.addr, r.len) } {
                tracing::error!(error = %e, "munmap of a page-store region failed");
            }
        }
    }
}

const _: () = assert!(size_of::<Chunk>() == 296);

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn byte(i: usize) -> u8 {
        u8::try_from(i % 251).unwrap()
    }

    #[test]
    fn fullness_lists() {
        assert_eq!(usize::from(LIST_EMPTY), GROUPS);
        let k = Class::new(64, PAGE);
        assert_eq!(k.slots, 64);
        assert_eq!(k.list_for(0), LIST_EMPTY);
        assert_eq!(k.list_for(1), 0);
        assert_eq!(k.list_for(8), 0);
        assert_eq!(k.list_for(9), 1);
        assert_eq!(k.list_for(63), 7);
        assert_eq!(k.list_for(64), LIST_FULL);
        let k = Class::new(PAGE, PAGE);
        assert_eq!((k.slots, k.chunk_bytes), (16, 16 * PAGE));
        assert_eq!(k.full(), 0xffff);
        assert_eq!(k.list_for(1), 0);
        assert_eq!(k.list_for(15), 7);
        assert_eq!(k.list_for(16), LIST_FULL);
    }

    #[test]
    fn every_class_of_more_than_eight_slots_uses_every_group() {
        for page in [4096, 16384, 65536] {
            for k in 1..=SLOTS {
                let c = Class::new(k * page / SLOTS, page);
                if c.slots as usize <= GROUPS {
                    continue;
                }
                let groups: Vec<u8> = (1..c.slots).map(|n| c.list_for(n)).collect();
                let what = format!("page {page}, {} slots: {groups:?}", c.slots);
                assert_eq!(groups[0], 0, "{what}");
                assert_eq!(usize::from(groups[groups.len() - 1]), GROUPS - 1, "{what}");
                assert!(
                    groups.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn chunk_geometry_wastes_little() {
        for page in [4096, 16384, 65536] {
            let (mut worst, mut sum) = (0.0f64, 0.0f64);
            for k in 1..=SLOTS {
                let c = Class::new(k * page / SLOTS, page);
                assert!(c.slots >= 1 && c.slots as usize <= SLOTS);
                assert_eq!(c.chunk_bytes % page, 0);
                assert!(c.chunk_bytes <= MAX_CHUNK_PAGES * page);
                let waste = c.chunk_bytes - c.slots as usize * c.size;
                if k <= MAX_CHUNK_PAGES {
                    assert_eq!(waste, 0, "64-slot chunks of class {k} fill whole pages");
                }
                let fraction = waste as f64 / c.chunk_bytes as f64;
                worst = worst.max(fraction);
                sum += fraction;
            }
            // The worst are the classes just under a page (3904 to 4032 bytes on 4 KiB pages).
            assert!(
                worst < 0.05,
                "page {page}: a chunk wastes {worst:.3} at its end"
            );
            let mean = sum / SLOTS as f64;
            assert!(
                mean < 0.01,
                "page {page}: chunks waste {mean:.4} on average"
            );
        }
    }

    fn put(s: &mut MemoryStore, byte: u8, len: usize) -> BlockRef {
        s.put(PageId(0), &vec![byte; len]).unwrap()
    }

    fn check(s: &mut MemoryStore, block: BlockRef, byte: u8, len: usize) {
        let mut scratch = vec![0u8; PAGE];
        let bytes = s.load(PageId(0), block, len, &mut scratch).unwrap();
        assert!(bytes.iter().all(|&b| b == byte), "block {block:?} changed");
    }

    #[test]
    fn put_load_remove_reuses_slots() {
        let mut s = MemoryStore::new(PAGE);
        let a = put(&mut s, 1, 100);
        let b = put(&mut s, 2, 4096);
        check(&mut s, a, 1, 100);
        check(&mut s, b, 2, 4096);
        let reserved = s.reserved_bytes();
        s.remove(PageId(1), a, 100);
        let c = put(&mut s, 3, 120);
        assert_eq!(c, a, "a freed handle is reused");
        assert_eq!(s.stats().slots_reused, 1, "and so is its slot");
        assert_eq!(s.stats().live_bytes, 120 + 4096);
        assert_eq!(s.reserved_bytes(), reserved);
        check(&mut s, b, 2, 4096);
        check(&mut s, c, 3, 120);
    }

    #[test]
    fn slots_are_lengths_rounded_up_to_a_granule() {
        let s = MemoryStore::new(PAGE);
        assert_eq!(s.slot_bytes_for(1), 64);
        assert_eq!(s.slot_bytes_for(64), 64);
        assert_eq!(s.slot_bytes_for(65), 128);
        assert_eq!(s.slot_bytes_for(PAGE - 1), PAGE);
        assert_eq!(s.slot_bytes_for(PAGE), PAGE);
    }

    #[test]
    fn every_removed_handle_is_handed_out_again() {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..10).map(|i| put(&mut s, byte(i), 100)).collect();
        for &b in &blocks[2..6] {
            s.remove(PageId(0), b, 100);
        }
        // The free handles form a list: all four come back (last removed first), and the
        // handle table does not grow.
        let again: Vec<BlockRef> = (0..4).map(|i| put(&mut s, byte(i), 100)).collect();
        assert_eq!(again, [blocks[5], blocks[4], blocks[3], blocks[2]]);
        assert_eq!(s.handles.len(), 10);
        assert_eq!(put(&mut s, 7, 100), BlockRef(10));
    }

    #[test]
    fn only_slots_written_before_count_as_reused() {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..3).map(|i| put(&mut s, byte(i), 100)).collect();
        s.remove(PageId(0), blocks[1], 100);
        let b = put(&mut s, 7, 100);
        assert_eq!(s.stats().slots_reused, 1, "slot 1 held a block before");
        put(&mut s, 8, 100);
        assert_eq!(s.stats().slots_reused, 1, "slot 3 is fresh");
        check(&mut s, b, 7, 100);
    }

    #[test]
    fn chunks_are_whole_pages() {
        let s = MemoryStore::new(PAGE);
        assert_eq!(s.chunk_bytes_for(1), PAGE);
        assert_eq!(s.chunk_bytes_for(64), PAGE);
        assert_eq!(s.chunk_bytes_for(65), 2 * PAGE);
        assert_eq!(s.chunk_bytes_for(1024), 16 * PAGE);
        assert_eq!(s.chunk_bytes_for(4096), 16 * PAGE);
    }

    #[test]
    fn an_emptied_chunk_is_kept_once_then_released() {
        let mut s = MemoryStore::new(PAGE);
        let a = put(&mut s, 1, 1000);
        let with_one = s.reserved_bytes();
        s.remove(PageId(0), a, 1000);
        assert_eq!(s.reserved_bytes(), with_one, "the class's last chunk stays");
        assert_eq!(s.compaction_stats().reclaimable_bytes, 16 * PAGE as u64);
        s.compact_all();
        assert_eq!(s.compaction_stats().chunks, 0);
        assert_eq!(s.compaction_stats().reclaimable_bytes, 0);
        // Only the metadata tables (one page each) remain.
        assert_eq!(s.reserved_bytes(), 3 * PAGE as u64);
        // The discarded chunk's range is used again.
        let b = put(&mut s, 2, 1000);
        assert_eq!(
            s.compaction_stats().address_space_bytes,
            16 * 16 * PAGE as u64
        );
        check(&mut s, b, 2, 1000);
    }

    #[test]
    fn an_emptied_chunk_is_released_while_its_class_has_a_partial_one() {
        let mut s = MemoryStore::new(PAGE);
        // Chunk 0 full, chunk 1 with one block; then chunk 0 down to one block: both partial.
        let blocks: Vec<BlockRef> = (0..65).map(|i| put(&mut s, byte(i), 64)).collect();
        for &b in &blocks[1..64] {
            s.remove(PageId(0), b, 64);
        }
        assert_eq!(s.compaction_stats().chunks, 2);
        s.remove(PageId(0), blocks[0], 64);
        let st = s.compaction_stats();
        assert_eq!((st.chunks, st.chunks_released), (1, 1), "{st:?}");
        check(&mut s, blocks[64], byte(64), 64);
    }

    #[test]
    fn a_chunk_emptied_from_full_is_kept_too() {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..64).map(|i| put(&mut s, byte(i), 64)).collect();
        let class = s.class_of(64);
        assert_eq!(s.classes[class].partial, 0, "a full chunk is in no list");
        for &b in &blocks {
            s.remove(PageId(0), b, 64);
        }
        let st = s.compaction_stats();
        assert_eq!((st.chunks, st.chunks_released), (1, 0), "{st:?}");
        assert_eq!((s.classes[class].partial, s.classes[class].empties), (0, 1));
    }

    #[test]
    fn compaction_moves_blocks_and_keeps_handles() {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..64 * 4).map(|i| put(&mut s, byte(i), 200)).collect();
        assert_eq!(s.compaction_stats().chunks, 4);
        // Free three of every four blocks: every chunk is a quarter full.
        for (i, &b) in blocks.iter().enumerate() {
            if i % 4 != 0 {
                s.remove(PageId(0), b, 200);
            }
        }
        assert_eq!(
            s.compaction_stats().chunks,
            4,
            "below the automatic threshold"
        );
        s.compact_all();
        let st = s.compaction_stats();
        assert_eq!(st.chunks, 1, "64 blocks of one class fit one chunk");
        assert_eq!(st.reclaimable_bytes, 0);
        assert!(st.blocks_moved >= 48, "{st:?}");
        for (i, &b) in blocks.iter().enumerate() {
            if i % 4 == 0 {
                check(&mut s, b, byte(i), 200);
            }
        }
    }

    #[test]
    fn stale_references_are_refused() {
        let mut s = MemoryStore::new(PAGE);
        let mut scratch = vec![0u8; PAGE];
        let a = put(&mut s, 1, 10);
        s.remove(PageId(0), a, 10);
        for block in [a, BlockRef(12345), BlockRef(u64::MAX)] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                s.load(PageId(0), block, 10, &mut scratch)
                    .map(<[u8]>::to_vec)
            }));
            // Debug builds assert; release builds report the block as corrupt.
            assert!(matches!(r, Err(_) | Ok(Err(StoreError::Corrupt))));
        }
    }

    #[test]
    fn regions_double_after_the_first() {
        let mut s = MemoryStore::new(PAGE);
        // Class 0: 64-byte slots, 64 to a one-page chunk, 16 chunks in the first region.
        let mut blocks: Vec<BlockRef> = (0..64 * 16).map(|i| put(&mut s, byte(i), 64)).collect();
        assert_eq!(s.compaction_stats().chunks, 16);
        assert_eq!(
            s.compaction_stats().address_space_bytes,
            16 * PAGE as u64,
            "16 chunks fill the first region, to its last byte"
        );
        blocks.extend((64 * 16..64 * 17).map(|i| put(&mut s, byte(i), 64)));
        assert_eq!(s.compaction_stats().chunks, 17);
        assert_eq!(
            s.compaction_stats().address_space_bytes,
            (16 + 32) * PAGE as u64,
            "the 17th chunk opens a region twice the first"
        );
        for (i, &b) in blocks.iter().enumerate() {
            check(&mut s, b, byte(i), 64);
        }
    }

    /// `chunks` full chunks of page-sized blocks (16 to a chunk), then all but one block of
    /// each removed: the store could give back all but `ceil(chunks / 16)` chunks.
    fn sparse_chunks(chunks: usize) -> MemoryStore {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..16 * chunks)
            .map(|i| put(&mut s, byte(i), PAGE))
            .collect();
        for (i, &b) in blocks.iter().enumerate() {
            if i % 16 != 0 {
                s.remove(PageId(0), b, PAGE);
            }
        }
        s
    }

    #[test]
    fn a_handle_takes_eight_bytes() {
        let mut s = MemoryStore::new(PAGE);
        let n: usize = 10_000;
        let blocks: Vec<BlockRef> = (0..n)
            .map(|i| put(&mut s, i.to_le_bytes()[0], 100))
            .collect();
        // The table grows by doubling segments: at most twice 8 bytes per handle.
        let bytes = s.handles.mapped_bytes();
        assert!(
            bytes >= 8 * n && bytes <= 2 * 8 * n,
            "{bytes} bytes of handles for {n} blocks"
        );
        for (i, &b) in blocks.iter().enumerate() {
            check(&mut s, b, i.to_le_bytes()[0], 100);
        }
    }

    #[test]
    fn compaction_starts_above_the_floor_only() {
        // Reclaimable chunks of 16 pages exactly at the floor, not above it, in a store small
        // enough that the floor is what counts.
        let at_floor = (1..)
            .find(|&n: &u64| n - n.div_ceil(16) == MIN_RECLAIM_PAGES / 16)
            .unwrap();
        let st = sparse_chunks(usize::try_from(at_floor).unwrap()).compaction_stats();
        assert_eq!((st.chunks, st.blocks_moved), (at_floor, 0), "{st:?}");
        // One more: above it, so removes compact.
        let st = sparse_chunks(usize::try_from(at_floor + 1).unwrap()).compaction_stats();
        assert!(st.blocks_moved > 0 && st.chunks < at_floor + 1, "{st:?}");
    }

    #[test]
    fn compaction_runs_from_a_256th_down_to_a_512th() {
        let mut s = MemoryStore::new(PAGE);
        // 64 MiB of chunks, far above the floor: the marks are 256 KiB and 128 KiB.
        s.chunk_bytes = 64 << 20;
        for (reclaimable, compacting) in [
            (256 << 10, false),
            ((256 << 10) + 1, true),
            (192 << 10, true),
            ((128 << 10) + 1, true),
            (128 << 10, false),
            (192 << 10, false),
        ] {
            s.reclaimable = reclaimable;
            assert_eq!(s.should_compact(), compacting, "{reclaimable} reclaimable");
        }
        // 4 MiB of chunks: the floor rules, MIN_RECLAIM_PAGES to start, half as many to stop.
        s.chunk_bytes = 4 << 20;
        let floor = MIN_RECLAIM_PAGES * PAGE as u64;
        for (reclaimable, compacting) in [
            (floor, false),
            (floor + 1, true),
            (floor / 2 + 1, true),
            (floor / 2, false),
        ] {
            s.reclaimable = reclaimable;
            assert_eq!(s.should_compact(), compacting, "{reclaimable} reclaimable");
        }
    }

    #[test]
    fn a_compaction_step_spends_its_budget_and_no_more() {
        let mut s = MemoryStore::new(PAGE);
        let blocks: Vec<BlockRef> = (0..128).map(|i| put(&mut s, byte(i), 200)).collect();
        // Chunk 0 keeps 54 blocks, chunk 1 keeps 4: compaction moves chunk 1's into chunk 0.
        for (i, &b) in blocks.iter().enumerate() {
            if (54..64).contains(&i) || i >= 68 {
                s.remove(PageId(0), b, 200);
            }
        }
        let class = s.class_of(200);
        let used = |s: &MemoryStore| [0, 1].map(|c| s.chunks.get(c).used.count_ones());
        assert_eq!(s.compact_class(class, 3), 3);
        let st = s.compaction_stats();
        assert_eq!((st.blocks_moved, st.chunks), (3, 2), "{st:?}");
        assert_eq!(
            used(&s),
            [57, 1],
            "from the emptiest chunk into the fullest"
        );
        // The last block (1) and the discard of chunk 1 (4), within a budget of 8.
        assert_eq!(s.compact_class(class, 8), 5);
        let st = s.compaction_stats();
        assert_eq!(
            (st.blocks_moved, st.chunks, st.chunks_released),
            (4, 1, 1),
            "{st:?}"
        );
        for (i, &b) in blocks.iter().enumerate() {
            if i < 54 || (64..68).contains(&i) {
                check(&mut s, b, byte(i), 200);
            }
        }
    }

    #[test]
    fn a_compaction_step_discards_two_empty_chunks_within_its_budget() {
        let mut s = MemoryStore::new(PAGE);
        let class = s.class_of(64);
        // Two full one-page chunks, locked so that emptying them cannot discard them.
        let blocks: Vec<BlockRef> = (0..128).map(|i| put(&mut s, byte(i), 64)).collect();
        let bases = [0, 1].map(|c| s.chunks.get(c).base);
        for base in bases {
            // SAFETY: a chunk of one page inside a region the store mapped; locking changes
            // no byte of it.
            unsafe { rustix::mm::mlock(base as *mut _, PAGE) }.expect("mlock of one page");
        }
        for &b in &blocks {
            s.remove(PageId(0), b, 64);
        }
        let st = s.compaction_stats();
        assert_eq!((st.chunks, st.release_errors), (2, 1), "{st:?}");
        assert_eq!(s.classes[class].empties, 2);
        for base in bases {
            // SAFETY: as for `mlock`.
            unsafe { rustix::mm::munlock(base as *mut _, PAGE) }.expect("munlock");
        }
        // Two discards cost 4 each: both fit a step's budget of 8.
        assert_eq!(s.compact_class(class, STEP_BUDGET), 8);
        let st = s.compaction_stats();
        assert_eq!((st.chunks, st.chunks_released), (0, 2), "{st:?}");
    }

    #[test]
    fn empty_and_oversized_blocks_are_refused() {
        let mut s = MemoryStore::new(PAGE);
        for len in [0, PAGE + 1] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                s.put(PageId(0), &vec![1; len])
            }));
            match r {
                // Release builds refuse with an error, debug builds with this assertion.
                Ok(r) => assert!(matches!(r, Err(StoreError::Io(_))), "{r:?}"),
                Err(panic) => {
                    let message = panic.downcast_ref::<String>().map_or("", String::as_str);
                    assert_eq!(message, format!("a block of {len} bytes"));
                }
            }
        }
        assert_eq!(s.stats().live_bytes, 0);
    }

    #[test]
    fn out_of_range_loads_are_corrupt_not_a_panic() {
        let mut s = MemoryStore::new(PAGE);
        let mut scratch = vec![0u8; PAGE];
        let a = put(&mut s, 1, 10);
        // A handle never handed out, and a length no block can have: refused in every build.
        for (block, len) in [(BlockRef(12345), 10), (a, PAGE + 1)] {
            assert!(matches!(
                s.load(PageId(0), block, len, &mut scratch),
                Err(StoreError::Corrupt)
            ));
        }
        check(&mut s, a, 1, 10);
    }

    #[test]
    fn a_chunk_the_kernel_will_not_discard_is_counted_and_kept() {
        let mut s = MemoryStore::new(PAGE);
        let a = put(&mut s, 1, 64);
        let (chunk, _) = s.resolve(a).unwrap();
        let base = s.slot_addr(chunk, 0);
        s.remove(PageId(0), a, 64);
        assert_eq!(
            s.compaction_stats().chunks,
            1,
            "the class's last chunk stays"
        );
        // `MADV_DONTNEED` fails (EINVAL) on locked pages: lock the chunk's one page.
        // SAFETY: `base..base + PAGE` is the empty chunk, inside a region the store mapped;
        // locking changes no byte of it.
        unsafe { rustix::mm::mlock(base as *mut _, PAGE) }.expect("mlock of one page");
        s.compact_all();
        let st = s.compaction_stats();
        assert_eq!(
            (st.release_errors, st.chunks_released, st.chunks),
            (1, 0, 1),
            "{st:?}"
        );
        // SAFETY: as for `mlock`.
        unsafe { rustix::mm::munlock(base as *mut _, PAGE) }.expect("munlock");
        s.compact_all();
        let st = s.compaction_stats();
        assert_eq!(
            (st.release_errors, st.chunks_released, st.chunks),
            (1, 1, 0),
            "the next try discards it: {st:?}"
        );
        let b = put(&mut s, 2, 64);
        check(&mut s, b, 2, 64);
    }

    #[test]
    fn dropping_a_store_unmaps_its_regions() {
        crate::store::alone::run("store::memory::tests::dropped_stores_leave_no_mapping");
    }

    /// Stores with a region in every size class, made and dropped eight times, leave the
    /// process no larger than one would. Alone in its process (see [`crate::store::alone`]).
    #[test]
    #[ignore = "the child side of dropping_a_store_unmaps_its_regions"]
    fn dropped_stores_leave_no_mapping() {
        crate::store::alone::check_child();
        let fill = || {
            let mut s = MemoryStore::new(PAGE);
            for len in (64..=PAGE).step_by(64) {
                put(&mut s, 1, len);
            }
            s.compaction_stats().address_space_bytes
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
            "8 stores of {one} bytes of regions made and dropped; the process grew by {grown} bytes"
        );
    }
}
