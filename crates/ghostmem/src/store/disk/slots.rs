//! Where blocks go in the swap file: size classes, per-class free stacks, and the layout of a
//! [`BlockRef`].
//!
//! ```text
//!   swap file: slots appended one at a time, each of one size class, never moved
//!   ┌────────────┬──────┬──────────────────┬────────────┬──────┬───
//!   │ class 7    │ cl 0 │ class 15 (page)  │ class 7    │ cl 2 │ ...     end ─▶ grows only when
//!   └────────────┴──────┴──────────────────┴────────────┴──────┴───       no free slot fits
//!
//!   slot size = (class + 1) × granule + sealing overhead, rounded up to 32 bytes
//!   granule   = page size / 16   (256 bytes for 4 KiB pages)
//!
//!   BlockRef (64 bits)
//!   ┌───┬───────────────────────────────┬───────┬──────────────────────────┐
//!   │ 0 │ offset / 32          (34 bits) │ class │ generation     (25 bits) │
//!   └───┴───────────────────────────────┴───────┴──────────────────────────┘
//!    63  62                          29   28  25  24                      0
//! ```
//!
//! Bit 63 is always 0: [`FallbackStore`](crate::store::FallbackStore) uses it to tag blocks it
//! kept in memory. The generation counts the writes into one slot; it is part of what the
//! sealed block is bound to (the associated data), so an old version of a slot written back into
//! the file is refused. A slot whose generation is exhausted is retired (never reused), so a
//! (slot, generation) pair never names two writes.
//!
//! A free slot is remembered only as its `BlockRef` on the free stack of its class (8 bytes);
//! a live block costs this module nothing at all: everything about it is in the `BlockRef` the
//! pager keeps. The free stacks are anonymous mappings taken directly from the OS, grown with
//! `mremap`, so nothing here goes through the global allocator.
#![allow(unsafe_code)]

use std::ptr::{self, NonNull};

use rustix::io::Errno;
use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

use crate::store::{BlockRef, StoreError};

/// Number of size classes.
pub(crate) const CLASSES: usize = 16;
/// Slot sizes and offsets are multiples of this.
pub(crate) const UNIT: u64 = 32;
const GEN_BITS: u32 = 25;
const CLASS_BITS: u32 = 4;
const OFFSET_BITS: u32 = 34;
const CLASS_SHIFT: u32 = GEN_BITS;
const OFFSET_SHIFT: u32 = GEN_BITS + CLASS_BITS;
/// The last generation a slot can be written with.
pub(crate) const GEN_MAX: u32 = (1 << GEN_BITS) - 1;
/// Largest file the `BlockRef` layout can address (512 GiB).
pub(crate) const MAX_FILE: u64 = UNIT << OFFSET_BITS;
/// Initial capacity of a free stack, in bytes (512 entries).
const STACK_INITIAL: usize = 4096;

const _: () = assert!(OFFSET_SHIFT + OFFSET_BITS == 63, "bit 63 stays free");
const _: () = assert!(CLASSES == 1 << CLASS_BITS);

/// A slot of the file and the generation of the write it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Byte offset in the file (a multiple of [`UNIT`]).
    pub offset: u64,
    /// Size class (`0..CLASSES`).
    pub class: usize,
    /// Write generation (`0..=GEN_MAX`).
    pub generation: u32,
}

impl Slot {
    /// The reference handed to the pager.
    pub fn pack(self) -> BlockRef {
        debug_assert!(self.offset % UNIT == 0 && self.offset < MAX_FILE);
        debug_assert!(self.class < CLASSES && self.generation <= GEN_MAX);
        BlockRef(
            (self.offset / UNIT) << OFFSET_SHIFT
                | (self.class as u64) << CLASS_SHIFT
                | u64::from(self.generation),
        )
    }

    /// The slot a reference names, or `None` if bit 63 is set (not one of ours).
    pub fn unpack(block: BlockRef) -> Option<Slot> {
        let b = block.0;
        if b >> 63 != 0 {
            return None;
        }
        let field = |shift: u32, bits: u32| (b >> shift) & ((1u64 << bits) - 1);
        Some(Slot {
            offset: field(OFFSET_SHIFT, OFFSET_BITS) * UNIT,
            class: usize::try_from(field(CLASS_SHIFT, CLASS_BITS)).expect("4 bits"),
            generation: u32::try_from(field(0, GEN_BITS)).expect("25 bits"),
        })
    }
}

