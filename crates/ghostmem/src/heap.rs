//! Allocation inside an arena: which addresses are handed out.
//!
//! - Small requests (up to 2048 bytes, alignment up to 2048) share pages: each slab page holds
//!   slots of one size class, tracked by a bitmap. A slab page is released (its RAM and stored
//!   data freed) when its last slot is freed.
//! - Larger requests get a run of whole pages from the run allocator (best fit over free runs,
//!   coalescing on free; fresh pages from the end of the used part).
//!
//! All of this metadata lives in ordinary memory (never in ghost pages) and is used only by
//! ordinary code, never by the fault handler, under the heap lock. The heap lock is taken
//! before the pager lock, never after.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::error::{Error, FreeError};
use crate::page::{PageId, PageRun, page_size};
use crate::pager::Pager;
use crate::stats::{add, sub};

/// Slot sizes of the small classes.
const CLASSES: [u16; 24] = [
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
    1280, 1536, 1792, 2048,
];
/// Largest request served from a slab.
pub(crate) const SMALL_MAX: usize = 2048;
/// Most slots per slab (the bitmap's size).
const MAX_SLOTS: usize = 256;
/// Largest alignment accepted.
const MAX_ALIGN: usize = 1 << 30;

/// The smallest class that holds `size` bytes at alignment `align`, if the request is small.
fn class_for(size: usize, align: usize) -> Option<u8> {
    if size > SMALL_MAX || align > SMALL_MAX {
        return None;
    }
    CLASSES
        .iter()
        .position(|&c| usize::from(c) >= size && usize::from(c) % align == 0)
        .map(|i| u8::try_from(i).expect("24 classes"))
}

fn class_size(class: u8) -> usize {
    usize::from(CLASSES[usize::from(class)])
}

struct Slab {
    class: u8,
    live: u16,
    /// Position in its class's partial list, while it has both live and free slots.
    partial_at: Option<u32>,
    used: [u64; MAX_SLOTS / 64],
}

impl Slab {
    fn capacity(class: u8) -> usize {
        (page_size() / class_size(class)).min(MAX_SLOTS)
    }
    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }
    fn take(&mut self) -> Option<usize> {
        let cap = Self::capacity(self.class);
        let i = (0..cap.div_ceil(64))
            .find_map(|w| {
                let free = !self.used[w];
                (free != 0).then(|| w * 64 + free.trailing_zeros() as usize)
            })
            .filter(|&i| i < cap)?;
        self.used[i / 64] |= 1 << (i % 64);
        self.live += 1;
        Some(i)
    }
    fn put(&mut self, i: usize) {
        self.used[i / 64] &= !(1 << (i % 64));
        self.live -= 1;
    }
    fn is_full(&self) -> bool {
        usize::from(self.live) == Self::capacity(self.class)
    }
}

/// What a page was last used for; kept after it is freed so a double free is recognized.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Never = 0,
    LargeHead = 1,
    LargeBody = 2,
    // Slab of class c: SLAB + c.
    Slab = 3,
}

/// Free runs of pages, best fit, coalescing.
struct Runs {
    total: u32,
    /// Pages at and above this index have never been handed out.
    top: u32,
    by_start: BTreeMap<u32, u32>,
    by_len: BTreeSet<(u32, u32)>,
}

impl Runs {
    fn insert(&mut self, start: u32, len: u32) {
        if len > 0 {
            self.by_start.insert(start, len);
            self.by_len.insert((len, start));
        }
    }
    fn remove(&mut self, start: u32, len: u32) {
        self.by_start.remove(&start);
        self.by_len.remove(&(len, start));
    }

    /// `count` pages whose first index plus `bias` is a multiple of `align` (the bias is the
    /// arena's own page number modulo `align`, so that addresses, not indexes, are aligned).
    fn alloc(&mut self, count: u32, align: u32, bias: u32) -> Option<u32> {
        let align_up = |p: u32| Some(p.checked_add(bias)?.checked_next_multiple_of(align)? - bias);
        let fit = self
            .by_len
            .range((count, 0)..)
            .find(|&&(len, start)| align_up(start).is_some_and(|f| f + count <= start + len))
            .copied();
        if let Some((len, start)) = fit {
            self.remove(start, len);
            let first = align_up(start).expect("checked by find");
            self.insert(start, first - start);
            self.insert(first + count, start + len - first - count);
            return Some(first);
        }
        let first = align_up(self.top)?;
        if first.checked_add(count)? > self.total {
            return None;
        }
        self.free(self.top, first - self.top);
        self.top = first + count;
        Some(first)
    }

