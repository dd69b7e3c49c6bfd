//! What the disk store really keeps in RAM per evicted page, measured from outside the store:
//! every heap allocation of this process goes through a counting global allocator, and the
//! anonymous resident memory (`RssAnon`, which the swap file's page cache is not part of) is
//! read from `/proc/self/status`. The README's "RAM per evicted page" figure cites this test.
//!
//! One test in its own binary: nothing else allocates while it measures.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use ghostmem::PageId;
use ghostmem::store::{BlockRef, DiskOptions, DiskStore, PageStore};

/// The system allocator, keeping the net number of bytes allocated.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Anonymous resident memory of this process in bytes.
fn rss_anon() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kib * 1024
}

const PAGE: usize = 4096;

/// Heap and anonymous RSS grown over a run of puts.
struct Growth {
    heap: i64,
    rss: i64,
}

/// `blocks` must be written already (its pages resident), so that filling it in costs no RAM.
fn measure_puts(s: &mut DiskStore, blocks: &mut [(PageId, BlockRef, usize)]) -> Growth {
    let mut data = vec![0u8; PAGE];
    let (heap, rss) = (LIVE_BYTES.load(Relaxed), rss_anon());
    for (p, entry) in (0..).zip(blocks.iter_mut()) {
        let len = 1 + (p as usize * 7919) % PAGE;
        data[..len].fill(p as u8);
        let page = PageId(p);
        *entry = (page, s.put(page, &data[..len]).unwrap(), len);
    }
    Growth {
        heap: LIVE_BYTES.load(Relaxed) - heap,
        rss: rss_anon() - rss,
    }
}

#[test]
fn ram_per_evicted_page_is_zero_bytes() {
    let dir = std::env::temp_dir().join(format!("ghostmem-disk-ram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for encrypt in [false, true] {
        let path: PathBuf = dir.join(format!("swap-{encrypt}"));
        let mut s = DiskStore::open(&path, PAGE, DiskOptions { encrypt }).unwrap();
        // Fewer with encryption: unoptimised ciphers in debug test builds are slow.
        let n = if encrypt { 5_000 } else { 100_000u32 };
        let mut blocks = vec![(PageId(u32::MAX), BlockRef(u64::MAX), 1); n as usize];
        let index = s.index_bytes();
        let grown = measure_puts(&mut s, &mut blocks);
        let per_page = |bytes: i64| bytes as f64 / f64::from(n);
        eprintln!(
            "encrypt={encrypt}: {n} evicted pages: heap {:+} bytes ({:.3} per page), anonymous \
             RSS {:+} bytes ({:.3} per page), store index {index} bytes -> {}",
            grown.heap,
            per_page(grown.heap),
            grown.rss,
            per_page(grown.rss),
            s.index_bytes()
        );
        assert_eq!(grown.heap, 0, "live blocks cost the store no heap memory");
        // Page granularity and the allocator's own bookkeeping: allow 32 KiB in all, far less
        // than one byte per page (a per-block map of 8 bytes would add 800 KB).
        assert!(
            grown.rss < 32 << 10,
            "live blocks cost the store anonymous RAM: {:+} bytes",
            grown.rss
        );
        assert_eq!(s.index_bytes(), index, "nor mappings of its own");

        // Freed slots cost 8 bytes each in the free stacks, given back as they are reused.
        let heap = LIVE_BYTES.load(Relaxed);
        for &(page, b, len) in &blocks {
            s.remove(page, b, len);
        }
        let freed = s.index_bytes();
        assert!(
            freed - index <= 2 * 8 * u64::from(n),
            "8 bytes per free slot: {freed}"
        );
        let data = vec![1u8; PAGE];
        for &(page, _, len) in &blocks {
            s.put(page, &data[..len]).unwrap();
        }
        drop(data);
        assert_eq!(s.free_slots(), 0);
        assert_eq!(
            s.index_bytes(),
            index,
            "drained free stacks give their memory back"
        );
        assert_eq!(
            LIVE_BYTES.load(Relaxed),
            heap,
            "freeing and reusing slots costs no heap memory"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