/// Slot sizes for one page size and sealing overhead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    granule: usize,
    overhead: usize,
}

impl Geometry {
    /// Classes for pages of `page_size` bytes (a power of two, at least 512), each slot
    /// holding `overhead` bytes besides the data.
    pub fn new(page_size: usize, overhead: usize) -> Geometry {
        debug_assert!(page_size.is_power_of_two() && page_size >= 512);
        Geometry {
            granule: page_size / CLASSES,
            overhead,
        }
    }

    /// The smallest class holding `len` bytes of data (`1..=page_size`).
    pub fn class_of(&self, len: usize) -> usize {
        len.div_ceil(self.granule).saturating_sub(1)
    }

    /// The most data bytes a slot of `class` holds.
    pub fn capacity(&self, class: usize) -> usize {
        (class + 1) * self.granule
    }

    /// Bytes a slot of `class` takes in the file.
    pub fn slot_bytes(&self, class: usize) -> u64 {
        let bytes = (self.capacity(class) + self.overhead) as u64;
        bytes.div_ceil(UNIT) * UNIT
    }

    /// The largest class whose free slots may serve a request of `class`: a slot at most
    /// twice the size needed, so a reused slot wastes at most half of itself.
    fn reuse_limit(class: usize) -> usize {
        (2 * class + 1).min(CLASSES - 1)
    }
}

/// An anonymous private mapping owned by the store; unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is exclusively owned; the pointer is not tied to a thread.
unsafe impl Send for Mapping {}