    fn free(&mut self, mut start: u32, mut len: u32) {
        if len == 0 {
            return;
        }
        if let Some((&s, &l)) = self.by_start.range(..start).next_back()
            && s + l == start
        {
            self.remove(s, l);
            start = s;
            len += l;
        }
        if let Some(&l) = self.by_start.get(&(start + len)) {
            self.remove(start + len, l);
            len += l;
        }
        if start + len == self.top {
            self.top = start;
        } else {
            self.insert(start, len);
        }
    }
}

struct HeapState {
    runs: Runs,
    slabs: HashMap<u32, Slab>,
    partial: [Vec<u32>; CLASSES.len()],
    large: HashMap<u32, usize>,
    tags: Vec<u8>,
}

impl HeapState {
    /// Put slab `page` on its class's partial list (no-op if it is there).
    fn list(&mut self, page: u32) {
        let slab = self.slabs.get_mut(&page).expect("slab exists");
        if slab.partial_at.is_none() {
            let list = &mut self.partial[usize::from(slab.class)];
            slab.partial_at = Some(u32::try_from(list.len()).expect("slab count fits in u32"));
            list.push(page);
        }
    }

    /// Take slab `page` off its class's partial list (no-op if it is not there). O(1).
    fn unlist(&mut self, page: u32) {
        let slab = self.slabs.get_mut(&page).expect("slab exists");
        let Some(at) = slab.partial_at.take() else {
            return;
        };
        let list = &mut self.partial[usize::from(slab.class)];
        list.swap_remove(at as usize);
        if let Some(&moved) = list.get(at as usize) {
            self.slabs
                .get_mut(&moved)
                .expect("listed slab exists")
                .partial_at = Some(at);
        }
    }
}

/// The allocator of one instance.
pub(crate) struct Heap {
    state: Mutex<HeapState>,
}

impl Heap {
    pub fn new(pages: usize) -> Heap {
        Heap {
            state: Mutex::new(HeapState {
                runs: Runs {
                    total: u32::try_from(pages).expect("arena pages fit in u32"),
                    top: 0,
                    by_start: BTreeMap::new(),
                    by_len: BTreeSet::new(),
                },
                slabs: HashMap::new(),
                partial: Default::default(),
                large: HashMap::new(),
                tags: vec![Tag::Never as u8; pages],
            }),
        }
    }

    /// Allocate `size` bytes (non-zero) aligned to `align` (a power of two).
    pub fn alloc(&self, pager: &Pager, size: usize, align: usize) -> Result<NonNull<u8>, Error> {
        debug_assert!(size > 0 && align.is_power_of_two());
        let page = page_size();
        let base = pager.arena.base();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let addr = if let Some(class) = class_for(size, align) {
            let (page_index, slot) = Self::alloc_small(st, pager, class)?;
            base + page_index as usize * page + slot * class_size(class)
        } else {
            if align > MAX_ALIGN || size > pager.arena.len() {
                return Err(Error::TooLarge { size, align });
            }
            let count =
                u32::try_from(size.div_ceil(page)).map_err(|_| Error::TooLarge { size, align })?;
            let align_pages = u32::try_from((align / page).max(1)).expect("MAX_ALIGN fits");
            let bias = u32::try_from((base / page) % align_pages as usize).expect("< align_pages");
            let first =
                st.runs
                    .alloc(count, align_pages, bias)
                    .ok_or(Error::OutOfAddressSpace {
                        reserved: pager.arena.len(),
                    })?;
            let run = PageRun {
                first: PageId(first),
                count,
            };
            pager.activate(run);
            add(&pager.counters.allocated_pages, u64::from(count));
            st.large.insert(first, size);
            st.tags[first as usize] = Tag::LargeHead as u8;
            for p in first + 1..first + count {
                st.tags[p as usize] = Tag::LargeBody as u8;
            }
            base + first as usize * page
        };
        add(&pager.counters.live_allocations, 1);
        add(&pager.counters.live_bytes, size as u64);
        Ok(NonNull::new(addr as *mut u8).expect("arena addresses are non-null"))
    }

    fn alloc_small(st: &mut HeapState, pager: &Pager, class: u8) -> Result<(u32, usize), Error> {
        if let Some(&page) = st.partial[usize::from(class)].last() {
            let slab = st
                .slabs
                .get_mut(&page)
                .expect("slabs in a partial list exist");
            let slot = slab
                .take()
                .expect("slabs in a partial list have a free slot");
            if slab.is_full() {
                st.unlist(page);
            }
            return Ok((page, slot));
        }
        let page = st.runs.alloc(1, 1, 0).ok_or(Error::OutOfAddressSpace {
            reserved: pager.arena.len(),
        })?;
        pager.activate(PageRun {
            first: PageId(page),
            count: 1,
        });
        add(&pager.counters.allocated_pages, 1);
        st.tags[page as usize] = Tag::Slab as u8 + class;
        let mut slab = Slab {
            class,
            live: 0,
            partial_at: None,
            used: [0; MAX_SLOTS / 64],
        };
        let slot = slab.take().expect("a new slab has room");
        let full = slab.is_full();
        st.slabs.insert(page, slab);
        if !full {
            st.list(page);
        }
        Ok((page, slot))
    }

    /// Free the allocation at `ptr` made with `size` and `align`. Refusals change nothing.
    pub fn free(
        &self,
        pager: &Pager,
        ptr: usize,
        size: usize,
        align: usize,
    ) -> Result<(), FreeError> {
        let page = page_size();
        let base = pager.arena.base();
        if ptr < base || ptr >= base + pager.arena.len() {
            return Err(FreeError::Foreign(ptr));
        }
        let index = u32::try_from((ptr - base) / page).expect("arena pages fit in u32");
        let offset = (ptr - base) % page;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let tag = st.tags[index as usize];
        let released = if tag >= Tag::Slab as u8 {
            let class = tag - Tag::Slab as u8;
            let csize = class_size(class);
            if offset % csize != 0 || offset / csize >= Slab::capacity(class) {
                return Err(FreeError::NotAllocated(ptr));
            }
            let slot = offset / csize;
            let Some(slab) = st.slabs.get_mut(&index).filter(|s| s.is_used(slot)) else {
                return Err(FreeError::DoubleFree(ptr));
            };
            if class_for(size, align) != Some(class) {
                return Err(FreeError::SizeMismatch {
                    ptr,
                    allocated: csize,
                    given: size,
                });
            }
            slab.put(slot);
            if slab.live == 0 {
                st.unlist(index);
                st.slabs.remove(&index);
                Some(PageRun {
                    first: PageId(index),
                    count: 1,
                })
            } else {
                st.list(index);
                None
            }
        } else if tag == Tag::LargeHead as u8 && offset == 0 {
            let Some(&allocated) = st.large.get(&index) else {
                return Err(FreeError::DoubleFree(ptr));
            };
            if allocated != size {
                return Err(FreeError::SizeMismatch {
                    ptr,
                    allocated,
                    given: size,
                });
            }
            st.large.remove(&index);
            let count = u32::try_from(allocated.div_ceil(page)).expect("checked at allocation");
            Some(PageRun {
                first: PageId(index),
                count,
            })
        } else {
            return Err(FreeError::NotAllocated(ptr));
        };
        sub(&pager.counters.live_allocations, 1);
        sub(&pager.counters.live_bytes, size as u64);
        if let Some(run) = released {
            match pager.release(run) {
                Ok(()) => st.runs.free(run.first.0, run.count),
                // The pages keep whatever state the failure left; never hand them out again.
                Err(f) => tracing::error!(
                    what = f.what,
                    errno = f.errno,
                    "releasing ghost pages failed; their address space is retired"
                ),
            }
            sub(&pager.counters.allocated_pages, u64::from(run.count));
        }
        Ok(())
    }

    /// Whether a new allocation of this shape always reads as zeros: page runs are fresh or
    /// discarded pages, while slab slots may hold a previous allocation's bytes.
    pub fn zeroed_on_alloc(size: usize, align: usize) -> bool {
        class_for(size, align).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_respect_alignment() {
        assert_eq!(class_for(1, 1).map(class_size), Some(16));
        assert_eq!(class_for(33, 8).map(class_size), Some(48));
        assert_eq!(class_for(33, 64).map(class_size), Some(64));
        assert_eq!(class_for(100, 128).map(class_size), Some(128));
        assert_eq!(class_for(2048, 2048).map(class_size), Some(2048));
        assert_eq!(class_for(2049, 8), None);
        assert_eq!(class_for(8, 4096), None);
    }

    #[test]
    fn runs_best_fit_and_coalesce() {
        let mut r = Runs {
            total: 100,
            top: 0,
            by_start: BTreeMap::new(),
            by_len: BTreeSet::new(),
        };
        let a = r.alloc(10, 1, 0).unwrap();
        let b = r.alloc(5, 1, 0).unwrap();
        let c = r.alloc(20, 1, 0).unwrap();
        assert_eq!((a, b, c), (0, 10, 15));
        r.free(a, 10);
        r.free(b, 5);
        assert_eq!(r.by_start.get(&0), Some(&15), "neighbours coalesce");
        assert_eq!(r.alloc(15, 1, 0), Some(0));
        r.free(c, 20);
        assert_eq!(r.top, 15, "a run at the top lowers the top");
        assert_eq!(
            r.alloc(4, 8, 0),
            Some(16),
            "aligned runs leave the gap free"
        );
        assert_eq!(r.by_start.get(&15), Some(&1));
        assert_eq!(r.alloc(81, 1, 0), None, "out of space");
        // With the arena starting at page 3 (mod 8), index 5 is the aligned one.
        assert_eq!(
            r.alloc(1, 8, 3),
            Some(21),
            "aligned to the address, not the index"
        );
    }
}