impl Mapping {
    /// `len` bytes of zeroed memory straight from the kernel (not the global allocator), with
    /// no swap reserved: pages cost RAM only once touched.
    pub fn new(len: usize) -> Result<Mapping, Errno> {
        // SAFETY: a fresh anonymous mapping chosen by the kernel overlaps nothing we use.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).ok_or(Errno::NOMEM)?,
            len,
        })
    }

    /// Double the mapping's size, keeping its contents (it may move). Makes no other
    /// allocation, so it may run in the fault handler.
    fn grow(&mut self) -> Result<(), Errno> {
        let new_len = self.len.checked_mul(2).ok_or(Errno::NOMEM)?;
        // SAFETY: `ptr`/`len` describe a mapping we own; nothing holds pointers into it across
        // this call (the free stack only indexes it), and MAYMOVE lets the kernel pick the new
        // place.
        let p = unsafe {
            rustix::mm::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                MremapFlags::MAYMOVE,
            )
        }?;
        self.ptr = NonNull::new(p.cast()).ok_or(Errno::NOMEM)?;
        self.len = new_len;
        Ok(())
    }

    /// Halve the mapping's size (it stays in place). Allocates nothing.
    fn shrink(&mut self) -> Result<(), Errno> {
        let new_len = self.len / 2;
        // SAFETY: `ptr`/`len` describe a mapping we own; the caller no longer uses the upper
        // half. Shrinking in place never moves the mapping.
        let p = unsafe {
            rustix::mm::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                MremapFlags::empty(),
            )
        }?;
        debug_assert_eq!(p.cast(), self.ptr.as_ptr());
        self.len = new_len;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` readable, writable bytes owned by `self`, borrowed
        // mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as `bytes_mut`; mappings are page-aligned, so aligned for `u64`, and every
        // bit pattern is a valid `u64`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing refers into it any more.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::error!(error = %e, "munmap of a disk-store mapping failed");
        }
    }
}

/// Free slots of one class, as packed `BlockRef`s.
struct FreeStack {
    map: Mapping,
    depth: usize,
}

impl FreeStack {
    fn push(&mut self, block: BlockRef) -> Result<(), Errno> {
        if self.depth == self.map.len() / 8 {
            self.map.grow()?;
        }
        let depth = self.depth;
        self.map.words_mut()[depth] = block.0;
        self.depth += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<BlockRef> {
        self.depth = self.depth.checked_sub(1)?;
        let depth = self.depth;
        let block = BlockRef(self.map.words_mut()[depth]);
        // Give memory back once the stack has drained to a quarter of its mapping (not at half,
        // so that pushes and pops around one size do not remap every time). A failed shrink
        // only keeps the memory.
        if self.map.len() > STACK_INITIAL && depth * 8 < self.map.len() / 4 {
            let _kept_on_failure = self.map.shrink();
        }
        Some(block)
    }
}

/// A slot handed out by [`Slots::take`], and whether the file grew for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    pub slot: Slot,
    pub fresh: bool,
}

/// The slot allocator of one swap file.
pub(crate) struct Slots {
    geometry: Geometry,
    stacks: [FreeStack; CLASSES],
    /// Logical length of the file: every slot lies below it.
    end: u64,
    reused: u64,
    retired: u64,
    lost: u64,
}

impl Slots {
    pub fn new(geometry: Geometry) -> Result<Slots, Errno> {
        let mut stacks = Vec::with_capacity(CLASSES);
        for _ in 0..CLASSES {
            stacks.push(FreeStack {
                map: Mapping::new(STACK_INITIAL)?,
                depth: 0,
            });
        }
        Ok(Slots {
            geometry,
            stacks: stacks.try_into().ok().expect("CLASSES stacks"),
            end: 0,
            reused: 0,
            retired: 0,
            lost: 0,
        })
    }

    /// A slot for `len` bytes: a free one of its class or (failing that) of a class up to twice
    /// its size, else a new one at the end of the file.
    pub fn take(&mut self, len: usize) -> Result<Taken, StoreError> {
        let class = self.geometry.class_of(len);
        for c in class..=Geometry::reuse_limit(class) {
            if let Some(block) = self.stacks[c].pop() {
                let mut slot = Slot::unpack(block).expect("free stacks hold our own references");
                // Retired slots never reach a stack, so this stays within GEN_MAX.
                slot.generation += 1;
                self.reused += 1;
                return Ok(Taken { slot, fresh: false });
            }
        }
        let size = self.geometry.slot_bytes(class);
        let end = self
            .end
            .checked_add(size)
            .filter(|&e| e <= MAX_FILE)
            .ok_or(StoreError::Io(Errno::FBIG.raw_os_error()))?;
        let slot = Slot {
            offset: self.end,
            class,
            generation: 0,
        };
        self.end = end;
        Ok(Taken { slot, fresh: true })
    }

    /// Return a slot that is no longer in use. A slot whose generation is exhausted is retired
    /// instead; if the free stack cannot grow, the slot's space is lost (counted) but nothing
    /// else is.
    pub fn release(&mut self, slot: Slot) {
        if slot.generation >= GEN_MAX {
            self.retired += 1;
        } else if self.stacks[slot.class].push(slot.pack()).is_err() {
            self.lost += 1;
        }
    }

    /// Whether `slot` is the last one in the file.
    pub fn is_last(&self, slot: Slot) -> bool {
        slot.offset + self.geometry.slot_bytes(slot.class) == self.end
    }

    /// Undo a [`take`](Self::take) whose write failed. With `shrink` (only for a fresh slot
    /// that [`is_last`](Self::is_last), once the file was cut back to its offset) the file's end
    /// moves back over it; otherwise the slot goes to its free stack, its new generation
    /// consumed.
    pub fn undo(&mut self, taken: Taken, shrink: bool) {
        if shrink {
            debug_assert!(taken.fresh && self.is_last(taken.slot));
            self.end = taken.slot.offset;
            return;
        }
        if !taken.fresh {
            self.reused -= 1;
        }
        self.release(taken.slot);
    }

    /// Check that `block` can hold `len` bytes and lies inside the file.
    pub fn locate(&self, block: BlockRef, len: usize) -> Option<Slot> {
        let slot = Slot::unpack(block)?;
        let fits = len >= 1 && len <= self.geometry.capacity(slot.class);
        let inside = slot
            .offset
            .checked_add(self.geometry.slot_bytes(slot.class))
            .is_some_and(|e| e <= self.end);
        (fits && inside).then_some(slot)
    }

    /// Logical length of the file.
    pub fn end(&self) -> u64 {
        self.end
    }
    /// `take` calls served by a free slot.
    pub fn reused(&self) -> u64 {
        self.reused
    }
    /// Slots never to be used again: generation exhausted, or lost when a free stack could
    /// not grow.
    pub fn retired(&self) -> u64 {
        self.retired + self.lost
    }
    /// Free slots waiting for reuse.
    pub fn free_slots(&self) -> u64 {
        self.stacks.iter().map(|s| s.depth as u64).sum()
    }
    /// Bytes of memory mapped for the free stacks (an upper bound on their RAM).
    pub fn index_bytes(&self) -> u64 {
        self.stacks.iter().map(|s| s.map.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip_and_bit_63_stays_clear() {
        for slot in [
            Slot {
                offset: 0,
                class: 0,
                generation: 0,
            },
            Slot {
                offset: MAX_FILE - UNIT,
                class: CLASSES - 1,
                generation: GEN_MAX,
            },
            Slot {
                offset: 4128 * 77,
                class: 9,
                generation: 12345,
            },
        ] {
            let b = slot.pack();
            assert_eq!(b.0 >> 63, 0);
            assert_eq!(Slot::unpack(b), Some(slot));
        }
        assert_eq!(Slot::unpack(BlockRef(1 << 63)), None);
    }

    #[test]
    fn classes_cover_every_length_for_4k_pages() {
        let g = Geometry::new(4096, 24);
        assert_eq!(g.class_of(1), 0);
        assert_eq!(g.class_of(256), 0);
        assert_eq!(g.class_of(257), 1);
        assert_eq!(g.class_of(4096), CLASSES - 1);
        assert_eq!(g.slot_bytes(0), 288);
        assert_eq!(g.slot_bytes(CLASSES - 1), 4128);
        assert_eq!(Geometry::new(4096, 0).slot_bytes(CLASSES - 1), 4096);
        for len in 1..=4096 {
            assert!(g.capacity(g.class_of(len)) >= len);
        }
    }

    #[test]
    fn freed_slots_are_reused_with_a_new_generation() {
        let mut s = Slots::new(Geometry::new(4096, 0)).unwrap();
        let a = s.take(1000).unwrap();
        assert!(a.fresh);
        assert_eq!(s.end(), 1024);
        s.release(a.slot);
        let b = s.take(900).unwrap();
        assert!(!b.fresh);
        assert_eq!(b.slot.offset, a.slot.offset);
        assert_eq!(b.slot.generation, 1);
        assert_eq!(s.reused(), 1);
        // A small block may take a free slot up to twice its size, not more.
        s.release(b.slot);
        let c = s.take(300).unwrap();
        assert!(!c.fresh, "class 1 may use a free class-3 slot");
        s.release(c.slot);
        let d = s.take(100).unwrap();
        assert!(d.fresh, "class 0 may not use a class-3 slot");
    }

    #[test]
    fn exhausted_generations_retire_the_slot() {
        let mut s = Slots::new(Geometry::new(4096, 0)).unwrap();
        let mut slot = s.take(10).unwrap().slot;
        slot.generation = GEN_MAX;
        s.release(slot);
        assert_eq!(s.retired(), 1);
        assert!(s.take(10).unwrap().fresh);
    }

    #[test]
    fn free_stacks_grow_past_their_first_mapping() {
        let mut s = Slots::new(Geometry::new(4096, 0)).unwrap();
        let n = 3 * STACK_INITIAL / 8 + 5;
        let taken: Vec<_> = (0..n).map(|_| s.take(10).unwrap().slot).collect();
        for slot in &taken {
            s.release(*slot);
        }
        assert_eq!(s.free_slots(), n as u64);
        let mut back: Vec<_> = (0..n).map(|_| s.take(10).unwrap().slot.offset).collect();
        back.sort_unstable();
        let mut want: Vec<_> = taken.iter().map(|t| t.offset).collect();
        want.sort_unstable();
        assert_eq!(back, want);
        assert_eq!(s.retired(), 0);
        assert_eq!(s.free_slots(), 0);
        assert!(
            s.index_bytes() <= (CLASSES * STACK_INITIAL * 2) as u64,
            "drained stacks give their memory back: {}",
            s.index_bytes()
        );
    }

    #[test]
    fn failed_fresh_slot_is_given_back_to_the_file_end() {
        let mut s = Slots::new(Geometry::new(4096, 0)).unwrap();
        let t = s.take(4096).unwrap();
        assert!(s.is_last(t.slot));
        s.undo(t, true);
        assert_eq!(s.end(), 0);
        assert_eq!(s.free_slots(), 0);
        // Not shrunk (the file could not be cut): the slot waits on its free stack.
        let t = s.take(4096).unwrap();
        s.undo(t, false);
        assert_eq!(s.end(), 4096);
        assert_eq!(s.free_slots(), 1);
        let t = s.take(4096).unwrap();
        assert!(!t.fresh);
        s.undo(t, false);
        assert_eq!(s.reused(), 0, "a failed put reused nothing");
    }
}
